"""An SSH host for tests: asyncssh's server on 127.0.0.1:0 with generated host and client
keys and a real known_hosts file. Commands run as local subprocesses with their stdio piped
through the channel; signals from the client (terminate, kill) reach them; `drop()` cuts
every connection the way a pulled cable would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from pathlib import Path
from typing import Any

import asyncssh

SIGNALS = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL, "INT": signal.SIGINT}


class FakeSshHost:
    def __init__(self, tmp: Path, name: str, *, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.dir = tmp / f"ssh-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.env = env or {}
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.key_file = self.dir / "id_ed25519"
        self.key_file.write_bytes(self.client_key.export_private_key())
        self.key_file.chmod(0o600)
        self.known_hosts = self.dir / "known_hosts"
        self.port = 0
        self.commands: list[str] = []
        self._server: asyncssh.SSHAcceptor | None = None
        self._connections: list[Any] = []
        self._procs: list[asyncio.subprocess.Process] = []

    def config(self, *, user: str = "agent") -> str:
        return (f"[hosts.{self.name}]\naddress = \"127.0.0.1\"\nport = {self.port}\n"
                f"user = \"{user}\"\nkey_file = \"{self.key_file}\"\n"
                f"known_hosts = \"{self.known_hosts}\"\n")

    async def start(self, port: int = 0) -> None:
        host = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: Any) -> None:
                host._connections.append(conn)

        self._server = await asyncssh.create_server(
            Server, "127.0.0.1", port, server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(
                self.client_key.export_public_key().decode()),
            process_factory=self._handle, encoding=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.known_hosts.write_text(
            f"[127.0.0.1]:{self.port} {self.host_key.export_public_key().decode()}")

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        command = process.command or "true"
        self.commands.append(command)
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, env={**os.environ, **self.env},
        )
        self._procs.append(proc)

        async def into_agent() -> None:
            assert proc.stdin is not None
            while True:
                try:
                    data = await process.stdin.read(65536)
                except asyncssh.SignalReceived as sig:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, SIGNALS.get(sig.signal, signal.SIGTERM))
                    continue
                except (asyncssh.Error, OSError):
                    data = b""
                if not data:
                    with contextlib.suppress(Exception):
                        proc.stdin.close()
                    return
                with contextlib.suppress(Exception):
                    proc.stdin.write(data)
                    await proc.stdin.drain()

        async def out_of_agent(stream: asyncio.StreamReader | None, sink: Any) -> None:
            assert stream is not None
            while data := await stream.read(65536):
                try:
                    sink.write(data)
                except Exception:
                    return

        feeder = asyncio.get_running_loop().create_task(into_agent())
        await asyncio.gather(out_of_agent(proc.stdout, process.stdout),
                             out_of_agent(proc.stderr, process.stderr))
        code = await proc.wait()
        feeder.cancel()
        with contextlib.suppress(Exception):
            process.exit(code if code >= 0 else 128 - code)

    def drop(self) -> None:
        """Cut every connection at once (the host vanished from the network)."""
        for conn in self._connections:
            with contextlib.suppress(Exception):
                conn.abort()
        self._connections.clear()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.drop()
        for proc in self._procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 5)


class ThreadedSshHosts:
    """SSH hosts served from their own event loop in a thread, for sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hosts: list[FakeSshHost] = []

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def add(self, tmp: Path, name: str, *, env: dict[str, str] | None = None) -> FakeSshHost:
        host = FakeSshHost(tmp, name, env=env)
        self.run(host.start())
        self.hosts.append(host)
        return host

    def drop(self, host: FakeSshHost) -> None:
        self.loop.call_soon_threadsafe(host.drop)

    def stop(self, host: FakeSshHost) -> None:
        self.run(host.stop())

    def close(self) -> None:
        for host in self.hosts:
            with contextlib.suppress(Exception):
                self.run(host.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
