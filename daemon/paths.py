"""Where the config, the state, the database and the control socket live."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bridge.config import Config, load_config
from bridge.errors import ConfigError
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


def read_config(config_arg: str | None, env: Mapping[str, str]) -> tuple[Config, Path | None]:
    """The config (defaults when there is no file) and the file it came from.

    Here rather than in daemon/app.py: every CLI command needs it to find the socket, and
    importing the daemon (python-telegram-bot, asyncssh, …) would triple its start time."""
    path = find_config(config_arg, env)
    if path is None:
        return load_config(""), None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DaemonError(f"cannot read the config {path}: {e}") from e
    try:
        return load_config(text, source=str(path)), path
    except ConfigError as e:
        raise ConfigError(e.key, f"{e.message} (in {path})") from e


def state_dir(config: Config, env: Mapping[str, str]) -> Path:
    if config.daemon.state_dir:
        return Path(os.path.expandvars(config.daemon.state_dir)).expanduser()
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "agent-bridge"


def socket_path(state: Path) -> Path:
    return state / "agent-bridge.sock"


def database_path(state: Path) -> Path:
    return state / "agent-bridge.db"
