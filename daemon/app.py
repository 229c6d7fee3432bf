"""The composition root: config → store → hub → control API (and surfaces), and back down."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import fcntl
import importlib.util
import logging
import os
import re
import signal
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from bridge.config import Config, require_secret
from bridge.errors import ConfigError
from bridge.surface import ChatSurface, SurfaceUnavailable
from daemon import paths
from daemon.actions import ActionHandler
from daemon.api import ControlServer
from daemon.delivery import Delivery
from daemon.doctor import validate_config
from daemon.errors import DaemonError
from daemon.hub import Hub
from daemon.logformat import LogFormat, formatter
from daemon.reload import controlling_terminal, read_reload, terminal_hung_up
from daemon.scheduler import Scheduler
from daemon.store import Store

log = logging.getLogger("agent-bridge")
# what Telegram accepts as a webhook's secret_token
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")

# httpcore (under python-telegram-bot's httpx) runs `import sniffio` on every request, and
# sniffio is optional: when it is not installed, each of those is a failed import that
# searches sys.path again: about a quarter of the CPU time a Bot API call costs (profiled
# by bench/scale.py). Recording its absence makes them fail at once, as they would anyway.
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]


class Daemon:
    def __init__(self, config: Config, env: Mapping[str, str], *,
                 config_arg: str | None = None) -> None:
        self.config = config
        self.env = env
        self.config_arg = config_arg  # read again on SIGHUP
        self._hub: Hub | None = None
        self._scheduler: Scheduler | None = None
        self._terminal: int | None = None  # see _hangup
        self.state_dir = paths.state_dir(config, env)
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self._lock_file: IO[str] | None = None
        self._watchdog: asyncio.TimerHandle | None = None  # see _log_slow_stop

    def _take_lock(self) -> None:
        tightened = paths.secure_state_dir(self.state_dir)
        if tightened:
            log.warning("%s", tightened)
        # never through a symlink, and not emptied before it is ours: that is another
        # daemon's pid until the flock says otherwise
        handle = os.fdopen(paths.open_private(paths.lock_path(self.state_dir)), "r+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DaemonError(
                f"another agent-bridge is already running with state in {self.state_dir}"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def build_surfaces(self) -> list[ChatSurface]:
        """The configured chat surfaces. The composition root is the one place that knows
        both `daemon` and `bots`; secrets are read here, from the environment only."""
        surfaces: list[ChatSurface] = []
        if self.config.telegram is not None:
            from bots.telegram import TelegramSurface

            telegram = self.config.telegram
            token = require_secret(self.env, telegram.token_env, "telegram.token_env")
            webhook_secret = None
            if telegram.mode == "webhook":  # without it, anyone could post updates
                webhook_secret = require_secret(self.env, telegram.webhook_secret_env,
                                                "telegram.webhook_secret_env")
                if not _WEBHOOK_SECRET.fullmatch(webhook_secret):
                    raise ConfigError("telegram.webhook_secret_env",
                                      f"{telegram.webhook_secret_env} may hold only letters, "
                                      "digits, '_' and '-' (1 to 256 of them)")
            surfaces.append(TelegramSurface(telegram, token, webhook_secret=webhook_secret))
        if self.config.slack is not None:
            from bots.slack import SlackSurface

            slack = self.config.slack
            bot_token = require_secret(self.env, slack.bot_token_env, "slack.bot_token_env")
            if slack.mode == "http":
                secret = require_secret(self.env, slack.signing_secret_env,
                                        "slack.signing_secret_env")
                surfaces.append(SlackSurface(slack, bot_token, signing_secret=secret))
            else:
                app_token = require_secret(self.env, slack.app_token_env, "slack.app_token_env")
                surfaces.append(SlackSurface(slack, bot_token, app_token=app_token))
        return surfaces

    async def run(self) -> None:
        try:
            await self._run()
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()

    async def _run(self) -> None:
        surfaces = self.build_surfaces()
        # each part is stopped again, in reverse order, also when a later one fails to start:
        # a half-started daemon exits at once instead of hanging on with the lock held
        async with contextlib.AsyncExitStack() as started:
            loop = asyncio.get_running_loop()
            # SIGINT and SIGTERM shut down cleanly: running agents are closed and waiting
            # sessions kept resumable; so does SIGHUP when the terminal the daemon runs in
            # closed. Any other SIGHUP (`kill -HUP`, `systemctl reload`) reloads the config.
            # Handled until the last part has stopped.
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._stop_on, sig)
                started.callback(loop.remove_signal_handler, sig)
            self._terminal = controlling_terminal()
            if self._terminal is not None:
                started.callback(os.close, self._terminal)
            loop.add_signal_handler(signal.SIGHUP, self._hangup)
            started.callback(loop.remove_signal_handler, signal.SIGHUP)
            try:
                self._take_lock()
                started.callback(self._release_lock)
                store = await Store.open(paths.database_path(self.state_dir))
            except OSError as e:
                raise DaemonError(state_dir_problem(self.config, self.state_dir, e)) from e
            started.push_async_callback(store.close)
            hub = Hub(config=self.config, store=store)
            started.push_async_callback(hub.shutdown)
            deliveries = []
            for surface in surfaces:
                delivery = Delivery(hub, surface)
                hub.add_surface(surface.name, delivery.notify)
                surface.throttle = delivery.answer_slot
                deliveries.append((surface, delivery))
                started.push_async_callback(_stop_surface, surface, delivery)
            server = ControlServer(hub, paths.socket_path(self.state_dir))
            scheduler = Scheduler(hub)
            started.callback(scheduler.stop)
            self._hub, self._scheduler = hub, scheduler
            started.callback(self._forget_parts)
            await hub.recover()
            await hub.start_background()
            try:
                await server.start()
            except OSError as e:
                raise DaemonError(f"cannot create the control socket {server.path}: "
                                  f"{e.strerror or e}; remove what is in its place") from e
            started.push_async_callback(server.stop)
            await scheduler.start()
            for surface, delivery in deliveries:
                hub.spawn(self.connect(hub, surface, delivery), name=f"surface-{surface.name}")
            log.info("agent-bridge is running: socket %s, database %s",
                     server.path, store.path)
            self.ready.set()
            await self.stopping.wait()
            log.info("shutting down")
            # (the stack unwinds after this: the watchdog outlives it, see `run`); and if the
            # loop itself is stuck, or the interpreter's exit waits on a thread, every
            # thread's stack goes to stderr (the log) a little later (cancelled in `run()`)
            self._watchdog = loop.call_later(SLOW_STOP_S, _log_slow_stop)
            faulthandler.dump_traceback_later(SLOW_STOP_S * 2, exit=False)

    def _stop_on(self, sig: signal.Signals) -> None:
        if not self.stopping.is_set():
            log.info("received %s: stopping", sig.name)
        self.stopping.set()

    def _hangup(self) -> None:
        if terminal_hung_up(self._terminal):
            self._stop_on(signal.SIGHUP)
        else:
            self.reload()

    def reload(self) -> None:
        """Read the config again and apply what may change live (see
        bridge/config_reload.py); a bad file is logged and the running config kept."""
        hub, scheduler = self._hub, self._scheduler
        if hub is None or scheduler is None or self.stopping.is_set():
            log.warning("received SIGHUP while starting or stopping: no reload")
            return
        plan = read_reload(self.config, self.config_arg, self.env)
        if plan is None:
            return
        self.config = plan.config
        hub.apply_config(plan.config)
        scheduler.reschedule()
        logging.getLogger().setLevel(plan.config.daemon.log_level.upper())

    def _forget_parts(self) -> None:
        self._hub = self._scheduler = None

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                self._lock_file.close()
            self._lock_file = None


    async def connect(self, hub: Hub, surface: ChatSurface, delivery: Delivery) -> None:
        """Start a surface (retrying while its platform is unreachable), then deliver."""
        handler = ActionHandler(hub, surface.name,
                                places=lambda: action_places(surface, self.config),
                                fetch=surface.fetch_file)
        backoff = 1.0
        while True:
            try:
                await surface.start(handler)
                break
            except SurfaceUnavailable as e:
                log.warning("%s: %s; retrying in %.0fs", surface.name, e, backoff)
                with contextlib.suppress(Exception):
                    await surface.stop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
        handler.bot_username = surface.bot_username
        log.info("%s connected", surface.name)
        await delivery.run()


def action_places(surface: ChatSurface, config: Config) -> frozenset[str]:
    """Where actions on `surface` count: its home chat and the chats projects are routed to
    (none while it is not connected)."""
    chats: list[str | None] = [None, *sorted(config.routed_chats(surface.name))]
    return frozenset(p for chat in chats if (p := surface.place_of(chat)) is not None)


SLOW_STOP_S = 10.0  # a stop that takes longer says what it is still waiting for


def _log_slow_stop() -> None:
    """Log every task still pending, with where it waits, and every thread's stack: a stop
    that hangs must say why in the log it leaves."""
    pending = [t for t in asyncio.all_tasks() if not t.done()]
    lines = [f"still stopping after {SLOW_STOP_S:.0f}s; {len(pending)} tasks pending:"]
    for task in pending:
        frames = task.get_stack(limit=8)
        where = " <- ".join(f"{f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno} "
                            f"{f.f_code.co_name}" for f in reversed(frames))
        lines.append(f"  {task.get_name()}: {where or task.get_coro()!r}")
    for ident, frame in sys._current_frames().items():
        stack = traceback.extract_stack(frame, limit=6)
        lines.append(f"  thread {ident}: " + " <- ".join(
            f"{s.filename.rsplit('/', 2)[-1]}:{s.lineno} {s.name}" for s in reversed(stack)))
    log.warning("\n".join(lines))


SURFACE_STOP_S = 5.0  # a surface's own stop (its last poll, its handlers) gets this long


async def _stop_surface(surface: ChatSurface, delivery: Delivery) -> None:
    delivery.budgets.close()  # an answer waiting for its slot must not hold up the stop
    with contextlib.suppress(Exception):  # an unreachable platform must not hold the stop
        await asyncio.wait_for(surface.stop(), SURFACE_STOP_S)


def state_dir_problem(config: Config, state: Path, error: OSError) -> str:
    """What to tell a person whose state directory cannot be made or written."""
    where = ("[daemon] state_dir" if config.daemon.state_dir
             else "XDG_STATE_HOME or [daemon] state_dir")
    problem = error.strerror or str(error)
    if error.filename and os.fspath(error.filename) != str(state):
        problem += f" ({os.fspath(error.filename)})"
    return (f"cannot write the state directory {state}: {problem}; set {where} to a "
            "writable directory")


class SecretFilter(logging.Filter):
    """Replaces every configured secret in log records: a token must never reach a log,
    whatever library formats the message (HTTP clients like to log URLs)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 6]

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if any(s in text for s in self.secrets):
                for secret in self.secrets:
                    text = text.replace(secret, "[redacted]")
                record.msg = f"{record.getMessage()}\n{text}"
                record.args, record.exc_info, record.exc_text = None, None, None
        return True


