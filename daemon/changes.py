"""What a session changed: git state at its start, its diff since then, each turn's own
change, its worktree.

Glue between the store and git (`daemon/gitstate.py`, `daemon/gitdiff.py`,
`daemon/worktrees.py`): the repository root, start commit, branch and whether the tree was
dirty are recorded when a session starts; the session's diff is always the working tree
(untracked files included) against that start commit. When a turn ends, that diff is kept
as the turn's snapshot (before the agent can start the next turn); a turn's own change is
the difference between its snapshot and the one of the turn before.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.diffs import DiffSummary, summarize_diff
from daemon import gitdiff, gitrun, gitstate, worktrees
from daemon.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Changes:
    raw: bytes  # the patch as git wrote it (applies with `git apply` on the start commit)
    summary: DiffSummary
    note: str | None = None  # why there is no diff, or what to keep in mind about it
    failed: bool = False  # git could not read it (the note says why)


@dataclass(frozen=True, slots=True)
class TurnChanges:
    """One turn's own change, and the session's whole change when it ended."""

    turn: int
    own: Changes
    total: Changes


class ChangeTracker:
    def __init__(self, store: Store,
                 runner_for: Callable[[str], gitrun.CommandRunner] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        local = gitrun.LocalRunner()
        self.runner_for: Callable[[str], gitrun.CommandRunner] = runner_for or (lambda _: local)
        self.clock = clock
        # one snapshot or turn diff at a time per session: a summary being delivered waits
        # for the snapshot of its turn being taken
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    async def turn_ended(self, session_id: str, turn: int) -> None:
        """Keep the session's diff as the snapshot of `turn`'s end (nothing outside git)."""
        async with self._lock(session_id):
            await self._snapshot(session_id, turn)

    async def _snapshot(self, session_id: str, turn: int) -> bytes | None:
        changes = await self.diff(session_id)
        if changes.failed:
            log.warning("session %s: no snapshot of turn %d: %s", session_id, turn, changes.note)
            return None
        if changes.note and not changes.raw and changes.note.startswith("not a git"):
            return None
        await self.store.save_snapshot(session_id, turn, changes.raw, now=self.clock())
        return changes.raw

    async def turn_diff(self, session_id: str, turn: int | None = None) -> TurnChanges:
        """Turn `turn`'s own change (the latest turn's when None), and the whole diff at its
        end. A turn whose end was not kept is the whole diff now when it is the latest."""
        async with self._lock(session_id):
            session = await self.store.session(session_id)
            turn = turn or max(session.turns, 1)
            extra = await self.store.session_extra(session_id)
            if not extra.get("repo_root"):
                none = Changes(b"", summarize_diff(b""), "not a git repository: no diff")
                return TurnChanges(turn, none, none)
            after = await self.store.snapshot(session_id, turn)
            if after is None and turn >= session.turns:  # the latest: its end is now
                now = await self.diff(session_id)
                if now.failed:
                    return TurnChanges(turn, now, now)
                await self.store.save_snapshot(session_id, turn, now.raw, now=self.clock())
                after = now.raw
            if after is None:
                if turn > session.turns:
                    why = f"{session_id} has had {session.turns} turn(s) so far"
                else:
                    why = f"the end of turn {turn} was not recorded"
                none = Changes(b"", summarize_diff(b""), why, failed=True)
                return TurnChanges(turn, none, none)
            total = Changes(after, summarize_diff(after), _dirty_note(extra))
            before = await self.store.snapshot(session_id, turn - 1)
            if before is None and turn == 1 and not extra.get("start_dirty"):
                before = b""  # a clean tree at the start: turn 1 is all of it
            if before is None:
                note = (f"the end of turn {turn - 1} was not recorded: this is every change "
                        "since the session started")
                return TurnChanges(turn, Changes(after, total.summary, note), total)
            if not before.strip():
                return TurnChanges(turn, Changes(after, total.summary), total)
            try:
                raw = await gitdiff.diff_between(self.runner_for(session.host),
                                                 extra["repo_root"], extra.get("start_commit"),
                                                 before, after)
            except gitrun.GitError as e:
                failed = Changes(b"", summarize_diff(b""),
                                 f"git could not diff the turn: {e.message}", failed=True)
                return TurnChanges(turn, failed, total)
            return TurnChanges(turn, Changes(raw, summarize_diff(raw)), total)

    async def record_start(self, session_id: str, path: str, *, worktree: bool,
                           host: str = "local") -> str:
        """Record the repository state for a new session; returns the directory the agent
        should run in (a fresh worktree when asked for one)."""
        runner = self.runner_for(host)
        state = await gitstate.inspect_repo(runner, path)
        if isinstance(state, gitstate.NotARepo):
            await self.store.update_session(session_id, repo_root=None)
            return path
        if worktree:
            made = await worktrees.create_worktree(runner, state.root, session_id)
            inside = posixpath.relpath(path, state.root)
            cwd = posixpath.normpath(posixpath.join(made.path, inside))
            await self.store.update_session(
                session_id, repo_root=made.path, start_commit=made.base, branch=made.branch,
                start_branch=made.start_branch, worktree=made.path, start_dirty=0,
            )
            return cwd
        await self.store.update_session(
            session_id, repo_root=state.root, start_commit=state.head, branch=state.branch,
            start_dirty=int(state.dirty),
        )
        if state.dirty:  # what was there before is no turn's change: the end of "turn 0"
            await self.turn_ended(session_id, 0)
        return path

    async def diff(self, session_id: str) -> Changes:
        extra = await self.store.session_extra(session_id)
        root = extra.get("repo_root")
        if not root:
            return Changes(b"", summarize_diff(b""), "not a git repository: no diff")
        session = await self.store.session(session_id)
        try:
            runner = self.runner_for(session.host)
            raw = await gitdiff.diff_since(runner, root, extra.get("start_commit"))
        except gitrun.GitError as e:
            return Changes(b"", summarize_diff(b""), f"git could not diff: {e.message}",
                           failed=True)
        return Changes(raw, summarize_diff(raw), _dirty_note(extra))

    async def remove_worktree(self, session_id: str, *, force: bool = False) -> str | None:
        """Remove the session's worktree if it has one; a sentence saying what happened."""
        extra = await self.store.session_extra(session_id)
        path = extra.get("worktree")
        if not path:
            return None
        session = await self.store.session(session_id)
        runner = self.runner_for(session.host)
        root = await worktrees.main_worktree(runner, path)
        if root is None:
            return f"kept the worktree {path}: its repository was not found"
        result = await worktrees.remove_worktree(runner, root, path, session.branch or "",
                                           into=extra.get("start_branch"), force=force)
        if result.removed:
            await self.store.update_session(session_id, worktree=None)
            return f"removed the worktree {path}" + (f" ({result.note})" if result.note else "")
        return f"kept the worktree {path}: {result.reason}"


def _dirty_note(extra: dict[str, Any]) -> str | None:
    if extra.get("start_dirty"):
        return "the tree had uncommitted changes when the session started; they are included"
    return None
