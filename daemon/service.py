"""`agent-bridge service install|uninstall|status|logs [--dry-run]`.

Linux: a systemd user unit (`systemctl --user`, logs in the journal). macOS: a launchd agent
(`launchctl` in the gui/UID domain, logs in ~/Library/Logs/agent-bridge.log). The file
contents are in daemon/service_files.py; here: where they go, and the commands around them.
`--dry-run` prints the files and the commands and changes nothing. The tools are found on
PATH, or at $AGENT_BRIDGE_SYSTEMCTL, $AGENT_BRIDGE_JOURNALCTL, $AGENT_BRIDGE_LAUNCHCTL (how
the tests keep away from the real user's service manager).

The environment file is created (0600) when missing, with the variable names the config
needs commented out, and never filled by agent-bridge; an existing one is kept as it is, only
made private again if it was not.
"""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from daemon import paths
from daemon.errors import SetupFailed
from daemon.service_files import (
    LAUNCHD_LABEL,
    PASSED_THROUGH,
    UNIT_NAME,
    ServiceSpec,
    env_file_text,
    launchd_plist,
    systemd_unit,
)
from daemon.setup_common import write_atomically


@dataclass(frozen=True, slots=True)
class Step:
    argv: list[str]
    may_fail: bool = False  # e.g. unloading an agent that is not loaded


@dataclass(slots=True)
class Plan:
    writes: list[tuple[Path, str, int]] = field(default_factory=list)  # path, text, mode
    removes: list[Path] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    private: Path | None = None  # the environment file: made 0600 whatever it was
    passthrough: bool = False  # status/logs: the tool's own output and exit code


def installed_executable(env: Mapping[str, str]) -> Path:
    """The agent-bridge command this was started as (by its absolute path, not resolved:
    a pipx or uv link keeps pointing at the upgraded one), else the one on PATH."""
    started = Path(sys.argv[0])
    if started.name == "agent-bridge" and started.is_file() and os.access(started, os.X_OK):
        return started.absolute()
    found = shutil.which("agent-bridge", path=env.get("PATH"))
    if found is None:
        raise SetupFailed("agent-bridge is not installed as a command (it runs from a source "
                          "tree): install it with `pipx install .` or `uv tool install .`, "
                          "then run `agent-bridge service install` from there")
    return Path(found).absolute()


def _tool(name: str, env: Mapping[str, str]) -> str:
    return env.get(f"AGENT_BRIDGE_{name.upper()}") or name


def _spec(config_arg: str | None, env: Mapping[str, str]) -> tuple[ServiceSpec, list[str]]:
    from daemon.doctor import required_secrets

    config, config_path = paths.read_config(config_arg, env)
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    spec = ServiceSpec(
        executable=installed_executable(env),
        config=config_path.absolute() if config_path else None,
        env_file=Path(base) / "agent-bridge" / "env",
        environment={k: env[k] for k in PASSED_THROUGH if env.get(k)},
        home=Path(env.get("HOME") or Path.home()),
    )
    return spec, [variable for _, variable, _ in required_secrets(config)]


def plan(action: str, config_arg: str | None, env: Mapping[str, str], *, platform: str,
         follow: bool = False) -> Plan:
    spec, secrets = _spec(config_arg, env) if action == "install" else (None, [])
    base = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    home = Path(env.get("HOME") or Path.home())
    result = Plan()
    start: list[Step] = []  # install: what starts it, once the secrets are there
    if platform == "darwin":
        domain = f"gui/{os.getuid()}"
        plist = home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
        log_file = home / "Library" / "Logs" / "agent-bridge.log"
        launchctl = _tool("launchctl", env)
        if action == "install":
            assert spec is not None
            result.writes.append((plist, launchd_plist(spec, log_file), 0o644))
            result.steps.append(Step([launchctl, "bootout", f"{domain}/{LAUNCHD_LABEL}"], True))
            start = [Step([launchctl, "bootstrap", domain, str(plist)])]
            result.notes.append("It starts when you log in; logs: agent-bridge service logs")
        elif action == "uninstall":
            result.steps.append(Step([launchctl, "bootout", f"{domain}/{LAUNCHD_LABEL}"], True))
            result.removes.append(plist)
        elif action == "status":
            result.steps.append(Step([launchctl, "print", f"{domain}/{LAUNCHD_LABEL}"]))
        else:
            result.steps.append(Step(["tail", "-n", "200", *(["-f"] if follow else []),
                                      str(log_file)]))
    else:
        unit = base / "systemd" / "user" / UNIT_NAME
        systemctl = [_tool("systemctl", env), "--user"]
        if action == "install":
            assert spec is not None
            result.writes.append((unit, systemd_unit(spec), 0o644))
            result.steps += [Step([*systemctl, "daemon-reload"]),
                             Step([*systemctl, "enable", UNIT_NAME])]
            start = [Step([*systemctl, "restart", UNIT_NAME])]
            user = env.get("USER") or getpass.getuser()
            result.notes.append("To keep it running after you log out (and start it at boot): "
                                f"loginctl enable-linger {shlex.quote(user)}")
        elif action == "uninstall":
            result.steps.append(Step([*systemctl, "disable", "--now", UNIT_NAME], True))
            result.removes.append(unit)
            result.steps.append(Step([*systemctl, "daemon-reload"]))
        elif action == "status":
            result.steps.append(Step([*systemctl, "status", "--no-pager", UNIT_NAME]))
        else:
            result.steps.append(Step([_tool("journalctl", env), "--user", "-u", UNIT_NAME,
                                      "-n", "200", "--no-pager", *(["-f"] if follow else [])]))
    result.passthrough = action in ("status", "logs")
    if action == "install":
        assert spec is not None
        missing = _env_file_plan(result, spec, secrets)
        if missing:  # it would only fail, and be restarted to fail again
            result.notes.insert(0, f"Not started: put {', '.join(missing)} in {spec.env_file} "
                                   "(NAME=value lines), then run `agent-bridge service "
                                   "install` again")
        else:
            result.steps += start
        if spec.config is None:
            result.notes.append("No config file yet: the service runs with the defaults. Run "
                                "`agent-bridge setup telegram` (or slack), then install again")
    if action == "uninstall":
        env_file = base / "agent-bridge" / "env"
        result.notes.append(f"Kept {env_file} (your secrets): remove it yourself if you "
                            "no longer need it")
    return result


