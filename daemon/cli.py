"""`agent-bridge`: run the daemon, or steer it from a terminal.

Every command but `run`, `demo`, `doctor`, `setup` and `service` talks to the running daemon
over its control socket. Commands that print data accept `--json`. Exit codes: 0 done, 1
refused or failed (with a message that says why), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.errors import BridgeError, ConfigError
from daemon.errors import DaemonError

if TYPE_CHECKING:
    from bridge.config import Config

# C0/C1 controls, and the invisible ones that reorder or hide text (bidi overrides and
# isolates, zero-width characters): a line that reads as one command and runs another
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
CONFIG_HELP = ("config file (default: $AGENT_BRIDGE_CONFIG, then "
               "$XDG_CONFIG_HOME/agent-bridge/config.toml)")


def version() -> str:
    try:
        return metadata.version("agent-bridge")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    # the global options are accepted before and after the subcommand: `agent-bridge run
    # --config X` reads as well as `agent-bridge --config X run`. After it they default to
    # SUPPRESS, so that a value given before the subcommand is not overwritten by None.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    parser = argparse.ArgumentParser(
        prog="agent-bridge",
        description="Run coding agents on your machines and steer them from chat or here.",
    )
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--version", action="version", version=f"agent-bridge {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, *, json_flag: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON")
        return p

    p = add("run", "run the daemon in the foreground", json_flag=False)
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="text for a person (default), or json: one object per line")
    p = add("demo", "a tour with a built-in demo agent in a temporary git repository: "
                    "no account, no network", json_flag=False)
    p.add_argument("--yes", action="store_true", help="allow everything, pick the first "
                   "answer (for scripts and CI)")
    p = add("new", "start a session: agent-bridge new PROJECT PROMPT")
    p.add_argument("project", help="a configured project name, or a directory")
    p.add_argument("prompt", nargs="+", help="what the agent should do")
    p.add_argument("--agent", help="agent name (default: the project's, else default_agent)")
    p.add_argument("--worktree", action="store_true",
                   help="run in a new git worktree on branch agent/<id>")
    p.add_argument("--plan", action="store_true", help="start in plan mode")
    p = add("sessions", "list sessions (open ones; --all includes archived; --local: the "
                        "terminal sessions the bridge does not run)")
    p.add_argument("--all", action="store_true", help="include archived sessions")
    p.add_argument("--local", action="store_true",
                   help="Claude Code and Codex sessions started in terminals, here and on the "
                        "configured hosts")
    p.add_argument("--limit", type=int, default=20, help="with --local: at most N (default 20)")
    p = add("adopt", "continue a terminal session in the bridge: agent-bridge adopt ID [PROMPT]")
    p.add_argument("id", help="its id (or at least 6 characters of it), from sessions --local")
    p.add_argument("prompt", nargs="*")
    p.add_argument("--force", action="store_true",
                   help="adopt it even though a terminal process still holds it")
    p = add("show", "show a session with its approvals and transcript")
    p.add_argument("id")
    p = add("approve", "allow a pending approval")
    p.add_argument("approval_id")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--for-session", action="store_true", help="allow such calls for the session")
    how.add_argument("--accept-edits", action="store_true",
                     help="a plan: approve it and switch the session to acceptEdits")
    p = add("deny", "deny a pending approval")
    p.add_argument("approval_id")
    p.add_argument("--reason", help="told to the agent")
    p = add("answer", "answer an agent's question: agent-bridge answer ID LABEL… | --text TEXT")
    p.add_argument("question_id")
    p.add_argument("labels", nargs="*", help="the chosen option(s), by label")
    p.add_argument("--text", help="a typed answer instead of an option")
    p = add("mode", "switch a session's permission mode: agent-bridge mode ID MODE")
    p.add_argument("id")
    p.add_argument("mode", help="default, plan, acceptEdits (or bypassPermissions, dontAsk, "
                                "auto: they never ask)")
    p = add("model", "switch a session's model: agent-bridge model ID NAME")
    p.add_argument("id")
    p.add_argument("model")
    for name, text in (("stop", "stop a session"),
                       ("interrupt", "end the running turn and keep the session"),
                       ("archive", "archive a session"),
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
    p.add_argument("--turn", type=int, metavar="N", help="only turn N's own change")
    p = add("digest", "what waits on you, finished unreviewed, stalled or failed")
    p.add_argument("--send", action="store_true", help="also post it to the chat surfaces")
    p = add("doctor", "check the config, agents, state dir and tokens, and say what to fix")
    p.add_argument("--offline", action="store_true",
                   help="do not try the tokens against Telegram and Slack")
    from daemon.cli_setup import add_commands

    add_commands(sub, common)
    from daemon.hookscli import add_hook_commands

    add_hook_commands(sub, add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["hook"]:  # the agents' hook: fast, and never an error exit
        from daemon.hook import run as run_hook

        return run_hook(given[1:])
    args = build_parser().parse_args(given)
    try:
        code = _main(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit as a traceback
        return code
    except BrokenPipeError:
        # `agent-bridge sessions | head`: the reader left, which is no error of ours. Point
        # stdout at /dev/null so that the flush at exit does not complain again.
        with open(os.devnull, "w") as devnull:  # noqa: PTH123
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what the shell reports for a writer killed by it
    except ConfigError as e:
        print(f"agent-bridge: config error: {e}", file=sys.stderr)
        return 2
    except (DaemonError, BridgeError) as e:
        print(f"agent-bridge: {printable(str(e))}", file=sys.stderr)
        return 1
    except OSError as e:  # a file or socket the system refused: say which, no traceback
        print(f"agent-bridge: {printable(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _main(args: argparse.Namespace) -> int:
    if args.command == "run":
        from daemon.app import run

        # what is imported by now lives as long as the daemon: kept out of the
        # collector's sight, a full collection takes ~8 ms instead of ~50 ms, a pause
        # that approval cards under load would otherwise wait out (bench/scale.py)
        gc.freeze()
        _open_files_for_sessions()
        return run(args.config, args.log_format)
    if args.command == "demo":
        from daemon.demo import demo

        return demo(args.config, yes=args.yes)
    if args.command == "doctor":
        from daemon.doctor import doctor

        return doctor(args.config, as_json=args.json, offline=args.offline)
    if args.command in ("setup", "service"):
        from daemon import cli_setup

        return cli_setup.main(args)
    if args.command == "hooks":
        from daemon.hookscli import hooks_command

        return hooks_command(args)
    return _remote(args)


def _open_files_for_sessions(cap: int = 65536) -> None:
    """Raise the soft limit of open files to the hard one (at most `cap`). Each session's
    agent holds three pipes in the daemon: 500 sessions are ~1,500 descriptors, and the soft
    limit is often 1,024 (systemd's default for a service) though the hard one is far above,
    so the daemon would refuse sessions from ~330 on (bench/scale_ramp.py)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def project_argument(project: str, config: Config, cwd: str | None = None) -> str:
    """What `new PROJECT` sends to the daemon: a configured project's name as it is, a
    directory as an absolute path. The daemon runs in another directory (and maybe with
    another $HOME): `.`, `..`, `./x` or `~/x` mean where the person typing them is."""
    if config.project(project) is not None:
        return project
    path = Path(project).expanduser()
    looks_like_path = project.startswith((".", "~", "/")) or "/" in project
    here = Path(cwd) if cwd else Path.cwd()
    if looks_like_path or (here / path).is_dir():
        return str((here / path).resolve())
    return project  # neither: the daemon says which projects there are


def _remote(args: argparse.Namespace) -> int:
    from daemon import paths
    from daemon.client import call

    config, _ = paths.read_config(args.config, os.environ)
    sock = paths.socket_path(paths.state_dir(config, os.environ))
    command = args.command
    if command == "new":
        result = call(sock, "new", project=project_argument(args.project, config),
                      prompt=" ".join(args.prompt), agent=args.agent, worktree=args.worktree,
                      plan=args.plan)
    elif command == "sessions" and args.local:
        command = "terminal_sessions"
        result = call(sock, command, limit=args.limit)
    elif command == "sessions":
        result = call(sock, "sessions", all=args.all)
    elif command == "adopt":
        result = call(sock, "adopt", id=args.id, prompt=" ".join(args.prompt) or None,
                      force=args.force)
    elif command == "show":
        result = call(sock, "show", id=args.id)
    elif command == "approve":
        result = call(sock, "approve", approval_id=args.approval_id, for_session=args.for_session,
                      accept_edits=args.accept_edits)
    elif command == "deny":
        result = call(sock, "deny", approval_id=args.approval_id, reason=args.reason)
    elif command == "answer":
        result = call(sock, "answer", question_id=args.question_id, labels=args.labels,
                      text=args.text)
    elif command == "resume":
        result = call(sock, "resume", id=args.id, prompt=" ".join(args.prompt) or None)
    elif command == "digest":
        result = call(sock, "digest", send=args.send)
    elif command == "send":
        result = call(sock, "send", id=args.id, text=" ".join(args.text))
    elif command == "mode":
        result = call(sock, "mode", id=args.id, mode=args.mode)
    elif command == "model":
        result = call(sock, "model", id=args.id, model=args.model)
    elif command == "diff":
        result = call(sock, "diff", id=args.id, turn=args.turn)
    elif command == "away":
        from daemon.hookscli import away

        result = away(sock, args.switch, config, os.environ)
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
        print(printable(_human(command, result)))
        if command == "resume" and not args.prompt and result["state"] == "idle":
            print(f"{result['id']} is idle, its agent waiting for a prompt: send one with "
                  f"agent-bridge send {shlex.quote(result['id'])} TEXT")
    return 0


def printable(text: str) -> str:
    """`text` safe for a terminal: what sessions show comes from agents and chats, and a
    control character in it could move the cursor, retitle the window or (OSC 52) fill the
    clipboard with a command to be pasted. Shown escaped instead; lines and tabs stay."""
    return _CONTROL.sub(lambda m: _escape(m.group()), text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _human(command: str, result: Any) -> str:
    if command == "sessions":
        if not result:
            return "No sessions. Start one with: agent-bridge new PROJECT PROMPT"
        return "\n".join(_session_lines(s, brief=True) for s in result)
    if command == "digest":
        return str(result["text"])
    if command == "terminal_sessions":
        return _terminal_lines(result)
    if command == "away":
        from daemon.hookscli import away_text

        return away_text(result)
    if command in ("approve", "deny"):
        approval = result["approval"]
        return f"{approval['id']}: {result['message']}"
    if command == "answer":
        return f"{result['question']['id']}: {result['message']}"
    if command == "show":
        lines = [_session_lines(result, brief=False)]
        for event in result.get("events", []):
            lines.append(_event_line(event))
        for item in result.get("undelivered", []):
            lines.append(f"⚠ not delivered to {item['surface']}: {item['kind']} "
                         f"(gave up after {item['attempts']} tries): {item['error']}")
        return "\n".join(lines)
    return _session_lines(result, brief=False)


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


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
        if s.get("mode") or s.get("model"):
            lines.append(f"  mode: {s.get('mode') or '-'}  model: {s.get('model') or '-'}")
        if s.get("cost_usd") is not None:
            lines.append(f"  cost: ${s['cost_usd']:.4f} over {s['turns']} turn(s)")
        elif s.get("tokens"):
            lines.append(f"  tokens: {s['tokens']} over {s['turns']} turn(s)")
    if s.get("error"):
        lines.append(f"  reason: {s['error']}")
    if s.get("limit_hit"):
        reset = s.get("limit_reset_at")
        line = "  limit hit" + (f", resets {_utc(reset)}" if reset else ", reset time unknown")
        if s.get("resume_at"):
            line += f"; resumes {_utc(s['resume_at'])}"
        lines.append(line)
    for a in s.get("pending_approvals", []):
        preview = a["input"].get("command") or a["input"].get("file_path") or json.dumps(a["input"])
        # two commands to choose from, not a pipeline: each can be pasted as it is
        lines.append(f"  approval {a['id']}: {a['tool']} {str(preview)[:80]}"
                     f"   → agent-bridge approve {a['id']}  or  agent-bridge deny {a['id']}")
    for q in s.get("pending_questions", []):
        labels = " | ".join(o["label"] for o in q["options"])
        lines.append(f"  question {q['id']}: {q['text'][:80]} [{labels[:80]}]"
                     f"   → agent-bridge answer {q['id']} LABEL…")
    return "\n".join(lines)


def _terminal_lines(result: dict[str, Any]) -> str:
    lines = [f"{s['id']}  {s['agent']:<6} {_place(s):<30} {_ago(time.time() - s['updated_at']):>8}"
             f"  attached: {s['attached']}" + (f" ({s['holder']})" if s["holder"] else "")
             + "".join(f"\n  {k.removesuffix('_prompt')}: {s[k][:100]}"
                       for k in ("first_prompt", "last_prompt") if s[k])
             for s in result["sessions"]]
    if not lines:
        lines.append("No terminal sessions found that the bridge does not run.")
    else:
        lines.append("Continue one here with: agent-bridge adopt ID [PROMPT]")
    lines += [f"⚠ {note}" for note in result["notes"]]
    return "\n".join(lines)


def _place(s: dict[str, Any]) -> str:
    place = s["cwd"] or "?"
    place = place if s["host"] == "local" else f"{s['host']}:{place}"
    return f"{place}@{s['branch']}" if s["branch"] else place


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
