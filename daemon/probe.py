"""What is on disk where a request would write: looked up when the request arrives, so
that its card can say "new file" or "overwrites" (a fact the pure renderer is given).

On this machine a `stat`; on an SSH host one POSIX `sh` command over the host's command
runner. A lookup that fails or takes too long leaves the file out (the card then says it
was not checked): it never holds the request back for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
from collections.abc import Sequence
from dataclasses import replace

from bridge.events import AgentEvent, ApprovalRequested
from daemon.gitrun import CommandRunner, GitError, LocalRunner

PROBE_TIMEOUT = 5.0
# the tools whose card says whether they create or overwrite their file
_WRITES = frozenset({"Write"})
_SIZE_SCRIPT = ('if [ -f "$1" ]; then wc -c < "$1"; elif [ -e "$1" ]; then echo 0; '
                'else echo none; fi')


class NotChecked(Exception):
    """The file could not be looked up."""


async def file_size(runner: CommandRunner, path: str, *, cwd: str) -> int | None:
    """The size of the file at `path` (relative to `cwd`), None when there is none."""
    full = posixpath.join(cwd, path)
    if isinstance(runner, LocalRunner):
        try:
            stat = await asyncio.to_thread(os.stat, full)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise NotChecked(str(e)) from e
        return stat.st_size
    try:
        result = await runner.run(["sh", "-c", _SIZE_SCRIPT, "sh", full], cwd=cwd,
                                  timeout=PROBE_TIMEOUT)
    except GitError as e:
        raise NotChecked(e.message) from e
    out = result.stdout.decode("ascii", "replace").strip()
    if result.returncode != 0 or not out:
        raise NotChecked(out or f"exit status {result.returncode}")
    if out == "none":
        return None
    try:
        return int(out)
    except ValueError as e:
        raise NotChecked(out) from e


async def looked_up(events: Sequence[AgentEvent], runner: CommandRunner,
                    cwd: str) -> list[AgentEvent]:
    """`events`, each Write's request with what is on disk at its path (`on_disk`)."""
    out: list[AgentEvent] = []
    for event in events:
        if isinstance(event, ApprovalRequested) and event.tool in _WRITES:
            path = event.input.get("file_path") or event.input.get("path")
            if isinstance(path, str) and path:
                found: dict[str, int | None] = {}
                with contextlib.suppress(NotChecked, TimeoutError):
                    async with asyncio.timeout(PROBE_TIMEOUT):
                        found[path] = await file_size(runner, path, cwd=event.cwd or cwd)
                event = replace(event, on_disk=found)
        out.append(event)
    return out
