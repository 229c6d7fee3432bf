"""The session's rules without a process: recorded real transcripts replayed through the
codec and the `SessionMachine`, the way the supervisor pumps them, with the facts the
machine returns committed to a plain ledger (h11's ConnectionPair is the model); then how
the end of a process is classified."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from itertools import count
from typing import Any

import pytest

from bridge.approvals import AccessPolicy, Actor, Approval, ApprovalState, Decision, decide
from bridge.codecs.base import AgentCodec
from bridge.codecs.claude import ClaudeCodec
from bridge.codecs.codex import CodexCodec
from bridge.errors import IllegalTransition, ProtocolError
from bridge.events import (
    AgentEvent,
    ApprovalRequested,
    DecisionKind,
    Interrupt,
    Notice,
    SessionStarted,
    TurnCompleted,
    TurnStarted,
)
from bridge.facts import Facts
from bridge.machine import SessionMachine
from bridge.session import DAEMON_STOPPED, SessionState
from tests.transcripts import agent_bytes, chunks, load

S = SessionState
CLI = Actor(surface="cli", user_id="ana")
POLICY = AccessPolicy(allowed={})
CODEX_THREAD = "01a20e18-c900-7bb2-92c3-4212eb280461"


@dataclass
class Ledger:
    """What the store would hold after committing each `Facts`, in order."""

    states: list[SessionState] = field(default_factory=list)
    approvals: dict[str, Approval] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    turns: list[TurnCompleted] = field(default_factory=list)
    stopped_by: list[str | None] = field(default_factory=list)

    def commit(self, facts: Facts) -> None:
        self.events += [kind for _, kind, _ in facts.events]
        for approval in facts.new_approvals:
            self.approvals[approval.id] = approval
        for approval in facts.settled:
            assert self.approvals[approval.id].state is ApprovalState.PENDING
            self.approvals[approval.id] = approval
        self.fields.update(facts.changes)
        for key, amount in facts.increments.items():
            self.fields[key] = self.fields.get(key, 0) + amount
        if facts.state_changed:
            self.states.append(facts.changes["state"])
        self.turns += facts.turns_completed
        if facts.turns_completed:
            self.stopped_by.append(facts.stopped_by)


class Pair:
    """A codec and a machine wired like the supervisor wires them; no process, no clock."""

    def __init__(self, codec: AgentCodec, prompt: str | None, state: S = S.STARTING) -> None:
        ids = count(1)
        self.codec = codec
        self.machine = SessionMachine(session_id="s1", state=state, cwd="/work",
                                      new_id=lambda: f"a{next(ids)}", protocol="test")
        self.ledger = Ledger()
        self.now = 1000.0
        codec.start(prompt)
        self.machine.launched(with_prompt=prompt is not None)
        self.codec.data_to_send()

    def tick(self) -> float:
        self.now += 1
        return self.now

    def feed(self, data: bytes, seed: int = 0) -> list[AgentEvent]:
        """Each line in random chunks, so each line's facts are committed on their own."""
        seen: list[AgentEvent] = []
        for line in data.splitlines(keepends=True):
            for chunk in chunks(line, seed):
                events = self.codec.receive(chunk)
                if events:
                    self.ledger.commit(self.machine.received(events, self.tick()))
                    seen += events
        return seen

    def decide(self, kind: DecisionKind, message: str | None = None) -> bytes:
        (approval,) = [a for a in self.ledger.approvals.values()
                       if a.state is ApprovalState.PENDING]
        decision = decide(approval, kind, CLI, now=self.tick(), policy=POLICY, reason=message)
        assert isinstance(decision, Decision)
        assert approval.request_id in self.codec.pending_requests()
        facts = self.machine.decided(decision, self.now)
        assert facts is not None
        self.ledger.commit(facts)
        for command in facts.to_agent:
            self.codec.send(command)
        return self.codec.data_to_send()

    def exit(self, code: int = 0, stderr: str = "", **kw: Any) -> None:
        self.ledger.commit(self.machine.exited(code, stderr, self.tick(), **kw))


