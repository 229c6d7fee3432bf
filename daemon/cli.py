"""`agent-bridge`: run the daemon, or steer it from a terminal.

Every command but `run` and `doctor` talks to the running daemon over its control socket.
Commands that print data accept `--json`. Exit codes: 0 done, 1 refused or failed
(with a message that says why), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from bridge.errors import BridgeError, ConfigError
from daemon.errors import DaemonError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-bridge",
        description="Run coding agents on your machines and steer them from chat or here.",
    )
    parser.add_argument("--config", help="config file (default: $AGENT_BRIDGE_CONFIG, then "
                        "$XDG_CONFIG_HOME/agent-bridge/config.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON")
        return p

    add("run", "run the daemon in the foreground", json_flag=False)
    p = add("new", "start a session: agent-bridge new PROJECT PROMPT")
    p.add_argument("project", help="a configured project name, or a directory")
    p.add_argument("prompt", nargs="+", help="what the agent should do")
    p.add_argument("--agent", help="agent name (default: the project's, else default_agent)")
    p.add_argument("--worktree", action="store_true",
                   help="run in a new git worktree on branch agent/<id>")
    p = add("sessions", "list sessions (open ones; --all includes archived)")
    p.add_argument("--all", action="store_true", help="include archived sessions")
    p = add("show", "show a session with its approvals and transcript")
    p.add_argument("id")
    p = add("approve", "allow a pending approval")
    p.add_argument("approval_id")
    p.add_argument("--for-session", action="store_true", help="allow such calls for the session")
    p = add("deny", "deny a pending approval")
    p.add_argument("approval_id")
    p.add_argument("--reason", help="told to the agent")
    for name, text in (("stop", "stop a session"), ("archive", "archive a session"),
                       ("unarchive", "bring a session back from the archive")):
        add(name, text).add_argument("id")
    p = add("resume", "continue a session (also after a restart): agent-bridge resume ID [PROMPT]")
    p.add_argument("id")
    p.add_argument("prompt", nargs="*")
    p = add("send", "reply to a session: agent-bridge send ID TEXT")
    p.add_argument("id")
    p.add_argument("text", nargs="+")
    p = add("diff", "the session's changes since it started (untracked files included)")
    p.add_argument("id")
    p.add_argument("--stat", action="store_true", help="only the summary")
    p = add("digest", "what waits on you, finished unreviewed, stalled or failed")
    p.add_argument("--send", action="store_true", help="also post it to the chat surfaces")
    add("doctor", "check the config, agents, state dir and tokens, and say what to fix")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            from daemon.app import run

            # what is imported by now lives as long as the daemon: kept out of the
            # collector's sight, a full collection takes ~8 ms instead of ~50 ms, a pause
            # that approval cards under load would otherwise wait out (bench/scale.py)
            gc.freeze()
            return run(args.config)
        if args.command == "doctor":
            from daemon.doctor import doctor

            return doctor(args.config, as_json=args.json)
        return _remote(args)
    except ConfigError as e:
        print(f"agent-bridge: config error: {e}", file=sys.stderr)
        return 2
    except (DaemonError, BridgeError) as e:
        print(f"agent-bridge: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _socket(config_arg: str | None) -> Any:
    from daemon import paths

    config, _ = paths.read_config(config_arg, os.environ)
    return paths.socket_path(paths.state_dir(config, os.environ))


def _remote(args: argparse.Namespace) -> int:
    from daemon.client import call

    sock = _socket(args.config)
    command = args.command
    if command == "new":
        result = call(sock, "new", project=args.project, prompt=" ".join(args.prompt),
                      agent=args.agent, worktree=args.worktree)
    elif command == "sessions":
        result = call(sock, "sessions", all=args.all)
    elif command == "show":
        result = call(sock, "show", id=args.id)
    elif command == "approve":
        result = call(sock, "approve", approval_id=args.approval_id, for_session=args.for_session)
    elif command == "deny":
        result = call(sock, "deny", approval_id=args.approval_id, reason=args.reason)
    elif command == "resume":
        result = call(sock, "resume", id=args.id, prompt=" ".join(args.prompt) or None)
    elif command == "digest":
        result = call(sock, "digest", send=args.send)
    elif command == "send":
        result = call(sock, "send", id=args.id, text=" ".join(args.text))
    else:
        result = call(sock, command, id=args.id)
    if command == "diff" and not args.json:
        if args.stat or not result["diff"]:
            print(result["summary"] + (f"\n({result['note']})" if result["note"] else ""))
        else:
            sys.stdout.buffer.write(result["diff"].encode("utf-8", "surrogateescape"))
        return 0
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(_human(command, result))
    return 0


def _human(command: str, result: Any) -> str:
    if command == "sessions":
        if not result:
            return "No sessions. Start one with: agent-bridge new PROJECT PROMPT"
        return "\n".join(_session_lines(s, brief=True) for s in result)
    if command == "digest":
        return str(result["text"])
    if command in ("approve", "deny"):
        approval = result["approval"]
        return f"{approval['id']}: {result['message']}"
    if command == "show":
        lines = [_session_lines(result, brief=False)]
        for event in result.get("events", []):
            lines.append(_event_line(event))
        return "\n".join(lines)
    return _session_lines(result, brief=False)


def _session_lines(s: dict[str, Any], *, brief: bool) -> str:
    age = _ago(time.time() - s["updated_at"])
    flag = "  [archived]" if s["archived"] else ""
    place = s["project"] if s.get("host", "local") == "local" else f"{s['host']}:{s['project']}"
    if s.get("branch"):
        place += f"@{s['branch']}"
    lines = [f"{s['id']}  {s['state']:<16} {place:<24} {s['agent']:<8} {age:>8}  "
             f"{s['title'][:50]}{flag}"]
    if not brief:
        lines.append(f"  cwd: {s['cwd']}")
        if s.get("agent_session_id"):
            lines.append(f"  agent session: {s['agent_session_id']}")
        if s.get("cost_usd") is not None:
            lines.append(f"  cost: ${s['cost_usd']:.4f} over {s['turns']} turn(s)")
        elif s.get("tokens"):
            lines.append(f"  tokens: {s['tokens']} over {s['turns']} turn(s)")
    if s.get("error"):
        lines.append(f"  reason: {s['error']}")
    for a in s.get("pending_approvals", []):
        preview = a["input"].get("command") or a["input"].get("file_path") or json.dumps(a["input"])
        lines.append(f"  approval {a['id']}: {a['tool']} {str(preview)[:80]}"
                     f"   → agent-bridge approve {a['id']} | deny {a['id']}")
    return "\n".join(lines)


def _event_line(e: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(e["ts"]))
    data = e["data"]
    text = (data.get("text") or data.get("result_text") or data.get("output") or data.get("tool")
            or data.get("decision") or "")
    return f"  {stamp} {e['kind']:<18} {str(text).strip()[:100]}"


def _ago(seconds: float) -> str:
    seconds = int(max(0, seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


if __name__ == "__main__":
    sys.exit(main())
        for item in result.get("undelivered", []):
            lines.append(f"⚠ not delivered to {item['surface']}: {item['kind']} "
                         f"(gave up after {item['attempts']} tries): {item['error']}")
