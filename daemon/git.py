"""Git inspection: repository state, the diff of a session, and per-session worktrees.

Theory of operation: every command goes through a `CommandRunner`, so the same code serves a
local repository (`LocalRunner`) and, later, one on an SSH host. Nothing here trusts the
user's git configuration to give a stable shape: every call pins the options that change
the output (`-c core.quotepath=off`, prefixes, colour, external diff and textconv off, …).

`diff_since()` must leave the user's repository exactly as it was, index included. It works
in a scratch directory on the runner's host: a copy of the user's index (with its mtime, so
git still re-reads files changed in the second the index was written; or, without an index,
the base tree) becomes a temporary index (`GIT_INDEX_FILE`), `git add -A` brings the working
tree into it (untracked files included, ignored ones not), and `git diff --cached <base>`
gives the patch. New blobs go to a temporary object directory (`GIT_OBJECT_DIRECTORY`) with
the repository's objects as an alternate, so not one file under `.git` is written. The
scratch directory is removed afterwards, whatever happens.

Worktrees (`[[projects]] worktree = true`): `create_worktree()` puts each session in its own
worktree on branch `agent/<session id>`, by default in `<parent of root>/.agent-bridge-
worktrees/<repo>-<session id>` (next to the repository, so tools that resolve the project
by path never see it inside the repository, and outside `.git`, which agents refuse to
edit). `remove_worktree()` refuses when the worktree has uncommitted changes or its branch
has commits not merged into the start branch, unless forced; even forced, it never deletes
a branch with unmerged commits: that branch is kept and the result says so.

Errors (all under `DaemonError`, see `daemon/errors.py`):

    GitError                 code "git"
    ├── CommandNotFound      the program (git) is not installed where the runner runs it
    ├── WorkdirNotFound      the working directory does not exist
    ├── CommandTimeout       the command ran past its deadline; it was killed with its group
    └── GitFailed            git exited non-zero (argv, returncode, stderr attached)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
import re
import shutil
import signal
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from daemon.errors import DaemonError

__all__ = [
    "DIFF_FLAGS",
    "GIT_ENV_TO_DROP",
    "GIT_PINS",
    "CommandNotFound",
    "CommandResult",
    "CommandRunner",
    "CommandTimeout",
    "GitError",
    "GitFailed",
    "LocalRunner",
    "NotARepo",
    "RemoveResult",
    "RepoState",
    "ScratchSpace",
    "WorkdirNotFound",
    "Worktree",
    "create_worktree",
    "default_worktree_path",
    "diff_since",
    "inspect_repo",
    "main_worktree",
    "numstat_since",
    "remove_worktree",
]

log = logging.getLogger(__name__)

# --- errors ----------------------------------------------------------------------------------


class GitError(DaemonError):
    code = "git"


class CommandNotFound(GitError):
    def __init__(self, program: str) -> None:
        self.program = program
        super().__init__(f"{program} is not installed (not found on PATH)")


class WorkdirNotFound(GitError):
    def __init__(self, cwd: str) -> None:
        self.cwd = cwd
        super().__init__(f"no such directory: {cwd}")


class CommandTimeout(GitError):
    def __init__(self, argv: Sequence[str], timeout: float) -> None:
        self.argv = tuple(argv)
        self.timeout = timeout
        super().__init__(f"{' '.join(argv[:3])} … took longer than {timeout:g}s and was killed")


class GitFailed(GitError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: bytes) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr
        detail = _first_line(stderr) or f"exit status {returncode}"
        super().__init__(f"{_describe(argv)} failed: {detail}")


# --- the runner port -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandResult:
    returncode: int
    stdout: bytes
    stderr: bytes


class CommandRunner(Protocol):
    """Runs a program on some host and returns its output. Raises `CommandNotFound`,
    `WorkdirNotFound` and `CommandTimeout`; a non-zero exit is a result, not an error."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> CommandResult: ...


@runtime_checkable
class ScratchSpace(Protocol):
    """Optional runner extension: temporary directories on the runner's host. Runners
    without it get `mktemp -d`, `cp -p` and `rm -rf` run through `run()` (POSIX hosts).

    `copy_file()` must keep the source's modification time: the copy is a git index, and
    git tells a racily clean entry (a file changed in the second the index was written,
    size unchanged) by comparing the entry's mtime with the index file's own. A copy with a
    later mtime makes such a change invisible to `git add`."""

    async def make_temp_dir(self, prefix: str) -> str: ...

    async def copy_file(self, source: str, target: str) -> bool:
        """Copy `source` to `target` with its modification time; False if impossible."""
        ...

    async def remove_tree(self, path: str) -> None: ...


