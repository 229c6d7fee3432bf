"""`agent-bridge hooks install|uninstall|status` and `doctor` on the agents' own settings files
(Claude Code `$CLAUDE_CONFIG_DIR/settings.json`, Codex `$CODEX_HOME/hooks.json`): the change
is shown first, uninstall removes exactly what install added."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.harness import agent_bridge_argv

# the person's own settings, formatted their way (a round trip must keep every byte)
CLAUDE_SETTINGS = (b'{\n    "model": "opus",\n    "hooks": {"PreToolUse": [{"matcher": "Bash", '
                   b'"hooks": [{"type": "command", "command": "my-audit"}]}]}\n}')


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n')
    return {**os.environ, "HOME": str(home), "CLAUDE_CONFIG_DIR": str(tmp_path / "claude"),
            "CODEX_HOME": str(tmp_path / "codex"), "AGENT_BRIDGE_CONFIG": str(config),
            "XDG_CONFIG_HOME": str(home / ".config")}


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*agent_bridge_argv(), *args], env=env, capture_output=True,
                          text=True, timeout=60, input=stdin)


def settings(env: dict[str, str], agent: str) -> Path:
    if agent == "claude":
        return Path(env["CLAUDE_CONFIG_DIR"]) / "settings.json"
    return Path(env["CODEX_HOME"]) / "hooks.json"


def commands(data: dict[str, Any], event: str) -> list[str]:
    return [h["command"] for g in data["hooks"].get(event, []) for h in g["hooks"]]


def test_install_shows_the_change_adds_two_hooks_and_uninstall_restores_every_byte(env):
    path = settings(env, "claude")
    path.parent.mkdir()
    path.write_bytes(CLAUDE_SETTINGS)
    refused = run(env, "hooks", "install", "--claude")  # no terminal, no --yes: nothing
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert path.read_bytes() == CLAUDE_SETTINGS
    done = run(env, "hooks", "install", "--claude", "--yes")
    assert done.returncode == 0, done.stderr
    assert f"+++ {path}" in done.stdout and '"PermissionRequest"' in done.stdout
    data = json.loads(path.read_bytes())
    assert data["model"] == "opus" and commands(data, "PreToolUse") == ["my-audit"]
    [ask] = commands(data, "PermissionRequest")
    [stop] = commands(data, "Stop")
    assert " hook permission-request --agent claude --socket " in ask
    assert " hook stop --agent claude " in stop
    assert data["hooks"]["PermissionRequest"][0]["matcher"] == "*"
    assert "installed in" in run(env, "hooks", "status", "--claude").stdout
    again = run(env, "hooks", "install", "--claude", "--yes")
    assert "already" in again.stdout and json.loads(path.read_bytes()) == data
    gone = run(env, "hooks", "uninstall", "--claude")
    assert gone.returncode == 0 and "back as it was" in gone.stdout
    assert path.read_bytes() == CLAUDE_SETTINGS


def test_a_file_install_created_is_removed_and_codex_is_told_to_trust_the_hooks(env):
    done = run(env, "hooks", "install", "--codex", "--yes")
    assert done.returncode == 0, done.stderr
    assert "--- /dev/null" in done.stdout and "/hooks" in done.stdout  # trust them in codex
    path = settings(env, "codex")
    assert commands(json.loads(path.read_text()), "PermissionRequest")
    assert not settings(env, "claude").exists()  # --codex only
    assert (path.stat().st_mode & 0o777) == 0o600
    run(env, "hooks", "uninstall", "--codex")
    assert not path.exists()


def test_uninstall_after_the_person_edited_the_file_removes_only_ours(env):
    path = settings(env, "claude")
    path.parent.mkdir()
    path.write_bytes(CLAUDE_SETTINGS)
    run(env, "hooks", "install", "--yes")
    data = json.loads(path.read_text())
    data["theme"] = "dark"
    data["hooks"]["Stop"].append({"hooks": [{"type": "command", "command": "notify-me"}]})
    path.write_text(json.dumps(data))
    said = run(env, "hooks", "uninstall", "--claude").stdout
    assert "removed only agent-bridge's 2 hook group(s)" in said
    left = json.loads(path.read_text())
    assert left["theme"] == "dark" and left["model"] == "opus"
    assert commands(left, "Stop") == ["notify-me"]
    assert commands(left, "PreToolUse") == ["my-audit"]
    assert "PermissionRequest" not in left["hooks"]
    assert "agent-bridge" not in path.read_text()
    # codex was installed too (no --claude/--codex: both) and is still there
    assert "installed in" in run(env, "hooks", "status", "--codex").stdout


def test_broken_settings_are_refused_with_what_to_do(env):
    path = settings(env, "claude")
    path.parent.mkdir()
    path.write_text("{not json")
    result = run(env, "hooks", "install", "--claude", "--yes")
    assert result.returncode == 1 and "is not valid JSON" in result.stderr
    assert path.read_text() == "{not json"


def test_doctor_shows_the_hook_state(env):
    before = json.loads(run(env, "doctor", "--json").stdout)
    hooks = {c["name"]: c for c in before if c["name"].startswith("hooks ")}
    assert hooks["hooks claude"]["status"] == "warn"
    assert "not installed" in hooks["hooks claude"]["detail"]
    run(env, "hooks", "install", "--claude", "--yes")
    after = {c["name"]: c for c in json.loads(run(env, "doctor", "--json").stdout)}
    assert after["hooks claude"]["status"] == "ok"
    assert "not installed" in after["hooks codex"]["detail"]


def test_declining_at_the_terminal_writes_nothing_and_promises_nothing(env):
    """A person at a terminal who answers "n" for both agents is not told that permission
    requests will now come to chat."""
    controller, terminal = os.openpty()
    try:
        os.write(controller, b"n\nn\n")
        done = subprocess.run([*agent_bridge_argv(), "hooks", "install"], env=env,
                              stdin=terminal, capture_output=True, text=True, timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 0, done.stderr
    assert "claude: nothing written" in done.stdout and "codex: nothing written" in done.stdout
    assert "come to chat" not in done.stdout
    assert not settings(env, "claude").exists() and not settings(env, "codex").exists()


def test_dry_run_shows_both_changes_without_a_terminal_and_writes_nothing(env):
    done = run(env, "hooks", "install", "--dry-run")
    assert done.returncode == 0, done.stderr
    for agent in ("claude", "codex"):
        assert f"+++ {settings(env, agent)}" in done.stdout
        assert f"{agent}: nothing written (--dry-run)" in done.stdout
        assert not settings(env, agent).exists()
    assert "come to chat" not in done.stdout