def to_agent(lines: list[tuple[str, dict[str, Any]]], kind: str) -> dict[str, Any]:
    return next(line for d, line in lines if d == "to_agent" and line["type"] == kind)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_claude_allow_runs_the_turn_through_one_approval(seed):
    lines = load("claude-code-2.1.331-allow.jsonl")
    pair = Pair(ClaudeCodec(), "write a file")
    pair.feed(agent_bytes(lines[:6]), seed)  # up to the permission prompt
    assert pair.ledger.states == [S.RUNNING, S.WAITING_APPROVAL]
    (approval,) = pair.ledger.approvals.values()
    assert (approval.tool, approval.cwd) == ("Bash", "/work")
    assert approval.input == {"command": "echo hi > out.txt", "description": "write a file"}
    assert pair.ledger.fields["last_tool"] == "Bash $ echo hi > out.txt"
    assert pair.ledger.fields["agent_session_id"]
    sent = pair.decide(DecisionKind.ALLOW_ONCE)
    assert json.loads(sent) == to_agent(lines, "control_response")
    assert pair.ledger.approvals[approval.id].state is ApprovalState.ALLOWED
    assert pair.machine.pending == {}
    pair.feed(agent_bytes(lines[6:]), seed)
    assert pair.ledger.states == [S.RUNNING, S.WAITING_APPROVAL, S.RUNNING, S.IDLE]
    (turn,) = pair.ledger.turns
    assert turn.result_text == "All done."
    assert pair.ledger.fields["turns"] == 1
    assert pair.ledger.fields["cost_usd"] == pytest.approx(0.00028)
    assert pair.ledger.fields["error"] is None
    assert pair.machine.resting  # a live process, waiting for a reply
    pair.exit(0)
    assert pair.ledger.states[-1] is S.COMPLETED
    assert pair.ledger.fields["pid"] is None
    assert pair.ledger.events.count("decision") == 1 and pair.ledger.events[-1] == "exited"


def test_claude_deny_tells_the_agent_the_reason_and_the_turn_still_ends_well():
    lines = load("claude-code-2.1.331-deny.jsonl")
    pair = Pair(ClaudeCodec(), "write a file")
    pair.feed(agent_bytes(lines[:6]))
    sent = json.loads(pair.decide(DecisionKind.DENY, "not in this repo"))
    assert sent["response"]["response"]["message"] == "not in this repo"
    (approval,) = pair.ledger.approvals.values()
    assert approval.state is ApprovalState.DENIED and approval.reason == "not in this repo"
    pair.feed(agent_bytes(lines[6:]))
    assert pair.ledger.states[-2:] == [S.RUNNING, S.IDLE]
    assert pair.ledger.fields["error"] is None


def test_claude_interrupt_withdrawn_by_the_agent_ends_interrupted_not_failed():
    pair = Pair(ClaudeCodec(), "write a file")
    pair.feed(agent_bytes(load("claude-code-2.1.331-interrupt.jsonl")), seed=9)
    (approval,) = pair.ledger.approvals.values()
    assert approval.state is ApprovalState.WITHDRAWN
    assert approval.decided_by == "the agent"
    assert pair.ledger.states == [S.RUNNING, S.WAITING_APPROVAL, S.RUNNING, S.IDLE]
    (turn,) = pair.ledger.turns
    assert turn.interrupted and pair.ledger.fields["error"] is None
    assert pair.ledger.stopped_by == [None]  # nobody here stopped it


def test_claude_stopped_by_a_person_denies_interrupts_and_stays_stopped():
    lines = load("claude-code-2.1.331-interrupt.jsonl")
    pair = Pair(ClaudeCodec(), "write a file")
    pair.feed(agent_bytes(lines[:6]))
    facts = pair.machine.stop(CLI, None, pair.tick())
    pair.ledger.commit(facts)
    assert pair.machine.stopping == "stopped by ana"
    (approval,) = pair.ledger.approvals.values()
    assert approval.state is ApprovalState.DENIED and approval.decision is DecisionKind.STOP
    assert isinstance(facts.to_agent[-1], Interrupt)
    assert facts.to_agent[0].message == "Stopped by ana."
    for command in facts.to_agent:
        pair.codec.send(command)
    pair.feed(agent_bytes(lines[6:]))
    assert pair.ledger.states == [S.RUNNING, S.WAITING_APPROVAL, S.STOPPED]
    assert pair.ledger.stopped_by == ["ana"]  # the interrupted turn says who stopped it
    pair.exit(0)
    assert pair.ledger.states[-1] is S.STOPPED


