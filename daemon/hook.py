"""`agent-bridge hook KIND --agent AGENT`: what Claude Code or Codex runs as its hook.

It reads the hook's JSON on stdin, hands it to the daemon over the control socket and prints
the agent's answer (docs/terminal-hooks.md). Whatever goes wrong — the daemon is down, the
socket refuses, nobody answers before `--timeout`, the input is not JSON — it prints nothing
and exits 0: no decision, and the terminal asks as usual. It never exits 2 (Claude reads that
as "block") and never approves on its own.

Kept to the standard library and out of the config loader when `--socket` is given (the
installed hooks give it): with the daemon down it is done in a few tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

KINDS = ("permission-request", "stop")
AGENTS = ("claude", "codex")
DEFAULT_TIMEOUT = 590.0  # the installed hooks give the agent 600 s: ours ends first
CONNECT_TIMEOUT = 0.5  # a unix socket connects at once or not at all
#: set by the daemon in the environment of the agents it runs (daemon/sessions.py); their hooks
#: inherit it
OWN_SESSION = "AGENT_BRIDGE_SESSION"
EVENT_NAMES = {"permission-request": "PermissionRequest", "stop": "Stop"}


def hook_output(kind: str, answer: dict[str, Any]) -> str:
    """What the agent reads on stdout for the daemon's `answer` (empty: no decision).
    Claude Code and Codex accept the same shape (verified, docs/terminal-hooks.md)."""
    behavior = answer.get("behavior")
    if kind != "permission-request" or behavior not in ("allow", "deny"):
        return ""
    decision: dict[str, Any] = {"behavior": behavior}
    # a question's answers, only ever for Claude Code (daemon/terminal.py): Codex refuses it
    if behavior == "allow" and isinstance(answer.get("updated_input"), dict):
        decision["updatedInput"] = answer["updated_input"]
    if behavior == "deny":
        decision["message"] = str(answer.get("message") or "Denied from agent-bridge.")
    return json.dumps({"hookSpecificOutput": {"hookEventName": EVENT_NAMES[kind],
                                              "decision": decision}})


def ask_daemon(path: str, request: dict[str, Any], *, timeout: float) -> dict[str, Any] | None:
    """The daemon's answer to one request, or None when there is none by `timeout`."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(path)
            stranger = _served_by_another_user(sock, path)
            if stranger is not None:
                _say(f"{path} is served by uid {stranger}, not by this user's daemon: "
                     "no decision")
                return None
            sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError:
            return None
        data = b""
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk
    try:
        answer = json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        return None
    if not isinstance(answer, dict) or not answer.get("ok"):
        if isinstance(answer, dict):
            _say(f"the daemon refused: {answer.get('error')}")
        return None
    result = answer.get("result")
    return result if isinstance(result, dict) else None


def _served_by_another_user(sock: socket.socket, path: str) -> int | None:
    """The uid of whoever serves the socket when it is not this user (None: it is). A
    socket another user put at the daemon's path (the daemon down, its state in /tmp) must
    not answer this user's hooks. Linux tells the peer (SO_PEERCRED); elsewhere the socket
    file's owner (whoever bound it) stands for it."""
    me = os.getuid()
    option = getattr(socket, "SO_PEERCRED", None)
    if option is not None:
        raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
        uid = struct.unpack("3i", raw)[1]
    else:
        from pathlib import Path  # only where the peer cannot be asked

        uid = Path(path).stat().st_uid
    return None if uid == me else uid


def run(argv: Sequence[str], stdin: IO[str] = sys.stdin, stdout: IO[str] = sys.stdout) -> int:
    kind, agent, sock, timeout, config = _parse(argv)
    if kind is None:
        _say("usage: agent-bridge hook permission-request|stop --agent claude|codex "
             "[--socket PATH] [--timeout SECONDS]")
        return 0  # a broken hook line must not block the agent either
    try:
        payload = json.loads(stdin.read() or "null")
    except ValueError:
        _say("the hook's input was not JSON: no decision")
        return 0
    if not isinstance(payload, dict):
        return 0
    if os.environ.get(OWN_SESSION):
        return 0  # an agent the daemon runs: it asks through its own protocol, not here
    path = sock or _socket_from_config(config)
    if path is None:
        return 0
    answer = ask_daemon(path, {"op": "hook", "kind": kind, "agent": agent,
                               "payload": payload}, timeout=timeout)
    out = hook_output(kind, answer or {})
    if out:
        stdout.write(out + "\n")
        stdout.flush()
    return 0


def _parse(argv: Sequence[str]) -> tuple[str | None, str, str | None, float, str | None]:
    kind = argv[0] if argv and argv[0] in KINDS else None
    agent, sock, timeout, config = "claude", None, DEFAULT_TIMEOUT, None
    args = list(argv[1:])
    while args:
        flag = args.pop(0)
        value = args.pop(0) if args else ""
        if flag == "--agent" and value in AGENTS:
            agent = value
        elif flag == "--socket" and value:
            sock = value
        elif flag == "--timeout":
            with contextlib.suppress(ValueError):
                timeout = max(0.1, float(value))
        elif flag == "--config" and value:
            config = value
        else:
            return None, agent, sock, timeout, config
    return kind, agent, sock, timeout, config


def _socket_from_config(config: str | None) -> str | None:
    from daemon import paths  # the config loader: only when the hook line names no socket

    try:
        loaded, _ = paths.read_config(config, os.environ)
    except Exception as e:  # a broken config must not block the agent
        _say(f"cannot read the config: {e}")
        return None
    return str(paths.socket_path(paths.state_dir(loaded, os.environ)))


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        print(f"agent-bridge hook: {text}", file=sys.stderr)
