"""The approval service: the one owner of approvals in the running daemon.

Every decision — a person's tap or CLI command, a session rule, the timer — is made here:
the stored approval is checked once by `bridge.approvals.decide()` (who may, what is
offered, is it still pending), then committed by the session's runner through the store's
one conditional settle (`state = 'pending'`), the only guard against a race. The caller
gets its answer as soon as that commit is done; the bytes to the agent follow. An approval
nobody can answer any more (no runner, the agent stopped waiting) is settled `expired`.

It also keeps the "allow for the session" rules, and runs the timer that reminds and, when
configured, denies (never allows) what waits too long.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from bridge.approvals import (
    AccessPolicy,
    Actor,
    Approval,
    ApprovalState,
    Decision,
    Refusal,
    RuleSubject,
    abandon,
    covering_rule,
    decide,
    describe_outcome,
    expire,
    rule_subject,
)
from bridge.config import ApprovalsConfig
from bridge.events import DecisionKind
from bridge.outbox import Intent, RefreshStatus, RemindApproval, UpdateApproval
from bridge.redact import Redactor
from bridge.render import tool_preview
from daemon import sessionlog
from daemon import store as st


class Answered(Enum):
    """What a runner did with a decision."""

    COMMITTED = "committed"  # settled in the store; the agent is being told
    LOST = "lost"  # someone settled the approval first: nothing was written
    GONE = "gone"  # the agent no longer waits for that request: nothing was written


class AnsweringRunner(Protocol):
    """What the service needs of a session's runner (daemon.supervisor.SessionRunner)."""

    @property
    def done(self) -> asyncio.Event: ...
    async def answer(self, decision: Decision) -> Answered: ...
    async def stop(self, actor: Actor, reason: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class DecisionResult:
    ok: bool
    message: str
    approval: Approval


NOT_RUNNING = "the agent is no longer running; nothing was approved"
AGENT_GONE = "the agent no longer waits for this; nothing was approved"
RESTARTED = "the daemon restarted; the agent no longer waits. Nothing was approved."


class ApprovalService:
    def __init__(
        self,
        *,
        store: st.Store,
        settings: Callable[[], ApprovalsConfig],
        policy: AccessPolicy,
        clock: Callable[[], float],
        redactor: Redactor,
        runners: Mapping[str, AnsweringRunner],
        enqueue: Callable[[str, Intent], Awaitable[None]],
        reviewed: Callable[[str], Awaitable[None]],
        spawn: Callable[..., asyncio.Task[Any]],
    ) -> None:
        """`settings()` gives the `[approvals]` configuration as it is now; `runners` is
        the live view of the sessions' runners (session id → runner); `enqueue` queues an
        outbox intent for a session, `reviewed` marks a session looked at, `spawn(coro,
        name=…)` starts a kept background task."""
        self.store = store
        self._settings = settings
        self.policy = policy
        self.clock = clock
        self.redactor = redactor
        self._runners = runners
        self._enqueue = enqueue
        self._reviewed = reviewed
        self._spawn = spawn
        # "allow for the session" as the daemon keeps it: session → rule subjects → who
        self.session_rules: dict[str, dict[RuleSubject, str]] = {}
        self._timer_wakeup = asyncio.Event()
        # when the timer, asleep, will next look (None: it has nothing to wait for, or is
        # awake): a new approval only wakes it to move that earlier, so that the timer's
        # scan of every pending approval is per deadline, not per request (500 sessions)
        self._timer_deadline: float | None = None

    @property
    def config(self) -> ApprovalsConfig:
        return self._settings()

    # -- queries --------------------------------------------------------------------

    async def pending(self, session_id: str | None = None) -> list[Approval]:
        return await self.store.approvals(session_id=session_id, state=ApprovalState.PENDING)

    # -- deciding -------------------------------------------------------------------

    async def decide(
        self, approval_id: str, kind: DecisionKind, *, actor: Actor, reason: str | None = None,
        choice: int | None = None,
    ) -> DecisionResult:
        """Settle an approval exactly once (`choice`: with the agent's own option of that
        index). Refusals change nothing and say why."""
        approval = await self.store.approval(approval_id)
        verdict = decide(approval, kind, actor, now=self.clock(), policy=self.policy,
                         reason=reason, choice=choice)
        if isinstance(verdict, Refusal):
            return DecisionResult(False, verdict.message, approval)
        runner = self._live(approval.session_id)
        if kind is DecisionKind.STOP and runner is not None:
            return await self._stop(approval, verdict, runner, actor)
        result = await self._commit(approval, verdict, runner)
        await self._reviewed(approval.session_id)
        return result

    async def _commit(self, pending: Approval, verdict: Decision,
                      runner: AnsweringRunner | None) -> DecisionResult:
        if runner is None:
            return await self._abandon(pending, NOT_RUNNING)
        match await runner.answer(verdict):
            case Answered.COMMITTED:
                settled = verdict.approval
                if verdict.kind is DecisionKind.ALLOW_SESSION:
                    self._keep_rule(settled)
                return DecisionResult(True, describe_outcome(settled, mine=True), settled)
            case Answered.GONE:
                return await self._abandon(pending, AGENT_GONE)
            case Answered.LOST:
                current = await self.store.approval(pending.id)
                return DecisionResult(False, describe_outcome(current), current)

    async def _abandon(self, pending: Approval, reason: str) -> DecisionResult:
        """Nobody waits for `pending` any more: settle it expired (unless someone settled
        it first) and say how it ended."""
        expired = abandon(pending, now=self.clock(), reason=reason)
        if await self.store.settle_approval(expired):
            sessionlog.approval_settled(expired)
            await self._enqueue(pending.session_id, UpdateApproval(approval_id=pending.id))
        current = await self.store.approval(pending.id)
        return DecisionResult(False, describe_outcome(current), current)

    async def _stop(self, approval: Approval, verdict: Decision, runner: AnsweringRunner,
                    actor: Actor) -> DecisionResult:
        """Stop on a card stops the session: the runner denies what waits, then closes."""
        await self._reviewed(approval.session_id)
        await runner.stop(actor, reason=verdict.message)
        await runner.done.wait()
        settled = await self.store.approval(approval.id)
        mine = settled.decision is DecisionKind.STOP and settled.decided_by == actor.label
        # the one who tapped Stop hears that it is done, not "Already stopped by" them
        return DecisionResult(True, describe_outcome(settled, mine=mine), settled)

    def _live(self, session_id: str) -> AnsweringRunner | None:
        runner = self._runners.get(session_id)
        return None if runner is None or runner.done.is_set() else runner

    # -- rules for the session ----------------------------------------------------------

    def _keep_rule(self, allowed: Approval) -> None:
        """"Allow for session": the same call is allowed again without asking, as long as
        the session lives (its approvals in the store keep the rule over restarts)."""
        subject = rule_subject(allowed.tool, allowed.input)
        self.session_rules.setdefault(allowed.session_id, {})[subject] = (
            allowed.decided_by or "someone")

    def settings_changed(self) -> None:
        """The `[approvals]` settings were reloaded: the timer looks at its deadlines again."""
        self._timer_wakeup.set()

    def requested(self, session_id: str, approvals: Sequence[Approval]) -> None:
        """New approvals were committed: those a rule covers are allowed (in a task: the
        runner's lock is held now), and the timer looks at its deadlines again."""
        if not approvals:
            return
        rules = self.session_rules.get(session_id)
        if rules:
            for approval in approvals:
                granted_by = covering_rule(rules, rule_subject(approval.tool, approval.input))
                if granted_by is not None:
                    self._spawn(self._allow_by_rule(approval.id, granted_by),
                                name=f"rule-{approval.id}")
        sooner = self.next_deadline(approvals, approvals)
        asleep_until = self._timer_deadline
        if asleep_until is None or (sooner is not None and sooner < asleep_until):
            self._timer_wakeup.set()

    async def _allow_by_rule(self, approval_id: str, granted_by: str) -> None:
        actor = Actor(surface="rule", user_id="rule",
                      name=f"the session rule {granted_by} made")
        await self.decide(approval_id, DecisionKind.ALLOW_ONCE, actor=actor)

    # -- after a restart ----------------------------------------------------------------

    async def recover(self) -> None:
        """No agent of the last run waits any more: what was pending expires (never
        approved); the rules people made are rebuilt from their approvals."""
        for allowed in await self.store.approvals(state=ApprovalState.ALLOWED,
                                                  decision=DecisionKind.ALLOW_SESSION):
            self._keep_rule(allowed)
        now = self.clock()
        for approval in await self.pending():
            expired = abandon(approval, now=now, reason=RESTARTED)
            if await self.store.settle_approval(expired):
                sessionlog.approval_settled(expired)
            await self._enqueue(approval.session_id, UpdateApproval(approval_id=approval.id))

    # -- the timer ----------------------------------------------------------------------

    async def expire_due(self) -> int:
        """Deny every approval whose timeout passed (a timer never approves)."""
        count = 0
        for approval in await self.pending():
            verdict = expire(approval, now=self.clock(), timeout=self.config.timeout,
                             on_timeout=self.config.on_timeout)
            if verdict is None:
                continue
            result = await self._commit(approval, verdict, self._live(approval.session_id))
            count += result.ok
            if result.ok:
                preview = tool_preview(approval.tool, approval.input, 120,
                                       redactor=self.redactor)
                await self.store.update_session(
                    approval.session_id,
                    parked=f"approval timed out and was denied: {approval.tool} {preview}",
                )
                await self._enqueue(approval.session_id, RefreshStatus())
        return count

    async def remind_due(self) -> int:
        """Post a reminder for approvals waiting longer than `remind_after` (once each)."""
        remind_after = self.config.remind_after
        if remind_after is None:
            return 0
        due = await self.store.unreminded(self.clock() - remind_after)
        for approval in due:
            await self.store.mark_reminded(approval.id, self.clock())
            await self._enqueue(approval.session_id, RemindApproval(approval_id=approval.id))
        return len(due)

    def next_deadline(
        self, pending: Sequence[Approval], unreminded: Sequence[Approval] = ()
    ) -> float | None:
        """When the timer has work next: a timeout to enforce or a reminder to post."""
        cfg = self.config
        deadlines = []
        if pending and cfg.timeout is not None and cfg.on_timeout == "deny":
            deadlines.append(min(a.requested_at for a in pending) + cfg.timeout)
        if unreminded and cfg.remind_after is not None:
            deadlines.append(min(a.requested_at for a in unreminded) + cfg.remind_after)
        return min(deadlines) if deadlines else None

    async def _reminded_ids(self, pending: Sequence[Approval]) -> set[str]:
        if self.config.remind_after is None or not pending:
            return set()
        waiting = {a.id for a in await self.store.unreminded(self.clock() + 10**9)}
        return {a.id for a in pending} - waiting

    def timer(self) -> Coroutine[Any, Any, None]:
        """The timer's loop, to be spawned once: it sleeps until the next deadline or
        until new approvals arrive."""
        return self._timer()

    async def _timer(self) -> None:
        while True:
            # cleared before the reads: a request committed while they run wakes the wait
            self._timer_wakeup.clear()
            await self.expire_due()
            await self.remind_due()
            pending = await self.pending()
            reminded = await self._reminded_ids(pending)
            unreminded = [a for a in pending if a.id not in reminded]
            deadline = self.next_deadline(pending, unreminded)
            wait = 3600.0 if deadline is None else max(0.05, deadline - self.clock())
            # awake (None) until the wait begins: what is requested meanwhile wakes it
            self._timer_deadline = deadline
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._timer_wakeup.wait(), timeout=wait)
            finally:
                self._timer_deadline = None