def test_claude_resume_continues_the_session_and_keeps_its_running_cost():
    lines = load("claude-code-2.1.331-resume.jsonl")
    pair = Pair(ClaudeCodec(), "please run a command")  # a resumed session starts again
    pair.feed(agent_bytes(lines[:6]))
    pair.decide(DecisionKind.ALLOW_ONCE)
    pair.feed(agent_bytes(lines[6:]))
    assert pair.codec.receive_eof() == []  # nothing left over
    assert pair.ledger.states == [S.RUNNING, S.WAITING_APPROVAL, S.RUNNING, S.IDLE]
    assert pair.ledger.fields["agent_session_id"] == "1e8a9bd1-e17c-4a6c-9bfb-75e9ef882a9d"
    # Claude reports the session's running total: it is stored as reported, not added up
    assert pair.ledger.fields["cost_usd"] == pytest.approx(0.00056)


@pytest.mark.parametrize(("name", "kind", "settled"), [
    ("codex-0.169.0-app-server-accept.jsonl", DecisionKind.ALLOW_ONCE, ApprovalState.ALLOWED),
    ("codex-0.169.0-app-server-decline.jsonl", DecisionKind.DENY, ApprovalState.DENIED),
])
def test_codex_turn_with_an_approval(name, kind, settled):
    pair = Pair(CodexCodec(cwd="/work", approval_policy="untrusted"), "please run a command")
    for direction, line in load(name):
        if direction != "from_agent":
            continue
        events = pair.feed(json.dumps(line).encode() + b"\n")
        if any(isinstance(e, ApprovalRequested) for e in events):
            assert pair.ledger.states[-1] is S.WAITING_APPROVAL
            pair.decide(kind)
    (approval,) = pair.ledger.approvals.values()
    assert approval.state is settled and approval.tool == "Bash"
    assert pair.ledger.states == [S.RUNNING, S.WAITING_APPROVAL, S.RUNNING, S.IDLE]
    assert pair.ledger.fields["agent_session_id"]
    assert pair.ledger.fields["tokens"] > 0
    assert pair.ledger.fields["turns"] == 1
    pair.exit(0)
    assert pair.ledger.states[-1] is S.COMPLETED


def test_codex_resume_continues_the_thread():
    pair = Pair(CodexCodec(cwd="/work", approval_policy="untrusted", resume=CODEX_THREAD),
                "go on")
    pair.feed(agent_bytes(load("codex-0.169.0-app-server-resume.jsonl")), seed=3)
    assert pair.ledger.fields["agent_session_id"] == CODEX_THREAD
    assert pair.ledger.states == [S.RUNNING, S.IDLE]
    assert pair.ledger.approvals == {}


# -- how a process ended -----------------------------------------------------------------


def machine_in(*events: AgentEvent, prompt: bool = True) -> tuple[SessionMachine, Ledger]:
    machine = SessionMachine(session_id="s1", state=S.STARTING, cwd="/w", new_id=lambda: "a1",
                             protocol="Claude Code stream-json")
    machine.launched(with_prompt=prompt)
    ledger = Ledger()
    if events:
        ledger.commit(machine.received(events, 1.0))
    return machine, ledger


def request(request_id: str = "r1") -> ApprovalRequested:
    return ApprovalRequested(request_id=request_id, tool="Bash", input={"command": "ls"},
                             offered=(DecisionKind.ALLOW_ONCE, DecisionKind.DENY))


def test_exit_0_without_ever_speaking_the_protocol_is_a_failure_that_says_so():
    machine, ledger = machine_in(Notice(text="hi"))
    ledger.commit(machine.exited(0, "warn: one\nlast words", 2.0))
    assert ledger.states == [S.FAILED]
    error = ledger.fields["error"]
    assert "without speaking the Claude Code stream-json protocol" in error
    assert "stdout: hi" in error and "stderr: last words" in error


def test_a_crash_mid_turn_fails_with_the_last_line_of_stderr():
    machine, ledger = machine_in(SessionStarted(agent_session_id="x"), TurnStarted())
    ledger.commit(machine.exited(1, "Traceback\nValueError: boom", 2.0))
    assert ledger.states[-1] is S.FAILED
    assert ledger.fields["error"] == "the agent exited with code 1: ValueError: boom"