# Inherited variables that would point git at another repository, index or object store,
# or change the diff's shape. The runner drops them; each call sets what it needs.
GIT_ENV_TO_DROP: frozenset[str] = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
        "GIT_EXTERNAL_DIFF",
        "GIT_DIFF_OPTS",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
    }
)


class LocalRunner:
    """Runs commands on this machine with `asyncio.create_subprocess_exec`.

    `env` is merged over `os.environ` (minus `drop_env`). Each command runs in its own
    process group; on timeout or cancellation the whole group is killed and reaped, so
    nothing outlives the call.
    """

    def __init__(self, *, drop_env: Collection[str] = GIT_ENV_TO_DROP) -> None:
        self._drop = frozenset(drop_env)

    async def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> CommandResult:
        merged = {k: v for k, v in os.environ.items() if k not in self._drop}
        if env:
            merged.update(env)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=merged,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            if e.filename == cwd:
                raise WorkdirNotFound(cwd) from e
            if isinstance(e, FileNotFoundError | PermissionError):
                raise CommandNotFound(argv[0]) from e
            raise GitError(f"cannot run {argv[0]}: {e}") from e
        try:
            async with asyncio.timeout(timeout):
                stdout, stderr = await proc.communicate()
        except TimeoutError:
            await _kill_group(proc)
            raise CommandTimeout(argv, timeout) from None
        except BaseException:
            await _kill_group(proc)  # cancelled: leave nothing behind, then propagate
            raise
        assert proc.returncode is not None  # communicate() waits for the exit
        return CommandResult(proc.returncode, stdout, stderr)

    async def make_temp_dir(self, prefix: str) -> str:
        return await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix)

    async def copy_file(self, source: str, target: str) -> bool:
        try:
            await asyncio.to_thread(_copy_keeping_mtime, source, target)
        except OSError:
            return False
        return True

    async def remove_tree(self, path: str) -> None:
        await asyncio.to_thread(shutil.rmtree, path, True)


def _copy_keeping_mtime(source: str, target: str) -> None:
    # The times are read before the content: if the file is replaced in between, the copy
    # looks older than its content, which only makes git re-read more files (never fewer).
    before = Path(source).stat()
    shutil.copyfile(source, target)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


class _ShellScratch:
    """Scratch directories through plain POSIX commands, for runners without `ScratchSpace`."""

    def __init__(self, runner: CommandRunner, cwd: str) -> None:
        self._runner = runner
        self._cwd = cwd

    async def make_temp_dir(self, prefix: str) -> str:
        # Plain `mktemp -d` is the one spelling GNU and BSD agree on; `prefix` is cosmetic.
        result = await self._runner.run(["mktemp", "-d"], cwd=self._cwd)
        if result.returncode != 0:
            raise GitFailed(["mktemp", "-d"], result.returncode, result.stderr)
        return _text(result.stdout)

    async def copy_file(self, source: str, target: str) -> bool:
        # -p keeps the modification time (see `ScratchSpace`).
        result = await self._runner.run(["cp", "-p", "--", source, target], cwd=self._cwd)
        return result.returncode == 0

    async def remove_tree(self, path: str) -> None:
        await self._runner.run(["rm", "-rf", "--", path], cwd=self._cwd)


def _scratch(runner: CommandRunner, cwd: str) -> ScratchSpace:
    return runner if isinstance(runner, ScratchSpace) else _ShellScratch(runner, cwd)


# --- git calls -------------------------------------------------------------------------------

# Configuration the user may have set that would change what we read or write.
GIT_PINS: tuple[str, ...] = tuple(
    arg
    for setting in (
        "core.quotepath=off",
        "core.fsmonitor=false",
        "core.splitIndex=false",
        "core.pager=cat",
        "color.ui=never",
        "color.diff=never",
        "color.status=never",
        "diff.noprefix=false",
        "diff.mnemonicPrefix=false",
        "diff.relative=false",
        "diff.renames=true",
        "diff.suppressBlankEmpty=false",
        "diff.ignoreSubmodules=none",
        "gc.auto=0",
        "maintenance.auto=false",
        "advice.addEmbeddedRepo=false",
        "status.showUntrackedFiles=normal",
    )
    for arg in ("-c", setting)
)

