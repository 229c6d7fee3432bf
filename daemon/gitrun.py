"""Running git: the command runner port, errors, and every git call with pinned settings.

Theory of operation: every command goes through a `CommandRunner`, so the same code serves a
local repository (`LocalRunner`) and one on an SSH host (`daemon/ssh.py`). Nothing here
trusts the user's git configuration to give a stable shape: every call (`git()`,
`git_stdout()`) pins the options that change the output (`-c core.quotepath=off`, colour,
pager, fsmonitor, …) and the environment (`LC_ALL=C`, no prompts, no optional locks).

The diff (`daemon/gitdiff.py`), the repository state (`daemon/gitstate.py`) and the
worktrees (`daemon/worktrees.py`) are built on these calls.

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
import os
import shutil
import signal
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from daemon.errors import DaemonError

__all__ = [
    "GIT_ENV_TO_DROP",
    "GIT_PINS",
    "CommandNotFound",
    "CommandResult",
    "CommandRunner",
    "CommandTimeout",
    "GitError",
    "GitFailed",
    "LocalRunner",
    "ScratchSpace",
    "WorkdirNotFound",
    "first_line",
    "git",
    "git_stdout",
    "one_value",
    "scratch_space",
]

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
        detail = first_line(stderr) or f"exit status {returncode}"
        super().__init__(f"{_describe(argv)} failed: {detail}")


# --- the runner port -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandResult:
    returncode: int
    stdout: bytes
    stderr: bytes


class CommandRunner(Protocol):
    """Runs a program on some host and returns its output. Raises `CommandNotFound`,
    `WorkdirNotFound` and `CommandTimeout`; a non-zero exit is a result, not an error.
    `input` is written to the program's stdin (else it reads nothing)."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        input: bytes | None = None,
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


@runtime_checkable
class FileDrop(Protocol):
    """Runner extension: write a file on the runner's host (files people send in a thread,
    `daemon/uploads.py`). The directory exists; an existing file is replaced."""

    async def write_file(self, path: str, data: bytes) -> None: ...


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
        input: bytes | None = None,
    ) -> CommandResult:
        merged = {k: v for k, v in os.environ.items() if k not in self._drop}
        if env:
            merged.update(env)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=merged,
                stdin=asyncio.subprocess.DEVNULL if input is None else asyncio.subprocess.PIPE,
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
                stdout, stderr = await proc.communicate(input)
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

    async def write_file(self, path: str, data: bytes) -> None:
        await asyncio.to_thread(Path(path).write_bytes, data)


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
        return one_value(result.stdout)

    async def copy_file(self, source: str, target: str) -> bool:
        # -p keeps the modification time (see `ScratchSpace`).
        result = await self._runner.run(["cp", "-p", "--", source, target], cwd=self._cwd)
        return result.returncode == 0

    async def remove_tree(self, path: str) -> None:
        await self._runner.run(["rm", "-rf", "--", path], cwd=self._cwd)


def scratch_space(runner: CommandRunner, cwd: str) -> ScratchSpace:
    """The runner itself when it offers `ScratchSpace`, else POSIX commands run through it."""
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

_GIT_ENV: dict[str, str] = {
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",  # `git status` must not rewrite the user's index
    "LC_ALL": "C",
}


async def git(
    runner: CommandRunner,
    cwd: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    input: bytes | None = None,
) -> CommandResult:
    """`git <args>` in `cwd` with the pinned settings; a non-zero exit is a result."""
    argv = ["git", "--no-pager", *GIT_PINS, *args]
    merged = {**_GIT_ENV, **(env or {})}
    if input is None:
        return await runner.run(argv, cwd=cwd, env=merged, timeout=timeout)
    return await runner.run(argv, cwd=cwd, env=merged, timeout=timeout, input=input)


async def git_stdout(
    runner: CommandRunner,
    cwd: str,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    input: bytes | None = None,
) -> bytes:
    """The output of a `git()` call that must succeed; raises `GitFailed` otherwise."""
    result = await git(runner, cwd, args, env=env, timeout=timeout, input=input)
    if result.returncode != 0:
        raise GitFailed(["git", *args], result.returncode, result.stderr)
    return result.stdout


def first_line(data: bytes) -> str:
    """The first non-blank line of `data` (git's stderr, say), stripped."""
    for line in data.decode("utf-8", "replace").splitlines():
        if line.strip():
            return line.strip()
    return ""


def _describe(argv: Sequence[str]) -> str:
    words = [a for a in argv if not a.startswith("-")][:2]
    return " ".join(words) or "command"


def one_value(data: bytes) -> str:
    """A one-value answer (a path, a sha, a branch): git ends it with one newline, and a path
    may itself end in (or hold) newlines, so exactly one is taken off, nothing else."""
    return os.fsdecode(data.removesuffix(b"\n"))
