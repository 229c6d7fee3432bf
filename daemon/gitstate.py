"""What state a repository is in: its root, branch, HEAD and whether its tree is dirty.

Read through `daemon/gitrun.py` (pinned settings, `GIT_OPTIONAL_LOCKS=0`, so `git status`
never rewrites the user's index); used when a session starts, by the diff and by worktrees.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.gitrun import (
    CommandNotFound,
    CommandRunner,
    WorkdirNotFound,
    first_line,
    git,
    git_stdout,
    one_value,
)

__all__ = ["NotARepo", "RepoState", "current_branch", "head_commit", "inspect_repo", "is_dirty"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoState:
    """A git working tree. `branch` is None when HEAD is detached; `head` (a full sha) is
    None in a repository without commits; `dirty` counts untracked files too."""

    root: str
    branch: str | None
    head: str | None
    dirty: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class NotARepo:
    path: str
    reason: str


async def inspect_repo(runner: CommandRunner, path: str) -> RepoState | NotARepo:
    """The state of the repository at `path`; `NotARepo` when there is none (or no git)."""
    try:
        top = await git(runner, path, ["rev-parse", "--show-toplevel"])
    except CommandNotFound:
        return NotARepo(path=path, reason="git is not installed")
    except WorkdirNotFound:
        return NotARepo(path=path, reason="no such directory")
    if top.returncode != 0:
        reason = first_line(top.stderr).removeprefix("fatal: ")
        return NotARepo(path=path, reason=reason or "not a git repository")
    root = one_value(top.stdout)
    return RepoState(
        root=root,
        branch=await current_branch(runner, root),
        head=await head_commit(runner, root),
        dirty=await is_dirty(runner, root),
    )


async def head_commit(runner: CommandRunner, cwd: str) -> str | None:
    """The full sha of HEAD; None in a repository without commits."""
    result = await git(runner, cwd, ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
    return one_value(result.stdout) if result.returncode == 0 else None


async def current_branch(runner: CommandRunner, cwd: str) -> str | None:
    """The branch HEAD is on; None when HEAD is detached."""
    result = await git(runner, cwd, ["symbolic-ref", "--quiet", "--short", "HEAD"])
    return one_value(result.stdout) if result.returncode == 0 else None


async def is_dirty(runner: CommandRunner, cwd: str) -> bool:
    """Whether the working tree has changes, untracked files included."""
    out = await git_stdout(
        runner,
        cwd,
        ["status", "--porcelain=v1", "-z", "--untracked-files=normal", "--ignore-submodules=none"],
    )
    return bool(out)
