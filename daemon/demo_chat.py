"""Which chat `agent-bridge demo` may show its cards in: the person's own Telegram or
Slack, as their config names them, when their tokens are set and their own daemon is not
running (it polls the same bot: two pollers would take each other's taps). Their config is
only read; their daemon and state are never touched.
"""

from __future__ import annotations

import fcntl
import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from bridge.errors import ConfigError
from daemon import paths
from daemon.errors import DaemonError


def chat_tables(config_arg: str | None, env: Mapping[str, str]) -> tuple[str, str | None]:
    """The person's `[telegram]` and `[slack]` tables as TOML for the demo's config (their
    tokens stay in the environment), and a note when they are left out: no file or no such
    section, a token not set, or their own daemon running (it polls the same bot; two
    pollers would take each other's taps)."""
    path = paths.find_config(config_arg, env)
    if path is None:
        return "", None
    try:
        config, _ = paths.read_config(str(path), env)
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (ConfigError, DaemonError, OSError, tomllib.TOMLDecodeError) as e:
        return "", f"your config cannot be read ({e}); the demo stays in this terminal"
    tokens = []
    if config.telegram is not None:
        tokens.append(config.telegram.token_env)
    if config.slack is not None:
        tokens.append(config.slack.bot_token_env)
        tokens.append(config.slack.signing_secret_env if config.slack.mode == "http"
                      else config.slack.app_token_env)
    if not tokens:
        return "", None
    missing = [name for name in tokens if not env.get(name)]
    if missing:
        return "", (f"{', '.join(missing)} not set: the demo stays in this terminal (export "
                    "it to see the demo's cards in your chat)")
    if daemon_running(paths.state_dir(config, env)):
        return "", ("your agent-bridge daemon is running and uses the same bot: the demo "
                    "stays in this terminal (stop the daemon to see the demo in your chat)")
    tables = []
    for name in ("telegram", "slack"):
        table = document.get(name)
        if isinstance(table, dict):
            tables.append(f"[{name}]")
            tables += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    return "\n".join(tables) + "\n", None


def daemon_running(state: Path) -> bool:
    """Whether a daemon holds the lock in `state` (probed without taking it for longer than
    the probe, and never created)."""
    try:
        fd = os.open(paths.lock_path(state), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # releases the probe's lock
    return False
