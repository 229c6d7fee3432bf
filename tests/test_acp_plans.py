"""An ACP agent's plan (claude-agent-acp's ExitPlanMode): the card's buttons are the agent's
OWN allow options, with its labels, and the answer is the chosen option's id; options that
never ask again (auto mode, bypass) are never offered, and nothing selects an option the
card did not show. ACP `plan` updates read as steps in the thread. End to end on both
surfaces with the fake ACP agent, which answers with the exact options claude-agent-acp
sends (its recorded "exit-plan-approve" scenario)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge.approvals import (
    AccessPolicy,
    Actor,
    Approval,
    Decision,
    Refusal,
    decide,
    describe_outcome,
)
from bridge.codecs.acp import AcpCodec
from bridge.events import AgentChoice, AnswerApproval, ApprovalRequested, DecisionKind
from tests.harness import Bridge, FakeAgent, wait_until
from tests.test_surface_contract import Driver, driver, start_bridge  # noqa: F401

# claude-agent-acp's options for ExitPlanMode (its recorded "exit-plan-approve", plus the
# older adapter's "auto-accept edits"), as tests/fakes/fake_acp.py sends them
PLAN_OPTIONS = [
    {"kind": "allow_once", "name": "Yes, manually approve edits", "optionId": "exit-plan-default"},
    {"kind": "allow_always", "name": "Yes, clear context (0% used) and use auto mode",
     "optionId": "exit-plan-clear-auto"},
    {"kind": "allow_always", "name": "Yes, and use auto mode", "optionId": "exit-plan-auto"},
    {"kind": "allow_always", "name": "Yes, and auto-accept edits", "optionId": "acceptEdits"},
    {"kind": "allow_always", "name": "Yes, and bypass permissions",
     "optionId": "exit-plan-bypass"},
    {"kind": "reject_once", "name": "No, keep planning", "optionId": "reject"},
]
CALL = {"toolCallId": "toolu_plan", "title": "Approve Plan", "kind": "switch_mode",
        "status": "pending", "rawInput": {"plan": "# Plan\n1. Do it"},
        "_meta": {"claudeCode": {"toolName": "ExitPlanMode"}}}
SHOWN = (AgentChoice(id="exit-plan-default", label="Yes, manually approve edits"),
         AgentChoice(id="acceptEdits", label="Yes, and auto-accept edits"))


def lines(*messages: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def asked(codec: AcpCodec, wire_id: int = 5) -> ApprovalRequested:
    (request,) = codec.receive(lines({"jsonrpc": "2.0", "id": wire_id,
                                      "method": "session/request_permission", "params": {
                                          "sessionId": "s1", "toolCall": CALL,
                                          "options": PLAN_OPTIONS}}))
    assert isinstance(request, ApprovalRequested)
    return request


@pytest.fixture
def codec() -> AcpCodec:
    codec = AcpCodec(cwd="/repo")
    codec.start("plan it")
    codec.receive(lines(
        {"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": 1, "agentCapabilities": {}}},
        {"jsonrpc": "2.0", "id": 1, "result": {"sessionId": "s1"}}))
    codec.data_to_send()
    return codec


def answered(codec: AcpCodec) -> Any:
    return json.loads(codec.data_to_send().splitlines()[-1])["result"]["outcome"]


def test_a_plan_offers_the_agents_own_options_but_never_one_that_stops_asking(codec):
    request = asked(codec)
    assert request.tool == "ExitPlanMode" and request.input["plan"] == "# Plan\n1. Do it"
    assert request.choices == SHOWN  # auto mode, clear context + auto, bypass: left out
    assert request.offered == (DecisionKind.ALLOW_ONCE, DecisionKind.DENY, DecisionKind.STOP)


@pytest.mark.parametrize(("choice", "option"), [
    ("acceptEdits", "acceptEdits"),
    ("exit-plan-default", "exit-plan-default"),
    (None, "exit-plan-default"),  # approved without naming one (the CLI): the allow once
    ("exit-plan-bypass", "exit-plan-default"),  # never shown: never selected
])
def test_the_answer_is_the_chosen_options_id(codec, choice, option):
    asked(codec)
    codec.send(AnswerApproval(request_id="5", decision=DecisionKind.ALLOW_ONCE, choice=choice))
    assert answered(codec) == {"outcome": "selected", "optionId": option}


def test_keep_planning_rejects_with_the_agents_reject_option(codec):
    asked(codec)
    codec.send(AnswerApproval(request_id="5", decision=DecisionKind.DENY, message="smaller"))
    assert answered(codec) == {"outcome": "selected", "optionId": "reject"}


ANA = Actor(surface="telegram", user_id="1", name="ana")
POLICY = AccessPolicy(allowed={"telegram": frozenset({"1"})})


def test_a_choice_is_an_allow_once_naming_the_option_and_the_card_says_which():
    plan = Approval(id="ap1234", session_id="s", request_id="5", tool="ExitPlanMode",
                    input={"plan": "x"}, requested_at=1.0, choices=SHOWN,
                    offered=(DecisionKind.ALLOW_ONCE, DecisionKind.DENY, DecisionKind.STOP))
    verdict = decide(plan, DecisionKind.ALLOW_ONCE, ANA, now=2.0, policy=POLICY, choice=1)
    assert isinstance(verdict, Decision) and verdict.approval.choice == "acceptEdits"
    assert describe_outcome(verdict.approval, mine=True) == (
        "Approved: Yes, and auto-accept edits.")
    for kind, index in ((DecisionKind.ALLOW_ONCE, 2), (DecisionKind.DENY, 0)):
        assert isinstance(decide(plan, kind, ANA, now=2.0, policy=POLICY, choice=index),
                          Refusal)


def plan_answer(bridge: Bridge) -> list[Any]:
    return [m["result"]["outcome"] for m in bridge.recorded()
            if isinstance(m.get("result"), dict) and "outcome" in m["result"]]


def test_a_plan_is_approved_with_the_agents_option_from_the_chat(
        make_bridge: Any, driver: Driver) -> None:  # noqa: F811
    bridge = start_bridge(make_bridge, driver, agents={
        "acp": FakeAgent(protocol="acp", scenario="plan")})
    thread = driver.start_session("demo plan a greeting --agent acp")
    steps = driver.card_with(thread, "🗒 Plan")
    assert "▶️ Write the greeting" in steps.text and "▫️ Check that it reads well" in steps.text
    card = driver.card_with(thread, "Plan to approve")
    assert "1. Write the greeting" in card.text
    assert [label for label, _ in card.buttons] == [
        "Yes, manually approve edits", "Yes, and auto-accept edits", "Keep planning…", "Stop"]
    (pending,) = bridge.json("sessions")[0]["pending_approvals"]
    assert [c["id"] for c in pending["choices"]] == ["exit-plan-default", "acceptEdits"]
    said = driver.tap(card, card.payload("Yes, and auto-accept edits"))
    assert "Approved: Yes, and auto-accept edits" in said
    wait_until(lambda: plan_answer(bridge), what="the answer to reach the agent")
    assert plan_answer(bridge) == [{"outcome": "selected", "optionId": "acceptEdits"}]
    assert "Plan answered with acceptEdits." in driver.card_with(thread, "Turn finished").text
    who = f"Approved: Yes, and auto-accept edits by {driver.alice} ({driver.name})"
    wait_until(lambda: who in driver.current(card).text, what=f"the card to say {who!r}")


def test_the_agents_own_option_labels_are_redacted_on_the_buttons():
    """An ACP agent names its plan options itself: their labels become buttons, which
    leave the machine like the card's text, so they are redacted too."""
    from bridge.model import SessionView
    from bridge.redact import Redactor
    from bridge.render_plans import render_plan_card
    from bridge.session import SessionState

    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    session = SessionView(id="s1", project="api", agent="acp", protocol="acp", cwd="/src/api",
                          state=SessionState.WAITING_APPROVAL, title="t", host="local",
                          created_at=0.0, updated_at=0.0)
    plan = Approval(id="ap1234", session_id="s1", request_id="5", tool="ExitPlanMode",
                    input={"plan": "x"}, requested_at=1.0,
                    choices=(AgentChoice(id="push", label=f"Yes, push with {token}"),
                             *SHOWN[1:]),
                    offered=(DecisionKind.ALLOW_ONCE, DecisionKind.DENY, DecisionKind.STOP))
    card = render_plan_card(plan, session, redactor=Redactor())
    labels = [b.label for row in card.buttons for b in row]
    assert labels[0] == "Yes, push with [redacted]"
    assert not any("ghp_" in label for label in labels)
