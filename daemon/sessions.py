"""Session commands: what a person asks of a session, whatever surface it came from.

Resolves the project and agent, starts a session (its worktree, its thread, its process),
sends to it (resuming the agent when it is not running), stops, archives and re-asks it,
and keeps the runner of each session whose agent runs. What the daemon has to show goes
through the fan-out; the runners report to the `Notifier` they are given.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.approvals import Actor
from bridge.config import AgentConfig, Config
from bridge.errors import IllegalTransition
from bridge.events import AgentCommand, ImageInput, SetMode, SetModel
from bridge.model import SessionView
from bridge.modes import Mode, ModeError, parse_mode
from bridge.outbox import OpenThread, PostDiff, PostText, RefreshStatus, SetArchived
from bridge.redact import Redactor
from bridge.render import shorten
from bridge.session import (
    DAEMON_STOPPED,
    LIVE_STATES,
    RESUMABLE_STATES,
    TURN_STATES,
    SessionState,
    Trigger,
    apply,
)
from bridge.terminal import TerminalSession
from daemon import sessionlog
from daemon.agents import agent_argv, configured_agent, make_codec
from daemon.changes import ChangeTracker
from daemon.errors import Conflict, DaemonError, LaunchError, NotFound
from daemon.fanout import Fanout
from daemon.hosts import Hosts
from daemon.store import Store
from daemon.supervisor import Notifier, SessionRunner
from daemon.tasks import Tasks


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    path: str
    agent: str | None
    worktree: bool
    host: str  # "local" or a [hosts.NAME]


class Sessions:
    """The session commands, and the runner of every session whose agent runs."""

    def __init__(self, *, config: Config, store: Store, fanout: Fanout, hosts: Hosts,
                 changes: ChangeTracker, tasks: Tasks, notifier: Notifier,
                 redactor: Redactor, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.fanout = fanout
        self.hosts = hosts
        self.changes = changes
        self.tasks = tasks
        self.notifier = notifier
        self.redactor = redactor
        self.clock = clock
        self.runners: dict[str, SessionRunner] = {}

    async def close(self) -> None:
        """Stop every runner (the daemon is stopping) and wait a bounded time for them."""
        runners = list(self.runners.values())
        await asyncio.gather(
            *(r.close(DAEMON_STOPPED) for r in runners), return_exceptions=True
        )
        await asyncio.gather(
            *(asyncio.wait_for(r.done.wait(), 30) for r in runners), return_exceptions=True
        )

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
        worktree: bool | None = None, plan: bool = False,
    ) -> SessionView:
        if not prompt.strip():
            raise Conflict("a new session needs a prompt")
        target = self.resolve_project(project)
        name, path = target.name, target.path
        agent_name = agent or target.agent or self.config.default_agent
        agent_config = configured_agent(self.config, agent_name)
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
            await self.fanout.enqueue(session.id, OpenThread())
            raise
        if cwd != path:
            await self.store.update_session(session.id, cwd=cwd)
        if plan:  # it plans first: the agent gets the mode before the prompt
            await self.store.update_session(session.id, mode=Mode.PLAN.value)
        session = await self.store.session(session.id)
        await self.fanout.enqueue(session.id, OpenThread())
        await self._launch(session, agent_config, prompt=prompt, resume=None)
        sessionlog.started(session.id, project=name, agent=agent_name, host=target.host,
                           by=actor.label)
        return await self.store.session(session.id)

    async def adopt(self, found: TerminalSession, prompt: str | None, *, actor: Actor,
                    recap: str) -> SessionView:
        """A daemon session, with its own thread opening with `recap`, that continues the
        terminal session `found` (its agent resumed in its own directory)."""
        agent_config = configured_agent(self.config, found.agent)
        if not found.cwd:
            raise Conflict(f"the terminal session {found.id} records no working directory; "
                           "it cannot be resumed from here")
        project = next((p.name for p in self.config.projects if p.host == found.host and (
            found.cwd + "/").startswith(_expanded(p.path, p.host).rstrip("/") + "/")),
            found.cwd.rsplit("/", 1)[-1])
        session = await self.store.create_session(
            project=project, agent=found.agent, protocol=agent_config.protocol, cwd=found.cwd,
            host=found.host, now=self.clock(), owner=f"{actor.surface}:{actor.user_id}",
            title=shorten(found.last_prompt or found.first_prompt or f"terminal {found.id}",
                          200, self.redactor))
        await self.store.update_session(session.id, agent_session_id=found.id)
        await self._record(session.id, "adopt", {"by": actor.label, "agent_session_id": found.id,
                                                 "file": found.path, "prompt": prompt})
        with contextlib.suppress(DaemonError):  # no repository: no diff, the session runs
            await self.changes.record_start(session.id, found.cwd, host=found.host,
                                            worktree=False)
        await self.fanout.enqueue(session.id, OpenThread())
        await self.fanout.enqueue(session.id, PostText(text=recap))
        await self._launch(await self.store.session(session.id), agent_config, prompt=prompt,
                           resume=found.id)
        return await self.store.session(session.id)

    async def send(self, session_id: str, text: str, *, actor: Actor,
                   images: tuple[ImageInput, ...] = ()) -> SessionView:
        """A reply to a session: continues it, resuming the agent if it is not running.
        `images` go with the text (files sent in the thread, `daemon/uploads.py`)."""
        session = await self.store.session(session_id)
        if session.archived:
            await self.set_archived(session_id, False, actor=actor)
        await self.reviewed(session_id, clear_parked=True)
        runner = self.runners.get(session_id)
        if (runner is not None and not runner.stopping and not runner.done.is_set()
                and await _prompted(runner, text, actor, images)):
            return await self.store.session(session_id)
        return await self.resume(session_id, text, actor=actor, images=images)

    async def resume(
        self, session_id: str, prompt: str | None = None, *, actor: Actor,
        images: tuple[ImageInput, ...] = (),
    ) -> SessionView:
        session = await self.store.session(session_id)
        if session.through_hooks:  # daemon/terminal.py
            raise in_a_terminal(session)
        runner = self.runners.get(session_id)
        if runner is not None and not runner.done.is_set():
            if runner.stopping:
                await runner.done.wait()
            elif prompt:
                if await _prompted(runner, prompt, actor, images):
                    return await self.store.session(session_id)
                # the agent ended meanwhile and its runner is done: resumed below
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
        agent_config = configured_agent(self.config, session.agent)
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
        await self._launch(session, agent_config, prompt=prompt, resume=session.agent_session_id,
                           images=images)
        sessionlog.started(session_id, project=session.project, agent=session.agent,
                           host=session.host, by=actor.label, resumed=True)
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
                await self.fanout.enqueue(session_id, RefreshStatus())
                return await self.store.session(session_id)
            raise Conflict(f"session {session_id} is not running ({session.state.value})")
        await runner.stop(actor)
        await runner.done.wait()
        return await self.store.session(session_id)

    async def set_mode(self, session_id: str, mode: str, *, actor: Actor) -> SessionView:
        """Switch the session's permission mode: now when its agent runs (Codex: from its
        next turn), else when it is resumed. A mode that never asks is refused from chat
        unless the config allows it (`bridge.modes.parse_mode`)."""
        try:
            chosen = parse_mode(mode, from_chat=actor.surface != "cli",
                                allow_bypass=self.config.approvals.allow_bypass_from_chat)
        except ModeError as e:
            raise Conflict(str(e)) from e
        return await self._configure(session_id, SetMode(mode=chosen.value), actor,
                                     mode=chosen.value)

    async def set_model(self, session_id: str, model: str, *, actor: Actor) -> SessionView:
        """Switch the session's model, as for `set_mode`."""
        name = model.strip()
        if not name or len(name) > 200 or any(c.isspace() for c in name):
            raise Conflict(f"not a model name: {model!r}")
        return await self._configure(session_id, SetModel(model=name), actor, model=name)

    async def _configure(self, session_id: str, command: AgentCommand, actor: Actor,
                         **chosen: str) -> SessionView:
        session = await self.store.session(session_id)
        await self.store.update_session(session_id, updated_at=self.clock(), **chosen)
        await self._record(session_id, "settings", {"by": actor.label, **chosen})
        runner = self.runners.get(session_id)
        if runner is not None and not runner.stopping and not runner.done.is_set():
            await runner.configure(command)
        await self.fanout.enqueue(session.id, RefreshStatus())
        return await self.store.session(session_id)

    async def interrupt(self, session_id: str, *, actor: Actor) -> SessionView:
        """End the running turn and keep the session: it waits idle for a reply (`stop`
        closes it)."""
        session = await self.store.session(session_id)
        runner = self.runners.get(session_id)
        if (runner is None or runner.stopping or runner.done.is_set()
                or session.state not in TURN_STATES):
            raise Conflict(f"session {session_id} has no turn running ({session.state.value}); "
                           "nothing to interrupt")
        await runner.interrupt(actor)
        return await self.store.session(session_id)

    def steers(self, session_id: str) -> bool:
        """A message sent to the session now joins its running turn (Codex `turn/steer`)
        rather than waiting for the turn to end."""
        runner = self.runners.get(session_id)
        return runner is not None and runner.steers

    async def set_archived(self, session_id: str, archived: bool, *, actor: Actor) -> SessionView:
        session = await self.store.session(session_id)
        if session.archived == archived:
            return session
        await self.store.update_session(session_id, archived=int(archived), updated_at=self.clock(),
                                        reviewed_at=self.clock())
        await self._record(session_id, "archive" if archived else "unarchive", {"by": actor.label})
        await self.fanout.enqueue(session_id, SetArchived(archived=archived))
        if archived and session_id not in self.runners:
            note = await self.changes.remove_worktree(session_id)
            if note:
                await self._record(session_id, "worktree", {"text": note})
                await self.fanout.enqueue(session_id, PostText(text=f"{session_id}: {note}"))
        return await self.store.session(session_id)

    async def reask(self, session_id: str, *, actor: Actor) -> SessionView:
        """Ask the agent again for what a timer denied (the digest's Re-ask button)."""
        session = await self.store.session(session_id)
        why = session.parked or "a request was denied while nobody answered"
        prompt = (f"I am back. Earlier {why}. If it is still needed, please ask for it again; "
                  "otherwise carry on.")
        return await self.send(session_id, prompt, actor=actor)

    async def reviewed(self, session_id: str, *, clear_parked: bool = False) -> None:
        """A person looked at the session (replied, asked for the diff, archived, decided):
        it leaves the digest's "finished, not reviewed" group."""
        changes: dict[str, Any] = {"reviewed_at": self.clock()}
        if clear_parked:
            changes["parked"] = None
        await self.store.update_session(session_id, **changes)

    async def request_diff(self, session_id: str, *, surface: str, actor: Actor,
                           turn: int | None = None) -> None:
        """Ask `surface` to post the session's current diff, or turn `turn`'s own change
        (delivered through the outbox); a turn the session has not had is refused."""
        if turn is not None:
            session = await self.store.session(session_id)
            if not 1 <= turn <= session.turns:
                raise Conflict(f"{session_id} has had {session.turns} turn(s): ask for a turn "
                               f"from 1 to {session.turns}, or /diff {session_id} for all")
        await self.reviewed(session_id)
        await self._record(session_id, "diff_requested", {"by": actor.label, "turn": turn})
        await self.fanout.enqueue(session_id, PostDiff(turn=turn), only=surface)

    async def _launch(
        self, session: SessionView, agent: AgentConfig, *, prompt: str | None, resume: str | None,
        images: tuple[ImageInput, ...] = (),
    ) -> None:
        codec = make_codec(agent, cwd=session.cwd, resume=resume,
                           max_line=self.config.daemon.max_line_bytes)
        # NO_COLOR: agents' logs land in the transcript; escape codes only make it unreadable
        env = {"NO_COLOR": "1", **agent.env, "AGENT_BRIDGE_SESSION": session.id}
        try:
            process = await self.hosts.launcher_for(session.host).spawn(
                agent_argv(agent, resume), cwd=session.cwd, env=env)
        except LaunchError as e:
            await self.store.update_session(
                session.id, state=apply(session.state, Trigger.CRASHED), error=e.message,
                updated_at=self.clock(),
            )
            await self._record(session.id, "error", {"text": e.message})
            await self.fanout.enqueue(session.id, RefreshStatus())
            sessionlog.event(session.id, "failed", "failed: %s", e.message, reason=e.message)
            raise
        await self.store.update_session(session.id, pid=process.pid)
        runner = SessionRunner(
            store=self.store, notifier=self.notifier, session_id=session.id, state=session.state,
            codec=codec, process=process, cwd=session.cwd,
            grace=self.config.daemon.shutdown_grace, idle_exit=self.config.daemon.idle_exit,
            clock=self.clock, redactor=self.redactor,
            host=self.hosts.runner_for(session.host), turns=session.turns,
        )
        self.runners[session.id] = runner
        self.tasks.spawn(self._run(runner), name=f"session-{session.id}")
        setup: list[AgentCommand] = []
        if session.mode:
            setup.append(SetMode(mode=session.mode))
        if session.model:
            setup.append(SetModel(model=session.model))
        await runner.start(prompt, setup, images)

    async def _run(self, runner: SessionRunner) -> None:
        try:
            await runner.run()
        finally:
            if self.runners.get(runner.session_id) is runner:
                del self.runners[runner.session_id]

    async def _record(self, session_id: str, kind: str, data: dict[str, Any]) -> None:
        await self.store.record_event(session_id, kind, data, now=self.clock())