# The shape of every diff we produce: with `_PATCH_FLAGS` (`diff_since()` only; they would
# turn `--numstat` into a patch too) it applies with `git apply` and parses with unidiff.
DIFF_FLAGS: tuple[str, ...] = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--find-renames",
    "--full-index",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--no-relative",
    "--diff-algorithm=myers",
    "--indent-heuristic",
    "--ignore-submodules=none",
    "--submodule=short",
)

# Flags that imply `--patch`, so only for the patch itself.
_PATCH_FLAGS = ("--patch", "--binary", "--unified=3", "--inter-hunk-context=0")

_GIT_ENV: dict[str, str] = {
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",  # `git status` must not rewrite the user's index
    "LC_ALL": "C",
}

DIFF_TIMEOUT = 120.0


async def _git(
    runner: CommandRunner,
    cwd: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> CommandResult:
    argv = ["git", "--no-pager", *GIT_PINS, *args]
    return await runner.run(argv, cwd=cwd, env={**_GIT_ENV, **(env or {})}, timeout=timeout)


async def _git_ok(
    runner: CommandRunner,
    cwd: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> bytes:
    result = await _git(runner, cwd, args, env=env, timeout=timeout)
    if result.returncode != 0:
        raise GitFailed(["git", *args], result.returncode, result.stderr)
    return result.stdout


def _first_line(data: bytes) -> str:
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _describe(argv: Sequence[str]) -> str:
    words = [a for a in argv if not a.startswith("-")][:2]
    return " ".join(words) or "command"


def _text(data: bytes) -> str:
    """A one-value answer (a path, a sha, a branch): git ends it with one newline, and a path
    may itself end in (or hold) newlines, so exactly one is taken off, nothing else."""
    return os.fsdecode(data.removesuffix(b"\n"))


# --- repository state ------------------------------------------------------------------------


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
        top = await _git(runner, path, ["rev-parse", "--show-toplevel"])
    except CommandNotFound:
        return NotARepo(path=path, reason="git is not installed")
    except WorkdirNotFound:
        return NotARepo(path=path, reason="no such directory")
    if top.returncode != 0:
        reason = _first_line(top.stderr).removeprefix("fatal: ")
        return NotARepo(path=path, reason=reason or "not a git repository")
    root = _text(top.stdout)
    return RepoState(
        root=root,
        branch=await _current_branch(runner, root),
        head=await _head(runner, root),
        dirty=await _is_dirty(runner, root),
    )


async def _head(runner: CommandRunner, cwd: str) -> str | None:
    result = await _git(runner, cwd, ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
    return _text(result.stdout) if result.returncode == 0 else None


async def _current_branch(runner: CommandRunner, cwd: str) -> str | None:
    result = await _git(runner, cwd, ["symbolic-ref", "--quiet", "--short", "HEAD"])
    return _text(result.stdout) if result.returncode == 0 else None


async def _is_dirty(runner: CommandRunner, cwd: str) -> bool:
    out = await _git_ok(
        runner,
        cwd,
        ["status", "--porcelain=v1", "-z", "--untracked-files=normal", "--ignore-submodules=none"],
    )
    return bool(out)


# --- diffs -----------------------------------------------------------------------------------


async def diff_since(
    runner: CommandRunner, root: str, base: str | None, *, timeout: float = DIFF_TIMEOUT
) -> bytes:
    """The working tree against `base` (HEAD at session start; None: the empty tree) as a
    binary git patch, untracked files included, ignored files not. Applies with
    `git apply --binary` onto a checkout of `base`. Touches nothing in the repository."""
    return await _diff_working_tree(runner, root, base, _PATCH_FLAGS, timeout=timeout)


async def numstat_since(
    runner: CommandRunner, root: str, base: str | None, *, timeout: float = DIFF_TIMEOUT
) -> list[tuple[int | None, int | None, str]]:
    """`(added, removed, path)` per file for the same change as `diff_since()`; counts are
    None for binary files, `path` is the new path of a rename."""
    out = await _diff_working_tree(runner, root, base, ("--numstat", "-z"), timeout=timeout)
    return _parse_numstat_z(out)


def _parse_numstat_z(out: bytes) -> list[tuple[int | None, int | None, str]]:
    rows: list[tuple[int | None, int | None, str]] = []
    fields = out.split(b"\0")
    i = 0
    while i < len(fields):
        record = fields[i]
        i += 1
        if not record.strip(b"\n"):
            continue
        added, removed, path = record.lstrip(b"\n").split(b"\t", 2)
        if not path:  # a rename: the old and the new path follow as their own fields
            path = fields[i + 1] if i + 1 < len(fields) else b""
            i += 2
        rows.append((_count(added), _count(removed), os.fsdecode(path)))
    return rows


def _count(field: bytes) -> int | None:
    return None if field == b"-" else int(field)


async def _diff_working_tree(
    runner: CommandRunner, root: str, base: str | None, output: Sequence[str], *, timeout: float
) -> bytes:
    # One path per call: rev-parse has no -z, and a path may hold a newline.
    index_path = await _git_path(runner, root, "index")
    objects_dir = await _git_path(runner, root, "objects")
    against = base or await _empty_tree(runner, root)
    scratch = _scratch(runner, root)
    tmp = await scratch.make_temp_dir("agent-bridge-diff-")
    try:
        env = {
            "GIT_INDEX_FILE": posixpath.join(tmp, "index"),
            # The scratch directory itself holds the new objects (git wants the object
            # directory to exist; the index file beside the fan-out dirs is ignored).
            "GIT_OBJECT_DIRECTORY": tmp,
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects_dir,
        }
        if not await scratch.copy_file(index_path, env["GIT_INDEX_FILE"]):
            # No index yet (fresh repository): start from the last commit, if any, so that
            # tracked files that match .gitignore still count.
            seed = base or await _head(runner, root)
            await _git_ok(runner, root, ["read-tree", seed or "--empty"], env=env)
        added = await _git(
            runner, root, ["add", "--all", "--ignore-errors"], env=env, timeout=timeout
        )
        if added.returncode != 0:
            log.warning("git add in %s: %s", root, _first_line(added.stderr))
        return await _git_ok(
            runner,
            root,
            ["diff", "--cached", *DIFF_FLAGS, *output, against, "--"],
            env=env,
            timeout=timeout,
        )
    finally:
        await scratch.remove_tree(tmp)


async def _git_path(runner: CommandRunner, root: str, name: str) -> str:
    return _text(
        await _git_ok(runner, root, ["rev-parse", "--path-format=absolute", "--git-path", name])
    )


async def _empty_tree(runner: CommandRunner, cwd: str) -> str:
    """The empty tree's id in this repository's hash (sha1 or sha256)."""
    return _text(await _git_ok(runner, cwd, ["hash-object", "-t", "tree", "/dev/null"]))


# --- worktrees -------------------------------------------------------------------------------

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
    base = await _head(runner, root)
    if base is None:
        raise GitError(f"{root} has no commits yet: a worktree needs one to start from")
    start_branch = await _current_branch(runner, root)
    await _git_ok(runner, root, ["worktree", "add", "-b", branch, "--", path, base])
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

    dirty = False if missing else await _is_dirty(runner, canonical)
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
        await _git_ok(runner, root, ["worktree", "prune"])
    else:
        flags = ["--force"] if force else []
        await _git_ok(runner, root, ["worktree", "remove", *flags, "--", canonical])
    deleted = False
    note = None
    if unmerged:
        note = f"kept branch {branch}: {unmerged} unmerged commit{'s' if unmerged != 1 else ''}"
    elif await _branch_exists(runner, root, branch):
        # Merged (checked above against `into`), so -D loses nothing; -d would check
        # against the current HEAD instead, which may be another branch.
        await _git_ok(runner, root, ["branch", "-D", "--", branch])
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
    out = await _git_ok(runner, root, ["worktree", "list", "--porcelain", "-z"])
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
        result = await _git(runner, path, ["rev-parse", "--show-toplevel"])
    except WorkdirNotFound:
        return None
    return _text(result.stdout) if result.returncode == 0 else None


async def _branch_exists(runner: CommandRunner, root: str, branch: str) -> bool:
    result = await _git(
        runner, root, ["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"]
    )
    return result.returncode == 0


async def _unmerged(
    runner: CommandRunner, root: str, branch: str, into: str
) -> tuple[int, tuple[str, ...]]:
    if not await _branch_exists(runner, root, branch):
        return 0, ()
    span = f"{into}..refs/heads/{branch}"
    count = int(_text(await _git_ok(runner, root, ["rev-list", "--count", span, "--"])) or 0)
    if not count:
        return 0, ()
    out = await _git_ok(
        runner,
        root,
        ["log", "-z", "--no-decorate", "--format=%h %s", "--max-count=10", span, "--"],
    )
    return count, tuple(os.fsdecode(entry) for entry in out.split(b"\0") if entry)
