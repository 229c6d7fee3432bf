"""Agents on other machines, over SSH (asyncssh): one verified connection per host.

A host's connection is shared by its sessions and kept alive; when it drops, the sessions
on it become `disconnected` (their pending approvals expire: nothing is approved) and the
connection is re-established with backoff, after which `resume` continues them from the
agent's own session id. Host keys are always checked against known_hosts: an unknown or
changed key refuses the connection with the command that adds the key, and there is no
setting that turns the check off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncssh

from bridge.config import HostConfig
from daemon.errors import LaunchError
from daemon.gitrun import (
    CommandNotFound,
    CommandResult,
    CommandTimeout,
    GitFailed,
    WorkdirNotFound,
)
from daemon.launch import READ_CHUNK, StderrTail, drain_stderr

log = logging.getLogger(__name__)
KEEPALIVE_INTERVAL = 15.0
KEEPALIVE_COUNT_MAX = 3
CONNECT_TIMEOUT = 15.0
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MISSING_DIR = 97  # the exit status our `cd … || exit 97` prefix uses


def remote_command(argv: Sequence[str], *, cwd: str, env: Mapping[str, str]) -> str:
    """A shell command that runs `argv` in `cwd` with `env`, without relying on the server
    accepting environment requests (OpenSSH drops them unless AcceptEnv allows). Every
    part is quoted for the shell; a variable name that is not an identifier (the config
    refuses those) is refused here too, as it could not be quoted."""
    for name in env:
        if not _ENV_NAME.fullmatch(name):
            raise LaunchError(f"{name!r} is not a valid environment variable name")
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    prefix = f"env {assignments} " if assignments else ""
    return f"cd {shlex.quote(cwd)} 2>/dev/null || exit {_MISSING_DIR}; exec {prefix}" + \
        shlex.join(argv)


class HostUnavailable(LaunchError):
    code = "host_unavailable"


class SshProcess:
    """An agent running on a host: the same face as a local process."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes], host: SshHost) -> None:
        self._process = process
        self.host = host
        self.pid: int | None = None
        self.disconnected = False
        self.host_name: str | None = host.name
        self._stderr = StderrTail()
        self._stderr_task = asyncio.get_running_loop().create_task(
            drain_stderr(process.stderr.read, self._stderr), name=f"stderr-{host.name}")

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def stderr_tail(self) -> str:
        return self._stderr.text()

    async def write(self, data: bytes) -> None:
        try:
            self._process.stdin.write(data)
            await self._process.stdin.drain()
        except (asyncssh.Error, OSError) as e:
            raise BrokenPipeError(str(e)) from e

    async def read(self) -> bytes:
        try:
            return await self._process.stdout.read(READ_CHUNK)
        except (asyncssh.Error, OSError) as e:
            self.disconnected = True
            log.info("host %s: lost the agent's output (%s)", self.host.name, e)
            return b""

    async def close_stdin(self) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            self._process.stdin.write_eof()

    async def wait(self) -> int:
        try:
            completed = await self._process.wait()
            status = completed.exit_status
        except (asyncssh.Error, OSError):
            status = None
        if status is None:
            # no exit status: the channel closed without one, i.e. the connection went
            self.disconnected = self.disconnected or not self.host.connected
            status = -1
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._stderr_task, 1.0)
        return status

    def terminate(self) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            self._process.terminate()

    def kill(self) -> None:
        with contextlib.suppress(asyncssh.Error, OSError):
            self._process.kill()
        with contextlib.suppress(asyncssh.Error, OSError):
            self._process.close()


