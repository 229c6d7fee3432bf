"""`agent-bridge doctor`: check what a first run needs, and say what to fix."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bridge.config import Config
from bridge.errors import ConfigError
from daemon import paths
from daemon.agents import AGENT_KINDS
from daemon.errors import DaemonError

# The agent versions the real-agent conformance tests pin. Found only next to a source checkout
# (an installed wheel has no tests/); when it is absent nothing is compared.
PINNED_FILE = Path(__file__).resolve().parent.parent / "tests" / "real_agents" / "package.json"
_VERSION = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str


# the longest path a unix socket can bind (sun_path is 108 bytes with its NUL)
MAX_SOCKET_PATH = 107


def validate_config(config: Config, env: Mapping[str, str]) -> list[str]:
    """The checks of a parsed config that need the machine (time zones, the environment,
    the file system): `run` refuses to start on the ConfigError this raises, and `doctor`
    reports the same one. Returns warnings: what works now but will not for every session."""
    from daemon.scheduler import digest_trigger

    digest = config.digest
    if digest.cron:
        digest_trigger(digest.cron, digest.timezone)
    else:  # no schedule, but `/digest` still uses the zone
        digest_trigger("0 9 * * *", digest.timezone)
    state = paths.state_dir(config, env)
    key = "daemon.state_dir" if config.daemon.state_dir else "XDG_STATE_HOME"
    if not state.is_absolute():
        raise ConfigError(key, f"the state directory {state} is relative: it would depend on "
                               "the directory each command runs in; make it absolute")
    sock = paths.socket_path(state)
    if len(os.fsencode(sock)) > MAX_SOCKET_PATH:
        raise ConfigError(key, f"the control socket {sock} would be longer than the "
                               f"{MAX_SOCKET_PATH} bytes a unix socket allows; choose a "
                               "shorter state directory")
    warnings = []
    for i, project in enumerate(config.projects):
        if project.host != "local":
            continue
        where = Path(project.path).expanduser()
        if not where.is_dir():
            warnings.append(f"projects[{i}].path: {where} is not a directory (yet): sessions "
                            f"in {project.name} cannot start until it is")
    return warnings


def doctor(config_arg: str | None, *, as_json: bool = False, offline: bool = False) -> int:
    """Every check, one line each; exit 1 when one fails. `offline`: tokens are not tried
    against the platforms (an unreachable platform is only a warning anyway)."""
    import asyncio

    from daemon.doctor_node import node_checks
    from daemon.doctor_online import online_checks
    from daemon.paths import default_config_path, read_config

    checks: list[Check] = []
    env = os.environ
    config: Config | None = None
    try:
        config, path = read_config(config_arg, env)
        warnings = validate_config(config, env)
        checks.append(Check("config", "ok", str(path) if path else (
            f"no file at {default_config_path(env)}: using defaults "
            "(`agent-bridge setup telegram` or `setup slack` writes one)")))
        checks.extend(Check("config", "warn", w) for w in warnings)
    except (ConfigError, DaemonError) as e:
        checks.append(Check("config", "fail", str(e)))
        config = None
    if config is not None:
        checks.extend(_agents(config))
        checks.extend(node_checks(config, env))
        checks.append(_state(config))
        checks.extend(_tokens(config))
        if not offline:
            checks.extend(asyncio.run(online_checks(config, env)))
        if config.hosts:
            checks.extend(asyncio.run(_hosts(config)))
        checks.append(_daemon(config))
        checks.extend(_hooks(config))
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
        # only the binary and `--version`: `codex app-server --version` would start the server
        out = subprocess.run([*command[:1], "--version"], capture_output=True, text=True,
                             timeout=20, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{binary} --version failed: {e}"
    text = (out.stdout or out.stderr).strip().splitlines()
    return (text[0] if text else "unknown version"), ""


def pinned_versions(path: Path | None = None) -> dict[str, str]:
    """protocol → the agent version the real-agent tests pin; empty when the file is absent."""
    try:
        dependencies = json.loads((path or PINNED_FILE).read_text())["dependencies"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {
        protocol: dependencies[kind.package]
        for protocol, kind in AGENT_KINDS.items()
        if kind.package is not None and isinstance(dependencies, dict)
        and isinstance(dependencies.get(kind.package), str)
    }


def version_drift(protocol: str, version_line: str, pinned: dict[str, str]) -> str | None:
    """Why `version_line` is worth a warning: that protocol's agent at another version than the
    tests pin. None when it matches, nothing is pinned, or the line is not that agent's (a
    wrapper script or an interpreter answers `--version` too)."""
    kind = AGENT_KINDS.get(protocol)
    if protocol not in pinned or kind is None or kind.version_marker is None:
        return None
    marker = kind.version_marker
    found = _VERSION.search(version_line)
    if marker not in version_line or found is None:
        return None
    installed, want = found.group(0), pinned[protocol]
    if installed == want:
        return None
    relation = "differs from"
    if _release(installed) < _release(want):
        relation = "is older than"
    elif _release(installed) > _release(want):
        relation = "is newer than"
    return (f"{installed} {relation} {want}, the version agent-bridge is tested with "
            "(tests/real_agents/package.json); protocol changes in other versions are untested")


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.split(r"[-+]", version)[0].split("."))


def _agents(config: Config) -> list[Check]:
    checks = []
    used = {p.agent or config.default_agent for p in config.projects} | {config.default_agent}
    pinned = pinned_versions()
    for name, agent in sorted(config.agents.items()):
        version, problem = agent_version(agent.command)
        if version is not None:
            detail = f"{' '.join(agent.command)}: {version}"
            drift = version_drift(agent.protocol, version, pinned)
            if drift is None:
                checks.append(Check(f"agent {name}", "ok", detail))
            else:
                checks.append(Check(f"agent {name}", "warn", f"{detail}; {drift}"))
        else:
            status = "fail" if name in used else "warn"
            checks.append(Check(f"agent {name}", status,
                                f"{problem}; install it or set [agents.{name}] command"))
    return checks


def _state(config: Config) -> Check:
    """The state dir: usable, and private as the daemon keeps it (paths.inspect_state, the
    checks the daemon acts on). Reported only: doctor changes nothing."""
    state = paths.state_dir(config, os.environ)
    findings = paths.inspect_state(state)
    if any(f.refused for f in findings):
        return Check("state dir", "fail", "; ".join(f.message for f in findings if f.refused)
                     + " (the daemon will not start until then)")
    existing = state  # the directory the daemon would write in, or create it in
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return Check("state dir", "fail", f"{state} is not writable (at {existing}): make it "
                                          "writable or set [daemon] state_dir")
    if findings:
        return Check("state dir", "warn", "; ".join(f.message for f in findings))
    if existing != state:
        return Check("state dir", "ok", f"{state} (created private when the daemon starts)")
    return Check("state dir", "ok", str(state))


def required_secrets(config: Config) -> list[tuple[str, str, str]]:
    """(what, environment variable, config key) of each secret the config needs."""
    wanted: list[tuple[str, str, str]] = []
    if config.telegram is not None:
        wanted.append(("telegram token", config.telegram.token_env, "telegram.token_env"))
        if config.telegram.mode == "webhook":
            wanted.append(("telegram webhook secret", config.telegram.webhook_secret_env,
                           "telegram.webhook_secret_env"))
    if config.slack is not None:
        wanted.append(("slack bot token", config.slack.bot_token_env, "slack.bot_token_env"))
        if config.slack.mode == "socket":
            wanted.append(("slack app token", config.slack.app_token_env, "slack.app_token_env"))
        else:
            wanted.append(("slack signing secret", config.slack.signing_secret_env,
                           "slack.signing_secret_env"))
    return wanted


def _tokens(config: Config) -> list[Check]:
    checks = []
    for name, variable, key in required_secrets(config):
        if os.environ.get(variable):
            checks.append(Check(name, "ok", f"${variable} is set"))
        else:
            checks.append(Check(name, "fail", f"${variable} is not set ({key} names it)"))
    return checks


async def _hosts(config: Config) -> list[Check]:
    """Each SSH host: reachable with a verified key, and the agents its projects use there."""
    from daemon.gitrun import GitError
    from daemon.ssh import HostUnavailable, SshHost

    checks = []
    for name, host_config in sorted(config.hosts.items()):
        host = SshHost(name, host_config)
        try:
            await host.connection()
        except HostUnavailable as e:
            checks.append(Check(f"host {name}", "fail", e.message))
            continue
        checks.append(Check(f"host {name}", "ok",
                            f"{host_config.address}:{host_config.port} reachable, key verified"))
        agents = {p.agent or config.default_agent for p in config.projects if p.host == name}
        for agent_name in sorted(agents):
            command = config.agents[agent_name].command
            try:
                result = await host.run([command[0], "--version"], cwd="/", timeout=20)
            except GitError as e:
                checks.append(Check(f"agent {agent_name} on {name}", "fail",
                                    f"{e.message}; install it there or set [agents.{agent_name}]"
                                    " command"))
                continue
            line = (result.stdout or result.stderr).decode("utf-8", "replace").strip()
            version = line.splitlines()[0] if line else "unknown version"
            status = "ok" if result.returncode == 0 else "fail"
            checks.append(Check(f"agent {agent_name} on {name}", status,
                                f"{command[0]}: {version}"))
        await host.close()
    return checks


def _hooks(config: Config) -> list[Check]:
    """The terminal agents' hooks (`agent-bridge hooks install`): informational, never a
    failure: without them only terminal sessions' approvals stay in the terminal."""
    from daemon import hooksetup

    state = paths.state_dir(config, os.environ)
    found = hooksetup.status(os.environ, state, paths.socket_path(state))
    return [Check(f"hooks {agent}", "ok" if text.startswith("installed") else "warn", text)
            for agent, text in found.items()]


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
