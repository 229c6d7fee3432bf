"""What a session changed: git state at its start, its diff since then, its worktree.

Glue between the store and git (`daemon/gitstate.py`, `daemon/gitdiff.py`,
`daemon/worktrees.py`): the repository root, start commit, branch and whether the tree was
dirty are recorded when a session starts; a turn's diff is always the working tree
(untracked files included) against that start commit.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from bridge.diffs import DiffSummary, summarize_diff
from daemon import gitdiff, gitrun, gitstate, worktrees
from daemon.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Changes:
    raw: bytes  # the patch as git wrote it (applies with `git apply` on the start commit)
    summary: DiffSummary
    note: str | None = None  # why there is no diff, or what to keep in mind about it


class ChangeTracker:
    def __init__(self, store: Store,
                 runner_for: Callable[[str], gitrun.CommandRunner] | None = None) -> None:
        self.store = store
        local = gitrun.LocalRunner()
        self.runner_for: Callable[[str], gitrun.CommandRunner] = runner_for or (lambda _: local)

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
            return Changes(b"", summarize_diff(b""), f"git could not diff: {e.message}")
        note = None
        if extra.get("start_dirty"):
            note = "the tree had uncommitted changes when the session started; they are included"
        return Changes(raw, summarize_diff(raw), note)

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
