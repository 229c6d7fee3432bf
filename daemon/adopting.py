"""Taking over a terminal session: find it, refuse while a terminal still holds it (unless
forced), write the recap, and hand it to the session commands (`Sessions.adopt`)."""

from __future__ import annotations

from collections.abc import Callable

from bridge.approvals import Actor
from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render_terminal import attached_refusal, render_recap
from bridge.terminal import Attached, TerminalSession
from daemon.discovery import Discovery, Found
from daemon.errors import Conflict, NotFound
from daemon.gitrun import CommandRunner, GitError, git_stdout
from daemon.sessions import Sessions
from daemon.store import Store

DEFAULT_LIMIT = 20
MOST = 200


class StillAttached(Conflict):
    """A terminal process holds the session; adopting it needs `force`."""

    code = "attached"

    def __init__(self, session: TerminalSession) -> None:
        self.session = session
        super().__init__(attached_refusal(session))


class Adoption:
    def __init__(self, *, store: Store, sessions: Sessions, discovery: Discovery,
                 runner_for: Callable[[str], CommandRunner], redactor: Redactor) -> None:
        self.store = store
        self.sessions = sessions
        self.discovery = discovery
        self.runner_for = runner_for
        self.redactor = redactor

    async def terminal_sessions(self, limit: int = DEFAULT_LIMIT) -> Found:
        if not 1 <= limit <= MOST:
            raise Conflict(f"--limit must be between 1 and {MOST}, not {limit}")
        return await self.discovery.find(limit=limit)

    async def lookup(self, wanted: str) -> TerminalSession:
        """The one terminal session `wanted` names (its id, or at least six characters of
        it); NotFound / Conflict saying why not."""
        key = wanted.strip().lower()
        if len(key.replace("-", "")) < 6:
            raise Conflict(f"{wanted!r} is too short: give at least 6 characters of the id "
                           "(`agent-bridge sessions --local` lists them)")
        bare = key.replace("-", "")
        for session in await self.store.sessions(include_archived=True):
            theirs = (session.agent_session_id or "").lower().replace("-", "")
            if theirs and theirs.startswith(bare) and not session.through_hooks:
                raise Conflict(f"{session.agent_session_id} is already the bridge's session "
                               f"{session.id}: continue it with `agent-bridge resume "
                               f"{session.id}` (or /resume {session.id})")
        found = await self.discovery.find(limit=MOST, wanted=key)
        if not found.sessions:
            notes = f" ({'; '.join(found.notes)})" if found.notes else ""
            raise NotFound(f"no terminal session {wanted!r}{notes}; `agent-bridge sessions "
                           "--local` (or /sessions local) lists them")
        if len(found.sessions) > 1:
            ids = ", ".join(s.id for s in found.sessions[:5])
            raise Conflict(f"{wanted!r} names several sessions ({ids}): give more of the id")
        return found.sessions[0]

    async def adopt(self, wanted: str, prompt: str | None, *, actor: Actor,
                    force: bool = False) -> SessionView:
        """Continue the terminal session `wanted` as a daemon session with its own thread.
        Refused (`StillAttached`) while a terminal process holds it, unless `force`."""
        found = await self.lookup(wanted)
        if found.attached is Attached.YES and not force:
            raise StillAttached(found)
        changed = await changed_files(self.runner_for(found.host), found.cwd)
        recap = render_recap(found, changed, redactor=self.redactor)
        return await self.sessions.adopt(found, prompt or None, actor=actor, recap=recap)


async def changed_files(runner: CommandRunner, cwd: str | None) -> list[str] | None:
    """The paths `git status` shows as changed or untracked in `cwd`; None when it is not
    a repository (or git cannot tell)."""
    if not cwd:
        return None
    try:
        out = await git_stdout(runner, cwd, ["status", "--porcelain=v1", "-z",
                                             "--untracked-files=normal"])
    except GitError:
        return None
    paths: list[str] = []
    entries = out.decode("utf-8", "replace").split("\0")
    skip = False
    for entry in entries:
        if skip:  # the source of a rename or copy
            skip = False
            continue
        if len(entry) > 3:
            paths.append(entry[3:])
            skip = entry[0] in "RC"
    return paths
