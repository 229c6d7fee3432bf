"""Where the real Claude Code and Codex binaries are, at which versions, what to do when they
are not there, and how a test's daemon is configured to run them offline.

The versions are pinned in one place, tests/real_agents/package.json, and installed next to it
by `scripts/install-real-agents` (npm). npm does not run the packages' postinstall scripts, so
the native binaries inside the platform packages are called directly.

Missing binaries skip the `real_agents` tests with the command that installs them; when the
environment variable CI is set they fail instead, so CI can never pass without running them.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Bridge, wait_until

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_JSON = ROOT / "tests" / "real_agents" / "package.json"
NODE_MODULES = PACKAGE_JSON.parent / "node_modules"
INSTALL_HINT = "run scripts/install-real-agents (needs node 20+ and npm; ~800 MB under tests/)"
_VERSION = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")


@dataclass(frozen=True, slots=True)
class RealAgent:
    name: str  # the agent's name in the daemon's config, and its protocol
    package: str  # the npm package pinned in package.json
    binary: Path  # the native binary inside the platform package

    @property
    def pinned(self) -> str:
        return pinned_versions()[self.package]

    def problem(self) -> str | None:
        """Why this agent cannot run here, or None when its pinned version is installed."""
        if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
            return (f"the real-agent tests know only the linux-x64 binaries, "
                    f"this is {platform.system()} {platform.machine()}")
        if not self.binary.exists():
            how = INSTALL_HINT
            if shutil.which("npm") is None:
                how = "install Node.js 20+ with npm, then " + INSTALL_HINT
            return (f"{self.package}@{self.pinned} is not installed ({self.binary} is missing): "
                    f"{how}")
        installed = installed_version(self.binary)
        if installed != self.pinned:
            return (f"{self.binary} is version {installed}, the tests pin {self.pinned} "
                    f"(tests/real_agents/package.json): {INSTALL_HINT}")
        return None

    def require(self) -> Path:
        """The binary; skips the test when it is missing (fails it under CI)."""
        problem = self.problem()
        if problem is None:
            return self.binary
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-agent tests: {problem}", pytrace=False)
        pytest.skip(problem)


@cache
def pinned_versions() -> dict[str, str]:
    """npm package → exact version, from tests/real_agents/package.json."""
    return dict(json.loads(PACKAGE_JSON.read_text())["dependencies"])


@cache
def installed_version(binary: Path) -> str | None:
    """The version a binary reports with `--version` (`2.1.331 (Claude Code)`,
    `codex-cli 0.169.0`); None when it does not run or says nothing that looks like one."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             timeout=30, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION.search(out.stdout or out.stderr)
    return found.group(0) if found else None


CLAUDE = RealAgent(
    name="claude",
    package="@anthropic-ai/claude-code",
    binary=NODE_MODULES / "@anthropic-ai" / "claude-code-linux-x64" / "claude",
)
CODEX = RealAgent(
    name="codex",
    package="@openai/codex",
    binary=NODE_MODULES / "@openai" / "codex-linux-x64" / "vendor" / "x86_64-unknown-linux-musl"
    / "bin" / "codex",
)


# -- configuring a test daemon for them ---------------------------------------------------------

START = 60.0  # deadline for the real binaries' steps, generous for a loaded CI machine


def set_agent(bridge: Bridge, name: str, body: list[str]) -> None:
    """Make `[agents.NAME]` in the harness's config hold `body` (replacing the fake's table,
    or adding one). Call before `bridge.start()`."""
    lines = bridge.config.read_text().splitlines()
    header = f"[agents.{name}]"
    if header in lines:
        start = lines.index(header)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")),
                   len(lines))
        lines[start + 1:end] = body
    else:
        lines += [header, *body]
    bridge.config.write_text("\n".join(lines) + "\n")


def toml_table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) + " }"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# a JWT nobody signed: Claude Code only reads its audience to tell a gateway (qZ() in 2.1.331)
GATEWAY_TOKEN = (f"{_b64({'alg': 'none', 'typ': 'JWT'})}."
                 f"{_b64({'aud': 'claude-gateway', 'exp': 4102444800})}.unsigned")


def use_real_claude(bridge: Bridge, binary: Path, model_url: str,
                    args: Sequence[str] = (), *, gateway: bool = False) -> Path:
    """Point `[agents.claude]` at the real binary, offline, with a private config dir
    (returned: Claude Code keeps its sessions there). `gateway`: authenticate as through an
    LLM gateway (an unsigned token with `aud: claude-gateway`), the one way without a
    subscription that makes Claude Code read the mock's `anthropic-ratelimit-unified-*`
    headers and report them as `rate_limit_event`."""
    config_dir = bridge.tmp / "claude-config"
    config_dir.mkdir(exist_ok=True)
    env = {
        "ANTHROPIC_BASE_URL": model_url,
        "ANTHROPIC_API_KEY": "sk-ant-dummy",
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "HOME": bridge.env["HOME"],
    }
    if gateway:
        env["ANTHROPIC_AUTH_TOKEN"] = GATEWAY_TOKEN
    set_agent(bridge, "claude", [
        'protocol = "claude"',
        f"command = {json.dumps([str(binary)])}",
        f"args = {json.dumps(['--setting-sources=', *args])}",
        f"env = {toml_table(env)}",
    ])
    return config_dir


CODEX_CONFIG = """\
model = "gpt-mock"
model_provider = "mock"

[model_providers.mock]
name = "mock"
base_url = "{base_url}/v1"
wire_api = "responses"
env_key = "MOCK_API_KEY"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[features]
plugins = false
unbounded_connection_retries = false
"""


def use_real_codex(bridge: Bridge, binary: Path, model_url: str,
                   approval_policy: str = "untrusted", *, config: str = "",
                   features: Sequence[str] = ()) -> Path:
    """Add `[agents.codex]` running the real `codex app-server` against the mock, with a
    private CODEX_HOME (returned; Codex writes into it on its own). `features` are turned
    on; `config` is appended to its config.toml."""
    codex_home = bridge.tmp / "codex-home"
    codex_home.mkdir(exist_ok=True)
    toml = CODEX_CONFIG.format(base_url=model_url)
    toml += "".join(f"{name} = true\n" for name in features) + config
    (codex_home / "config.toml").write_text(toml)
    env = {"CODEX_HOME": str(codex_home), "MOCK_API_KEY": "dummy", "HOME": bridge.env["HOME"]}
    set_agent(bridge, "codex", [
        'protocol = "codex"',
        f"command = {json.dumps([str(binary), 'app-server'])}",
        f'approval_policy = "{approval_policy}"',
        f"env = {toml_table(env)}",
    ])
    return codex_home


def wait_approval(bridge: Bridge, sid: str) -> list[dict[str, Any]]:
    """The pending approvals of `sid` once there is one; on timeout, says what happened."""
    try:
        return wait_until(lambda: (p := bridge.session(sid)["pending_approvals"]) and p,
                          timeout=START, what=f"an approval from the real agent in {sid}")
    except AssertionError as e:
        session = bridge.session(sid)
        raise AssertionError(f"{e}\nsession: {session['state']} {session['error']}\n"
                             f"events: {session['events'][-6:]}\n"
                             f"daemon log: {bridge.log_text()[-2000:]}") from None


def events(session: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The data of a session's recorded events of one kind, oldest first."""
    return [e["data"] for e in session["events"] if e["kind"] == kind]
