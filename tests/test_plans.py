"""Plans, the pure parts: Claude's ExitPlanMode as a plan approval on the wire (the shapes
tests/test_real_claude_plans.py proves against the real binary), its card, its decisions."""

from __future__ import annotations

import json

from bridge.actions import Verb, decode_button
from bridge.approvals import AccessPolicy, Actor, Approval, Decision, Refusal, decide
from bridge.codecs.claude import ClaudeCodec
from bridge.codecs.codex_requests import offered as _offered
from bridge.events import AnswerApproval, ApprovalRequested, DecisionKind
from bridge.model import SessionView
from bridge.plans import KEEP_PLANNING, PLAN_DECISIONS
from bridge.redact import Redactor
from bridge.render_outbox import render_reminder
from bridge.render_plans import PLAN_CHARS, plan_attachment, render_decision_card
from bridge.session import SessionState

REDACTOR = Redactor()
ANA = Actor(surface="telegram", user_id="111", name="ana")
POLICY = AccessPolicy(allowed={"telegram": frozenset({"111"})})
SESSION = SessionView(id="abc234", project="api", agent="claude", protocol="claude",
                      cwd="/src/api", state=SessionState.WAITING_APPROVAL, title="plan it",
                      created_at=0.0, updated_at=0.0, branch="main")
PLAN = '# Plan\n\n1. Add "greet" to app.py\n2. Test it'
# the request as Claude Code 2.1.331 sends it (the CLI fills `plan` from the plan file)
EXIT_PLAN = {"type": "control_request", "request_id": "c403fa9c", "request": {
    "subtype": "can_use_tool", "tool_name": "ExitPlanMode", "display_name": "ExitPlanMode",
    "input": {"plan": PLAN, "planFilePath": "/c/plans/plan-a-greeting.md"},
    "tool_use_id": "toolu_1", "requires_user_interaction": True}}


def plan_approval(plan: str = PLAN, **kw) -> Approval:
    return Approval(id="xyz789", session_id="abc234", request_id="c403fa9c",
                    tool="ExitPlanMode", input={"plan": plan}, offered=PLAN_DECISIONS,
                    requested_at=100.0, **kw)


def asked() -> tuple[ClaudeCodec, ApprovalRequested]:
    codec = ClaudeCodec()
    (event,) = codec.receive(json.dumps(EXIT_PLAN).encode() + b"\n")
    assert isinstance(event, ApprovalRequested)
    return codec, event


def answer(codec: ClaudeCodec, decision: DecisionKind, message: str | None = None) -> dict:
    codec.send(AnswerApproval(request_id="c403fa9c", decision=decision, message=message))
    (line,) = codec.data_to_send().splitlines()
    return json.loads(line)["response"]["response"]


def test_exit_plan_mode_is_a_plan_approval_with_its_own_decisions():
    _, event = asked()
    assert event.tool == "ExitPlanMode" and event.input["plan"] == PLAN
    assert event.offered == PLAN_DECISIONS
    assert DecisionKind.ALLOW_SESSION not in event.offered  # no rule for a plan


def test_approve_accepting_edits_switches_the_session_mode_only():
    codec, _ = asked()
    assert answer(codec, DecisionKind.ACCEPT_EDITS) == {
        "behavior": "allow", "updatedInput": EXIT_PLAN["request"]["input"],
        "updatedPermissions": [
            {"type": "setMode", "mode": "acceptEdits", "destination": "session"}]}


def test_approve_alone_and_keep_planning_on_the_wire():
    codec, _ = asked()
    assert answer(codec, DecisionKind.ALLOW_ONCE) == {
        "behavior": "allow", "updatedInput": EXIT_PLAN["request"]["input"]}
    codec, _ = asked()
    assert answer(codec, DecisionKind.DENY, "add tests") == {
        "behavior": "deny", "message": "add tests", "interrupt": False}


