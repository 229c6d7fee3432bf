"""One task per agent session: bytes in and out of the process, events into the store.

The runner owns the process and the codec. Everything the agent says is folded into a
batch (events, approvals, session fields, state) and committed in one transaction before
anyone is told, so a crash loses nothing the agent said and a flood costs one commit per
read rather than one per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from bridge.approvals import Actor, Approval, ApprovalState, Decision
from bridge.codecs.base import AgentCodec
from bridge.errors import ApprovalError, IllegalTransition, ProtocolError
from bridge.events import (
    AgentEvent,
    AnswerApproval,
    ApprovalRequested,
    ApprovalWithdrawn,
    ControlAnswered,
    DecisionKind,
    Interrupt,
    Notice,
    SendPrompt,
    SessionStarted,
    ToolStarted,
    TurnCompleted,
    TurnStarted,
    UnknownEvent,
    UsageUpdated,
    event_kind,
)
from bridge.redact import Redactor
from bridge.render import shorten, tool_preview
from bridge.session import SessionState, Trigger, apply, closed_under
from daemon import store as st
from daemon.launch import AgentProcess, shutdown

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Batch:
    """What one read of agent output changes, committed together."""

    events: list[tuple[float, str, str]] = field(default_factory=list)
    new_approvals: list[Approval] = field(default_factory=list)
    settled: list[Approval] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)
    turns_completed: list[TurnCompleted] = field(default_factory=list)
    state_changed: bool = False
    stopped_by: str | None = None  # who stopped the session, for an interrupted turn
    # someone waits on this commit: an approval asked for or decided, or a tool call (the
    # approval request comes right after it, and waits for this commit in the same pump)
    urgent: bool = False


class Notifier(Protocol):
    """What the runner tells the rest of the daemon (the hub implements it)."""

    async def committed(self, session_id: str, batch: Batch) -> None: ...
    def outbox_kinds(self, batch: Batch) -> list[tuple[str, dict[str, Any]]]: ...
    def surfaces(self) -> Sequence[str]: ...


def event_data(event: AgentEvent) -> str:
    """The stored form of an event: its fields as JSON (raw wire copies only when unknown)."""
    data = {f.name: getattr(event, f.name) for f in fields(event)}
    if not isinstance(event, UnknownEvent):
        data.pop("raw", None)
    return json.dumps(data, ensure_ascii=False, default=str)


class SessionRunner:
    def __init__(
        self,
        *,
        store: st.Store,
        notifier: Notifier,
        session_id: str,
        state: SessionState,
        codec: AgentCodec,
        process: AgentProcess,
        cwd: str,
        grace: float,
        idle_exit: float | None = None,
        clock: Callable[[], float] = time.time,
        redactor: Redactor | None = None,
    ) -> None:
        # what is stored for a chat (last tool, errors) is redacted before it is cut
        self.redactor = redactor or Redactor()
        self.store = store
        self.notifier = notifier
        self.session_id = session_id
        self.state = state
        self.codec = codec
        self.process = process
        self.cwd = cwd
        self.grace = grace
        self.clock = clock
        self.lock = asyncio.Lock()  # serialises state changes and stdin writes
        self.turn_active = False
        self.stopping: str | None = None  # why we are closing the process, if we are
        # why `close()` closed the process, and the session's state when it began
        self.closed: tuple[str, SessionState] | None = None
        self.stopped_by: str | None = None  # who asked for it, when a person did
        self.failure: str | None = None
        self.done = asyncio.Event()
        self.exit_code: int | None = None
        self._pending: dict[str, str] = {}  # agent request id → approval id
        self.idle_exit = idle_exit
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None
        # until the agent says something in its protocol, what it printed (for the reason
        # when it exits without ever speaking it)
        self.spoke = False
        self._unspoken: list[str] = []

    # -- commands from people -------------------------------------------------------

    async def start(self, prompt: str | None) -> None:
        async with self.lock:
            self.codec.start(prompt)
            if prompt is not None:
                self.turn_active = True
            await self._flush()

    async def send_prompt(self, text: str, actor: Actor) -> None:
        async with self.lock:
            batch = Batch()
            self._record(batch, "prompt", {"text": text, "by": actor.label})
            self._trigger(batch, Trigger.TURN_STARTED)
            self.turn_active = True
            self.codec.send(SendPrompt(text=text))
            await self._commit(batch)
            await self._flush()

    async def answer(self, decision: Decision) -> bool:
        """Commit `decision` and pass it to the agent; False if someone settled it first."""
        approval = decision.approval
        async with self.lock:
            if approval.request_id not in self.codec.pending_requests():
                return False
            if self._pending.get(approval.request_id) != approval.id:
                return False  # the agent's request under this id is not the one decided
            batch = Batch()
            self._record(
                batch,
                "decision",
                {
                    "approval_id": approval.id,
                    "decision": decision.kind.value,
                    "by": approval.decided_by,
                    "message": decision.message,
                },
            )
            batch.settled.append(approval)
            state_before, pending_before = self.state, dict(self._pending)
            self._pending.pop(approval.request_id, None)
            if not self._pending:
                self._trigger(batch, Trigger.APPROVALS_SETTLED)
            if not await self._commit(batch):
                self.state, self._pending = state_before, pending_before
                return False
            try:
                self.codec.send(
                    AnswerApproval(
                        request_id=approval.request_id,
                        decision=decision.kind,
                        message=decision.message,
                        input=dict(approval.input),  # what the person was shown
                    )
                )
            except ApprovalError:
                return True  # recorded; the agent had just withdrawn the request
            await self._flush()
            return True

    async def stop(self, actor: Actor, reason: str | None = None) -> None:
        """Stop the session: deny what waits (and interrupt), then close the process."""
        async with self.lock:
            if self.stopping:
                return
            self.stopping = reason or f"stopped by {actor.label}"
            self.stopped_by = actor.label
            batch = Batch()
            self._record(batch, "stop", {"by": actor.label})
            now = self.clock()
            for request_id, approval_id in list(self._pending.items()):
                approval = await self.store.approval(approval_id)
                settled = _settled(approval, ApprovalState.DENIED, DecisionKind.STOP, actor, now)
                batch.settled.append(settled)
                with contextlib.suppress(ApprovalError):
                    self.codec.send(
                        AnswerApproval(
                            request_id=request_id,
                            decision=DecisionKind.STOP,
                            message=f"Stopped by {actor.label}.",
                        )
                    )
            self._pending.clear()
            self._trigger(batch, Trigger.STOPPED)
            batch.changes["error"] = None
            if self.turn_active:
                self.codec.send(Interrupt())
            await self._commit(batch)
            with contextlib.suppress(OSError):
                await self._flush()
        await self._close()

    async def close(self, reason: str) -> None:
        """Close the process without a person asking (the daemon stops, idle). `reason`
        completes "… while this session was running"; the session ends as `closed_under`
        says for the state it is in now, whatever the agent does once it is refused."""
        if self.stopping is None:
            self.stopping = reason
            self.closed = (reason, self.state)
        await self._close()

    async def _close(self) -> None:
        with contextlib.suppress(Exception):
            async with self.lock:
                self.codec.abandon()  # every request gets an answer, and it is never a yes
                await self._flush()
        with contextlib.suppress(Exception):
            await shutdown(self.process, grace=self.grace)

    # -- the pump -------------------------------------------------------------------

    async def run(self) -> None:
        """Pump the agent's output until it exits; always ends with a final state."""
        try:
            await self._pump()
        except ProtocolError as e:
            self.failure = f"the agent broke its protocol: {e.message}"
            excerpt = e.excerpt()
            if excerpt:
                self.failure += f" (line: {excerpt})"
            log.warning("session %s: %s", self.session_id, self.failure)
            await self._close()
        except Exception as e:  # keep the daemon up whatever one session does
            log.exception("session %s: runner failed", self.session_id)
            self.failure = f"internal error: {e!r}"
            await self._close()
        try:
            code = await asyncio.wait_for(self.process.wait(), self.grace * 3 + 1)
        except TimeoutError:
            await self._close()
            code = await self.process.wait()
        self.exit_code = code
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        await self._finish(code)
        self.done.set()

    async def _pump(self) -> None:
        while True:
            data = await self.process.read()
            if not data:
                events = self.codec.receive_eof()
                if events:
                    await self._handle(events)
                return
            events = self.codec.receive(data)
            if events:
                await self._handle(events)
            out = self.codec.data_to_send()
            if out:
                async with self.lock:
                    await self._write(out)

    async def _handle(self, events: list[AgentEvent]) -> None:
        async with self.lock:
            batch = Batch()
            now = self.clock()
            for event in events:
                self._heard(event)
                batch.events.append((now, event_kind(event), event_data(event)))
                self._fold(batch, event, now)
            batch.changes["last_event_at"] = now
            await self._commit(batch)
            await self._flush()

    def _heard(self, event: AgentEvent) -> None:
        """Note whether the agent has spoken its protocol: anything but a stray line."""
        if self.spoke:
            return
        if isinstance(event, Notice):
            if sum(map(len, self._unspoken)) < 500:
                self._unspoken.append(event.text)
        else:
            self.spoke = True

    def _fold(self, batch: Batch, event: AgentEvent, now: float) -> None:
        match event:
            case SessionStarted(agent_session_id=agent_session_id):
                batch.changes["agent_session_id"] = agent_session_id
                self._trigger(batch, Trigger.AGENT_READY)
            case TurnStarted():
                self.turn_active = True
                self._trigger(batch, Trigger.TURN_STARTED)
            case ToolStarted(tool=tool, input=tool_input):
                batch.urgent = True
                batch.changes["last_tool"] = shorten(
                    f"{tool} {tool_preview(tool, tool_input, 160, redactor=self.redactor)}",
                    200, self.redactor,
                )
            case ApprovalRequested():
                if event.request_id in self._pending:
                    # the codecs refuse this already; an overwrite would let a decision on
                    # the first request's card answer the second request
                    raise ProtocolError(
                        f"request id {event.request_id!r} reused while that request is "
                        "still pending")
                approval = Approval(
                    id=st.new_id(),
                    session_id=self.session_id,
                    request_id=event.request_id,
                    tool=event.tool,
                    input=event.input,
                    offered=event.offered,
                    requested_at=now,
                    description=event.description,
                    cwd=event.cwd or self.cwd,
                )
                batch.new_approvals.append(approval)
                self._pending[event.request_id] = approval.id
                self._trigger(batch, Trigger.APPROVAL_PENDING)
            case ApprovalWithdrawn(request_id=request_id):
                approval_id = self._pending.pop(request_id, None)
                if approval_id is not None:
                    batch.settled.append(_withdrawn(approval_id, self.session_id, request_id, now))
                    if not self._pending:
                        self._trigger(batch, Trigger.APPROVALS_SETTLED)
            case UsageUpdated(total_tokens=tokens):
                batch.changes["tokens"] = tokens
            case TurnCompleted():
                self.turn_active = False
                batch.turns_completed.append(event)
                if event.interrupted:
                    batch.stopped_by = self.stopped_by
                batch.changes["finished_at"] = now
                batch.changes["turns"] = ("+", 1)
                if event.cost_usd is not None:
                    # Claude reports the session's running total, not the turn's cost
                    batch.changes["cost_usd"] = event.cost_usd
                if event.agent_session_id:
                    batch.changes["agent_session_id"] = event.agent_session_id
                if event.is_error and not event.interrupted:
                    batch.changes["error"] = shorten(event.error or "the turn failed", 2000,
                                                     self.redactor)
                    self._trigger(batch, Trigger.TURN_FAILED)
                else:
                    batch.changes["error"] = None
                    self._trigger(batch, Trigger.TURN_ENDED)
            case ControlAnswered(of="initialize", ok=True):
                if not self.turn_active:
                    self._trigger(batch, Trigger.TURN_ENDED)  # up, and waiting for a prompt
            case _:
                pass

    def _trigger(self, batch: Batch, trigger: Trigger) -> None:
        try:
            new = apply(self.state, trigger)
        except IllegalTransition as e:
            log.warning("session %s: %s (ignored)", self.session_id, e)
            self._record(batch, "notice", {"text": f"ignored: {e}"})
            return
        if new is not self.state:
            self.state = new
            batch.changes["state"] = new
            batch.state_changed = True
            self._watch_idle()

    def _watch_idle(self) -> None:
        """An idle process is closed after `idle_exit`; a reply resumes the session."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.state in _RESTING and self.idle_exit and not self.stopping:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(self.idle_exit, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle_timer = None
        if self.state in _RESTING and not self.stopping:
            closing = self.close("the idle timeout closed the agent")
            task = asyncio.get_running_loop().create_task(closing)
            self._closing = task

    def _record(self, batch: Batch, kind: str, data: dict[str, Any]) -> None:
        batch.events.append((self.clock(), kind, json.dumps(data, ensure_ascii=False)))

    async def _commit(self, batch: Batch) -> bool:
        """Write the batch; False when a settled approval had already been settled."""
        now = self.clock()
        try:
            await self._write_batch(batch, now)
        except _Lost:
            return False
        await self.notifier.committed(self.session_id, batch)
        return True

    async def _write_batch(self, batch: Batch, now: float) -> None:
        won = True
        urgent = batch.urgent or bool(batch.new_approvals or batch.settled)
        async with self.store.transaction(urgent=urgent) as db:
            if batch.events:
                await st.insert_events(db, self.session_id, batch.events)
            for i, approval in enumerate(batch.new_approvals):
                stored = await st.insert_approval(db, approval)
                if stored.id != approval.id:
                    self._pending[approval.request_id] = stored.id
                    batch.new_approvals[i] = stored
            for approval in batch.settled:
                if not await st.settle_in(db, approval):
                    won = False
            if not won:
                raise _Lost()
            changes = dict(batch.changes)
            increments = {k: v[1] for k, v in changes.items() if isinstance(v, tuple)}
            for key in increments:
                changes.pop(key)
            changes["updated_at"] = now
            await st.update_session_in(db, self.session_id, changes)
            for key, amount in increments.items():
                await db.execute(
                    f"UPDATE sessions SET {key} = COALESCE({key}, 0) + ? WHERE id = ?",
                    (amount, self.session_id),
                )
            await st.enqueue_all_in(db, self.notifier.surfaces(), session_id=self.session_id,
                                    items=self.notifier.outbox_kinds(batch), now=now)

    async def _flush(self) -> None:
        out = self.codec.data_to_send()
        if out:
            await self._write(out)

    async def _write(self, data: bytes) -> None:
        try:
            await self.process.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError) as e:
            log.info("session %s: agent stdin closed (%s)", self.session_id, e)

    async def _finish(self, code: int) -> None:
        async with self.lock:
            batch = Batch()
            now = self.clock()
            tail = self.process.stderr_tail()
            self._record(batch, "exited", {"code": code, "stderr": tail[-4000:]})
            disconnected = bool(getattr(self.process, "disconnected", False)) and not self.stopping
            host = getattr(getattr(self.process, "host", None), "name", "the host")
            why = (f"the connection to {host} dropped" if disconnected
                   else self.closed[0] if self.closed is not None
                   else "the agent exited")
            for request_id, approval_id in list(self._pending.items()):
                batch.settled.append(
                    _expired(approval_id, self.session_id, request_id, now, why)
                )
            self._pending.clear()
            if disconnected:
                self._trigger(batch, Trigger.DISCONNECTED)
                batch.changes["error"] = (f"the connection to {host} dropped; resume the session "
                                          "when the host is back")
            elif self.failure:
                self._trigger(batch, Trigger.CRASHED)
                batch.changes["error"] = self.failure
            elif self.closed is not None and self.state is not SessionState.STOPPED:
                trigger, reason = closed_under(self.closed[1], self.closed[0])
                if reason is not None:
                    batch.changes["error"] = reason
                self._trigger(batch, trigger)
            elif code == 0 and not self.spoke and not self.stopping:
                # `/bin/echo hi` as the agent: exiting 0 is no success if it never spoke
                reason = (f"the agent exited (status {code}) without speaking the "
                          f"{_protocol_name(self.codec)} protocol; check the agent's `command`")
                said = " ".join(self._unspoken).strip()
                if said:
                    reason += f"; stdout: {shorten(said, 300, self.redactor)}"
                if tail:
                    reason += f"; stderr: {shorten(tail.splitlines()[-1], 300, self.redactor)}"
                batch.changes["error"] = reason
                self._trigger(batch, Trigger.CRASHED)
            elif self.stopping or (code == 0 and self.state is not SessionState.WAITING_APPROVAL):
                self._trigger(batch, Trigger.EXITED)
            else:
                reason = f"the agent exited with code {code}"
                if self.state is SessionState.WAITING_APPROVAL:
                    reason += " while waiting for an approval"
                if tail:
                    reason += f": {shorten(tail.splitlines()[-1], 500, self.redactor)}"
                batch.changes["error"] = reason
                self._trigger(batch, Trigger.CRASHED)
            batch.changes["pid"] = None
            await self._commit(batch)


_PROTOCOL_NAMES = {
    "ClaudeCodec": "Claude Code stream-json",
    "CodexCodec": "Codex app-server",
    "AcpCodec": "Agent Client Protocol (ACP)",
}


def _protocol_name(codec: AgentCodec) -> str:
    return _PROTOCOL_NAMES.get(type(codec).__name__, "agent's")


# states in which a live process waits for a person; it is closed after `idle_exit`
_RESTING = frozenset({SessionState.IDLE, SessionState.FAILED})


class _Lost(Exception):
    """A conditional settle lost the race: the transaction is rolled back."""


def _settled(
    approval: Approval, state: ApprovalState, kind: DecisionKind, actor: Actor, now: float
) -> Approval:
    from dataclasses import replace

    return replace(
        approval, state=state, decision=kind, decided_by=actor.label, decided_at=now,
        reason=None,  # the card says who stopped it; the agent is told so on the wire
    )


def _withdrawn(approval_id: str, session_id: str, request_id: str, now: float) -> Approval:
    return Approval(
        id=approval_id, session_id=session_id, request_id=request_id, tool="", input={},
        offered=(), requested_at=now, state=ApprovalState.WITHDRAWN, decided_at=now,
        decided_by="the agent", reason="withdrawn by the agent",
    )


def _expired(
    approval_id: str, session_id: str, request_id: str, now: float, why: str
) -> Approval:
    return Approval(
        id=approval_id, session_id=session_id, request_id=request_id, tool="", input={},
        offered=(), requested_at=now, state=ApprovalState.EXPIRED, decided_at=now,
        decided_by=None, reason=f"{why}; nothing was approved",
    )
