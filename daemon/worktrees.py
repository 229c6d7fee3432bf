"""Per-session worktrees (`[[projects]] worktree = true`): creating, listing and removing them.

`create_worktree()` puts each session in its own worktree on branch `agent/<session id>`, by
default in `<parent of root>/.agent-bridge-worktrees/<repo>-<session id>` (next to the
repository, so tools that resolve the project by path never see it inside the repository,
and outside `.git`, which agents refuse to edit). `remove_worktree()` refuses when the
worktree has uncommitted changes or its branch has commits not merged into the start
branch, unless forced; even forced, it never deletes a branch with unmerged commits: that
branch is kept and the result says so.

Every git call goes through `daemon/gitrun.py`; errors are its `GitError` tree.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass

from daemon.gitrun import (
    CommandRunner,
    GitError,
    GitFailed,
    WorkdirNotFound,
    git,
    git_stdout,
    one_value,
)
from daemon.gitstate import current_branch, head_commit, is_dirty

__all__ = [
    "WORKTREES_DIR",
    "RemoveResult",
    "Worktree",
    "create_worktree",
    "default_worktree_path",
    "main_worktree",
    "remove_worktree",
]

WORKTREES_DIR = ".agent-bridge-worktrees"


@dataclass(frozen=True, slots=True, kw_only=True)
class Worktree:
    """A session's worktree: `branch` (`agent/<session id>`) starts at `base`, taken from
    `start_branch` (None when the repository's HEAD was detached)."""

    path: str
    branch: str
    start_branch: str | None
    base: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveResult:
    """What `remove_worktree()` did. `reason` says why it refused (`removed` is False);
    `note` says what it kept when it did remove (a branch with unmerged commits)."""

    removed: bool
    reason: str | None = None
    note: str | None = None
    dirty: bool = False
    unmerged: int = 0
    unmerged_log: tuple[str, ...] = ()
    branch_deleted: bool = False


def _safe_id(session_id: str) -> str:
    # Letters, digits, `_` and `-` only: safe in a path and in a ref (no `..`, no `.lock`).
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", session_id).strip("-")
    if not safe:
        raise GitError(f"session id {session_id!r} cannot name a branch")
    return safe


def default_worktree_path(root: str, session_id: str) -> str:
    """`<parent of root>/.agent-bridge-worktrees/<repo>-<session id>`."""
    root = root.rstrip("/") or "/"
    parent, repo = posixpath.split(root)
    return posixpath.join(parent, WORKTREES_DIR, f"{repo}-{_safe_id(session_id)}")


async def create_worktree(
    runner: CommandRunner, root: str, session_id: str, *, base_dir: str | None = None
) -> Worktree:
    """A new worktree at HEAD on a new branch `agent/<session id>`, in `base_dir` when
    given (as `<base_dir>/<repo>-<session id>`), else at `default_worktree_path()`."""
    sid = _safe_id(session_id)
    branch = f"agent/{sid}"
    if base_dir is None:
        path = default_worktree_path(root, sid)
    else:
        path = posixpath.join(base_dir, f"{posixpath.basename(root.rstrip('/'))}-{sid}")
    base = await head_commit(runner, root)
    if base is None:
        raise GitError(f"{root} has no commits yet: a worktree needs one to start from")
    start_branch = await current_branch(runner, root)
    await git_stdout(runner, root, ["worktree", "add", "-b", branch, "--", path, base])
    return Worktree(path=path, branch=branch, start_branch=start_branch, base=base)


async def remove_worktree(
    runner: CommandRunner,
    root: str,
    path: str,
    branch: str,
    *,
    into: str | None = None,
    force: bool = False,
) -> RemoveResult:
    """Remove the worktree at `path` and its `branch`.

    Refuses (returns `removed=False` and a reason) when the worktree has uncommitted or
    untracked changes, or `branch` has commits not merged into `into` (the start branch;
    default: HEAD of the main worktree). `force` removes it anyway; the branch is then kept
    if it holds unmerged commits (`note` says so), so commits are never lost silently.
    """
    listed = await _worktree_paths(runner, root)
    canonical = await _toplevel(runner, path)
    missing = canonical is None
    if canonical is None or canonical not in listed:
        if path not in listed:
            return RemoveResult(removed=False, reason=f"{path} is not a worktree of {root}")
        canonical = path
    if canonical == listed[0]:
        return RemoveResult(removed=False, reason="refusing to remove the main worktree")

    dirty = False if missing else await is_dirty(runner, canonical)
    unmerged, log_lines = await _unmerged(runner, root, branch, into or "HEAD")
    problems = []
    if dirty:
        problems.append("the worktree has uncommitted changes")
    if unmerged:
        problems.append(
            f"{branch} has {unmerged} commit{'s' if unmerged != 1 else ''} "
            f"not merged into {into or 'HEAD'}"
        )
    if problems and not force:
        return RemoveResult(
            removed=False,
            reason="; ".join(problems),
            dirty=dirty,
            unmerged=unmerged,
            unmerged_log=log_lines,
        )
    if missing:  # its directory is already gone: forget the registration
        await git_stdout(runner, root, ["worktree", "prune"])
    else:
        flags = ["--force"] if force else []
        await git_stdout(runner, root, ["worktree", "remove", *flags, "--", canonical])
    deleted = False
    note = None
    if unmerged:
        note = f"kept branch {branch}: {unmerged} unmerged commit{'s' if unmerged != 1 else ''}"
    elif await _branch_exists(runner, root, branch):
        # Merged (checked above against `into`), so -D loses nothing; -d would check
        # against the current HEAD instead, which may be another branch.
        await git_stdout(runner, root, ["branch", "-D", "--", branch])
        deleted = True
    return RemoveResult(
        removed=True,
        note=note,
        dirty=dirty,
        unmerged=unmerged,
        unmerged_log=log_lines,
        branch_deleted=deleted,
    )


async def _worktree_paths(runner: CommandRunner, root: str) -> list[str]:
    """The worktrees of `root`'s repository, the main one first. NUL-separated (`-z`): a
    path may hold a newline, which would start a record of its own."""
    out = await git_stdout(runner, root, ["worktree", "list", "--porcelain", "-z"])
    return [
        os.fsdecode(field[len(b"worktree ") :])
        for field in out.split(b"\0")
        if field.startswith(b"worktree ")
    ]


async def main_worktree(runner: CommandRunner, path: str) -> str | None:
    """The main worktree of the repository that `path` (any of its worktrees) belongs to;
    None when `path` is gone or in no repository."""
    try:
        paths = await _worktree_paths(runner, path)
    except (WorkdirNotFound, GitFailed):
        return None
    return paths[0] if paths else None


async def _toplevel(runner: CommandRunner, path: str) -> str | None:
    try:
        result = await git(runner, path, ["rev-parse", "--show-toplevel"])
    except WorkdirNotFound:
        return None
    return one_value(result.stdout) if result.returncode == 0 else None


async def _branch_exists(runner: CommandRunner, root: str, branch: str) -> bool:
    result = await git(
        runner, root, ["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"]
    )
    return result.returncode == 0


async def _unmerged(
    runner: CommandRunner, root: str, branch: str, into: str
) -> tuple[int, tuple[str, ...]]:
    if not await _branch_exists(runner, root, branch):
        return 0, ()
    span = f"{into}..refs/heads/{branch}"
    count = int(one_value(await git_stdout(runner, root, ["rev-list", "--count", span, "--"])) or 0)
    if not count:
        return 0, ()
    out = await git_stdout(
        runner,
        root,
        ["log", "-z", "--no-decorate", "--format=%h %s", "--max-count=10", span, "--"],
    )
    return count, tuple(os.fsdecode(entry) for entry in out.split(b"\0") if entry)