def test_exiting_while_an_approval_waits_expires_it_and_fails():
    machine, ledger = machine_in(SessionStarted(agent_session_id="x"), request())
    ledger.commit(machine.exited(0, "", 2.0))
    assert ledger.states[-1] is S.FAILED
    assert ledger.fields["error"] == "the agent exited with code 0 while waiting for an approval"
    (approval,) = ledger.approvals.values()
    assert approval.state is ApprovalState.EXPIRED
    assert approval.reason == "the agent exited; nothing was approved"


def test_a_clean_close_mid_turn_fails_the_turn_whatever_the_agent_does():
    machine, ledger = machine_in(SessionStarted(agent_session_id="x"), request())
    machine.close(DAEMON_STOPPED)
    # refused, the agent ends its turn and exits 0: the turn still did not complete
    ledger.commit(machine.received([TurnCompleted(is_error=False)], 2.0))
    ledger.commit(machine.exited(0, "", 3.0))
    assert ledger.states[-1] is S.FAILED
    assert ledger.fields["error"] == ("the daemon stopped while this session was waiting "
                                      "approval; resume to continue")


def test_an_idle_exit_completes():
    machine, ledger = machine_in(SessionStarted(agent_session_id="x"),
                                 TurnCompleted(is_error=False))
    assert machine.resting
    machine.close("the idle timeout closed the agent")
    assert not machine.resting
    ledger.commit(machine.exited(0, "", 2.0))
    assert ledger.states == [S.IDLE, S.COMPLETED]  # one read: its last state
    assert ledger.fields["error"] is None


def test_a_dropped_connection_disconnects_even_after_a_failed_turn():
    machine, ledger = machine_in(SessionStarted(agent_session_id="x"),
                                 TurnCompleted(is_error=True, error="rate limited"))
    assert ledger.states[-1] is S.FAILED
    ledger.commit(machine.exited(255, "", 2.0, disconnected_from="box"))
    assert ledger.states[-1] is S.DISCONNECTED
    assert ledger.fields["error"].startswith("the connection to box dropped")


def test_a_broken_protocol_is_a_crash_with_the_reason():
    machine, ledger = machine_in(SessionStarted(agent_session_id="x"))
    machine.broke("the agent broke its protocol: corrupt JSON")
    ledger.commit(machine.exited(0, "", 2.0))
    assert ledger.states[-1] is S.FAILED
    assert ledger.fields["error"] == "the agent broke its protocol: corrupt JSON"


# -- illegal moves: the agent's are protocol errors, ours are bugs ------------------------


def test_a_reused_request_id_is_the_agents_protocol_error():
    machine, _ = machine_in(SessionStarted(agent_session_id="x"), request())
    with pytest.raises(ProtocolError):
        machine.received([request()], 2.0)


def test_an_agent_event_the_rules_refuse_is_a_protocol_error():
    machine = SessionMachine(session_id="s1", state=S.COMPLETED, cwd="/w", new_id=lambda: "a1")
    with pytest.raises(ProtocolError, match="turn_started"):
        machine.received([TurnStarted()], 1.0)


def test_a_move_we_ask_for_that_the_rules_refuse_raises():
    machine = SessionMachine(session_id="s1", state=S.COMPLETED, cwd="/w", new_id=lambda: "a1")
    with pytest.raises(IllegalTransition):
        machine.prompt("again", CLI, 1.0)


def test_a_decision_that_loses_the_race_is_undone():
    machine, ledger = machine_in(SessionStarted(agent_session_id="x"), request())
    (approval,) = ledger.approvals.values()
    decision = decide(approval, DecisionKind.DENY, CLI, now=2.0, policy=POLICY)
    assert isinstance(decision, Decision)
    facts = machine.decided(decision, 2.0)
    assert facts is not None and facts.changes["state"] is S.RUNNING
    machine.undo()
    assert machine.state is S.WAITING_APPROVAL and set(machine.pending) == {"r1"}
    stale = decide(replace(approval, id="other"), DecisionKind.DENY, CLI, now=3.0,
                   policy=POLICY)
    assert isinstance(stale, Decision)
    assert machine.decided(stale, 3.0) is None  # not the approval shown for that request

