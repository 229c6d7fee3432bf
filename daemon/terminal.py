"""Terminal sessions: Claude Code and Codex run by a person in a terminal, seen through the
agents' own hooks (docs/terminal-hooks.md).

Theory of operation: `agent-bridge hook permission-request` (run by the agent) forwards the
hook's JSON over the control socket. While the person is away, the request becomes an
approval of a daemon session standing for that terminal session (its own thread,
"terminal · host:repo@branch"), folded by the same `SessionMachine` and decided through the
same `ApprovalService` as a daemon session's: a `TerminalRunner` is the session's runner,
and what the machine would send to an agent process becomes the hook's answer instead. Not
away, or once nobody can answer (the hook gave up, the person came back, the timer): no
decision, and the terminal asks as usual. Nothing here ever approves by default.
`agent-bridge hook stop` (the turn-end hook) folds a `TurnCompleted`, so the thread gets the
summary and the diff a daemon session's turn gets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import posixpath
import socket
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from bridge import questions as q
from bridge.approvals import TIMER, Actor, Decision
from bridge.codecs.claude_questions import ASK_USER_QUESTION, asked_questions
from bridge.errors import ProtocolError
from bridge.events import (
    AgentEvent,
    AnswerApproval,
    AnswerQuestions,
    ApprovalRequested,
    ApprovalWithdrawn,
    DecisionKind,
    QuestionsAsked,
    SessionStarted,
    TurnCompleted,
    TurnStarted,
)
from bridge.facts import Facts
from bridge.machine import SessionMachine
from bridge.model import HOOKS_SURFACE
from bridge.outbox import OpenThread
from bridge.plans import EXIT_PLAN_MODE
from bridge.redact import Redactor
from bridge.render import shorten
from bridge.session import LIVE_STATES, SessionState
from daemon import gitstate
from daemon import store as st
from daemon.approvals import Answered
from daemon.changes import ChangeTracker
from daemon.hook_answers import NO_DECISION, HookAnswer, hook_answer, questions_answer
from daemon.supervisor import Notifier

log = logging.getLogger(__name__)

AGENTS = ("claude", "codex")
AWAY_KEY = "away"
#: what a terminal approval offers: no Stop (the terminal's process is not ours to stop)
OFFERED = (DecisionKind.ALLOW_ONCE, DecisionKind.ALLOW_SESSION, DecisionKind.DENY)
#: Claude Code 2.1.331's terminal UI runs the hook for a plan review (ExitPlanMode) but
#: keeps its own plan dialog whatever the hook answers: no card that could not decide
NOT_ANSWERABLE = frozenset({EXIT_PLAN_MODE})
BACK = "back at the terminal: the terminal asks now; nothing was approved"
TIMED_OUT = "no answer in time: the terminal asks now; nothing was approved"
ANSWERED_THERE = "answered in the terminal; nothing was decided here"
HOOK_GONE = "the terminal stopped waiting for this (its hook gave up); nothing was approved"


class Fanning(Protocol):
    async def enqueue(self, session_id: str, intent: Any) -> None: ...


class TerminalRunner:
    """The runner of one terminal session: the daemon's side of its waiting hooks."""

    def __init__(self, *, store: st.Store, notifier: Notifier, machine: SessionMachine,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.notifier = notifier
        self.machine = machine
        self.clock = clock
        self.session_id = machine.session_id
        self.lock = asyncio.Lock()
        self.done = asyncio.Event()  # never set: a terminal session outlives its hooks
        self.waiting: dict[str, asyncio.Future[HookAnswer]] = {}
        self.inputs: dict[str, dict[str, Any]] = {}  # request id → the tool input asked

    async def commit(self, facts: Facts) -> bool:
        written = await self.store.commit_facts(
            self.session_id, facts, now=self.clock(), surfaces=self.notifier.surfaces(),
            outbox=self.notifier.outbox_kinds)
        if written is None:
            return False
        if written.new_approvals != facts.new_approvals:
            self.machine.stored(written.new_approvals)
        if written.new_questions != facts.new_questions:
            self.machine.stored_questions(written.new_questions)
        await self.notifier.committed(self.session_id, written)
        return True

    async def ask(self, request: ApprovalRequested | QuestionsAsked,
                  tool_input: dict[str, Any]) -> asyncio.Future[HookAnswer]:
        """Open the approval or the questions (their cards go out); the future is the hook's
        answer."""
        async with self.lock:
            self.inputs[request.request_id] = tool_input
            events: list[AgentEvent] = []
            if not self.machine.turn_active:
                events.append(TurnStarted())
            events.append(request)
            waiter = asyncio.get_running_loop().create_future()
            self.waiting[request.request_id] = waiter
            await self.commit(self.machine.received(events, self.clock()))
        return waiter

    async def answer(self, decision: Decision) -> Answered:
        """A decision from the approval service: committed, then the hook is told."""
        request_id = decision.approval.request_id
        async with self.lock:
            waiter = self.waiting.get(request_id)
            if waiter is None or waiter.done():
                return Answered.GONE
            if decision.approval.decided_by == TIMER.label:
                # a timer never decides for a terminal: the terminal asks
                await self._withdraw(request_id, TIMED_OUT)
                return Answered.GONE
            return await self._settle(request_id, self.machine.decided(decision, self.clock()))

    async def settle_question(self, settled: q.Question) -> Answered:
        """A question answered (or expired): committed; once none of its request's questions
        waits, the hook is told (an allow whose input carries the answers)."""
        request_id = settled.request_id
        async with self.lock:
            waiter = self.waiting.get(request_id)
            if waiter is None or waiter.done():
                return Answered.GONE
            return await self._settle(request_id,
                                      self.machine.question_settled(settled, self.clock()))

    async def _settle(self, request_id: str, facts: Facts | None) -> Answered:
        """Commit what settling `request_id` made (under the lock), then tell the hook."""
        if facts is None:
            return Answered.GONE
        if not await self.commit(facts):
            self.machine.undo()
            return Answered.LOST
        self._answer(request_id, facts)
        return Answered.COMMITTED

    def _answer(self, request_id: str, facts: Facts) -> None:
        """Tell the hook what the machine would have sent the agent."""
        waiter = self.waiting.get(request_id)
        for command in facts.to_agent:
            answer: HookAnswer | None = None
            if isinstance(command, AnswerApproval):
                answer = hook_answer(command, facts)
            elif isinstance(command, AnswerQuestions):
                answer = questions_answer(self.inputs.get(request_id, {}), command)
            if answer is not None and waiter is not None and not waiter.done():
                waiter.set_result(answer)
                del self.waiting[request_id]
                self.inputs.pop(request_id, None)

    async def withdraw(self, request_id: str, reason: str) -> None:
        """Nobody can answer `request_id` any more: its card says so, the hook gets no
        decision (the terminal asks)."""
        async with self.lock:
            await self._withdraw(request_id, reason)

    async def _withdraw(self, request_id: str, reason: str) -> None:
        waiter = self.waiting.pop(request_id, None)
        self.inputs.pop(request_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(NO_DECISION)
        if request_id in self.machine.pending or request_id in self.machine.questions:
            await self.commit(self.machine.received(
                [ApprovalWithdrawn(request_id=request_id)], self.clock()))
            await self.store.record_event(self.session_id, "notice", {"text": reason},
                                          now=self.clock())

    async def turn_ended(self, last_message: str | None) -> None:
        """The turn is over: a request still open was answered in the terminal (Claude Code
        shows its own dialog beside the hook, and leaves the hook running when the dialog
        wins), so its card is withdrawn; then the summary."""
        async with self.lock:
            for request_id in list(self.waiting):
                await self._withdraw(request_id, ANSWERED_THERE)
            await self.commit(self.machine.received(
                [TurnCompleted(is_error=False, result_text=last_message)], self.clock()))

    async def stop(self, actor: Actor, reason: str | None = None) -> None:
        """Not offered on a terminal card; should it come, every waiting hook is released."""
        for request_id in list(self.waiting):
            await self.withdraw(request_id, reason or f"released by {actor.label}")


class TerminalSessions:
    """Terminal sessions' hooks and the away switch (persisted in the store)."""

    def __init__(self, *, store: st.Store, notifier: Notifier, fanout: Fanning,
                 changes: ChangeTracker, redactor: Redactor,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.notifier = notifier
        self.fanout = fanout
        self.changes = changes
        self.redactor = redactor
        self.clock = clock
        self.runners: dict[str, TerminalRunner] = {}  # session id → runner
        self._by_agent: dict[tuple[str, str], str] = {}  # (agent, its session id) → ours
        self._opening = asyncio.Lock()
        self.away = False

    async def load(self) -> None:
        self.away = await self.store.setting(AWAY_KEY) == "on"

    async def set_away(self, away: bool, *, actor: Actor) -> bool:
        """Away on or off; coming back releases every waiting hook (the terminal asks)."""
        await self.store.set_setting(AWAY_KEY, "on" if away else "off")
        self.away = away
        log.info("away mode %s (by %s)", "on" if away else "off", actor.label)
        if not away:
            for runner in list(self.runners.values()):
                for request_id in list(runner.waiting):
                    await runner.withdraw(request_id, BACK)
        return away

    # -- the hooks ----------------------------------------------------------------------

    async def permission_request(self, agent: str, payload: Mapping[str, Any]) -> HookAnswer:
        """The hook's answer; waits for a person only while away. Cancelled (the hook's
        connection closed), the approval is withdrawn."""
        if not self.away or agent not in AGENTS:
            return NO_DECISION
        tool = payload.get("tool_name")
        tool_input = payload.get("tool_input")
        agent_session = payload.get("session_id")
        if (not isinstance(tool, str) or not isinstance(tool_input, dict)
                or not isinstance(agent_session, str) or tool in NOT_ANSWERABLE):
            return NO_DECISION
        if await self._the_daemons(agent_session):
            return NO_DECISION
        request_id = f"hook-{uuid.uuid4().hex[:12]}"
        cwd = payload.get("cwd")
        request: ApprovalRequested | QuestionsAsked
        if tool == ASK_USER_QUESTION:
            if agent != "claude":
                return NO_DECISION  # an answer rides on updatedInput, which Codex refuses
            try:
                asked = asked_questions(tool_input, json.dumps(payload))
            except ProtocolError:
                return NO_DECISION  # malformed: the terminal asks it
            request = QuestionsAsked(request_id=request_id, questions=asked)
        else:
            request = ApprovalRequested(
                request_id=request_id, tool=tool, input=tool_input, offered=OFFERED,
                cwd=cwd if isinstance(cwd, str) else None,
                description=_description(payload))
        runner = await self._runner(agent, agent_session, payload)
        waiter = await runner.ask(request, tool_input)
        try:
            return await asyncio.shield(waiter)
        except asyncio.CancelledError:
            await runner.withdraw(request_id, HOOK_GONE)
            raise

    async def turn_ended(self, agent: str, payload: Mapping[str, Any]) -> None:
        if not self.away or agent not in AGENTS:
            return
        agent_session = payload.get("session_id")
        if not isinstance(agent_session, str) or await self._the_daemons(agent_session):
            return
        runner = await self._runner(agent, agent_session, payload)
        last = payload.get("last_assistant_message")
        await runner.turn_ended(last if isinstance(last, str) else None)

    # -- sessions -----------------------------------------------------------------------

    async def _runner(self, agent: str, agent_session: str,
                      payload: Mapping[str, Any]) -> TerminalRunner:
        async with self._opening:
            sid = self._by_agent.get((agent, agent_session))
            if sid is None:
                sid = await self._find(agent, agent_session)
            if sid is None:
                sid = await self._create(agent, agent_session, payload)
            self._by_agent[(agent, agent_session)] = sid
            runner = self.runners.get(sid)
            if runner is None:
                session = await self.store.session(sid)
                state = session.state
                if state not in LIVE_STATES:  # after a restart: it is live in its terminal
                    state = SessionState.IDLE
                    await self.store.update_session(sid, state=state)
                machine = SessionMachine(session_id=sid, state=state, cwd=session.cwd,
                                         new_id=st.new_id, protocol=agent,
                                         redactor=self.redactor)
                runner = TerminalRunner(store=self.store, notifier=self.notifier,
                                        machine=machine, clock=self.clock)
                self.runners[sid] = runner
            return runner

    async def _the_daemons(self, agent_session: str) -> bool:
        """Whether `agent_session` is a session the daemon runs itself (its agent asks over
        its own protocol: a hook there must not make a second card)."""
        return any(s.agent_session_id == agent_session and not s.through_hooks
                   for s in await self.store.sessions(include_archived=True))

    async def _find(self, agent: str, agent_session: str) -> str | None:
        for session in await self.store.sessions(include_archived=True):
            if session.through_hooks and session.protocol == agent \
                    and session.agent_session_id == agent_session:
                return session.id
        return None

    async def _create(self, agent: str, agent_session: str,
                      payload: Mapping[str, Any]) -> str:
        cwd = payload.get("cwd")
        cwd = cwd if isinstance(cwd, str) and cwd.startswith("/") else "/"
        now = self.clock()
        repo = posixpath.basename(cwd.rstrip("/")) or "/"
        found = await gitstate.inspect_repo(self.changes.runner_for("local"), cwd)
        branch = None
        if isinstance(found, gitstate.RepoState):
            repo, branch = posixpath.basename(found.root) or repo, found.branch
        place = f"{socket.gethostname()}:{repo}" + (f"@{branch}" if branch else "")
        session = await self.store.create_session(
            project=repo, agent=agent, protocol=agent, cwd=cwd, host="local",
            title=shorten(f"terminal · {place}", 200, self.redactor), now=now,
            owner=f"{HOOKS_SURFACE}:{os.getuid()}")
        await self.changes.record_start(session.id, cwd, worktree=False)
        machine = SessionMachine(session_id=session.id, state=SessionState.STARTING, cwd=cwd,
                                 new_id=st.new_id, protocol=agent, redactor=self.redactor)
        runner = TerminalRunner(store=self.store, notifier=self.notifier, machine=machine,
                                clock=self.clock)
        self.runners[session.id] = runner
        await self.fanout.enqueue(session.id, OpenThread())
        await runner.commit(machine.received(
            [SessionStarted(agent_session_id=agent_session, cwd=cwd)], now))
        return session.id


def _description(payload: Mapping[str, Any]) -> str | None:
    tool_input = payload.get("tool_input")
    if isinstance(tool_input, dict) and isinstance(tool_input.get("description"), str):
        return str(tool_input["description"])
    return None