def _expanded(path: str, host: str) -> str:
    """A configured project path as the agent's cwd would show it (`~` expanded locally)."""
    return str(Path(path).expanduser().resolve()) if host == "local" else path


# how long a prompt that met an agent just ending waits for its runner to finish
FINISH_WAIT = 30.0


async def _prompted(runner: SessionRunner, text: str, actor: Actor,
                    images: tuple[ImageInput, ...] = ()) -> bool:
    """Give `text` to a running agent; False when the agent ended in this instant (its
    session no longer takes a prompt) and the runner has finished since: the caller then
    resumes the session with the prompt, so nothing typed is lost."""
    try:
        await runner.send_prompt(text, actor, images)
    except IllegalTransition:
        try:
            await asyncio.wait_for(runner.done.wait(), FINISH_WAIT)
        except TimeoutError as e:
            raise Conflict(f"session {runner.session_id} is ending; send it again in a moment"
                           ) from e
        return False
    return True


def in_a_terminal(session: SessionView) -> Conflict:
    """Why a session running in a terminal (seen through its hooks) takes no prompt or file
    from here."""
    return Conflict(
        f"{session.id} is a session running in a terminal ({session.title}): its cards are "
        "answered here, the session itself goes on in that terminal. To continue it from "
        f"here: agent-bridge adopt {session.agent_session_id}")
