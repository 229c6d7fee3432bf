"""An agent's plan as it progresses: Codex `turn/plan/updated` and `plan` items, ACP `plan`
updates. Decoded to one neutral `PlanUpdated`; the session machine lets through only what
changed (agents repeat the whole plan on every update), keyed per turn; the thread shows the
turn's plan once and edits that message as the steps change (end to end on both surfaces)."""

from __future__ import annotations

import json
from typing import Any

from bridge.codecs.acp import AcpCodec
from bridge.codecs.codex import CodexCodec
from bridge.events import PlanStep, PlanUpdated, StepStatus, TurnCompleted, TurnStarted
from bridge.machine import SessionMachine
from bridge.model import SessionView
from bridge.outbox import ShowPlan, decode, encode
from bridge.redact import Redactor
from bridge.render_plans import render_plan_progress
from bridge.session import SessionState
from tests.harness import FakeAgent, wait_until
from tests.slack_harness import CHANNEL as SLACK_CHANNEL
from tests.test_surface_contract import Driver, driver, start_bridge  # noqa: F401

WRITE = "Write the greeting"
CHECK = "Check that it reads well"


def codex_plan(*statuses: str) -> dict[str, Any]:
    return {"method": "turn/plan/updated", "params": {
        "threadId": "th", "turnId": "t1", "explanation": "Greeting work",
        "plan": [{"step": s, "status": st} for s, st in zip((WRITE, CHECK), statuses,
                                                             strict=True)]}}


def lines(*messages: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def test_codex_plan_updates_and_plan_items_decode_to_steps_and_text():
    codec = CodexCodec(cwd="/repo")
    (event,) = codec.receive(lines(codex_plan("inProgress", "pending")))
    assert event == PlanUpdated(text="Greeting work", steps=(
        PlanStep(text=WRITE, status=StepStatus.IN_PROGRESS),
        PlanStep(text=CHECK, status=StepStatus.PENDING)))
    item = {"method": "item/completed", "params": {"threadId": "th", "turnId": "t1", "item": {
        "type": "plan", "id": "p1", "text": "# Plan\n\n1. Greet\n"}}}
    assert codec.receive(lines(item)) == [PlanUpdated(text="# Plan\n\n1. Greet")]


def test_acp_plan_updates_decode_to_steps():
    codec = AcpCodec(cwd="/repo")
    codec.start(None)
    codec.receive(lines(
        {"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": 1, "agentCapabilities": {}}},
        {"jsonrpc": "2.0", "id": 1, "result": {"sessionId": "s1"}}))
    update = {"jsonrpc": "2.0", "method": "session/update", "params": {"sessionId": "s1",
              "update": {"sessionUpdate": "plan", "entries": [
                  {"content": WRITE, "priority": "high", "status": "completed"},
                  {"content": CHECK, "priority": "low", "status": "in_progress"},
                  {"content": "  ", "priority": "low", "status": "pending"}]}}}
    assert codec.receive(lines(update)) == [PlanUpdated(steps=(
        PlanStep(text=WRITE, status=StepStatus.COMPLETED),
        PlanStep(text=CHECK, status=StepStatus.IN_PROGRESS)))]


def machine() -> SessionMachine:
    ids = iter(f"id{n}" for n in range(100))
    return SessionMachine(session_id="abc234", state=SessionState.RUNNING, cwd="/repo",
                          new_id=lambda: next(ids))


def steps(*statuses: StepStatus) -> tuple[PlanStep, ...]:
    return tuple(PlanStep(text=t, status=s) for t, s in zip((WRITE, CHECK), statuses,
                                                            strict=True))


def test_only_a_changed_plan_is_news_and_each_turn_has_its_own_message():
    m = machine()
    first = PlanUpdated(steps=steps(StepStatus.IN_PROGRESS, StepStatus.PENDING))
    (shown,) = m.received([TurnStarted(), first], now=1.0).plans
    key = shown[0]
    assert m.received([first], now=2.0).plans == ()  # a repeat changes nothing
    later = PlanUpdated(steps=steps(StepStatus.COMPLETED, StepStatus.IN_PROGRESS))
    assert m.received([later], now=3.0).plans == ((key, later),)  # same message, edited
    # a plan item's text joins the steps the turn showed
    (merged,) = m.received([PlanUpdated(text="# Plan")], now=4.0).plans
    assert merged == (key, PlanUpdated(steps=later.steps, text="# Plan"))
    assert m.received([PlanUpdated()], now=5.0).plans == ()
    m.received([TurnCompleted(is_error=False)], now=6.0)
    (next_turn,) = m.received([TurnStarted(), first], now=7.0).plans
    assert next_turn[0] != key and next_turn[1] == first


def test_the_plan_intent_survives_the_outbox_and_reads_as_steps():
    intent = ShowPlan(key="k1", text="Greeting work",
                      steps=((WRITE, "completed"), (CHECK, "in_progress")))
    assert decode(*encode(intent)) == intent
    view = SessionView(id="abc234", agent="codex", project="demo", protocol="codex",
                       cwd="/repo", state=SessionState.RUNNING, created_at=1.0,
                       updated_at=1.0)
    card = render_plan_progress(intent.steps, intent.text, view, redactor=Redactor())
    assert card.text.splitlines()[0] == "🗒 Plan · abc234 · 1/2 done"
    assert f"✅ {WRITE}" in card.text and f"▶️ {CHECK}" in card.text
    assert "Greeting work" in card.text and card.buttons == ()


def test_the_thread_shows_the_plan_once_and_edits_it_as_steps_change(
        make_bridge: Any, driver: Driver) -> None:  # noqa: F811
    start_bridge(make_bridge, driver, agents={
        "cx": FakeAgent(protocol="codex", scenario="plan_updates")})
    thread = driver.start_session("demo greet --agent cx")
    card = driver.card_with(thread, "🗒 Plan")
    driver.card_with(thread, "Turn finished")
    wait_until(lambda: "2/2 done" in driver.current(card).text, what="the plan edited")
    text = driver.current(card).text
    assert "Greeting work" in text and f"✅ {WRITE}" in text and f"✅ {CHECK}" in text
    if driver.name == "telegram":
        tg = driver.tg  # type: ignore[attr-defined]
        posted = [m for m in tg.messages(thread) if "🗒 Plan" in (m.text or "")]
        edits = tg.on(lambda: [c for c in tg.fake.calls if c.method == "editMessageText"
                               and "🗒 Plan" in str(c.params.get("text"))])
    else:
        slack = driver.slack  # type: ignore[attr-defined]
        posted = [m for m in slack.fake.replies(SLACK_CHANNEL, thread) if "🗒 Plan" in m.shown]
        edits = slack.on(lambda: [c for c in slack.fake.calls if c.method == "chat.update"
                                  and "🗒 Plan" in json.dumps(c.params, ensure_ascii=False)])
    assert len(posted) == 1
    assert len(edits) == 2  # four updates, one a repeat: a post and two edits
