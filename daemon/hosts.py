"""Where agents and commands run: this machine, or a configured `[hosts.NAME]` over SSH.

A session's agent is started by its host's launcher and its git commands run by its host's
command runner. When a host's connection drops, its sessions notice on their own (their
pipes end and they become `disconnected`); here the connection is brought back.
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.config import HostConfig
from daemon.errors import LaunchError
from daemon.gitrun import CommandRunner, LocalRunner
from daemon.launch import AgentLauncher, LocalLauncher
from daemon.ssh import SshHost, reconnect_forever
from daemon.tasks import Tasks


class Hosts:
    """The launcher and command runner of each host ("local" or a configured one)."""

    def __init__(self, configured: Mapping[str, HostConfig], *, tasks: Tasks,
                 launcher: AgentLauncher | None = None) -> None:
        self.local_launcher = launcher or LocalLauncher()
        self.local_runner: CommandRunner = LocalRunner()
        self._tasks = tasks
        self.remote: dict[str, SshHost] = {
            name: SshHost(name, host, on_disconnect=self._host_down)
            for name, host in configured.items()
        }

    def launcher_for(self, host: str) -> AgentLauncher:
        if host == "local":
            return self.local_launcher
        return self._remote(host)

    def runner_for(self, host: str) -> CommandRunner:
        if host == "local":
            return self.local_runner
        return self._remote(host)

    def _remote(self, host: str) -> SshHost:
        try:
            return self.remote[host]
        except KeyError:
            raise LaunchError(f"no host named {host!r} in [hosts]") from None

    async def _host_down(self, name: str) -> None:
        """A host's connection dropped: bring it back (its sessions notice on their own)."""
        self._tasks.spawn(reconnect_forever(self.remote[name]), name=f"reconnect-{name}")

    async def close(self) -> None:
        for host in self.remote.values():
            await host.close()