def _env_file_plan(result: Plan, spec: ServiceSpec, secrets: list[str]) -> list[str]:
    """Create the environment file, or check the one there; the secrets it lacks."""
    path = spec.env_file
    result.private = path
    if not path.exists():
        result.writes.insert(0, (path, env_file_text(secrets), 0o600))
        return secrets
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        result.notes.append(f"{path} was mode {mode:o}: made 600 (only you may read it)")
    filled = {line.split("=", 1)[0].strip() for line in _lines(path)
              if "=" in line and not line.lstrip().startswith("#")}
    return [name for name in secrets if name not in filled]


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise SetupFailed(f"cannot read {path}: {e}") from e


def service(action: str, *, config_arg: str | None, env: Mapping[str, str],
            dry_run: bool = False, follow: bool = False, platform: str | None = None) -> int:
    platform = platform or sys.platform
    if platform not in ("linux", "darwin"):
        raise SetupFailed(f"agent-bridge service knows systemd (Linux) and launchd (macOS), "
                          f"not {platform}: run `agent-bridge run` under your own supervisor")
    todo = plan(action, config_arg, env, platform=platform, follow=follow)
    if dry_run:
        for path, text, mode in todo.writes:
            print(f"Would write {path} (mode {mode:o}):")
            print(text.rstrip("\n"))
            print()
        for path in todo.removes:
            print(f"Would remove {path}")
        if todo.steps:
            print("Would run:")
            for step in todo.steps:
                print("  " + shlex.join(step.argv))
        for note in todo.notes:
            print(note)
        return 0
    for path, text, mode in todo.writes:
        if path == todo.private and path.exists():
            continue  # the person's secrets: never overwritten
        write_atomically(path, text)
        path.chmod(mode)
        print(f"Wrote {path}")
    if todo.private is not None:
        todo.private.chmod(0o600)
    for path in todo.removes:
        if path.exists():
            path.unlink()
            print(f"Removed {path}")
    for step in todo.steps:
        code = _run(step, passthrough=todo.passthrough)
        if todo.passthrough:
            return code
        if code != 0 and not step.may_fail:
            raise SetupFailed(f"`{shlex.join(step.argv)}` failed (exit {code}); its message "
                              "is above")
    for note in todo.notes:
        print(note)
    return 0


def _run(step: Step, *, passthrough: bool) -> int:
    try:
        if passthrough:
            return subprocess.run(step.argv, check=False).returncode
        done = subprocess.run(step.argv, check=False, capture_output=True, text=True,
                              timeout=120)
    except FileNotFoundError as e:
        raise SetupFailed(f"{step.argv[0]} is not installed here: is this a systemd (or "
                          "launchd) system? `--dry-run` shows the files to set up by hand"
                          ) from e
    except subprocess.TimeoutExpired as e:
        raise SetupFailed(f"`{shlex.join(step.argv)}` did not finish within 120 s") from e
    if done.returncode != 0 and not step.may_fail:
        sys.stderr.write(done.stderr)
        if "Failed to connect to" in done.stderr and "bus" in done.stderr:
            raise SetupFailed(
                f"`{shlex.join(step.argv)}` found no systemd user manager to talk to (no "
                "user session here: a container, `su` or `sudo`, an ssh login without one). "
                "Log in as this user the usual way (`loginctl enable-linger $USER` keeps "
                "one running), then run `agent-bridge service install` again; or run "
                "`agent-bridge run` under a supervisor of your own")
    return done.returncode
