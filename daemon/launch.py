"""Launchers: start an agent process and give back its stdio as an `AgentProcess`.

The local launcher puts each agent in its own process group, so stopping a session also
stops whatever the agent started. `shutdown()` is the bounded close every session ends
with: stdin EOF → wait → SIGTERM → wait → SIGKILL, then the group is swept.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from daemon.errors import LaunchError

READ_CHUNK = 256 * 1024
STDERR_LINES = 40  # the tail kept of an agent's stderr
STDERR_LINE_MAX = 2000  # characters kept of one stderr line


class StderrTail:
    """The last lines of an agent's stderr, fed in chunks of any size.

    Stderr is drained in chunks, never by line: one line longer than a reader's limit
    would stop the draining, and the agent would then block in a write to a full pipe.
    Memory stays bounded however long a line is: only its first `STDERR_LINE_MAX`
    characters (and a note of how long it was) are kept.
    """

    def __init__(self, lines: int = STDERR_LINES, line_max: int = STDERR_LINE_MAX) -> None:
        self.line_max = line_max
        self._lines: deque[str] = deque(maxlen=lines)
        self._partial = bytearray()  # the start of the current line (bounded)
        self._dropped = 0  # bytes of the current line beyond what is kept

    def feed(self, chunk: bytes) -> None:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            room = self.line_max * 4 - len(self._partial)  # utf-8: at most 4 bytes a char
            self._partial += piece[:max(room, 0)]
            self._dropped += max(len(piece) - max(room, 0), 0)
            if end < 0:
                return
            self._end_line()
            start = end + 1

    def finish(self) -> None:
        """End of stderr: keep a last line that had no newline."""
        if self._partial or self._dropped:
            self._end_line()

    def _end_line(self) -> None:
        text = self._partial.decode("utf-8", "replace").rstrip()
        size, cut = len(self._partial) + self._dropped, self._dropped > 0
        self._partial.clear()
        self._dropped = 0
        if cut or len(text) > self.line_max:
            text = f"{text[:self.line_max]}… (a line of {size} bytes)"
        if text:
            self._lines.append(text)

    def text(self) -> str:
        return "\n".join(self._lines)


async def drain_stderr(read: Callable[[int], Awaitable[bytes]], tail: StderrTail) -> None:
    """Read an agent's stderr into `tail` until it ends (or cannot be read)."""
    with contextlib.suppress(Exception):
        while chunk := await read(READ_CHUNK):
            tail.feed(chunk)
    tail.finish()


class AgentProcess(Protocol):
    pid: int | None
    # the connection to the process's host dropped (the agent may live on); never for a
    # local process
    disconnected: bool
    # the host the process runs on, for messages; None for a local process
    host_name: str | None

    async def write(self, data: bytes) -> None: ...
    async def read(self) -> bytes: ...  # b"" at end of output
    async def close_stdin(self) -> None: ...
    async def wait(self) -> int: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def stderr_tail(self) -> str: ...
    @property
    def returncode(self) -> int | None: ...


class AgentLauncher(Protocol):
    async def spawn(
        self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str]
    ) -> AgentProcess: ...


class LocalProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self.pid: int | None = proc.pid
        self.disconnected = False
        self.host_name: str | None = None
        self._stderr = StderrTail()
        assert proc.stderr is not None
        self._stderr_task = asyncio.get_running_loop().create_task(
            drain_stderr(proc.stderr.read, self._stderr), name=f"stderr-{proc.pid}"
        )

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def stderr_tail(self) -> str:
        return self._stderr.text()

    async def write(self, data: bytes) -> None:
        stdin = self._proc.stdin
        if stdin is None or stdin.is_closing():
            raise BrokenPipeError("the agent's stdin is closed")
        stdin.write(data)
        await stdin.drain()

    async def read(self) -> bytes:
        assert self._proc.stdout is not None
        return await self._proc.stdout.read(READ_CHUNK)

    async def close_stdin(self) -> None:
        stdin = self._proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
            with contextlib.suppress(Exception):
                await stdin.wait_closed()

    async def wait(self) -> int:
        code = await self._proc.wait()
        # the agent is gone: end what it left behind in its group, then stop reading stderr
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._stderr_task, 1.0)
        return code

    def terminate(self) -> None:
        self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


class LocalLauncher:
    async def spawn(
        self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str]
    ) -> LocalProcess:
        if not argv:
            raise LaunchError("the agent command is empty")
        if not Path(cwd).is_dir():  # noqa: ASYNC240 (a stat, before we spawn anyway)
            raise LaunchError(f"the working directory {cwd} does not exist")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env={**os.environ, **env},
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            raise LaunchError(
                f"cannot start {argv[0]!r}: not found on PATH. Install it, or set the agent's "
                "`command` in the config"
            ) from e
        except PermissionError as e:
            raise LaunchError(f"cannot start {argv[0]!r}: {e}") from e
        return LocalProcess(proc)


async def shutdown(process: AgentProcess, *, grace: float) -> int:
    """Close the agent within a bounded time; returns its exit code."""
    await process.close_stdin()
    for step in (process.terminate, process.kill):
        try:
            return await asyncio.wait_for(asyncio.shield(process.wait()), grace)
        except TimeoutError:
            step()
    return await process.wait()
