"""`agent-bridge hooks install|uninstall|status` (the files: daemon/hooksetup.py)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from daemon import hooksetup, paths


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
    for agent in chosen:
        target = targets[agent]
        change = hooksetup.plan_install(target, socket)
        if change is None:
            print(f"{agent}: the agent-bridge hooks are in {target.path} already")
            continue
        print(change.diff(), end="")
        if not hooksetup.confirm(change, yes=args.yes):
            print(f"{agent}: nothing written")
            continue
        hooksetup.install(change, state, socket)
        print(f"{agent}: added a PermissionRequest and a Stop hook to {target.path} "
              "(agent-bridge hooks uninstall removes exactly these)")
        if agent == "codex":
            print(f"codex: {hooksetup.CODEX_TRUST}")
    print("While you are away (agent-bridge away on, or /away in chat) their permission "
          "requests come to chat; otherwise the terminal asks as usual.")
    return 0
