"""SIGHUP: read the config file again and apply what may change while the daemon runs.

`read_reload` reads and checks the file as `run` does at start; a file that cannot be read
or fails a check is logged with the key it names, and the running config stays as it was.
What may change live and what waits for a restart is `bridge/config_reload.py`'s call; the
daemon (`daemon/app.py`) hands the result to its parts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from bridge.config import Config
from bridge.config_reload import ReloadPlan, plan_reload
from bridge.errors import ConfigError
from daemon import paths
from daemon.doctor import validate_config
from daemon.errors import DaemonError

log = logging.getLogger("agent-bridge")


def read_reload(current: Config, config_arg: str | None,
                env: Mapping[str, str]) -> ReloadPlan | None:
    """The reload to apply, or None when the file cannot be used (logged, with the key)."""
    where = "the config"
    try:
        new, path = paths.read_config(config_arg, env)
        where = str(path) if path is not None else "the defaults (no config file found)"
        for warning in validate_config(new, env):
            log.warning("config: %s", warning)
        plan = plan_reload(current, new)
        validate_config(plan.config, env)
    except ConfigError as e:
        log.error("config reload failed, the running config is kept: %s", e)
        return None
    except (DaemonError, OSError) as e:
        log.error("config reload failed, the running config is kept: %s", e)
        return None
    applied = ", ".join(plan.applied) or "nothing changed that applies live"
    log.info("config reloaded from %s: %s", where, applied)
    if plan.needs_restart:
        log.warning("config: %s changed; these apply only after a restart of agent-bridge "
                    "(until then the old values stay)", ", ".join(plan.needs_restart))
    return plan


def terminal_hung_up(fd: int | None) -> bool:
    """Whether the controlling terminal held open on `fd` (see `controlling_terminal`) hung
    up: a SIGHUP then means the terminal closed, not "reload". A hung-up tty answers every
    ioctl with EIO; a plain `kill -HUP` leaves it working."""
    if fd is None:
        return False
    try:
        os.tcgetpgrp(fd)
    except OSError:
        return True
    return False


def controlling_terminal() -> int | None:
    """The daemon's controlling terminal, held open (close-on-exec) to tell a hangup from a
    reload; None when it has none (a service, `setsid`, a test), where SIGHUP always
    reloads. Through /dev/tty, so that `agent-bridge run 2>log &` in a terminal still
    stops when that terminal closes."""
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
