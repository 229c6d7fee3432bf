"""Where the config, the state, the database and the control socket live."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bridge.config import Config
from daemon.errors import DaemonError


def find_config(arg: str | None, env: Mapping[str, str]) -> Path | None:
    """--config, else $AGENT_BRIDGE_CONFIG, else $XDG_CONFIG_HOME/agent-bridge/config.toml.

    A path given explicitly must exist; the default one may be absent (defaults apply).
    """
    candidates = ((arg, "--config"), (env.get("AGENT_BRIDGE_CONFIG"), "AGENT_BRIDGE_CONFIG"))
    for given, source in candidates:
        if given:
            path = Path(given).expanduser()
            if not path.is_file():
                raise DaemonError(f"{source} names {path}, which is not a file")
            return path
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    default = Path(base) / "agent-bridge" / "config.toml"
    return default if default.is_file() else None


def state_dir(config: Config, env: Mapping[str, str]) -> Path:
    if config.daemon.state_dir:
        return Path(os.path.expandvars(config.daemon.state_dir)).expanduser()
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "agent-bridge"


def socket_path(state: Path) -> Path:
    return state / "agent-bridge.sock"


def database_path(state: Path) -> Path:
    return state / "agent-bridge.db"
