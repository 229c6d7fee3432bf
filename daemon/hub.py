"""The hub: wires the daemon's parts.

Sessions (`daemon/sessions.py`), approvals (`daemon/approvals.py`), the digest
(`daemon/digests.py`), the outbox fan-out (`daemon/fanout.py`), hosts (`daemon/hosts.py`),
recovery (`daemon/recovery.py`) and the agents table (`daemon/agents.py`) each own their
job; the hub builds them from the config and store and stands for them where a consumer
needs several (each consumer declares, as a Protocol, the little it uses). Runners report
to the hub (`committed`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any

from bridge.approvals import AccessPolicy, Actor, Approval
from bridge.config import Config
from bridge.digest import DigestLine
from bridge.events import DecisionKind
from bridge.facts import Facts
from bridge.model import SessionView
from bridge.outbox import RefreshStatus
from bridge.questions import Question
from bridge.redact import Redactor
from bridge.surface import IncomingFile, Reply
from daemon import recovery, sessionlog
from daemon import store as st
from daemon.adopting import DEFAULT_LIMIT, Adoption
from daemon.approvals import ApprovalService, DecisionResult
from daemon.changes import ChangeTracker
from daemon.digests import Digests
from daemon.discovery import Discovery, Found
from daemon.fanout import Fanout
from daemon.hosts import Hosts
from daemon.launch import AgentLauncher
from daemon.questions import AnswerResult, QuestionService
from daemon.resumes import ScheduledResumes
from daemon.sessions import Sessions
from daemon.supervisor import SessionRunner
from daemon.tasks import Tasks
from daemon.terminal import TerminalSessions
from daemon.uploads import Fetch, Uploads

log = logging.getLogger(__name__)

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
        self.changes = ChangeTracker(store, runner_for=self.hosts.runner_for, clock=clock)
        self.sessions = Sessions(config=config, store=store, fanout=self.fanout,
                                 hosts=self.hosts, changes=self.changes, tasks=self.tasks,
                                 notifier=self, redactor=self.redactor, clock=clock)
        self.adoption = Adoption(
            store=store, sessions=self.sessions, runner_for=self.hosts.runner_for,
            redactor=self.redactor,
            discovery=Discovery(config=config, runner_for=self.hosts.runner_for,
                                known_ids=self._agent_session_ids))
        self.uploads = Uploads(config=config, store=store, hosts=self.hosts,
                               send=self.sessions.send)
        self.digests = Digests(config=config, store=store, fanout=self.fanout,
                               sessions=self.sessions, redactor=self.redactor, clock=clock)
        # how many approval requests have been committed (see `urgent_queued`)
        self.approvals_requested = 0
        allowed: dict[str, frozenset[str]] = {}
        if config.telegram is not None:
            allowed["telegram"] = frozenset(str(u) for u in config.telegram.allowed_user_ids)
        if config.slack is not None:
            allowed["slack"] = frozenset(config.slack.allowed_user_ids)
        self.policy = AccessPolicy(allowed=allowed)
        # terminal sessions seen through the agents' hooks (daemon/terminal.py): their
        # approvals go through the same service, their runners beside the daemon's
        self.terminal = TerminalSessions(store=store, notifier=self, fanout=self.fanout,
                                         changes=self.changes, redactor=self.redactor,
                                         clock=clock)
        self.approvals = ApprovalService(
            store=store, settings=lambda: self.config.approvals, policy=self.policy,
            clock=clock, redactor=self.redactor,
            runners=RunnerView(self.sessions.runners, self.terminal.runners),
            enqueue=self.fanout.enqueue, reviewed=self.sessions.reviewed, spawn=self.spawn,
        )
        self.resumes = ScheduledResumes(
            store=store, enqueue=self.fanout.enqueue, clock=clock,
            send=lambda sid, text, actor: self.sessions.send(sid, text, actor=actor))
        self.questions = QuestionService(
            store=store, settings=lambda: self.config.approvals, policy=self.policy,
            clock=clock, runners=RunnerView(self.sessions.runners, self.terminal.runners),
            enqueue=self.fanout.enqueue, reviewed=self.sessions.reviewed,
        )

    def apply_config(self, config: Config) -> None:
        """A reloaded config (SIGHUP): its live parts (bridge/config_reload.py) take effect
        for what is started, resumed or timed from now on."""
        self.config = config
        self.sessions.config = config
        self.digests.config = config
        self.approvals.settings_changed()
        self.questions.settings_changed()

    @property
    def urgent_queued(self) -> int:
        """How many urgent outbox rows (approval cards, answers to a person) were queued:
        deliveries compare it to what they last saw, and send those at once, first in the
        rate budget, beside whatever else they were busy with."""
        return self.approvals_requested + self.fanout.answers_queued

    # -- lifecycle ------------------------------------------------------------------

    async def recover(self) -> None:
        """After a restart: what was pending expires and the "allow for session" rules are
        rebuilt (`ApprovalService.recover`); then see `daemon/recovery.py`."""
        await self.terminal.load()
        await self.approvals.recover()
        await self.questions.recover()
        await recovery.recover(self.store, self.fanout, now=self.clock())

    async def start_background(self) -> None:
        self.spawn(self.approvals.timer(), name="approval-timer")
        self.spawn(self.questions.timer(), name="question-timer")

    async def shutdown(self) -> None:
        await self.sessions.close()
        await self.hosts.close()
        await self.tasks.cancel_all()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Start a background task that is kept, and whose failure is logged."""
        return self.tasks.spawn(coro, name=name)

    # -- the runners' notifier (daemon.supervisor.Notifier) -------------------------

    async def committed(self, session_id: str, batch: Facts) -> None:
        self.approvals_requested += len(batch.new_approvals) + len(batch.new_questions)
        sessionlog.committed(session_id, batch, self.redactor)
        self.wake_surfaces()
        self.approvals.requested(session_id, batch.new_approvals)
        self.questions.asked(batch.new_questions)
        if batch.turn is not None:
            # the turn's end is kept while the runner holds its lock: before the agent can
            # be prompted again (a summary being delivered waits for it: ChangeTracker)
            try:
                await self.changes.turn_ended(session_id, batch.turn)
            except Exception:
                log.exception("session %s: could not keep the end of turn %d",
                              session_id, batch.turn)

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
                          actor: Actor, worktree: bool | None = None,
                          plan: bool = False) -> SessionView:
        return await self.sessions.new_session(project, prompt, agent=agent, actor=actor,
                                               worktree=worktree, plan=plan)

    async def terminal_sessions(self, limit: int = DEFAULT_LIMIT) -> Found:
        return await self.adoption.terminal_sessions(limit)

    async def adopt(self, wanted: str, prompt: str | None = None, *, actor: Actor,
                    force: bool = False) -> SessionView:
        return await self.adoption.adopt(wanted, prompt, actor=actor, force=force)

    async def _agent_session_ids(self) -> set[str]:
        # a session seen only through the hooks is still the terminal's: listed, adoptable
        return {s.agent_session_id for s in await self.store.sessions(include_archived=True)
                if s.agent_session_id and not s.through_hooks}

    async def send(self, session_id: str, text: str, *, actor: Actor) -> SessionView:
        return await self.sessions.send(session_id, text, actor=actor)

    async def receive_files(self, session_id: str, files: tuple[IncomingFile, ...],
                            caption: str, *, actor: Actor, fetch: Fetch) -> Reply:
        return await self.uploads.receive(session_id, files, caption, actor=actor, fetch=fetch)

    async def resume(self, session_id: str, prompt: str | None = None, *,
                     actor: Actor) -> SessionView:
        return await self.sessions.resume(session_id, prompt, actor=actor)

    async def stop(self, session_id: str, *, actor: Actor) -> SessionView:
        return await self.sessions.stop(session_id, actor=actor)

    async def interrupt(self, session_id: str, *, actor: Actor) -> SessionView:
        return await self.sessions.interrupt(session_id, actor=actor)

    async def set_mode(self, session_id: str, mode: str, *, actor: Actor) -> SessionView:
        return await self.sessions.set_mode(session_id, mode, actor=actor)

    async def set_model(self, session_id: str, model: str, *, actor: Actor) -> SessionView:
        return await self.sessions.set_model(session_id, model, actor=actor)

    async def set_away(self, away: bool, *, actor: Actor) -> bool:
        """Away mode on or off (daemon/terminal.py)."""
        return await self.terminal.set_away(away, actor=actor)

    def steers(self, session_id: str) -> bool:
        return self.sessions.steers(session_id)

    async def set_archived(self, session_id: str, archived: bool, *, actor: Actor) -> SessionView:
        return await self.sessions.set_archived(session_id, archived, actor=actor)

    async def reask(self, session_id: str, *, actor: Actor) -> SessionView:
        return await self.sessions.reask(session_id, actor=actor)

    async def resume_at_reset(self, session_id: str, *, actor: Actor) -> float:
        return await self.resumes.schedule(session_id, actor=actor)

    async def cancel_resume(self, session_id: str, *, actor: Actor) -> bool:
        return await self.resumes.cancel(session_id, actor=actor)

    async def set_verbose(self, session_id: str, on: bool, *, actor: Actor) -> None:
        """/verbose: the session's progress message on or off, on every surface."""
        await self.store.session(session_id)
        await self.store.update_session(session_id, verbose=on)
        await self.store.record_event(session_id, "verbose", {"on": on, "by": actor.label},
                                      now=self.clock())
        await self.fanout.enqueue(session_id, RefreshStatus())

    async def reviewed(self, session_id: str, *, clear_parked: bool = False) -> None:
        await self.sessions.reviewed(session_id, clear_parked=clear_parked)

    async def request_diff(self, session_id: str, *, surface: str, actor: Actor,
                           turn: int | None = None) -> None:
        await self.sessions.request_diff(session_id, surface=surface, actor=actor, turn=turn)

    async def digest_lines(self) -> list[DigestLine]:
        return await self.digests.digest_lines()

    async def send_digest(self, *, surface: str | None = None, requested: bool = False) -> int:
        return await self.digests.send_digest(surface=surface, requested=requested)

    async def auto_archive(self) -> list[str]:
        return await self.digests.auto_archive()

    def chat_for(self, surface: str, session: SessionView) -> str | None:
        """The chat a session's thread goes in on `surface`: its project's, when the project
        is routed to one (`[[projects]] telegram_chat_id`, `slack_channel`); None: the
        surface's home chat."""
        project = self.config.project(session.project)
        return project.chat_on(surface) if project is not None else None

    async def pending_approvals(self, session_id: str | None = None) -> list[Approval]:
        return await self.approvals.pending(session_id)

    async def decide(
        self, approval_id: str, kind: DecisionKind, *, actor: Actor, reason: str | None = None,
        choice: int | None = None,
    ) -> DecisionResult:
        return await self.approvals.decide(approval_id, kind, actor=actor, reason=reason,
                                           choice=choice)

    async def pending_questions(self, session_id: str | None = None) -> list[Question]:
        return await self.questions.pending(session_id)

    async def answer(self, question_id: str, *, actor: Actor, labels: Sequence[str] = (),
                     text: str | None = None) -> AnswerResult:
        return await self.questions.answer(question_id, actor=actor, labels=labels, text=text)

    async def expire_due(self) -> int:
        return await self.approvals.expire_due()

    async def remind_due(self) -> int:
        return await self.approvals.remind_due()


class RunnerView(Mapping[str, Any]):
    """The daemon's runners and the terminal sessions' as one mapping, for the approval
    service (a session id is in one or the other)."""

    def __init__(self, *parts: Mapping[str, Any]) -> None:
        self.parts = parts

    def __getitem__(self, key: str) -> Any:
        for part in self.parts:
            if key in part:
                return part[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        for part in self.parts:
            yield from part

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)


__all__ = ["AnswerResult", "DecisionResult", "Hub", "RunnerView"]
