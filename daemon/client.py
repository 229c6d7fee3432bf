"""A small synchronous client of the control socket (the CLI's only way in).

Every failure a person can meet (no daemon, a socket they may not open, a daemon that
stops answering) is an `ApiError` that says what happened and what to do: never a
traceback.
"""

from __future__ import annotations

import errno
import json
import socket
from pathlib import Path
from typing import Any

from daemon.errors import ApiError

START_HINT = "start it with `agent-bridge run` (or `agent-bridge service install`)"


class NotRunning(ApiError):
    code = "not_running"


def call(path: Path, op: str, timeout: float = 120.0, **args: Any) -> Any:
    request = json.dumps({"op": op, **args}).encode() + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        _connect(sock, path)
        try:
            sock.sendall(request)
            buffer = b""
            while not buffer.endswith(b"\n"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise ApiError("the daemon closed the connection without an answer; "
                                   "its log says why")
                buffer += chunk
        except TimeoutError:
            raise ApiError(f"the daemon at {path} did not answer within {timeout:.0f}s; "
                           "its log says what it is doing") from None
        except OSError as e:  # reset, broken pipe: it went away while we talked
            raise ApiError(f"the connection to the daemon at {path} broke: "
                           f"{e.strerror or e}") from None
    try:
        answer = json.loads(buffer)
    except ValueError:
        raise ApiError(f"the daemon at {path} answered something that is not JSON") from None
    if not answer.get("ok"):
        error = ApiError(answer.get("error", "unknown error"))
        error.code = answer.get("code", "error")
        raise error
    return answer.get("result")


def _connect(sock: socket.socket, path: Path) -> None:
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError) as e:
        raise NotRunning(f"the daemon is not running (nothing listens on {path}); "
                         f"{START_HINT}") from e
    except NotADirectoryError as e:
        raise NotRunning(f"agent-bridge is not running: {path.parent} is not a directory; set "
                         "[daemon] state_dir (or XDG_STATE_HOME) to a directory, then "
                         "start it with `agent-bridge run`") from e
    except PermissionError as e:
        raise ApiError(f"cannot open the daemon's socket {path}: permission denied; run "
                       "agent-bridge as the user that runs the daemon") from e
    except TimeoutError as e:
        raise ApiError(f"the daemon's socket {path} did not accept the connection in time; "
                       "its log says what it is doing") from e
    except OSError as e:
        if "too long" in str(e) or e.errno == errno.ENAMETOOLONG:
            raise ApiError(f"the socket path {path} is too long for a unix socket (at most "
                           "107 bytes); set [daemon] state_dir to a shorter path") from e
        raise ApiError(f"cannot reach the daemon at {path}: {e.strerror or e}; "
                       f"{START_HINT}") from e