def secret_values(config: Config, env: Mapping[str, str]) -> list[str]:
    names = []
    if config.telegram is not None:
        names += [config.telegram.token_env, config.telegram.webhook_secret_env]
    if config.slack is not None:
        names += [config.slack.bot_token_env, config.slack.app_token_env,
                  config.slack.signing_secret_env]
    return [env[n] for n in names if env.get(n)]


def setup_logging(config: Config, env: Mapping[str, str], log_format: LogFormat = "text") -> None:
    handler = logging.StreamHandler()
    secrets = SecretFilter(secret_values(config, env))
    handler.setFormatter(formatter(log_format, secrets.scrub))
    handler.addFilter(secrets)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.daemon.log_level.upper())
    # chatty libraries: request lines (with tokens in their URLs) and per-query traces
    for noisy in ("httpx", "httpcore", "aiosqlite", "apscheduler", "telegram.ext",
                  "asyncio", "slack_bolt", "slack_sdk", "asyncssh"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(config_arg: str | None, log_format: LogFormat = "text") -> int:
    env = dict(os.environ)
    config, path = paths.read_config(config_arg, env)
    try:  # the same checks `doctor` makes: nothing starts on a config that cannot work
        warnings = validate_config(config, env)
    except ConfigError as e:
        raise ConfigError(e.key, f"{e.message} (in {path})" if path else e.message) from e
    setup_logging(config, env, log_format)
    log.info("config: %s", path or "none found, using defaults")
    for warning in warnings:
        log.warning("config: %s", warning)
    try:
        asyncio.run(Daemon(config, env, config_arg=config_arg).run())
    finally:  # armed when the stop began (`Daemon._run`): the stop is over now
        faulthandler.cancel_dump_traceback_later()
    return 0
