"""The hub: every action from a person goes through here, whatever surface it came from.

It resolves projects and agents, starts and resumes runners, settles approvals exactly
once through `bridge.approvals.decide()`, archives, and recovers after a restart. Surfaces
and the local API call it; runners report back to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bridge.approvals import (
    TIMER,
    AccessPolicy,
    Actor,
    Approval,
    ApprovalState,
    Decision,
    Refusal,
    RefusalReason,
    RuleSubject,
    covering_rule,
    decide,
    describe_outcome,
    expire,
    rule_subject,
)
from bridge.codecs.acp import AcpCodec
from bridge.codecs.base import AgentCodec
from bridge.codecs.claude import ClaudeCodec, claude_argv
from bridge.codecs.claude import resume_hint as claude_resume_hint
from bridge.codecs.codex import CodexCodec, codex_argv
from bridge.codecs.codex import resume_hint as codex_resume_hint
from bridge.config import AgentConfig, Config
from bridge.digest import DigestLine, select_digest
from bridge.events import DecisionKind
from bridge.machine import Facts
from bridge.model import SessionView
from bridge.outbox import (
    Intent,
    OpenThread,
    PostApproval,
    PostDiff,
    PostDigest,
    PostSummary,
    PostText,
    RefreshStatus,
    RemindApproval,
    SetArchived,
    UpdateApproval,
    encode,
)
from bridge.redact import Redactor
from bridge.refs import DIGEST_LAST
from bridge.render import shorten, tool_preview
from bridge.session import (
    DAEMON_STOPPED,
    LIVE_STATES,
    RESUMABLE_STATES,
    SessionState,
    Trigger,
    apply,
    closed_under,
)
from daemon import store as st
from daemon.changes import ChangeTracker
from daemon.errors import Conflict, DaemonError, LaunchError, NotFound
from daemon.gitrun import CommandRunner, LocalRunner
from daemon.launch import AgentLauncher, LocalLauncher
from daemon.ssh import SshHost, reconnect_forever
from daemon.supervisor import SessionRunner

# what agents use for their session ids (UUIDs, thread ids): nothing a shell reads twice
_AGENT_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

log = logging.getLogger(__name__)
AUTO_ARCHIVE = Actor(surface="timer", user_id="auto-archive", name="auto-archive")


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    path: str
    agent: str | None
    worktree: bool
    host: str  # "local" or a [hosts.NAME]


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
        self.launcher = launcher or LocalLauncher()
        self.changes_runner: CommandRunner = LocalRunner()
        self.clock = clock
        self.runners: dict[str, SessionRunner] = {}
        # "allow for the session" as the daemon keeps it: session → rule subjects → who
        self.session_rules: dict[str, dict[RuleSubject, str]] = {}
        self.hosts: dict[str, SshHost] = {
            name: SshHost(name, host, on_disconnect=self._host_down)
            for name, host in config.hosts.items()
        }
        self.changes = ChangeTracker(store, runner_for=self.runner_for)
        self.redactor = Redactor(config.redact.patterns)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._surfaces: list[str] = []
        self._wakers: list[Callable[[], Any]] = []
        # how many approval requests have been committed: deliveries compare it to what they
        # last saw, and put a new approval card before the status edits they were busy with
        self.approvals_requested = 0
        self.changed = asyncio.Condition()
        self._timer_wakeup = asyncio.Event()
        allowed: dict[str, frozenset[str]] = {}
        if config.telegram is not None:
            allowed["telegram"] = frozenset(str(u) for u in config.telegram.allowed_user_ids)
        if config.slack is not None:
            allowed["slack"] = frozenset(config.slack.allowed_user_ids)
        self.policy = AccessPolicy(allowed=allowed)

    # -- wiring ---------------------------------------------------------------------

    def add_surface(self, name: str, wake: Callable[[], Any] | None = None) -> None:
        """Send outbox items to surface `name`; `wake()` is called whenever there are new ones."""
        self._surfaces.append(name)
        if wake is not None:
            self._wakers.append(wake)

    def wake_surfaces(self) -> None:
        for wake in self._wakers:
            wake()

    def surfaces(self) -> Sequence[str]:
        return self._surfaces

    def outbox_kinds(self, batch: Facts) -> list[tuple[str, dict[str, Any]]]:
        """The outbox rows a committed batch of agent events makes (encoded intents)."""
        if not self._surfaces:
            return []
        intents: list[Intent] = []
        for approval in batch.new_approvals:
            intents.append(PostApproval(approval_id=approval.id))
        for approval in batch.settled:
            intents.append(UpdateApproval(approval_id=approval.id))
        for turn in batch.turns_completed:
            intents.append(PostSummary(
                final_text=turn.result_text,
                is_error=turn.is_error and not turn.interrupted,
                interrupted=turn.interrupted,
                stopped_by=batch.stopped_by if turn.interrupted else None,
                error=turn.error,
                cost_usd=turn.cost_usd,
                duration_ms=turn.duration_ms,
                num_turns=turn.num_turns,
            ))
        if batch.state_changed or "last_tool" in batch.changes or intents:
            intents.append(RefreshStatus())
        return [encode(intent) for intent in intents]

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
        async with self.changed:
            self.changed.notify_all()

    def spawn(self, coro: Any, *, name: str) -> asyncio.Task[Any]:
        """Start a background task that is kept, and whose failure is logged."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("task %s failed", name, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    # -- lifecycle ------------------------------------------------------------------

    async def recover(self) -> None:
        """After a restart: no process of the last run survives, so nothing is live.

        Pending approvals become expired (never approved); sessions that were working
        become failed with a reason that says how to continue; idle ones completed. The
        "allow for session" rules people made are rebuilt from their approvals.
        """
        now = self.clock()
        for allowed in await self.store.approvals(state=ApprovalState.ALLOWED,
                                                  decision=DecisionKind.ALLOW_SESSION):
            self._keep_rule(allowed)
        stale = await self.store.sessions_in(LIVE_STATES)
        for approval in await self.store.approvals(state=ApprovalState.PENDING):
            expired = replace(
                approval, state=ApprovalState.EXPIRED, decided_at=now,
                reason="the daemon restarted; the agent no longer waits. Nothing was approved.",
            )
            await self.store.settle_approval(expired)
            await self._enqueue(approval.session_id, UpdateApproval(approval_id=approval.id))
        # every session whose process was recorded, whatever its state: a failed turn or
        # a stop cut short by the crash leaves a live agent behind a session that is not live
        recorded = await self.store.recorded_pids()
        if recorded:
            killed = await asyncio.to_thread(_kill_leftovers, recorded)
            if killed:
                log.info("killed %d process(es) left by the last run: %s", len(killed),
                         ", ".join(f"{pid} (session {sid})" for pid, sid in killed))
        live = {s.id for s in stale}
        for session_id in recorded.keys() - live:
            await self.store.update_session(session_id, pid=None)
        for session in stale:
            trigger, error = closed_under(session.state, DAEMON_STOPPED)
            state = apply(session.state, trigger)
            await self.store.update_session(
                session.id, state=state, error=error, pid=None, updated_at=now
            )
            await self._enqueue(session.id, RefreshStatus())

    async def start_background(self) -> None:
        self.spawn(self._approval_timer(), name="approval-timer")

    async def shutdown(self) -> None:
        runners = list(self.runners.values())
        await asyncio.gather(
            *(r.close(DAEMON_STOPPED) for r in runners), return_exceptions=True
        )
        await asyncio.gather(
            *(asyncio.wait_for(r.done.wait(), 30) for r in runners), return_exceptions=True
        )
        for host in self.hosts.values():
            await host.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- sessions -------------------------------------------------------------------

    def resolve_project(self, project: str) -> Project:
        """A configured project by name, or a local directory given as a path."""
        configured = self.config.project(project)
        if configured is not None:
            if configured.host != "local":  # a path on another machine: taken as written
                return Project(configured.name, configured.path, configured.agent,
                               configured.worktree, configured.host)
            path = str(Path(configured.path).expanduser().resolve())
            if not Path(path).is_dir():
                raise NotFound(f"project {configured.name}: the directory {path} does not exist")
            return Project(configured.name, path, configured.agent, configured.worktree, "local")
        candidate = Path(project).expanduser()
        # a relative path would be the daemon's directory, which is nobody's: the CLI sends
        # absolute ones, a chat has no directory to be relative to
        if candidate.is_absolute() and candidate.is_dir():
            resolved = candidate.resolve()
            return Project(resolved.name, str(resolved), None, False, "local")
        names = ", ".join(p.name for p in self.config.projects) or "none configured"
        what = "a directory" if candidate.is_absolute() else "an absolute path (or ~/…)"
        raise NotFound(f"no project {project!r}: not a configured project ({names}) nor {what}")

    async def new_session(
        self, project: str, prompt: str, *, agent: str | None = None, actor: Actor,
        worktree: bool | None = None,
    ) -> SessionView:
        if not prompt.strip():
            raise Conflict("a new session needs a prompt")
        target = self.resolve_project(project)
        name, path = target.name, target.path
        agent_name = agent or target.agent or self.config.default_agent
        agent_config = self._agent(agent_name)
        session = await self.store.create_session(
            project=name, agent=agent_name, protocol=agent_config.protocol, cwd=path,
            host=target.host, now=self.clock(),
            title=shorten(prompt.strip().splitlines()[0], 200, self.redactor),
            owner=f"{actor.surface}:{actor.user_id}",
        )
        await self._record(session.id, "prompt", {"text": prompt, "by": actor.label})
        try:
            cwd = await self.changes.record_start(
                session.id, path, host=target.host,
                worktree=target.worktree if worktree is None else worktree,
            )
        except DaemonError as e:
            await self.store.update_session(session.id, state=SessionState.FAILED,
                                            error=f"could not prepare the worktree: {e.message}")
            await self._enqueue(session.id, OpenThread())
            raise
        if cwd != path:
            await self.store.update_session(session.id, cwd=cwd)
        session = await self.store.session(session.id)
        await self._enqueue(session.id, OpenThread())
        await self._launch(session, agent_config, prompt=prompt, resume=None)
        return await self.store.session(session.id)

    async def send(self, session_id: str, text: str, *, actor: Actor) -> SessionView:
        """A reply to a session: continues it, resuming the agent if it is not running."""
        session = await self.store.session(session_id)
        if session.archived:
            await self.set_archived(session_id, False, actor=actor)
        await self.reviewed(session_id, clear_parked=True)
        runner = self.runners.get(session_id)
        if runner is not None and not runner.stopping and not runner.done.is_set():
            await runner.send_prompt(text, actor)
            return await self.store.session(session_id)
        return await self.resume(session_id, text, actor=actor)

    async def resume(
        self, session_id: str, prompt: str | None = None, *, actor: Actor
    ) -> SessionView:
        session = await self.store.session(session_id)
        runner = self.runners.get(session_id)
        if runner is not None and not runner.done.is_set():
            if runner.stopping:
                await runner.done.wait()
            elif prompt:
                await runner.send_prompt(prompt, actor)
                return await self.store.session(session_id)
            elif session.state is SessionState.IDLE:
                # its agent is up and waits for a prompt: resumed already, nothing to start
                if session.archived:
                    await self.set_archived(session_id, False, actor=actor)
                return await self.store.session(session_id)
            else:
                raise Conflict(f"session {session_id} is {session.state.value}: its agent is "
                               f"at work, there is nothing to resume (agent-bridge show "
                               f"{session_id} shows what it does)")
        session = await self.store.session(session_id)
        if session.state not in RESUMABLE_STATES and session.state not in LIVE_STATES:
            raise Conflict(f"session {session_id} cannot be resumed from {session.state.value}")
        if not session.agent_session_id:
            raise Conflict(
                f"session {session_id} has no agent session id yet (the agent never started "
                "it), so there is nothing to resume; start a new session"
            )
        if session.archived:
            await self.set_archived(session_id, False, actor=actor)
        await self.reviewed(session_id, clear_parked=True)
        agent_config = self._agent(session.agent)
        await self.store.update_session(
            session_id, state=apply(session.state, Trigger.RESUMED)
            if session.state in RESUMABLE_STATES else SessionState.STARTING,
            error=None, updated_at=self.clock(),
        )
        await self._record(
            session_id, "resume", {"by": actor.label, "prompt": prompt,
                                   "agent_session_id": session.agent_session_id},
        )
        session = await self.store.session(session_id)
        await self._launch(session, agent_config, prompt=prompt, resume=session.agent_session_id)
        return await self.store.session(session_id)

    async def stop(self, session_id: str, *, actor: Actor) -> SessionView:
        session = await self.store.session(session_id)
        runner = self.runners.get(session_id)
        if runner is None or runner.done.is_set():
            if session.state in LIVE_STATES:
                await self.store.update_session(
                    session_id, state=apply(session.state, Trigger.STOPPED),
                    updated_at=self.clock(),
                )
                await self._enqueue(session_id, RefreshStatus())
                return await self.store.session(session_id)
            raise Conflict(f"session {session_id} is not running ({session.state.value})")
        await runner.stop(actor)
        await runner.done.wait()
        return await self.store.session(session_id)

    async def set_archived(self, session_id: str, archived: bool, *, actor: Actor) -> SessionView:
        session = await self.store.session(session_id)
        if session.archived == archived:
            return session
        await self.store.update_session(session_id, archived=int(archived), updated_at=self.clock(),
                                        reviewed_at=self.clock())
        await self._record(session_id, "archive" if archived else "unarchive", {"by": actor.label})
        await self._enqueue(session_id, SetArchived(archived=archived))
        if archived and session_id not in self.runners:
            note = await self.changes.remove_worktree(session_id)
            if note:
                await self._record(session_id, "worktree", {"text": note})
                await self._enqueue(session_id, PostText(text=f"{session_id}: {note}"))
        return await self.store.session(session_id)

    async def reask(self, session_id: str, *, actor: Actor) -> SessionView:
        """Ask the agent again for what a timer denied (the digest's Re-ask button)."""
        session = await self.store.session(session_id)
        why = session.parked or "a request was denied while nobody answered"
        prompt = (f"I am back. Earlier {why}. If it is still needed, please ask for it again; "
                  "otherwise carry on.")
        return await self.send(session_id, prompt, actor=actor)

    async def digest_lines(self) -> list[DigestLine]:
        cfg = self.config.digest
        sessions = await self.store.sessions()
        return select_digest(sessions, await self.pending_approvals(), now=self.clock(),
                             stalled_after=cfg.stalled_after,
                             unreviewed_after=cfg.unreviewed_after, redactor=self.redactor)

    async def send_digest(self, *, surface: str | None = None, requested: bool = False) -> int:
        """Queue a digest for one surface (`/digest`) or all; returns how many lines it has.
        A scheduled digest with nothing in it is not sent."""
        lines = await self.digest_lines()
        targets = [surface] if surface else list(self._surfaces)
        targets = [t for t in targets if t in self._surfaces]
        if (lines or requested) and targets:
            kind, payload = encode(PostDigest(requested=requested))
            await self.store.enqueue(targets, session_id=None, kind=kind, payload=payload,
                                     now=self.clock())
            self.wake_surfaces()
        if not requested:
            await self.store.set_ref("daemon", DIGEST_LAST.key, str(self.clock()))
        return len(lines)

    async def auto_archive(self) -> list[str]:
        """Archive finished sessions idle longer than `[archive] auto_after` — never one that
        waits on a person (pending approval or parked)."""
        after = self.config.archive.auto_after
        if after is None:
            return []
        waiting = {a.session_id for a in await self.pending_approvals()}
        archived = []
        for session in await self.store.sessions():
            if (session.state in (SessionState.IDLE, SessionState.COMPLETED)
                    and session.id not in waiting and not session.parked
                    and self.clock() - session.updated_at >= after):
                await self.set_archived(session.id, True, actor=AUTO_ARCHIVE)
                archived.append(session.id)
        return archived

    def resume_command(self, session: SessionView) -> str | None:
        """The command that continues the session in a terminal, in its directory."""
        if not session.agent_session_id or not _AGENT_SESSION_ID.fullmatch(
                session.agent_session_id):
            return None  # the agent chose the id: one that is not a plain token is not shown
        agent_session = shlex.quote(session.agent_session_id)
        if session.protocol == "claude":
            return claude_resume_hint(agent_session)
        if session.protocol == "codex":
            return codex_resume_hint(agent_session)
        return None

    async def reviewed(self, session_id: str, *, clear_parked: bool = False) -> None:
        """A person looked at the session (replied, asked for the diff, archived, decided):
        it leaves the digest's "finished, not reviewed" group."""
        changes: dict[str, Any] = {"reviewed_at": self.clock()}
        if clear_parked:
            changes["parked"] = None
        await self.store.update_session(session_id, **changes)

    async def request_diff(self, session_id: str, *, surface: str, actor: Actor) -> None:
        """Ask `surface` to post the session's current diff (delivered through the outbox)."""
        await self.reviewed(session_id)
        await self._record(session_id, "diff_requested", {"by": actor.label})
        if surface in self._surfaces:
            kind, payload = encode(PostDiff())
            await self.store.enqueue([surface], session_id=session_id, kind=kind,
                                     payload=payload, now=self.clock())
            self.wake_surfaces()
            async with self.changed:
                self.changed.notify_all()

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

    def _agent(self, name: str) -> AgentConfig:
        try:
            return self.config.agent(name)
        except KeyError:
            names = ", ".join(sorted(self.config.agents))
            raise NotFound(f"no agent {name!r}; configured agents: {names}") from None

    def make_codec(self, agent: AgentConfig, *, cwd: str, resume: str | None) -> AgentCodec:
        """The codec for one process of `agent` in `cwd`. Claude resumes through its argv;
        Codex (`thread/resume`) and ACP (`session/resume` or `session/load`) on the wire."""
        max_line = self.config.daemon.max_line_bytes
        if agent.protocol == "claude":
            return ClaudeCodec(max_line=max_line)
        if agent.protocol == "codex":
            return CodexCodec(cwd=cwd, approval_policy=agent.approval_policy,
                              sandbox=agent.sandbox, resume=resume, max_line=max_line)
        if agent.protocol == "acp":
            return AcpCodec(cwd=cwd, resume=resume, max_line=max_line)
        raise LaunchError(f"agents with protocol {agent.protocol!r} are not supported")

    def argv(self, agent: AgentConfig, resume: str | None) -> list[str]:
        if agent.protocol == "claude":
            return claude_argv(agent.command, resume=resume, extra=agent.args)
        if agent.protocol == "codex":
            return codex_argv(agent.command, agent.args)
        return [*agent.command, *agent.args]  # ACP: the agent's own command, as configured

    async def _launch(
        self, session: SessionView, agent: AgentConfig, *, prompt: str | None, resume: str | None
    ) -> None:
        codec = self.make_codec(agent, cwd=session.cwd, resume=resume)
        # NO_COLOR: agents' logs land in the transcript; escape codes only make it unreadable
        env = {"NO_COLOR": "1", **agent.env, "AGENT_BRIDGE_SESSION": session.id}
        try:
            process = await self.launcher_for(session.host).spawn(
                self.argv(agent, resume), cwd=session.cwd, env=env)
        except LaunchError as e:
            await self.store.update_session(
                session.id, state=apply(session.state, Trigger.CRASHED), error=e.message,
                updated_at=self.clock(),
            )
            await self._record(session.id, "error", {"text": e.message})
            await self._enqueue(session.id, RefreshStatus())
            raise
        await self.store.update_session(session.id, pid=process.pid)
        runner = SessionRunner(
            store=self.store, notifier=self, session_id=session.id, state=session.state,
            codec=codec, process=process, cwd=session.cwd,
            grace=self.config.daemon.shutdown_grace, idle_exit=self.config.daemon.idle_exit,
            clock=self.clock, redactor=self.redactor,
        )
        self.runners[session.id] = runner
        self.spawn(self._run(runner), name=f"session-{session.id}")
        await runner.start(prompt)

    def launcher_for(self, host: str) -> AgentLauncher:
        if host == "local":
            return self.launcher
        try:
            return self.hosts[host]
        except KeyError:
            raise LaunchError(f"no host named {host!r} in [hosts]") from None

    def runner_for(self, host: str) -> CommandRunner:
        if host == "local":
            return self.changes_runner
        try:
            return self.hosts[host]
        except KeyError:
            raise LaunchError(f"no host named {host!r} in [hosts]") from None

    async def _host_down(self, name: str) -> None:
        """A host's connection dropped: its sessions notice on their own (their pipes end
        and they become `disconnected`); here the connection is brought back."""
        host = self.hosts[name]
        self.spawn(reconnect_forever(host), name=f"reconnect-{name}")

    async def _run(self, runner: SessionRunner) -> None:
        try:
            await runner.run()
        finally:
            if self.runners.get(runner.session_id) is runner:
                del self.runners[runner.session_id]
            async with self.changed:
                self.changed.notify_all()

    async def _record(self, session_id: str, kind: str, data: dict[str, Any]) -> None:
        await self.store.record_event(session_id, kind, data, now=self.clock())

    async def _enqueue(self, session_id: str, intent: Intent) -> None:
        if self._surfaces:
            kind, payload = encode(intent)
            await self.store.enqueue(self._surfaces, session_id=session_id, kind=kind,
                                     payload=payload, now=self.clock())
            self.wake_surfaces()
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float) -> None:
        async with asyncio.timeout(timeout), self.changed:
            while not await predicate():
                await self.changed.wait()


