"""The question service: the one owner of questions in the running daemon.

The sibling of `daemon/approvals.py`, with the same shape: every answer — a person's tap,
reply or CLI command — and every expiry is checked once by `bridge.questions` (who may,
which labels, is it still pending), then committed by the session's runner through the
store's one conditional settle (`state = 'pending'`), the only guard against a race. A
question nobody can answer any more (no runner, the agent stopped waiting) expires. Its
timer expires what waits longer than `[approvals] timeout` (with `on_timeout = "deny"`):
the agent hears that the user did not answer, never a made-up answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.approvals import AccessPolicy, Actor, Refusal
from bridge.config import ApprovalsConfig
from bridge.outbox import Intent, RefreshStatus, UpdateQuestion
from bridge.questions import (
    Question,
    QuestionState,
    abandon,
    answer,
    describe_answer,
    expire,
    toggle,
)
from daemon import sessionlog
from daemon import store as st
from daemon.approvals import AGENT_GONE, NOT_RUNNING, RESTARTED, Answered


class QuestionRunner(Protocol):
    """What the service needs of a session's runner (daemon.supervisor.SessionRunner)."""

    @property
    def done(self) -> asyncio.Event: ...
    async def settle_question(self, settled: Question) -> Answered: ...


@dataclass(frozen=True, slots=True)
class AnswerResult:
    ok: bool
    message: str
    question: Question


class QuestionService:
    def __init__(
        self,
        *,
        store: st.Store,
        settings: Callable[[], ApprovalsConfig],
        policy: AccessPolicy,
        clock: Callable[[], float],
        runners: Mapping[str, QuestionRunner],
        enqueue: Callable[[str, Intent], Awaitable[None]],
        reviewed: Callable[[str], Awaitable[None]],
    ) -> None:
        self.store = store
        self._settings = settings
        self.policy = policy
        self.clock = clock
        self._runners = runners
        self._enqueue = enqueue
        self._reviewed = reviewed
        self._timer_wakeup = asyncio.Event()

    async def pending(self, session_id: str | None = None) -> list[Question]:
        return await self.store.questions(session_id=session_id, state=QuestionState.PENDING)

    async def answer(self, question_id: str, *, actor: Actor, labels: Sequence[str] = (),
                     text: str | None = None) -> AnswerResult:
        """Answer a question exactly once. Refusals change nothing and say why."""
        question = await self.store.question(question_id)
        verdict = answer(question, actor, now=self.clock(), policy=self.policy,
                         labels=labels, text=text)
        if isinstance(verdict, Refusal):
            return AnswerResult(False, verdict.message, question)
        result = await self._commit(question, verdict.question)
        await self._reviewed(question.session_id)
        return result

    async def toggle(self, question_id: str, index: int, *, actor: Actor) -> AnswerResult:
        """Toggle an option of a multi-select question; its card shows what is on."""
        question = await self.store.question(question_id)
        toggled = toggle(question, index, actor, policy=self.policy)
        if isinstance(toggled, Refusal):
            return AnswerResult(False, toggled.message, question)
        if not await self.store.select_options(toggled):
            current = await self.store.question(question_id)
            return AnswerResult(False, describe_answer(current), current)
        await self._enqueue(question.session_id,
                            UpdateQuestion(question_id=question.id, toggled=True))
        chosen = ", ".join(toggled.selected) or "nothing"
        return AnswerResult(True, f"Chosen so far: {chosen}. Tap Submit to send.", toggled)

    async def submit(self, question_id: str, *, actor: Actor) -> AnswerResult:
        """Answer a multi-select question with the options toggled on."""
        question = await self.store.question(question_id)
        return await self.answer(question_id, actor=actor, labels=question.selected)

    async def _commit(self, pending: Question, settled: Question) -> AnswerResult:
        runner = self._runners.get(pending.session_id)
        if runner is None or runner.done.is_set():
            return await self._abandon(pending, NOT_RUNNING)
        match await runner.settle_question(settled):
            case Answered.COMMITTED:
                return AnswerResult(settled.state is QuestionState.ANSWERED,
                                    describe_answer(settled, mine=True), settled)
            case Answered.GONE:
                return await self._abandon(pending, AGENT_GONE)
            case Answered.LOST:
                current = await self.store.question(pending.id)
                return AnswerResult(False, describe_answer(current), current)

    async def _abandon(self, pending: Question, reason: str) -> AnswerResult:
        expired = abandon(pending, now=self.clock(), reason=reason)
        if await self.store.settle_question(expired):
            sessionlog.question_settled(expired)
            await self._enqueue(pending.session_id, UpdateQuestion(question_id=pending.id))
        current = await self.store.question(pending.id)
        return AnswerResult(False, describe_answer(current), current)

    async def recover(self) -> None:
        """No agent of the last run waits any more: what was asked expires."""
        now = self.clock()
        for question in await self.pending():
            expired = abandon(question, now=now, reason=RESTARTED)
            if await self.store.settle_question(expired):
                sessionlog.question_settled(expired)
            await self._enqueue(question.session_id, UpdateQuestion(question_id=question.id))

    def settings_changed(self) -> None:
        """The `[approvals]` settings were reloaded: the timer looks at its deadlines again."""
        self._timer_wakeup.set()

    def asked(self, questions: Sequence[Question]) -> None:
        """New questions were committed: the timer looks at its deadline again."""
        if questions:
            self._timer_wakeup.set()

    # -- the timer ----------------------------------------------------------------------

    def _timeout(self) -> float | None:
        cfg = self._settings()
        return cfg.timeout if cfg.on_timeout == "deny" else None

    async def expire_due(self) -> int:
        """Expire every question whose timeout passed (a timer never answers)."""
        count = 0
        for question in await self.pending():
            expired = expire(question, now=self.clock(), timeout=self._timeout())
            if expired is not None:
                await self._commit(question, expired)
                await self._enqueue(question.session_id, RefreshStatus())
                count += 1
        return count

    def timer(self) -> Coroutine[Any, Any, None]:
        return self._timer()

    async def _timer(self) -> None:
        while True:
            self._timer_wakeup.clear()
            await self.expire_due()
            pending = await self.pending()
            timeout = self._timeout()
            wait = 3600.0
            if pending and timeout is not None:
                first = min(q.asked_at for q in pending) + timeout
                wait = max(0.05, first - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_wakeup.wait(), timeout=wait)
