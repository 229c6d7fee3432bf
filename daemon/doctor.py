"""`agent-bridge doctor`: check what a first run needs, and say what to fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from bridge.config import Config
from bridge.errors import ConfigError
from daemon import paths


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str


def doctor(config_arg: str | None, *, as_json: bool = False) -> int:
    from daemon.app import read_config

    checks: list[Check] = []
    env = os.environ
    try:
        config, path = read_config(config_arg, env)
        checks.append(Check("config", "ok", str(path) if path else "no file: using defaults"))
    except ConfigError as e:
        checks.append(Check("config", "fail", str(e)))
        config = None
    if config is not None:
        checks.extend(_agents(config))
        checks.append(_state(config))
        checks.extend(_tokens(config))
        checks.append(_daemon(config))
    if as_json:
        print(json.dumps([c.__dict__ for c in checks], indent=2))
    else:
        for c in checks:
            mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[c.status]
            print(f"[{mark}] {c.name}: {c.detail}")
    return 1 if any(c.status == "fail" for c in checks) else 0


def agent_version(command: list[str]) -> tuple[str | None, str]:
    """(version line, problem) for an agent command's `--version`."""
    binary = shutil.which(command[0])
    if binary is None:
        return None, f"{command[0]!r} is not on PATH"
    try:
        out = subprocess.run([*command[:1], "--version"], capture_output=True, text=True,
                             timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{binary} --version failed: {e}"
    text = (out.stdout or out.stderr).strip().splitlines()
    return (text[0] if text else "unknown version"), ""


def _agents(config: Config) -> list[Check]:
    checks = []
    used = {p.agent or config.default_agent for p in config.projects} | {config.default_agent}
    for name, agent in sorted(config.agents.items()):
        version, problem = agent_version(agent.command)
        if version is not None:
            checks.append(Check(f"agent {name}", "ok", f"{' '.join(agent.command)}: {version}"))
        else:
            status = "fail" if name in used else "warn"
            checks.append(Check(f"agent {name}", status,
                                f"{problem}; install it or set [agents.{name}] command"))
    return checks


def _state(config: Config) -> Check:
    state = paths.state_dir(config, os.environ)
    try:
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = state / ".doctor-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        return Check("state dir", "fail", f"{state} is not writable: {e}; set [daemon] state_dir")
    return Check("state dir", "ok", str(state))


def _tokens(config: Config) -> list[Check]:
    checks = []
    wanted: list[tuple[str, str, str]] = []
    if config.telegram is not None:
        wanted.append(("telegram token", config.telegram.token_env, "telegram.token_env"))
    if config.slack is not None:
        wanted.append(("slack bot token", config.slack.bot_token_env, "slack.bot_token_env"))
        if config.slack.mode == "socket":
            wanted.append(("slack app token", config.slack.app_token_env, "slack.app_token_env"))
        else:
            wanted.append(("slack signing secret", config.slack.signing_secret_env,
                           "slack.signing_secret_env"))
    for name, variable, key in wanted:
        if os.environ.get(variable):
            checks.append(Check(name, "ok", f"${variable} is set"))
        else:
            checks.append(Check(name, "fail", f"${variable} is not set ({key} names it)"))
    return checks


def _daemon(config: Config) -> Check:
    from daemon.client import NotRunning, call

    sock = paths.socket_path(paths.state_dir(config, os.environ))
    try:
        info = call(sock, "ping", timeout=5)
    except NotRunning:
        return Check("daemon", "warn", "not running; start it with `agent-bridge run`")
    except Exception as e:
        return Check("daemon", "warn", f"socket {sock} did not answer: {e}")
    return Check("daemon", "ok", f"running (pid {info['pid']}, {info['sessions']} live sessions)")


if __name__ == "__main__":
    sys.exit(doctor(None))
