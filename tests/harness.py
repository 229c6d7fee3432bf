"""Run `agent-bridge run` as a real subprocess and drive it through the CLI, as a user would.

Every process a test starts carries AGENT_BRIDGE_TEST_TAG in its environment (children
inherit it), so teardown can prove that none outlives the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAKE_CLAUDE = ROOT / "tests" / "fakes" / "fake_claude.py"
FAKE_CODEX = ROOT / "tests" / "fakes" / "fake_codex.py"
FAKE_ACP = ROOT / "tests" / "fakes" / "fake_acp.py"
FAKES = {"claude": FAKE_CLAUDE, "codex": FAKE_CODEX, "acp": FAKE_ACP}


# the daemon's own stop is bounded (a surface 5 s, agents their grace); under a loaded CI
# machine it may take longer than on a desk, and past 10 s it logs what it waits for
STOP_WAIT = 30.0


@dataclass(frozen=True, slots=True)
class FakeAgent:
    """An agent run by the fake for `protocol`; `args` go to the fake (e.g. `--no-resume`),
    `settings` are extra TOML lines for its `[agents.NAME]` table."""

    protocol: str = "claude"
    scenario: str | None = None
    args: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()

    def command(self, record: Path) -> list[str]:
        command = [sys.executable, str(FAKES[self.protocol]), "--record", str(record)]
        if self.scenario:
            command += ["--scenario", self.scenario]
        return command + list(self.args)


def wait_until(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.02,
               what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def agent_bridge_argv() -> list[str]:
    script = Path(sys.executable).parent / "agent-bridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "daemon.cli"]


def tagged_pids(tag: str, variable: str = "AGENT_BRIDGE_TEST_TAG") -> list[int]:
    """Live processes (not this one) whose environment has `variable=tag`."""
    marker = f"{variable}={tag}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if marker in environ.split(b"\0") and ") Z" not in stat:
            pids.append(int(entry.name))
    return pids


class Bridge:
    """A daemon in a temporary state dir with fake agents, and a CLI to talk to it."""

    def __init__(self, tmp: Path, *, agents: dict[str, list[str] | FakeAgent] | None = None,
                 extra: str = "") -> None:
        self.tmp = tmp
        self.tag = uuid.uuid4().hex
        self.project = tmp / "project"
        self.project.mkdir(exist_ok=True)
        self.record = tmp / "record.jsonl"
        self.config = tmp / "config.toml"
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "FAKE_CLAUDE_HOME": str(tmp / "fake-claude-home"),
            "CODEX_HOME": str(tmp / "codex-home"),
            "FAKE_ACP_HOME": str(tmp / "fake-acp-home"),
            "AGENT_BRIDGE_TEST_TAG": self.tag,
        }
        self.env.pop("AGENT_BRIDGE_CONFIG", None)
        agents = {"claude": ["approve"], **(agents or {})}
        lines = [
            "[daemon]",
            f'state_dir = "{tmp / "state"}"',
            'shutdown_grace = "1s"',
            'log_level = "debug"',
        ]
        for name, spec in agents.items():
            if isinstance(spec, FakeAgent):  # any protocol's fake
                protocol, settings = spec.protocol, spec.settings
                command = spec.command(self.record)
            else:  # a list is fake_claude's scenario arguments, as it always was
                protocol, settings = "claude", ()
                command = [sys.executable, str(FAKE_CLAUDE), "--record", str(self.record)]
                if spec:
                    command += ["--scenario", *spec]
            lines += [f"[agents.{name}]", f'protocol = "{protocol}"',
                      f"command = {json.dumps(command)}", *settings]
        lines += ["[[projects]]", 'name = "demo"', f'path = "{self.project}"', extra]
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tmp / "daemon.log"

    # -- the daemon -----------------------------------------------------------------

    def start(self, *run_args: str) -> None:
        """Start `agent-bridge run` (with `run_args`, e.g. `--log-format json`)."""
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [*agent_bridge_argv(), "--config", str(self.config), "run", *run_args],
            env=self.env, stdout=handle, stderr=subprocess.STDOUT, cwd=self.tmp,
        )
        handle.close()
        wait_until(lambda: self._ping(), what=f"the daemon to answer (log: {self.log_text()})")

    def _ping(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"the daemon exited: {self.log_text()}")
        return self.cli("sessions", check=False).returncode == 0

    def kill(self) -> None:
        """SIGKILL, the way a crash or an OOM kill ends it."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"the daemon did not stop within {STOP_WAIT:g}s of SIGTERM; "
                                 f"its log ends:\n{self.log_text()}") from None
        finally:
            self.process = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def leftovers(self) -> list[int]:
        return tagged_pids(self.tag)

    def cleanup(self) -> list[int]:
        """Stop everything; return the pids that had outlived the daemon (and kill them)."""
        if self.process is not None:
            self.stop()
        try:
            wait_until(lambda: not self.leftovers(), timeout=5, what="agents to exit")
            return []
        except AssertionError:
            left = self.leftovers()
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return left

    # -- the CLI --------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*agent_bridge_argv(), "--config", str(self.config), *args],
            env=self.env, capture_output=True, text=True, timeout=60, cwd=self.tmp,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"agent-bridge {' '.join(args)} failed ({result.returncode}): {result.stderr}\n"
                f"daemon log: {self.log_text()}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def session(self, sid: str) -> dict[str, Any]:
        return self.json("show", sid)

    def wait_state(self, sid: str, *states: str, timeout: float = 15.0) -> dict[str, Any]:
        return wait_until(
            lambda: (s := self.session(sid))["state"] in states and s,
            timeout=timeout, what=f"session {sid} to be {'/'.join(states)}",
        )

    def wait_approval(self, sid: str, count: int = 1) -> list[dict[str, Any]]:
        return wait_until(
            lambda: len(p := self.session(sid)["pending_approvals"]) >= count and p,
            what=f"{count} pending approval(s) on {sid}",
        )

    def recorded(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(x) for x in self.record.read_text().splitlines() if x.strip()]

    def answers(self) -> list[dict[str, Any]]:
        """The control responses the fake agent received (decisions), oldest first."""
        return [m["response"] for m in self.recorded() if m.get("type") == "control_response"]
