"""One owner of the approval lifecycle: every state change goes through the table in
bridge/approvals.py, and two taps racing on one approval decide it once."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bridge.actions import APPROVAL_VERBS, DECISION_BUTTONS, VERB_DECISIONS, Verb
from bridge.approvals import (
    TIMER,
    AccessPolicy,
    Actor,
    Approval,
    ApprovalState,
    Decision,
    abandon,
    decide,
    describe_outcome,
    expire,
    stop_all,
    withdraw,
)
from bridge.errors import IllegalTransition
from bridge.events import DecisionKind
from bridge.render import render_outcome
from tests.test_hardening_approvals import CLAUDE_OPEN, Agent, can_use, hub_for, until

ROOT = Path(__file__).resolve().parent.parent
ANA = Actor(surface="cli", user_id="ana", name="ana")
BOB = Actor(surface="cli", user_id="bob", name="bob")
POLICY = AccessPolicy(allowed={})
ALL = (DecisionKind.ALLOW_ONCE, DecisionKind.ALLOW_SESSION, DecisionKind.DENY, DecisionKind.STOP)


def pending() -> Approval:
    return Approval(id="a1", session_id="s1", request_id="r1", tool="Bash",
                    input={"command": "ls"}, offered=ALL, requested_at=0.0)


def settled_ways() -> list[Approval]:
    allowed = decide(pending(), DecisionKind.ALLOW_ONCE, ANA, now=1.0, policy=POLICY)
    timed_out = expire(pending(), now=10_000.0, timeout=60.0, on_timeout="deny")
    assert isinstance(allowed, Decision) and isinstance(timed_out, Decision)
    (stopped,) = stop_all([pending()], ANA, now=1.0)
    return [allowed.approval, timed_out.approval, stopped.approval,
            withdraw(pending(), now=1.0), abandon(pending(), now=1.0, reason="gone")]


def test_each_way_to_settle_an_approval_makes_a_move_the_table_allows():
    assert [a.state for a in settled_ways()] == [
        ApprovalState.ALLOWED, ApprovalState.DENIED, ApprovalState.DENIED,
        ApprovalState.WITHDRAWN, ApprovalState.EXPIRED,
    ]


@pytest.mark.parametrize("index", range(5))
def test_a_settled_approval_cannot_be_settled_again_by_any_path(index):
    settled = settled_ways()[index]
    with pytest.raises(IllegalTransition):
        withdraw(settled, now=2.0)
    with pytest.raises(IllegalTransition):
        abandon(settled, now=2.0, reason="gone")
    with pytest.raises(IllegalTransition):
        stop_all([settled], BOB, now=2.0)
    # a person's tap and the timer refuse without raising: they say why instead
    again = decide(settled, DecisionKind.DENY, BOB, now=2.0, policy=POLICY)
    assert not isinstance(again, Decision)
    assert again.message == describe_outcome(settled)
    assert expire(settled, now=10**9, timeout=1.0, on_timeout="deny") is None


def test_no_state_change_of_an_approval_is_written_outside_bridge_approvals():
    """`replace(approval, state=…)` and hand-built settled rows bypass the table."""
    by_hand = re.compile(r"replace\([^)]*\bstate\s*=\s*ApprovalState\.", re.DOTALL)
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("bridge", "daemon", "bots")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "bridge" / "approvals.py" and by_hand.search(path.read_text())
    ]
    assert offenders == []


def test_one_verb_decision_table_serves_the_card_and_the_tap():
    assert set(VERB_DECISIONS) == APPROVAL_VERBS
    assert VERB_DECISIONS[Verb.DENY_REASON] is DecisionKind.DENY
    assert {b.decision for b in DECISION_BUTTONS} == set(ALL)


def test_the_outcome_words_are_the_same_for_the_decider_the_latecomer_and_the_card():
    allowed = decide(pending(), DecisionKind.ALLOW_SESSION, ANA, now=60.0, policy=POLICY)
    assert isinstance(allowed, Decision)
    assert describe_outcome(allowed.approval, mine=True) == "Allowed for the session."
    assert describe_outcome(allowed.approval) == "Already allowed for the session by ana."
    assert render_outcome(allowed.approval).startswith("✅ Allowed for the session by ana")
    (stopped,) = stop_all([pending()], ANA, now=60.0)
    assert describe_outcome(stopped.approval, mine=True) == "Stopped."
    assert describe_outcome(stopped.approval) == "Already stopped by ana."
    assert stopped.message == "Stopped by ana."
    assert TIMER.label == "timeout"


async def test_two_taps_racing_on_one_approval_decide_it_once_and_the_loser_hears_who(
        tmp_path):
    agent = Agent(tmp_path, "claude", [
        *CLAUDE_OPEN, can_use("r1", "ls -la"),
        {"wait": {"type": "control_response"}},
        {"send": {"type": "result", "subtype": "success", "is_error": False,
                  "session_id": "cs1", "result": "done", "num_turns": 1}},
    ])
    hub = await hub_for(tmp_path, agent)
    try:
        session = await hub.new_session("demo", "go", actor=ANA)
        (shown,) = await until(lambda: hub.pending_approvals(session.id))
        first, second = await asyncio.gather(
            hub.decide(shown.id, DecisionKind.ALLOW_ONCE, actor=ANA),
            hub.decide(shown.id, DecisionKind.DENY, actor=BOB),
        )
        assert [first.ok, second.ok].count(True) == 1
        stored = await hub.store.approval(shown.id)
        winner, loser = (first, second) if first.ok else (second, first)
        assert winner.approval == stored
        assert loser.message == describe_outcome(stored)
        assert loser.message in ("Already allowed once by ana.", "Already denied by bob.")

        async def answered() -> list[object]:
            return [m for m in agent.received() if m.get("type") == "control_response"
                    and m["response"].get("request_id") == "r1"]

        await until(answered)
        await until(lambda: _idle(hub, session.id))
        assert len(await answered()) == 1  # the agent heard one answer, the winner's
    finally:
        await hub.shutdown()
        await hub.store.close()


async def _idle(hub, sid: str) -> bool:
    return (await hub.store.session(sid)).state.value == "idle"
