"""Terminal sessions on an SSH host (the in-process asyncssh server): found under the host's
own default places (`~/.claude`, `~/.codex` of the remote account), read with bounded
`head -c` / `tail -c` commands over the connection, and adopted there with the REAL Claude
Code continuing its history. A host that is down is a note; the others are still listed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fakes.model_api import ANTHROPIC, OPENAI
from tests.real_binaries import CLAUDE, CODEX, CODEX_CONFIG, START, set_agent, toml_table
from tests.test_real_adopt import FIRST, REPLY, model, repo  # noqa: F401

pytestmark = pytest.mark.real_agents


def remote_env(bridge, home: Path, model_url: str) -> dict[str, str]:
    """What an account on the host has: its own HOME (so ~/.claude and ~/.codex are its
    own), and what the agents need to reach the mock model offline."""
    return {
        "HOME": str(home), "AGENT_BRIDGE_TEST_TAG": bridge.tag,
        "ANTHROPIC_BASE_URL": model_url, "ANTHROPIC_API_KEY": "sk-ant-dummy",
        "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0", "MOCK_API_KEY": "dummy",
    }


def test_terminal_sessions_on_a_host_are_listed_and_adopted_over_ssh(
        make_bridge, ssh, tmp_path, model, repo):  # noqa: F811
    claude, codex = CLAUDE.require(), CODEX.require()
    bridge = make_bridge()
    home = tmp_path / "remote-home"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(CODEX_CONFIG.format(base_url=model.base_url))
    env = remote_env(bridge, home, model.base_url)
    # a person's runs in a terminal on that host, under its defaults
    for argv in ([str(claude), "-p", FIRST, "--setting-sources="],
                 [str(codex), "exec", "--skip-git-repo-check", FIRST]):
        done = subprocess.run(argv, cwd=repo, env={"PATH": "/usr/bin:/bin", **env},
                              capture_output=True, text=True, timeout=START,
                              stdin=subprocess.DEVNULL, check=False)
        assert done.returncode == 0 and REPLY in done.stdout, done.stderr[-2000:]
    box = ssh.add(tmp_path, "box1", env=env)
    down = ssh.add(tmp_path, "box2", env=env)
    set_agent(bridge, "claude", ['protocol = "claude"', f"command = {json.dumps([str(claude)])}",
                                 'args = ["--setting-sources="]'])
    set_agent(bridge, "codex", ['protocol = "codex"',
                                f"command = {json.dumps([str(codex), 'app-server'])}",
                                f"env = {toml_table({'MOCK_API_KEY': 'dummy'})}"])
    bridge.config.write_text(bridge.config.read_text() + box.config() + down.config())
    ssh.stop(down)
    bridge.start()

    listed = bridge.json("sessions", "--local")
    found = {s["agent"]: s for s in listed["sessions"]}
    assert set(found) == {"claude", "codex"}  # nothing local: the daemon's HOME has none
    for s in found.values():
        assert s["host"] == "box1" and s["cwd"] == str(repo)
        assert s["branch"] == "feature/flaky" and s["first_prompt"].endswith(FIRST)
        assert s["path"].startswith(str(home / (".claude" if s["agent"] == "claude"
                                                else ".codex")))
        assert s["attached"] == "no"
    (note,) = listed["notes"]
    assert note.startswith("box2: host box2 (127.0.0.1:") and "is unreachable" in note, note
    assert any("head -c" in c for c in box.commands)
    assert not any(" cat " in c for c in box.commands)  # never a whole transcript
    assert "box1:" in bridge.cli("sessions", "--local").stdout

    adopted = bridge.json("adopt", found["claude"]["id"], "continue over ssh")
    assert adopted["host"] == "box1"
    session = bridge.wait_state(adopted["id"], "idle", timeout=START)
    assert session["agent_session_id"] == found["claude"]["id"]
    latest = model.requests(ANTHROPIC)[-1]
    assert latest.prompts() == [FIRST, "continue over ssh"] and REPLY in latest.all_text()
    assert any("--resume=" + found["claude"]["id"] in c for c in box.commands)

    # Codex there too: `codex app-server` started over SSH resumes the thread (thread/resume)
    adopted = bridge.json("adopt", found["codex"]["key"])
    assert adopted["host"] == "box1"
    bridge.wait_state(adopted["id"], "idle", timeout=START)
    bridge.cli("send", adopted["id"], "codex, continue over ssh")
    model.wait_for(lambda r: "codex, continue over ssh" in r.prompts(), timeout=START)
    latest = model.requests(OPENAI)[-1]
    assert FIRST in latest.prompts() and REPLY in latest.all_text()
    bridge.wait_state(adopted["id"], "idle", timeout=START)
    assert bridge.json("sessions", "--local")["sessions"] == []
