from dataclasses import replace

import pytest

from bridge.approvals import (
    AccessPolicy,
    Actor,
    Approval,
    ApprovalState,
    Decision,
    Refusal,
    RefusalReason,
    decide,
    expire,
    settle,
)
from bridge.errors import IllegalTransition
from bridge.events import DecisionKind

ANA = Actor(surface="telegram", user_id="111", name="ana")
BOB = Actor(surface="telegram", user_id="222", name="bob")
CLI = Actor(surface="cli", user_id="me")
POLICY = AccessPolicy(allowed={"telegram": frozenset({"111"})})
ALL = (DecisionKind.ALLOW_ONCE, DecisionKind.ALLOW_SESSION, DecisionKind.DENY, DecisionKind.STOP)


def pending(**kw):
    base = {"id": "a1", "session_id": "s1", "request_id": "r1", "tool": "Bash",
            "input": {"command": "rm -rf build"}, "offered": ALL, "requested_at": 1000.0}
    return Approval(**{**base, **kw})


def test_an_allowed_user_allows_once_and_the_approval_records_who_and_when():
    result = decide(pending(), DecisionKind.ALLOW_ONCE, ANA, now=1010.0, policy=POLICY)
    assert isinstance(result, Decision)
    assert result.approval.state is ApprovalState.ALLOWED
    assert result.approval.decided_by == "ana (telegram)"
    assert result.approval.decided_at == 1010.0
    assert result.message is None


def test_a_stranger_changes_nothing():
    result = decide(pending(), DecisionKind.ALLOW_ONCE, BOB, now=1010.0, policy=POLICY)
    assert isinstance(result, Refusal)
    assert result.reason is RefusalReason.NOT_ALLOWED


def test_an_empty_allowlist_means_nobody():
    nobody = AccessPolicy(allowed={"telegram": frozenset()})
    result = decide(pending(), DecisionKind.ALLOW_ONCE, ANA, now=1.0, policy=nobody)
    assert isinstance(result, Refusal)
    unconfigured = AccessPolicy(allowed={})
    assert isinstance(decide(pending(), DecisionKind.DENY, ANA, now=1.0, policy=unconfigured),
                      Refusal)


def test_the_local_cli_may_act():
    assert isinstance(decide(pending(), DecisionKind.DENY, CLI, now=1.0, policy=POLICY), Decision)


def test_a_second_tap_is_refused_and_says_who_decided():
    first = decide(pending(), DecisionKind.DENY, ANA, now=1.0, policy=POLICY, reason="not here")
    assert isinstance(first, Decision)
    assert first.approval.reason == "not here"
    second = decide(first.approval, DecisionKind.ALLOW_ONCE, ANA, now=2.0, policy=POLICY)
    assert isinstance(second, Refusal)
    assert second.reason is RefusalReason.ALREADY_DECIDED
    assert "denied by ana (telegram)" in second.message


def test_a_decision_the_agent_did_not_offer_is_refused():
    approval = pending(offered=(DecisionKind.ALLOW_ONCE, DecisionKind.DENY))
    result = decide(approval, DecisionKind.ALLOW_SESSION, ANA, now=1.0, policy=POLICY)
    assert isinstance(result, Refusal)
    assert result.reason is RefusalReason.NOT_OFFERED


@pytest.mark.parametrize("state", [ApprovalState.EXPIRED, ApprovalState.WITHDRAWN])
def test_an_approval_nobody_waits_for_cannot_be_allowed(state):
    result = decide(pending(state=state), DecisionKind.ALLOW_ONCE, ANA, now=1.0, policy=POLICY)
    assert isinstance(result, Refusal)
    assert "Nothing was approved" in result.message


def test_the_timer_denies_when_due_and_never_approves():
    approval = pending()
    assert expire(approval, now=1000.0 + 1799, timeout=1800, on_timeout="deny") is None
    result = expire(approval, now=1000.0 + 1800, timeout=1800, on_timeout="deny")
    assert result is not None
    assert result.approval.state is ApprovalState.DENIED
    assert result.kind is DecisionKind.DENY
    assert "30 min" in (result.message or "")


def test_the_timer_with_keep_or_no_timeout_never_acts():
    approval = pending()
    assert expire(approval, now=10**9, timeout=1800, on_timeout="keep") is None
    assert expire(approval, now=10**9, timeout=None, on_timeout="deny") is None
    assert expire(replace(approval, state=ApprovalState.ALLOWED), now=10**9, timeout=1,
                  on_timeout="deny") is None


def test_the_timer_on_an_agent_that_offers_no_plain_deny_stops_instead():
    approval = pending(offered=(DecisionKind.ALLOW_ONCE, DecisionKind.STOP))
    result = expire(approval, now=10**6, timeout=1, on_timeout="deny")
    assert result is not None
    assert result.kind is DecisionKind.STOP
    assert result.approval.state is ApprovalState.DENIED


def test_settled_approvals_cannot_move():
    for state in (ApprovalState.ALLOWED, ApprovalState.DENIED, ApprovalState.EXPIRED):
        with pytest.raises(IllegalTransition):
            settle(state, ApprovalState.ALLOWED)


def test_a_session_rule_covers_exactly_the_same_call_never_a_whole_tool():
    from bridge.approvals import rule_subject

    same = rule_subject("Bash", {"command": "npm test", "description": "run the tests"})
    assert same == rule_subject("Bash", {"command": "npm test", "description": "again"})
    assert same != rule_subject("Bash", {"command": "npm test && rm -rf /"})
    assert rule_subject("Write", {"file_path": "/a.py", "content": "x"}) == rule_subject(
        "Write", {"file_path": "/a.py", "content": "y"})
    assert rule_subject("Write", {"file_path": "/a.py"}) != rule_subject("Edit",
                                                                        {"file_path": "/a.py"})
    assert rule_subject("mcp__x", {"a": 1}) != rule_subject("mcp__x", {"a": 2})
