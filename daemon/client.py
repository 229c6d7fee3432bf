"""A small synchronous client of the control socket (the CLI's only way in)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from daemon.errors import ApiError


class NotRunning(ApiError):
    code = "not_running"


def call(path: Path, op: str, timeout: float = 120.0, **args: Any) -> Any:
    request = json.dumps({"op": op, **args}).encode() + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise NotRunning(
                f"agent-bridge is not running (no daemon at {path}); start it with "
                "`agent-bridge run`"
            ) from e
        sock.sendall(request)
        buffer = b""
        while not buffer.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise ApiError("the daemon closed the connection without an answer")
            buffer += chunk
    answer = json.loads(buffer)
    if not answer.get("ok"):
        error = ApiError(answer.get("error", "unknown error"))
        error.code = answer.get("code", "error")
        raise error
    return answer.get("result")
