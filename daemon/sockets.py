"""The control socket's clients: who may use it (only this user's processes), what a line
asks for, and noticing a client that hangs up while its request still waits (a hook that
gave up, or that its agent ended)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
from collections.abc import Awaitable
from typing import Any


def op_of(line: bytes) -> Any:
    try:
        request = json.loads(line)
    except ValueError:
        return None
    return request.get("op") if isinstance(request, dict) else None


async def until_hangup(reader: asyncio.StreamReader,
                        work: Awaitable[dict[str, Any]]) -> dict[str, Any] | None:
    """`work`'s answer, or None (and `work` cancelled) when the client hangs up first: a
    hook that gave up, or the agent that killed it, waits for nothing any more."""
    task: asyncio.Future[dict[str, Any]] = asyncio.ensure_future(work)
    hangup: asyncio.Future[Any] = asyncio.ensure_future(reader.read(1))
    try:
        while True:
            await asyncio.wait({task, hangup}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
            if hangup.result():  # more bytes, not an end: keep watching for the end
                hangup = asyncio.ensure_future(reader.read(1))
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return None
    finally:
        hangup.cancel()
        task.cancel()


def foreign_peer(writer: asyncio.StreamWriter) -> str | None:
    """Why the peer may not use the socket (another user's process), or None. The socket's
    mode 0600 already keeps others out; this holds even if its mode or directory were
    loosened. Linux tells the peer's uid (SO_PEERCRED); elsewhere the mode alone guards."""
    sock = writer.get_extra_info("socket")
    option = getattr(socket, "SO_PEERCRED", None)
    if sock is None or option is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", raw)
    if uid != os.getuid():
        return f"refused a client of uid {uid}: this daemon serves only uid {os.getuid()}"
    return None
