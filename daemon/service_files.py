"""The files `agent-bridge service install` writes: a systemd user unit (Linux), a launchd
agent (macOS), and the environment file that holds the tokens. Text only, no I/O.

The service runs the installed `agent-bridge` by its absolute path with the config found at
install time, restarts it when it fails, and reads the tokens from the environment file,
which agent-bridge creates private (0600) with the variable names commented out and never
fills: secrets are typed there by the person, not copied by a tool.
"""

from __future__ import annotations

import plistlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

UNIT_NAME = "agent-bridge.service"
LAUNCHD_LABEL = "dev.agent-bridge"
# Variables passed through from the shell that installs the service: where the agents are
# found (PATH), and where the config and state are when they are moved (XDG_*).
PASSED_THROUGH = ("PATH", "XDG_CONFIG_HOME", "XDG_STATE_HOME")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSpec:
    """What the service runs, wherever it is installed."""

    executable: Path  # the installed agent-bridge
    config: Path | None  # None: no config file yet, the defaults apply
    env_file: Path
    environment: Mapping[str, str]  # the PASSED_THROUGH ones that are set
    home: Path

    @property
    def argv(self) -> list[str]:
        config = ["--config", str(self.config)] if self.config else []
        return [str(self.executable), *config, "run"]


def systemd_quote(arg: str) -> str:
    """One argument of ExecStart=: double-quoted, with systemd's escapes (`%` is a
    specifier, `$` a variable, `\\` and `"` end or escape the quoted word)."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("%", "%%").replace("$", "$$") + '"'


def _environment_line(name: str, value: str) -> str:
    # Environment= expands specifiers but not variables: `$` stays as it is
    escaped = f"{name}={value}".replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'Environment="{escaped}"'


def systemd_unit(spec: ServiceSpec) -> str:
    environment = [_environment_line(k, v) for k, v in sorted(spec.environment.items())]
    env_file = str(spec.env_file).replace("%", "%%")
    return "\n".join([
        "# Written by `agent-bridge service install`; `agent-bridge service uninstall`",
        "# removes it. Tokens go in the EnvironmentFile, never here.",
        "[Unit]",
        "Description=agent-bridge: coding agents on this machine, steered from chat",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(systemd_quote(a) for a in spec.argv),
        f"EnvironmentFile={env_file}",
        *environment,
        "WorkingDirectory=%h",
        "Restart=on-failure",
        "RestartSec=5",
        # SIGTERM to the daemon only: it stops its agents itself (stdin EOF, then signals);
        # whatever is left when the timeout ends is killed
        "KillMode=mixed",
        "TimeoutStopSec=60",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ])


# sh reads the environment file (NAME=value lines, as systemd does), then becomes the daemon
_LAUNCHD_SHELL = 'set -a; . "$1"; set +a; shift; exec "$@"'


def launchd_plist(spec: ServiceSpec, log_file: Path) -> str:
    document = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": ["/bin/sh", "-c", _LAUNCHD_SHELL, "agent-bridge",
                             str(spec.env_file), *spec.argv],
        "EnvironmentVariables": dict(spec.environment),
        "WorkingDirectory": str(spec.home),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restarted when it fails, not when stopped
        "ThrottleInterval": 5,
        "ProcessType": "Background",
        "StandardOutPath": str(log_file),
        "StandardErrorPath": str(log_file),
    }
    return plistlib.dumps(document, sort_keys=False).decode("utf-8")


def env_file_text(variables: Sequence[str]) -> str:
    names = list(dict.fromkeys(variables)) or ["TELEGRAM_BOT_TOKEN"]
    return "\n".join([
        "# The agent-bridge service's secrets: NAME=value lines, one per line, no `export`,",
        "# no quotes. Private to you (mode 600); agent-bridge never writes a secret here.",
        "# Fill in the ones your config uses, then: agent-bridge service install",
        *(f"# {name}=" for name in names),
        "",
    ])
