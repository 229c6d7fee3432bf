"""`agent-bridge service …`: the unit it writes (checked by systemd-analyze), the commands it
runs (against a stand-in systemctl, never the real user's), and the launchd agent's wrapper
run for real. All in a temporary XDG_CONFIG_HOME."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.service import plan
from daemon.service_files import ServiceSpec, launchd_plist
from tests.harness import agent_bridge_argv

CONFIG = """[telegram]
chat_id = -100123
allowed_user_ids = [1]

[slack]
channel = "C0BRIDGE"
"""


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "USER": "ana", **extra}
    env.pop("AGENT_BRIDGE_CONFIG", None)
    return env


def cli(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*agent_bridge_argv(), *args], env=env, cwd=tmp_path, text=True,
                          capture_output=True, timeout=60, check=False)


def written(out: str, name: str) -> str:
    """The content a dry run shows for the file whose path ends with `name`."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("Would write ") and f"{name} (mode" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("Would "))
    return "\n".join(lines[start + 1:end]).strip() + "\n"


def verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return subprocess.run(["systemd-analyze", "--user", "verify", str(unit)], text=True,
                          capture_output=True, timeout=60, check=False,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_dry_run_shows_a_unit_systemd_accepts_and_writes_nothing(tmp_path):
    config = tmp_path / "my config" / "config.toml"
    config.parent.mkdir()
    config.write_text(CONFIG)
    env = env_for(tmp_path, PATH=f"/opt/50%/bin:{os.environ['PATH']}")
    result = cli(tmp_path, "service", "install", "--dry-run", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    unit = written(out, "systemd/user/agent-bridge.service")
    executable = Path(agent_bridge_argv()[0]).absolute()
    assert executable.name == "agent-bridge"  # the installed command, by its absolute path
    assert f'ExecStart="{executable}" "--config" "{config}" "run"' in unit
    env_file = tmp_path / "home" / ".config" / "agent-bridge" / "env"
    assert f"EnvironmentFile={env_file}\n" in unit
    assert 'Environment="PATH=/opt/50%%/bin:' in unit  # a specifier escaped
    assert "Restart=on-failure\n" in unit and "WantedBy=default.target\n" in unit
    assert f"Would write {env_file} (mode 600)" in out
    template = written(out, "agent-bridge/env")
    assert all(line.startswith("# ") for line in template.splitlines())  # no value
    for name in ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        assert f"# {name}=\n" in template
    assert "systemctl --user daemon-reload\n" in out
    assert "systemctl --user enable agent-bridge.service\n" in out
    assert "restart" not in out  # no tokens yet: starting it would only fail
    assert "Not started: put TELEGRAM_BOT_TOKEN, SLACK_BOT_TOKEN, SLACK_APP_TOKEN in" in out
    assert "loginctl enable-linger ana" in out
    assert list((tmp_path / "home").iterdir()) == []  # nothing written

    path = tmp_path / "agent-bridge.service"
    path.write_text(unit)
    checked = verify(path, tmp_path)
    assert checked.returncode == 0, checked.stderr
    path.write_text(unit.replace(str(executable), str(tmp_path / "missing" / "agent-bridge")))
    assert verify(path, tmp_path).returncode != 0  # the check does look at the unit


def test_install_and_uninstall_run_systemctl_and_keep_the_secrets(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    record = tmp_path / "systemctl.jsonl"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f"#!{sys.executable}\nimport json, sys\n"
                         f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                         "sys.exit(3 if 'status' in sys.argv else 0)\n")
    systemctl.chmod(0o755)
    env = env_for(tmp_path, AGENT_BRIDGE_SYSTEMCTL=str(systemctl),
                  AGENT_BRIDGE_JOURNALCTL=str(systemctl))

    def calls() -> list[list[str]]:
        found = [json.loads(line) for line in record.read_text().splitlines()]
        record.unlink()
        return found

    result = cli(tmp_path, "service", "install", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    base = tmp_path / "home" / ".config"
    unit, env_file = base / "systemd/user/agent-bridge.service", base / "agent-bridge/env"
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert calls() == [["--user", "daemon-reload"], ["--user", "enable", UNIT]]

    secrets = ("TELEGRAM_BOT_TOKEN=1:x\nSLACK_BOT_TOKEN=xoxb-1\nSLACK_APP_TOKEN=xapp-1\n")
    env_file.write_text(secrets)
    env_file.chmod(0o644)
    result = cli(tmp_path, "service", "install", "--config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert env_file.read_text() == secrets  # never overwritten
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600  # made private again
    assert "was mode 644: made 600" in result.stdout
    assert calls()[-1] == ["--user", "restart", UNIT]

    status = cli(tmp_path, "service", "status", env=env)
    assert status.returncode == 3  # systemctl's own answer: inactive
    assert calls() == [["--user", "status", "--no-pager", UNIT]]
    assert cli(tmp_path, "service", "logs", "-f", env=env).returncode == 0
    assert calls() == [["--user", "-u", UNIT, "-n", "200", "--no-pager", "-f"]]

    result = cli(tmp_path, "service", "uninstall", env=env)
    assert result.returncode == 0, result.stderr
    assert calls() == [["--user", "disable", "--now", UNIT], ["--user", "daemon-reload"]]
    assert not unit.exists() and env_file.read_text() == secrets
    assert f"Kept {env_file}" in result.stdout


UNIT = "agent-bridge.service"


def test_no_user_systemd_is_explained_with_what_to_do(tmp_path):
    """Where `systemctl --user` has no bus (a container, `su`, ssh without a session) the
    person learns why and what else to do, not only systemctl's own line."""
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(f"#!{sys.executable}\nimport sys\n"
                         "sys.stderr.write('Failed to connect to bus: No medium found\\n')\n"
                         "sys.exit(1)\n")
    systemctl.chmod(0o755)
    env = env_for(tmp_path, AGENT_BRIDGE_SYSTEMCTL=str(systemctl))
    result = cli(tmp_path, "service", "install", env=env)
    assert result.returncode == 1
    assert "Failed to connect to bus: No medium found" in result.stderr
    assert "no systemd user manager" in result.stderr
    assert "loginctl enable-linger $USER" in result.stderr and "agent-bridge run" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_launchd_agent_reads_the_environment_file_and_restarts_on_failure(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nTELEGRAM_BOT_TOKEN=1:secret\n")
    stand_in = tmp_path / "agent bridge"  # a space in the path: passed as one argument
    stand_in.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                        "print(json.dumps([sys.argv[1:], os.environ.get('TELEGRAM_BOT_TOKEN'),"
                        " os.environ.get('PATH')]))\n")
    stand_in.chmod(0o755)
    spec = ServiceSpec(executable=stand_in, config=tmp_path / "c.toml", env_file=env_file,
                       environment={"PATH": "/usr/bin:/bin"}, home=tmp_path)
    agent = plistlib.loads(launchd_plist(spec, tmp_path / "log").encode())
    assert agent["KeepAlive"] == {"SuccessfulExit": False} and agent["RunAtLoad"] is True
    assert agent["StandardErrorPath"] == str(tmp_path / "log")
    ran = subprocess.run(agent["ProgramArguments"], env=agent["EnvironmentVariables"],
                         capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(ran.stdout) == [["--config", str(tmp_path / "c.toml"), "run"],
                                      "1:secret", "/usr/bin:/bin"]


def test_launchd_commands_on_macos(tmp_path, monkeypatch):
    env = env_for(tmp_path, AGENT_BRIDGE_LAUNCHCTL="launchctl")
    monkeypatch.setattr(sys, "argv", [agent_bridge_argv()[0]])
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    install = plan("install", str(config), env, platform="darwin")
    (path, text, _mode), = [w for w in install.writes if w[0].suffix == ".plist"]
    assert path == tmp_path / "home/Library/LaunchAgents/dev.agent-bridge.plist"
    assert plistlib.loads(text.encode())["Label"] == "dev.agent-bridge"
    assert [s.argv[1] for s in install.steps] == ["bootout"]  # no tokens: not started
    uid = os.getuid()
    assert [s.argv for s in plan("status", None, env, platform="darwin").steps] == [
        ["launchctl", "print", f"gui/{uid}/dev.agent-bridge"]]


def test_run_from_a_source_tree_is_told_to_install_first(tmp_path):
    env = env_for(tmp_path, PATH="/usr/bin:/bin")
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "service", "install",
                             "--dry-run"], env=env, cwd=Path(__file__).parent.parent, text=True,
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "pipx install ." in result.stderr and "uv tool install ." in result.stderr


def test_other_systems_are_told_what_to_do(tmp_path):
    from daemon.errors import SetupFailed
    from daemon.service import service

    with pytest.raises(SetupFailed, match=r"knows systemd .* and launchd .*, not win32"):
        service("install", config_arg=None, env=env_for(tmp_path), platform="win32")
