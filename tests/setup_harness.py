"""`agent-bridge setup …` as a person runs it: a real process whose output is read line by
line while the test acts in the chat, and whose questions are answered on its stdin."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
from pathlib import Path

from tests.harness import agent_bridge_argv, wait_until


def setup_env(tmp: Path, **variables: str) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           **variables}
    for name in ("AGENT_BRIDGE_CONFIG", "TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN",
                 "SLACK_APP_TOKEN"):
        if name not in variables:
            env.pop(name, None)
    return env


class Running:
    """The CLI running; `lines` fills as it prints."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [*agent_bridge_argv(), *args], env=env, cwd=cwd, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self.stderr = ""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_line(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """The first line matching `pattern` (a regex), waiting for it."""
        found: list[re.Match[str]] = []

        def check() -> bool:
            with self._lock:
                for line in self.lines:
                    if match := re.search(pattern, line):
                        found.append(match)
                        return True
            if self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"exited ({self.process.returncode}) before {pattern!r}:"
                                     f"\n{self.output}\n{self.process.stderr.read()}")  # type: ignore[union-attr]
            return False

        wait_until(check, timeout, what=f"a line matching {pattern!r}; so far:\n{self.output}")
        return found[0]

    def answer(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 30.0) -> int:
        try:
            code = self.process.wait(timeout)
        finally:
            self.close()
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(10)
        assert self.process.stderr is not None
        with contextlib.suppress(ValueError):
            self.stderr = self.process.stderr.read()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, BrokenPipeError):
                    stream.close()