class SshHost:
    """One host: its connection, a launcher and a command runner over it."""

    def __init__(self, name: str, config: HostConfig,
                 on_disconnect: Callable[[str], Awaitable[None]] | None = None) -> None:
        self.name = name
        self.config = config
        self.on_disconnect = on_disconnect
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.closing = False
        self.key_path = str(Path(config.key_file).expanduser()) if config.key_file else None

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def known_hosts_path(self) -> Path:
        return Path(self.config.known_hosts).expanduser()

    def _add_key_hint(self) -> str:
        address, port = self.config.address, self.config.port
        target = shlex.quote(address) if port == 22 else f"-p {port} {shlex.quote(address)}"
        known = shlex.quote(str(self.known_hosts_path()))  # to be pasted: quoted, ~ expanded
        return (f"check the host's key fingerprint, then add it with: "
                f"ssh-keyscan {target} >> {known}")

    async def connection(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is not None:
                return self._conn
            self._conn = await self._connect()
            self._watch = asyncio.get_running_loop().create_task(
                self._watch_connection(self._conn), name=f"ssh-watch-{self.name}")
            return self._conn

    async def _connect(self) -> asyncssh.SSHClientConnection:
        cfg = self.config
        known = self.known_hosts_path()
        if not known.is_file():
            raise HostUnavailable(
                f"host {self.name}: no known_hosts file at {known}; {self._add_key_hint()}")
        options: dict[str, Any] = {
            "port": cfg.port,
            "known_hosts": str(known),  # never None: None would turn verification off
            "keepalive_interval": KEEPALIVE_INTERVAL,
            "keepalive_count_max": KEEPALIVE_COUNT_MAX,
            "config": None,
        }
        if cfg.user:
            options["username"] = cfg.user
        if cfg.key_file:
            options["client_keys"] = [self.key_path]
            options["agent_path"] = None
        try:
            conn = await asyncio.wait_for(asyncssh.connect(cfg.address, **options),
                                          CONNECT_TIMEOUT)
        except asyncssh.HostKeyNotVerifiable as e:
            self.last_error = f"host key not verified: {e}"
            raise HostUnavailable(
                f"host {self.name} ({cfg.address}:{cfg.port}): its host key is unknown or has "
                f"changed (not in {cfg.known_hosts}), so the connection was refused; "
                f"{self._add_key_hint()}") from e
        except asyncssh.PermissionDenied as e:
            self.last_error = "permission denied"
            raise HostUnavailable(
                f"host {self.name}: the server refused our key"
                f"{' ' + cfg.key_file if cfg.key_file else ''} for user {cfg.user or '(default)'};"
                " add its public key to ~/.ssh/authorized_keys there") from e
        except (OSError, asyncssh.Error, TimeoutError) as e:
            self.last_error = str(e) or type(e).__name__
            raise HostUnavailable(
                f"host {self.name} ({cfg.address}:{cfg.port}) is unreachable: "
                f"{self.last_error}") from e
        self.last_error = None
        log.info("host %s: connected", self.name)
        return conn

    async def _watch_connection(self, conn: asyncssh.SSHClientConnection) -> None:
        with contextlib.suppress(Exception):
            await conn.wait_closed()
        async with self._lock:
            if self._conn is conn:
                self._conn = None
        if self.closing:
            return
        log.warning("host %s: connection lost", self.name)
        if self.on_disconnect is not None:
            await self.on_disconnect(self.name)

    async def close(self) -> None:
        self.closing = True
        conn = self._conn
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5)
        if self._watch is not None:
            self._watch.cancel()

    # -- the launcher -----------------------------------------------------------------

    async def spawn(self, argv: Sequence[str], *, cwd: str,
                    env: Mapping[str, str]) -> SshProcess:
        conn = await self.connection()
        env = {**self.config.env, **env}
        try:
            process = await conn.create_process(remote_command(argv, cwd=cwd, env=env),
                                                encoding=None)
        except (asyncssh.Error, OSError) as e:
            raise HostUnavailable(f"host {self.name}: cannot start the agent: {e}") from e
        return SshProcess(process, self)

    # -- the command runner (git over the same connection) -----------------------------

    async def run(self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str] | None = None,
                  timeout: float = 30.0, input: bytes | None = None) -> CommandResult:
        try:
            conn = await self.connection()
        except HostUnavailable as e:
            raise WorkdirNotFound(f"{cwd} on {self.name} ({e.message})") from e
        command = remote_command(argv, cwd=cwd, env={**(env or {})})
        try:
            result = await conn.run(command, encoding=None, check=False, timeout=timeout,
                                    input=input)
        except asyncssh.TimeoutError as e:
            raise CommandTimeout(argv, timeout) from e
        except (asyncssh.Error, OSError) as e:
            raise WorkdirNotFound(f"{cwd} on {self.name} ({e})") from e
        status = result.exit_status if result.exit_status is not None else 255
        stdout = result.stdout if isinstance(result.stdout, bytes) else b""
        stderr = result.stderr if isinstance(result.stderr, bytes) else b""
        if status == _MISSING_DIR:
            raise WorkdirNotFound(f"{cwd} on {self.name}")
        if status == 127:
            raise CommandNotFound(f"{argv[0]} on {self.name}")
        return CommandResult(status, stdout, stderr)

    async def write_file(self, path: str, data: bytes, *, timeout: float = 60.0) -> None:
        """Write `data` to `path` on the host (`FileDrop`): `cat` fed through the channel."""
        try:
            conn = await self.connection()
        except HostUnavailable as e:
            raise WorkdirNotFound(f"{path} on {self.name} ({e.message})") from e
        command = remote_command(["sh", "-c", 'cat > "$1"', "sh", path], cwd="/", env={})
        try:
            result = await conn.run(command, input=data, encoding=None, check=False,
                                    timeout=timeout)
        except asyncssh.TimeoutError as e:
            raise CommandTimeout(["cat", ">", path], timeout) from e
        except (asyncssh.Error, OSError) as e:
            raise WorkdirNotFound(f"{path} on {self.name} ({e})") from e
        if result.exit_status != 0:
            stderr = result.stderr if isinstance(result.stderr, bytes) else b""
            raise GitFailed(["cat", ">", path], result.exit_status or 255, stderr)


async def reconnect_forever(host: SshHost, *, first: float = 1.0, most: float = 60.0) -> None:
    """Reconnect with exponential backoff until it works (or the host is being closed)."""
    delay = first
    while not host.closing:
        try:
            await host.connection()
            return
        except HostUnavailable as e:
            log.info("host %s: still down (%s); next try in %.0fs", host.name, e.message, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, most)
