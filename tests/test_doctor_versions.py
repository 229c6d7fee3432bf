"""`agent-bridge doctor` reports each agent's version and warns when it is not the version the
real-agent tests pin (tests/real_agents/package.json). The agents here are tiny fake binaries
that print a version line and record how they were called."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon import doctor as doctor_module
from daemon.doctor import doctor, pinned_versions, version_drift

PINNED = pinned_versions()  # the real file of this checkout


def fake_binary(tmp_path: Path, name: str, version_line: str) -> Path:
    script = tmp_path / name
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{tmp_path / (name + ".argv")}"\n'
        f'echo "{version_line}"\n'
    )
    script.chmod(0o755)
    return script


def run_doctor(tmp_path: Path, capsys, agents: dict[str, tuple[str, list[str]]]) -> dict:
    lines = ["[daemon]", f'state_dir = "{tmp_path / "state"}"']
    for name, (protocol, command) in agents.items():
        lines += [f"[agents.{name}]", f'protocol = "{protocol}"',
                  f"command = {json.dumps(command)}"]
    lines += ["[[projects]]", 'name = "demo"', f'path = "{tmp_path}"']
    config = tmp_path / "config.toml"
    config.write_text("\n".join(lines) + "\n")
    doctor(str(config), as_json=True)
    return {c["name"]: c for c in json.loads(capsys.readouterr().out)}


def test_the_pins_come_from_the_package_json_of_the_real_agent_tests():
    package = json.loads(doctor_module.PINNED_FILE.read_text())["dependencies"]
    expected = {"claude": package["@anthropic-ai/claude-code"], "codex": package["@openai/codex"]}
    assert expected == PINNED


def test_the_pinned_versions_are_ok_and_reported(tmp_path, capsys):
    claude = fake_binary(tmp_path, "claude", f"{PINNED['claude']} (Claude Code)")
    codex = fake_binary(tmp_path, "codex", f"codex-cli {PINNED['codex']}")
    checks = run_doctor(tmp_path, capsys, {"claude": ("claude", [str(claude)]),
                                           "codex": ("codex", [str(codex), "app-server"])})
    assert checks["agent claude"]["status"] == "ok"
    assert f"{PINNED['claude']} (Claude Code)" in checks["agent claude"]["detail"]
    assert checks["agent codex"]["status"] == "ok"
    assert f"codex-cli {PINNED['codex']}" in checks["agent codex"]["detail"]
    # the version query never starts the app-server
    assert (tmp_path / "codex.argv").read_text().splitlines() == ["--version"]


def test_an_older_claude_and_a_newer_codex_are_warned_about(tmp_path, capsys):
    claude = fake_binary(tmp_path, "claude", "2.0.1 (Claude Code)")
    codex = fake_binary(tmp_path, "codex", "codex-cli 99.0.0")
    checks = run_doctor(tmp_path, capsys, {"claude": ("claude", [str(claude)]),
                                           "codex": ("codex", [str(codex), "app-server"])})
    claude_check, codex_check = checks["agent claude"], checks["agent codex"]
    assert claude_check["status"] == "warn"
    assert f"2.0.1 is older than {PINNED['claude']}" in claude_check["detail"]
    assert "tests/real_agents/package.json" in claude_check["detail"]
    assert codex_check["status"] == "warn"
    assert f"99.0.0 is newer than {PINNED['codex']}" in codex_check["detail"]


def test_without_the_pin_file_nothing_is_compared(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(doctor_module, "PINNED_FILE", tmp_path / "no" / "package.json")
    claude = fake_binary(tmp_path, "claude", "2.0.1 (Claude Code)")
    checks = run_doctor(tmp_path, capsys, {"claude": ("claude", [str(claude)])})
    assert checks["agent claude"]["status"] == "ok"
    assert "2.0.1 (Claude Code)" in checks["agent claude"]["detail"]


@pytest.mark.parametrize("line", ["Python 3.11.9", "wrapper 1.0.0", "2.0.1", "codex-cli"])
def test_a_line_that_is_not_the_agents_own_is_never_compared(line):
    assert version_drift("claude", line, {"claude": "2.1.331"}) is None
    assert version_drift("codex", line, {"codex": "0.169.0"}) is None


def test_versions_compare_by_release_numbers_not_as_text():
    assert "older" in version_drift("codex", "codex-cli 0.99.0", {"codex": "0.169.0"})
    assert "newer" in version_drift("claude", "2.1.1000 (Claude Code)", {"claude": "2.1.331"})
    assert version_drift("claude", "2.1.331 (Claude Code)", {"claude": "2.1.331"}) is None
    assert "differs" in version_drift("codex", "codex-cli 0.169.0-alpha.1", {"codex": "0.169.0"})
