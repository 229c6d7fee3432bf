"""The composition root: config → store → hub → control API (and surfaces), and back down."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from bridge.config import Config, load_config
from bridge.errors import ConfigError
from daemon import paths
from daemon.api import ControlServer
from daemon.errors import DaemonError
from daemon.hub import Hub
from daemon.store import Store

log = logging.getLogger("agent-bridge")


def read_config(config_arg: str | None, env: Mapping[str, str]) -> tuple[Config, Path | None]:
    path = paths.find_config(config_arg, env)
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


class Daemon:
    def __init__(self, config: Config, env: Mapping[str, str]) -> None:
        self.config = config
        self.env = env
        self.state_dir = paths.state_dir(config, env)
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self._lock_file: IO[str] | None = None

    def _take_lock(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = (self.state_dir / "agent-bridge.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DaemonError(
                f"another agent-bridge is already running with state in {self.state_dir}"
            ) from None
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    async def run(self) -> None:
        self._take_lock()
        store = await Store.open(paths.database_path(self.state_dir))
        hub = Hub(config=self.config, store=store)
        server = ControlServer(hub, paths.socket_path(self.state_dir))
        try:
            await hub.recover()
            await hub.start_background()
            await server.start()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.stopping.set)
            log.info("agent-bridge is running: socket %s, database %s",
                     server.path, store.path)
            self.ready.set()
            await self.stopping.wait()
            log.info("shutting down")
        finally:
            await server.stop()
            await hub.shutdown()
            await store.close()
            if self._lock_file is not None:
                with contextlib.suppress(OSError):
                    self._lock_file.close()


def run(config_arg: str | None) -> int:
    env = dict(os.environ)
    config, path = read_config(config_arg, env)
    logging.basicConfig(
        level=config.daemon.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log.info("config: %s", path or "none found, using defaults")
    asyncio.run(Daemon(config, env).run())
    return 0
