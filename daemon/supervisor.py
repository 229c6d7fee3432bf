"""One task per agent session: bytes in and out of the process, facts into the store.

The runner is the pump: it owns the process and the codec, hands what the codec decodes to
the session's `SessionMachine` (bridge/machine.py holds the rules), and commits the
`Facts` it returns in one transaction before anyone is told, so a crash loses nothing the
agent said and a flood costs one commit per read rather than one per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bridge.approvals import Actor, Decision
from bridge.codecs.base import AgentCodec
from bridge.errors import ApprovalError, ProtocolError
from bridge.events import AgentCommand, AgentEvent, ApprovalRequested, ImageInput, SendPrompt
from bridge.facts import Facts
from bridge.machine import SessionMachine
from bridge.questions import Question
from bridge.redact import Redactor
from bridge.session import SessionState
from daemon import store as st
from daemon.approvals import Answered
from daemon.gitrun import CommandRunner
from daemon.launch import AgentProcess, shutdown
from daemon.probe import looked_up

log = logging.getLogger(__name__)


class Notifier(Protocol):
    """What the runner tells the rest of the daemon (the hub implements it)."""

    async def committed(self, session_id: str, facts: Facts) -> None: ...
    def outbox_kinds(self, facts: Facts) -> list[tuple[str, dict[str, Any]]]: ...
    def surfaces(self) -> Sequence[str]: ...


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
        host: CommandRunner | None = None,
        turns: int = 0,
    ) -> None:
        """`host` runs commands where the agent runs: what a Write would overwrite is
        looked up through it when the request arrives."""
        self.store = store
        self.host = host
        self.cwd = cwd
        self.notifier = notifier
        self.session_id = session_id
        # what is stored for a chat (last tool, errors) is redacted before it is cut
        self.machine = SessionMachine(
            session_id=session_id, state=state, cwd=cwd, new_id=st.new_id,
            protocol=_protocol_name(codec), redactor=redactor, turns=turns,
        )
        self.codec = codec
        self.process = process
        self.grace = grace
        self.clock = clock
        self.lock = asyncio.Lock()  # serialises state changes and stdin writes
        self.done = asyncio.Event()
        self.exit_code: int | None = None
        self.idle_exit = idle_exit
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def state(self) -> SessionState:
        return self.machine.state

    @property
    def stopping(self) -> str | None:
        """Why we are closing the process, if we are."""
        return self.machine.stopping

    # -- commands from people -------------------------------------------------------

    async def start(self, prompt: str | None, setup: Sequence[AgentCommand] = (),
                    images: Sequence[ImageInput] = ()) -> None:
        """Open the agent; `setup` (the session's mode and model) goes before the prompt,
        which carries `images`."""
        async with self.lock:
            apart = bool(setup) or bool(images)  # the prompt is sent as its own command
            self.codec.start(None if apart else prompt)
            for command in setup:
                self.codec.send(command)
            if apart and prompt is not None:
                self.codec.send(SendPrompt(text=prompt, images=tuple(images)))
            self.machine.launched(with_prompt=prompt is not None)
            await self._flush()

    async def configure(self, command: AgentCommand) -> None:
        """Send a mode or model change to the agent (the store has the choice already)."""
        async with self.lock:
            self.codec.send(command)
            await self._flush()

    @property
    def steers(self) -> bool:
        """A prompt sent now joins the running turn (Codex `turn/steer`)."""
        return bool(getattr(self.codec, "steers", False))

    async def interrupt(self, actor: Actor) -> None:
        """End the running turn and keep the session (see `SessionMachine.interrupt`)."""
        async with self.lock:
            facts = self.machine.interrupt(actor, self.clock())
            await self._commit(facts)
            for command in facts.to_agent:
                self.codec.send(command)
            await self._flush()

    async def send_prompt(self, text: str, actor: Actor,
                          images: Sequence[ImageInput] = ()) -> None:
        async with self.lock:
            facts = self.machine.prompt(text, actor, self.clock())
            self.codec.send(SendPrompt(text=text, images=tuple(images)))
            await self._commit(facts)
            await self._flush()

    async def answer(self, decision: Decision) -> Answered:
        """Commit `decision` (the store's conditional settle is in that transaction) and
        return; the answer's bytes go to the agent in a task right after, so whoever
        decided hears back without waiting on the agent's stdin."""
        async with self.lock:
            if decision.approval.request_id not in self.codec.pending_requests():
                return Answered.GONE  # answered on the wire already (the process closes)
            facts = self.machine.decided(decision, self.clock())
            if facts is None:
                return Answered.GONE  # the agent's request under this id is another one
            if not await self._commit(facts):
                self.machine.undo()
                return Answered.LOST
            try:
                for command in facts.to_agent:
                    self.codec.send(command)
            except ApprovalError:
                return Answered.COMMITTED  # recorded; the agent had just withdrawn it
        self._send_soon()
        return Answered.COMMITTED

    async def settle_question(self, settled: Question) -> Answered:
        """Commit a question answered (or expired): the store's conditional settle is in
        that transaction; the agent is answered, in a task, once none of its request's
        questions waits."""
        async with self.lock:
            if settled.request_id not in self.codec.pending_requests():
                return Answered.GONE
            facts = self.machine.question_settled(settled, self.clock())
            if facts is None:
                return Answered.GONE
            if not await self._commit(facts):
                self.machine.undo()
                return Answered.LOST
            try:
                for command in facts.to_agent:
                    self.codec.send(command)
            except ApprovalError:
                return Answered.COMMITTED
        self._send_soon()
        return Answered.COMMITTED

    def _send_soon(self) -> None:
        """Write what the codec holds for the agent, in a kept task, in lock order."""
        async def send() -> None:
            async with self.lock:
                await self._flush()

        task = asyncio.get_running_loop().create_task(send(), name=f"send-{self.session_id}")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def stop(self, actor: Actor, reason: str | None = None) -> None:
        """Stop the session: deny what waits (and interrupt), then close the process."""
        async with self.lock:
            if self.machine.stopping:
                return
            facts = self.machine.stop(actor, reason, self.clock())
            for command in facts.to_agent:
                with contextlib.suppress(ApprovalError):
                    self.codec.send(command)
            await self._commit(facts)
            with contextlib.suppress(OSError):
                await self._flush()
        await self._close()

    async def close(self, reason: str) -> None:
        """Close the process without a person asking (the daemon stops, idle); see
        `SessionMachine.close` for how the session then ends."""
        self.machine.close(reason)
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
            failure = f"the agent broke its protocol: {e.message}"
            excerpt = e.excerpt()
            if excerpt:
                failure += f" (line: {excerpt})"
            log.warning("session %s: %s", self.session_id, failure)
            self.machine.broke(failure)
            await self._close()
        except Exception as e:  # keep the daemon up whatever one session does
            log.exception("session %s: runner failed", self.session_id)
            self.machine.broke(f"internal error: {e!r}")
            await self._close()
        try:
            code = await asyncio.wait_for(self.process.wait(), self.grace * 3 + 1)
        except TimeoutError:
            await self._close()
            code = await self.process.wait()
        self.exit_code = code
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        try:
            await self._finish(code)
        finally:
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
        if self.host is not None and any(isinstance(e, ApprovalRequested) for e in events):
            events = await looked_up(events, self.host, self.cwd)
        async with self.lock:
            await self._commit(self.machine.received(events, self.clock()))
            await self._flush()

    async def _finish(self, code: int) -> None:
        async with self.lock:
            disconnected = self.process.disconnected
            host = self.process.host_name or "the host"
            facts = self.machine.exited(
                code, self.process.stderr_tail(), self.clock(),
                disconnected_from=host if disconnected else None,
            )
            await self._commit(facts)

    def _watch_idle(self) -> None:
        """An idle process is closed after `idle_exit`; a reply resumes the session."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.machine.resting and self.idle_exit and self.exit_code is None:
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(self.idle_exit, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle_timer = None
        if self.machine.resting:
            closing = self.close("the idle timeout closed the agent")
            task = asyncio.get_running_loop().create_task(closing)
            self._closing = task

    async def _commit(self, facts: Facts) -> bool:
        """Write `facts`, then tell the notifier; False (and nothing written) when a settled
        approval had already been settled."""
        written = await self.store.commit_facts(
            self.session_id, facts, now=self.clock(), surfaces=self.notifier.surfaces(),
            outbox=self.notifier.outbox_kinds)
        if written is None:
            return False
        if written.new_approvals != facts.new_approvals:
            self.machine.stored(written.new_approvals)
        if written.new_questions != facts.new_questions:
            self.machine.stored_questions(written.new_questions)
        if written.state_changed:
            self._watch_idle()
        await self.notifier.committed(self.session_id, written)
        return True

    async def _flush(self) -> None:
        out = self.codec.data_to_send()
        if out:
            await self._write(out)

    async def _write(self, data: bytes) -> None:
        try:
            await self.process.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError) as e:
            log.info("session %s: agent stdin closed (%s)", self.session_id, e)


_PROTOCOL_NAMES = {
    "ClaudeCodec": "Claude Code stream-json",
    "CodexCodec": "Codex app-server",
    "AcpCodec": "Agent Client Protocol (ACP)",
}


def _protocol_name(codec: AgentCodec) -> str:
    return _PROTOCOL_NAMES.get(type(codec).__name__, "agent's")

