"""The hub: wires the daemon's parts, and settles approvals (for now).

Sessions (`daemon/sessions.py`), the digest (`daemon/digests.py`), the outbox fan-out
(`daemon/fanout.py`), hosts (`daemon/hosts.py`), recovery (`daemon/recovery.py`) and the
agents table (`daemon/agents.py`) each own their job; the hub builds them from the config and
store and stands for them where a consumer needs several (each consumer declares, as a
Protocol, the little it uses). Approvals are settled exactly once through
`bridge.approvals.decide()`; runners report to the hub (`committed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bridge.approvals import (
    AccessPolicy,
    Actor,
    Approval,
    ApprovalState,
    Decision,
    Refusal,
    RuleSubject,
    covering_rule,
    decide,
    describe_outcome,
    expire,
    rule_subject,
)
from bridge.config import Config
from bridge.digest import DigestLine
from bridge.events import DecisionKind
from bridge.machine import Facts
from bridge.model import SessionView
from bridge.outbox import Intent, RefreshStatus, RemindApproval, UpdateApproval
from bridge.redact import Redactor
from bridge.render import tool_preview
from daemon import recovery
from daemon import store as st
from daemon.changes import ChangeTracker
from daemon.digests import Digests
from daemon.fanout import Fanout
from daemon.hosts import Hosts
from daemon.launch import AgentLauncher
from daemon.sessions import Sessions
from daemon.supervisor import SessionRunner
from daemon.tasks import Tasks


@dataclass(frozen=True, slots=True)
class DecisionResult:
    ok: bool
    message: str
    approval: Approval


class Hub:
    def __init__(
        self,
        *,
        config: Config,
        store: st.Store,
        launcher: AgentLauncher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.redactor = Redactor(config.redact.patterns)
        self.tasks = Tasks()
        self.fanout = Fanout(store, clock=clock)
        self.hosts = Hosts(config.hosts, tasks=self.tasks, launcher=launcher)
        self.changes = ChangeTracker(store, runner_for=self.hosts.runner_for)
        self.sessions = Sessions(config=config, store=store, fanout=self.fanout,
                                 hosts=self.hosts, changes=self.changes, tasks=self.tasks,
                                 notifier=self, redactor=self.redactor, clock=clock)
        self.digests = Digests(config=config, store=store, fanout=self.fanout,
                               sessions=self.sessions, redactor=self.redactor, clock=clock)
        # "allow for the session" as the daemon keeps it: session → rule subjects → who
        self.session_rules: dict[str, dict[RuleSubject, str]] = {}
        # how many approval requests have been committed: deliveries compare it to what they
        # last saw, and put a new approval card before the status edits they were busy with
        self.approvals_requested = 0
        self._timer_wakeup = asyncio.Event()
        allowed: dict[str, frozenset[str]] = {}
        if config.telegram is not None:
            allowed["telegram"] = frozenset(str(u) for u in config.telegram.allowed_user_ids)
        if config.slack is not None:
            allowed["slack"] = frozenset(config.slack.allowed_user_ids)
        self.policy = AccessPolicy(allowed=allowed)

    # -- lifecycle ------------------------------------------------------------------

    async def recover(self) -> None:
        """After a restart: see `daemon/recovery.py`; the "allow for session" rules people
        made are rebuilt from their approvals."""
        await recovery.recover(self.store, self.fanout, now=self.clock(),
                               keep_rule=self._keep_rule)

    async def start_background(self) -> None:
        self.spawn(self._approval_timer(), name="approval-timer")

    async def shutdown(self) -> None:
        await self.sessions.close()
        await self.hosts.close()
        await self.tasks.cancel_all()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Start a background task that is kept, and whose failure is logged."""
        return self.tasks.spawn(coro, name=name)

    # -- the runners' notifier (daemon.supervisor.Notifier) -------------------------

    async def committed(self, session_id: str, batch: Facts) -> None:
        self.approvals_requested += len(batch.new_approvals)
        self.wake_surfaces()
        rules = self.session_rules.get(session_id)
        if rules:
            for approval in batch.new_approvals:
                granted_by = covering_rule(rules, rule_subject(approval.tool, approval.input))
                if granted_by is not None:  # decided in a task: the runner's lock is held now
                    self.spawn(self._allow_by_rule(approval.id, granted_by),
                               name=f"rule-{approval.id}")
        if batch.new_approvals:
            self._timer_wakeup.set()

    def outbox_kinds(self, batch: Facts) -> list[tuple[str, dict[str, Any]]]:
        return self.fanout.outbox_kinds(batch)

    def surfaces(self) -> Sequence[str]:
        return self.fanout.surfaces()

    # -- standing for the parts (what consumers' Protocols name) --------------------

    def add_surface(self, name: str, wake: Callable[[], Any] | None = None) -> None:
        self.fanout.add_surface(name, wake)

    def wake_surfaces(self) -> None:
        self.fanout.wake_surfaces()

    @property
    def runners(self) -> dict[str, SessionRunner]:
        return self.sessions.runners

    async def new_session(self, project: str, prompt: str, *, agent: str | None = None,
                          actor: Actor, worktree: bool | None = None) -> SessionView:
        return await self.sessions.new_session(project, prompt, agent=agent, actor=actor,
                                               worktree=worktree)

    async def send(self, session_id: str, text: str, *, actor: Actor) -> SessionView:
        return await self.sessions.send(session_id, text, actor=actor)

    async def resume(self, session_id: str, prompt: str | None = None, *,
                     actor: Actor) -> SessionView:
        return await self.sessions.resume(session_id, prompt, actor=actor)

    async def stop(self, session_id: str, *, actor: Actor) -> SessionView:
        return await self.sessions.stop(session_id, actor=actor)

    async def set_archived(self, session_id: str, archived: bool, *, actor: Actor) -> SessionView:
        return await self.sessions.set_archived(session_id, archived, actor=actor)

    async def reask(self, session_id: str, *, actor: Actor) -> SessionView:
        return await self.sessions.reask(session_id, actor=actor)

    async def reviewed(self, session_id: str, *, clear_parked: bool = False) -> None:
        await self.sessions.reviewed(session_id, clear_parked=clear_parked)

    async def request_diff(self, session_id: str, *, surface: str, actor: Actor) -> None:
        await self.sessions.request_diff(session_id, surface=surface, actor=actor)

    async def digest_lines(self) -> list[DigestLine]:
        return await self.digests.digest_lines()

    async def send_digest(self, *, surface: str | None = None, requested: bool = False) -> int:
        return await self.digests.send_digest(surface=surface, requested=requested)

    async def auto_archive(self) -> list[str]:
        return await self.digests.auto_archive()

    async def pending_approvals(self, session_id: str | None = None) -> list[Approval]:
        return await self.store.approvals(session_id=session_id, state=ApprovalState.PENDING)

    # -- approvals ------------------------------------------------------------------

    async def decide(
        self, approval_id: str, kind: DecisionKind, *, actor: Actor, reason: str | None = None
    ) -> DecisionResult:
        """Settle an approval exactly once. Refusals change nothing and say why."""
        approval = await self.store.approval(approval_id)
        verdict = decide(approval, kind, actor, now=self.clock(), policy=self.policy,
                         reason=reason)
        if isinstance(verdict, Refusal):
            return DecisionResult(False, verdict.message, approval)
        if kind is DecisionKind.STOP:
            runner = self.runners.get(approval.session_id)
            if runner is not None and not runner.done.is_set():
                await self.reviewed(approval.session_id)
                await runner.stop(actor, reason=verdict.message)
                await runner.done.wait()
                settled = await self.store.approval(approval_id)
                mine = (settled.decision is DecisionKind.STOP
                        and settled.decided_by == actor.label)
                # the one who tapped Stop hears that it is done, not "Already stopped by" them
                return DecisionResult(True, "Stopped." if mine else describe_outcome(settled),
                                      settled)
        result = await self._commit_decision(verdict)
        await self.reviewed(approval.session_id)  # after: the agent has its answer first
        return result

    def _keep_rule(self, allowed: Approval) -> None:
        """"Allow for session": the same call is allowed again without asking, as long as
        the session lives (its approvals in the store keep the rule over restarts)."""
        subject = rule_subject(allowed.tool, allowed.input)
        self.session_rules.setdefault(allowed.session_id, {})[subject] = (
            allowed.decided_by or "someone")

    async def _allow_by_rule(self, approval_id: str, granted_by: str) -> None:
        actor = Actor(surface="rule", user_id="rule",
                      name=f"the session rule {granted_by} made")
        await self.decide(approval_id, DecisionKind.ALLOW_ONCE, actor=actor)

    async def _commit_decision(self, verdict: Decision) -> DecisionResult:
        approval = verdict.approval
        runner = self.runners.get(approval.session_id)
        if runner is None or runner.done.is_set():
            expired = replace(
                approval, state=ApprovalState.EXPIRED, decision=None, decided_by=None,
                reason="the agent is no longer running; nothing was approved",
            )
            if await self.store.settle_approval(expired):
                await self._enqueue(approval.session_id,
                                    UpdateApproval(approval_id=approval.id))
            current = await self.store.approval(approval.id)
            return DecisionResult(False, describe_outcome(current), current)
        if await runner.answer(verdict):
            settled = await self.store.approval(approval.id)
            if verdict.kind is DecisionKind.ALLOW_SESSION:
                self._keep_rule(settled)
            return DecisionResult(True, _done_message(settled), settled)
        current = await self.store.approval(approval.id)
        if current.state is ApprovalState.PENDING:  # the agent stopped waiting for it
            expired = replace(current, state=ApprovalState.EXPIRED, decided_at=self.clock(),
                              reason="the agent no longer waits for this; nothing was approved")
            await self.store.settle_approval(expired)
            current = await self.store.approval(approval.id)
        return DecisionResult(False, describe_outcome(current), current)

    async def expire_due(self) -> int:
        """Deny every approval whose timeout passed (a timer never approves)."""
        count = 0
        cfg = self.config.approvals
        for approval in await self.pending_approvals():
            verdict = expire(approval, now=self.clock(), timeout=cfg.timeout,
                             on_timeout=cfg.on_timeout)
            if verdict is None:
                continue
            result = await self._commit_decision(verdict)
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
        remind_after = self.config.approvals.remind_after
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
        cfg = self.config.approvals
        deadlines = []
        if pending and cfg.timeout is not None and cfg.on_timeout == "deny":
            deadlines.append(min(a.requested_at for a in pending) + cfg.timeout)
        if unreminded and cfg.remind_after is not None:
            deadlines.append(min(a.requested_at for a in unreminded) + cfg.remind_after)
        return min(deadlines) if deadlines else None

    async def _reminded_ids(self, pending: Sequence[Approval]) -> set[str]:
        if self.config.approvals.remind_after is None or not pending:
            return set()
        waiting = {a.id for a in await self.store.unreminded(self.clock() + 10**9)}
        return {a.id for a in pending} - waiting

    async def _approval_timer(self) -> None:
        while True:
            await self.expire_due()
            await self.remind_due()
            pending = await self.pending_approvals()
            unreminded = [a for a in pending if a.id not in await self._reminded_ids(pending)]
            deadline = self.next_deadline(pending, unreminded)
            wait = 3600.0 if deadline is None else max(0.05, deadline - self.clock())
            self._timer_wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_wakeup.wait(), timeout=wait)


    # -- internals ------------------------------------------------------------------

    async def _enqueue(self, session_id: str, intent: Intent) -> None:
        await self.fanout.enqueue(session_id, intent)


def _done_message(approval: Approval) -> str:
    if approval.state is ApprovalState.ALLOWED:
        how = "for the session" if approval.decision is DecisionKind.ALLOW_SESSION else "once"
        return f"Allowed {how}."
    return "Stopped." if approval.decision is DecisionKind.STOP else "Denied."


__all__ = ["DecisionResult", "Hub"]
