"""`agent-bridge hooks install|uninstall|status` (the files: daemon/hooksetup.py)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon import hooksetup, paths

if TYPE_CHECKING:
    from bridge.config import Config


def add_hook_commands(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """`away`, `hooks` and `hook` in the CLI's parser (`add` makes a subcommand)."""
    p = add("away", "away mode: terminal sessions' permission requests come to chat")
    p.add_argument("switch", nargs="?", choices=("on", "off"), help="omit to show it")
    p = add("hooks", "add or remove the agents' hooks that reach agent-bridge "
                     "(Claude Code settings.json, Codex hooks.json)", json_flag=False)
    p.add_argument("action", choices=("install", "uninstall", "status"))
    p.add_argument("--claude", action="store_true", help="Claude Code only")
    p.add_argument("--codex", action="store_true", help="Codex only")
    p.add_argument("--yes", action="store_true", help="write without asking")
    p.add_argument("--dry-run", action="store_true",
                   help="install: show the change to each file and write nothing")
    # run by the agents themselves (daemon/hook.py parses it, before this parser); listed
    # here for --help
    sub.add_parser("hook", help="run by Claude Code or Codex as their hook: "
                                "agent-bridge hook permission-request|stop --agent NAME")


def hooks_command(args: argparse.Namespace) -> int:
    config, _ = paths.read_config(args.config, os.environ)
    state = paths.state_dir(config, os.environ)
    socket = paths.socket_path(state)
    chosen = [a for a in ("claude", "codex") if getattr(args, a)] or ["claude", "codex"]
    targets = hooksetup.targets(os.environ)
    if args.action == "status":
        for agent, text in hooksetup.status(os.environ, state, socket).items():
            if agent in chosen:
                print(f"{agent}: {text}")
        return 0
    if args.action == "uninstall":
        for agent in chosen:
            print(hooksetup.uninstall(agent, state))
        return 0
    ready = False  # some agent's hooks are in place: away mode can reach its terminals
    for agent in chosen:
        target = targets[agent]
        change = hooksetup.plan_install(target, socket)
        if change is None:
            print(f"{agent}: the agent-bridge hooks are in {target.path} already")
            ready = True
            continue
        print(change.diff(), end="")
        if args.dry_run:
            print(f"{agent}: nothing written (--dry-run)")
            continue
        if not hooksetup.confirm(change, yes=args.yes):
            print(f"{agent}: nothing written")
            continue
        hooksetup.install(change, state, socket)
        ready = True
        print(f"{agent}: added a PermissionRequest and a Stop hook to {target.path} "
              "(agent-bridge hooks uninstall removes exactly these)")
        if agent == "codex":
            print(f"codex: {hooksetup.CODEX_TRUST}")
    if ready:
        print("While you are away (agent-bridge away on, or /away in chat) their permission "
              "requests come to chat; otherwise the terminal asks as usual.")
    return 0


def away(sock: Path, switch: str | None, config: Config, env: Mapping[str, str]) -> Any:
    """`agent-bridge away [on|off]`: the daemon's answer (`away`, its `chats`) and the
    agents whose hooks reach this daemon (`hooks`): without those nothing comes to chat."""
    from daemon.client import call

    result = call(sock, "away", set=None if switch is None else switch == "on")
    found = hooksetup.status(env, paths.state_dir(config, env), sock)
    return {**result, "hooks": [agent for agent, text in found.items()
                                if text.startswith("installed")]}


def away_text(result: Mapping[str, Any]) -> str:
    """What `away` prints: where the terminals' requests go now, and what is missing for
    them to go there (no hooks: the terminals never ask the daemon; no chat: only here)."""
    if not result["away"]:
        return "Not away: terminal sessions ask in their terminal (agent-bridge away on)."
    chats = result.get("chats") or []
    if chats:
        lines = [f"Away: terminal sessions' permission requests come to "
                 f"{' and '.join(str(c).capitalize() for c in chats)} "
                 "(agent-bridge away off when you are back)."]
    else:
        lines = ["Away: terminal sessions' permission requests wait here, as no chat is "
                 "configured: `agent-bridge sessions` lists them, `agent-bridge approve ID` or "
                 "`deny ID` decides (`agent-bridge setup telegram` connects a chat; "
                 "agent-bridge away off when you are back)."]
    if "hooks" in result and not result["hooks"]:
        lines.append("No terminal session will ask yet: the hooks are not installed for this "
                     "daemon; run `agent-bridge hooks install` (`hooks status` shows them).")
    return "\n".join(lines)