def test_keep_planning_without_words_tells_the_agent_to_keep_planning():
    verdict = decide(plan_approval(), DecisionKind.DENY, ANA, now=1.0, policy=POLICY)
    assert isinstance(verdict, Decision) and verdict.message == KEEP_PLANNING
    verdict = decide(plan_approval(), DecisionKind.DENY, ANA, now=1.0, policy=POLICY,
                     reason="smaller steps")
    assert isinstance(verdict, Decision) and verdict.message == "smaller steps"


def test_accepting_edits_is_refused_where_it_is_not_offered():
    bash = Approval(id="xyz789", session_id="abc234", request_id="r", tool="Bash",
                    input={"command": "make"}, offered=ApprovalRequested(
                        request_id="r", tool="Bash", input={}).offered, requested_at=1.0)
    assert isinstance(decide(bash, DecisionKind.ACCEPT_EDITS, ANA, now=2.0, policy=POLICY),
                      Refusal)
    verdict = decide(plan_approval(), DecisionKind.ACCEPT_EDITS, ANA, now=2.0, policy=POLICY)
    assert isinstance(verdict, Decision) and verdict.message is None
    assert verdict.approval.state.value == "allowed"


def test_codex_never_offers_accept_edits():
    """A request without a list of decisions offers Codex's four, never a plan's."""
    assert DecisionKind.ACCEPT_EDITS not in ApprovalRequested(
        request_id="r", tool="Bash", input={}).offered
    assert DecisionKind.ACCEPT_EDITS not in _offered(None)


def test_the_plan_card_reads_as_the_plan_with_its_buttons():
    card = render_decision_card(plan_approval(), SESSION, redactor=REDACTOR)
    assert "Plan to approve" in card.text and PLAN in card.text
    assert "\\n" not in card.text and '"plan"' not in card.text
    labels = [b.label for row in card.buttons for b in row]
    assert labels == ["Approve", "Approve, accept edits", "Keep planning…", "Stop"]
    verbs = [decode_button(b.action.encode()).verb for row in card.buttons for b in row]
    assert verbs == [Verb.ALLOW_ONCE, Verb.ACCEPT_EDITS, Verb.DENY_REASON, Verb.STOP_APPROVAL]
    assert plan_attachment(plan_approval()) is None
    reminder = render_reminder(plan_approval(), SESSION, now=200.0, timeout=None,
                               on_timeout="keep", redactor=REDACTOR)
    assert "the plan “# Plan”" in reminder.text and reminder.buttons == card.buttons


def test_a_long_plan_is_cut_on_the_card_and_attached_whole():
    long = "\n".join(f"{n}. step {n} of the long plan" for n in range(400))
    assert len(long) > PLAN_CHARS
    card = render_decision_card(plan_approval(long), SESSION, redactor=REDACTOR)
    assert "attached as plan-xyz789.md" in card.text and "step 399" not in card.text
    assert plan_attachment(plan_approval(long)) == "plan-xyz789.md"


def test_a_settled_plan_card_says_how_and_by_whom_and_has_no_buttons():
    verdict = decide(plan_approval(), DecisionKind.DENY, ANA, now=1.0, policy=POLICY,
                     reason="smaller steps")
    assert isinstance(verdict, Decision)
    card = render_decision_card(verdict.approval, SESSION, redactor=REDACTOR)
    assert "Sent back to planning by ana (telegram)" in card.text
    assert "smaller steps" in card.text and card.buttons == ()
    done = decide(plan_approval(), DecisionKind.ACCEPT_EDITS, ANA, now=1.0, policy=POLICY)
    assert isinstance(done, Decision)
    text = render_decision_card(done.approval, SESSION, redactor=REDACTOR).text
    assert "Approved, accepting edits by ana (telegram)" in text


def test_a_secret_in_a_plan_is_redacted_on_the_card():
    secret = "ghp_" + "a1B2" * 9
    card = render_decision_card(plan_approval(f"1. use token {secret}"), SESSION,
                                redactor=REDACTOR)
    assert secret not in card.text
