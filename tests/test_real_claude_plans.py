"""Conformance: the REAL Claude Code's ExitPlanMode decided from a Telegram topic (the mock
model API on 127.0.0.1 writes the plan file and asks to leave plan mode; see
tests/test_real_claude.py for the setup).

A plan is shown as its Markdown, whole as a `.md` document when its card cannot hold it,
with "Approve", "Approve, accept edits" and "Keep planning…". Accepting edits switches the
real CLI to acceptEdits: the next Write runs without asking. Keep planning sends the
person's next reply to the model as the tool result. A format the real binary rejects
fails here; it is never skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.model_api import (
    ANTHROPIC,
    ModelRequest,
    Reply,
    Text,
    ThreadedModelAPI,
    ToolUse,
    write,
)
from tests.harness import Bridge
from tests.real_binaries import CLAUDE, START, use_real_claude

pytestmark = pytest.mark.real_agents

STEPS = 40  # a plan longer than its card: the rest goes as a document
PLAN = "# Plan: greet\n\n" + "\n".join(
    f"{n}. Step {n}: write the greeting part {n} into out.txt, then check it reads well."
    for n in range(1, STEPS + 1))
FEEDBACK = "Please also add a test for the greeting."


def planner(out: str) -> Any:
    """Write the plan into the plan file the CLI names, call ExitPlanMode, then (when the
    plan was approved) write `out`, then finish."""

    def script(request: ModelRequest) -> Reply:
        results = request.tool_results()
        if not results:
            path = re.search(r"create your plan at (\S+\.md)", json.dumps(request.body))
            assert path, "the CLI named no plan file"
            return ToolUse(name="Write", input={"file_path": path.group(1), "content": PLAN})
        if len(results) == 1:
            return ToolUse(name="ExitPlanMode", input={})
        if len(results) == 2 and "approved your plan" in results[1]:
            return write(out, "hello")
        return Text(text="Finished. The tools said: " + " | ".join(results)[-300:])

    return script


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI()
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


@pytest.fixture
def planning(make_bridge, tg, model) -> Bridge:
    bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    model.script = planner(str(bridge.project / "out.txt"))
    use_real_claude(bridge, CLAUDE.require(), model.base_url)
    # the session starts in plan mode (from the chat, `/new … --plan` is the modes slice's)
    bridge.config.write_text(bridge.config.read_text().replace(
        'args = ["--setting-sources="]',
        'args = ["--setting-sources=", "--permission-mode", "plan"]'))
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    return bridge


def plan_card(tg: Any) -> tuple[int, Any]:
    tg.say("/new demo plan a greeting")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    return thread, tg.message_with("Plan to approve", thread, timeout=START)


def payload(card: Any, label: str) -> str:
    return next(b["callback_data"] for b in card.buttons if b["text"] == label)


def results(model: ThreadedModelAPI) -> list[str]:
    return model.requests(ANTHROPIC)[-1].tool_results()


def test_a_long_plan_reads_as_text_and_goes_whole_as_a_document(planning, tg, model):
    _, card = plan_card(tg)
    assert "# Plan: greet" in card.text and "1. Step 1: write" in card.text
    assert '\\n' not in card.text and '"plan"' not in card.text  # not escaped JSON
    assert [b["text"] for b in card.buttons] == [
        "Approve", "Approve, accept edits", "Keep planning…", "Stop"]
    name = re.search(r"attached as (plan-\w+\.md)", card.text)
    assert name, card.text
    sent = tg.wait_for("sendDocument", timeout=START)
    document = tg.on(lambda: tg.fake.documents[sent.result["document"]["file_id"]])
    assert document.file_name == name.group(1)
    assert document.data.decode() == PLAN  # the whole plan, step 40 included
    tg.answer(tg.tap(card, payload(card, "Stop")))


def test_approve_accepting_edits_the_next_write_runs_without_asking(planning, tg, model):
    thread, card = plan_card(tg)
    answered = tg.answer(tg.tap(card, payload(card, "Approve, accept edits")))
    assert "Approved, accepting edits" in answered.text
    summary = tg.message_with("Turn finished", thread, timeout=START)
    assert (planning.project / "out.txt").read_text() == "hello"
    said = results(model)
    assert "User has approved your plan" in said[1] and "Step 40" in said[1]
    assert "File created successfully" in said[2]
    assert "Finished." in summary.text
    assert not [m for m in tg.messages(thread) if "Approval needed" in (m.text or "")]
    assert "Approved, accepting edits by" in tg.message_with("Plan to approve", thread).text


def test_approve_alone_leaves_plan_mode_and_the_write_still_asks(planning, tg, model):
    thread, card = plan_card(tg)
    assert "Approved" in tg.answer(tg.tap(card, payload(card, "Approve"))).text
    asked = tg.message_with("Approval needed", thread, timeout=START)
    assert "out.txt" in asked.text and "Write" in asked.text
    assert not (planning.project / "out.txt").exists()
    tg.answer(tg.tap(asked, payload(asked, "Allow once")))
    tg.message_with("Turn finished", thread, timeout=START)
    assert (planning.project / "out.txt").read_text() == "hello"


def test_keep_planning_sends_the_reply_as_feedback(planning, tg, model):
    thread, card = plan_card(tg)
    form = tg.answer(tg.tap(card, payload(card, "Keep planning…")))
    assert "feedback on the plan" in form.text
    tg.say(FEEDBACK, thread=thread)
    tg.message_with("Turn finished", thread, timeout=START)
    said = results(model)
    assert said[1] == FEEDBACK  # the model reads the person's words, as they wrote them
    assert not (planning.project / "out.txt").exists()
    settled = tg.message_with("Plan to approve", thread).text
    assert "Sent back to planning by" in settled and FEEDBACK in settled


def test_the_cli_approves_a_plan_accepting_edits(planning, tg, model):
    """`agent-bridge approve ID --accept-edits`: the plan is approved and the real CLI runs
    in acceptEdits (the next Write runs without asking); the card says so."""
    assert "--accept-edits" in planning.cli("approve", "--help").stdout
    thread, _ = plan_card(tg)
    sid = next(s["id"] for s in planning.json("sessions"))
    (pending,) = planning.session(sid)["pending_approvals"]
    out = planning.cli("approve", pending["id"], "--accept-edits").stdout
    assert "accepting edits" in out
    tg.message_with("Turn finished", thread, timeout=START)
    assert (planning.project / "out.txt").read_text() == "hello"
    assert "File created successfully" in results(model)[2]
    assert not [m for m in tg.messages(thread) if "Approval needed" in (m.text or "")]
    assert planning.session(sid)["mode"] == "acceptEdits"
    assert "Approved, accepting edits by" in tg.message_with("Plan to approve", thread).text