def _done_message(approval: Approval) -> str:
    if approval.state is ApprovalState.ALLOWED:
        how = "for the session" if approval.decision is DecisionKind.ALLOW_SESSION else "once"
        return f"Allowed {how}."
    return "Stopped." if approval.decision is DecisionKind.STOP else "Denied."


def _kill_leftovers(recorded: Mapping[str, int]) -> list[tuple[int, str]]:
    """Kill what a crashed daemon left of the agents in `recorded` (session id → pid):
    every process whose environment carries one of those sessions' ids (our agents and
    whatever they started, even once the agent itself has exited), and its process group
    when the group is the agent's. A process is only ever killed when its own environment
    names the session: a recycled pid is left alone. Returns (pid, session id) killed."""
    import signal

    marker = b"AGENT_BRIDGE_SESSION="
    killed: list[tuple[int, str]] = []
    try:
        entries = [e.name for e in Path("/proc").iterdir() if e.name.isdigit()]
    except OSError:
        return killed
    for name in entries:
        pid = int(name)
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        for item in environ.split(b"\0"):
            if not item.startswith(marker):
                continue
            session_id = item[len(marker):].decode("utf-8", "replace")
            agent_pid = recorded.get(session_id)
            if agent_pid is None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(pid) == agent_pid != os.getpgrp():  # never our own group
                    os.killpg(agent_pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
                killed.append((pid, session_id))
            break
    return killed


__all__ = ["TIMER", "DecisionResult", "Hub", "RefusalReason"]
