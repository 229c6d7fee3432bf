"""doctor's checks of issue 20: what `run` refuses (named by key), project paths, the tokens
tried online against the fake Bot API and Slack Web API (a refusal fails, an unreachable
platform warns), and the Node version each agent's npm package asks for."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.config import load_config
from daemon.doctor import doctor
from daemon.doctor_node import minimum, node_needs
from tests.fakes.slack_api import APP_TOKEN, BOT_TOKEN
from tests.fakes.telegram_api import BOT_ID
from tests.real_binaries import CLAUDE, CODEX, NODE_MODULES
from tests.slack_harness import ThreadedSlack
from tests.telegram_harness import CHAT, ThreadedTelegram

TOKEN = "4242:the-right-token"


@pytest.fixture
def telegram() -> Iterator[ThreadedTelegram]:
    fake = ThreadedTelegram(token=TOKEN)
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def slack() -> Iterator[ThreadedSlack]:
    fake = ThreadedSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN)
    try:
        yield fake
    finally:
        fake.close()


def base_config(tmp_path: Path) -> str:
    """A config whose local checks pass: agents that answer --version, a private state."""
    agent = json.dumps([sys.executable])
    return (f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
            f"[agents.claude]\ncommand = {agent}\n"
            f'[agents.codex]\nprotocol = "codex"\ncommand = {agent}\n')


def run_doctor(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str,
               *args: str) -> tuple[int, dict[str, dict[str, str]], str]:
    path = tmp_path / "config.toml"
    path.write_text(base_config(tmp_path) + extra)
    code = doctor(str(path), as_json=True, offline="offline" in args)
    out = capsys.readouterr().out
    return code, {c["name"]: c for c in json.loads(out)}, out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def no_tokens(monkeypatch):
    for name in ("TELEGRAM_BOT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_no_config_file_names_where_it_was_looked_for(tmp_path, capsys, monkeypatch):
    """A first doctor, before any setup, says which file it looked for and what writes it."""
    monkeypatch.delenv("AGENT_BRIDGE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    doctor(None, as_json=True, offline=True)
    [config] = [c for c in json.loads(capsys.readouterr().out) if c["name"] == "config"]
    where = tmp_path / "xdg" / "agent-bridge" / "config.toml"
    assert config["status"] == "ok"
    assert config["detail"].startswith(f"no file at {where}: using defaults")
    assert "agent-bridge setup telegram" in config["detail"]


def test_a_bad_cron_line_is_named_by_its_key(tmp_path, capsys):
    code, checks, _ = run_doctor(tmp_path, capsys, '[digest]\ncron = "0 25 * * *"\n')
    assert code == 1
    assert checks["config"]["status"] == "fail"
    assert checks["config"]["detail"].startswith("digest.cron: not a valid crontab line")


def test_a_missing_project_path_is_named_with_its_key(tmp_path, capsys):
    missing = tmp_path / "gone"
    code, _, out = run_doctor(tmp_path, capsys,
                              f'[[projects]]\nname = "api"\npath = "{missing}"\n')
    warning = next(c for c in json.loads(out) if c["status"] == "warn"
                   and c["name"] == "config")
    assert warning["detail"] == (f"projects[0].path: {missing} is not a directory (yet): "
                                 "sessions in api cannot start until it is")
    assert code == 0  # `run` starts; only that project waits


def test_a_token_telegram_refuses_fails_and_is_never_shown(tmp_path, capsys, monkeypatch,
                                                           telegram):
    extra = (f"[telegram]\nchat_id = {CHAT}\nallowed_user_ids = [1]\n"
             f'base_url = "{telegram.fake.base_url}"\n')
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "4242:a-stale-token")
    code, checks, out = run_doctor(tmp_path, capsys, extra)
    assert code == 1
    assert checks["telegram bot"]["status"] == "fail"
    assert "Telegram refuses the token in $TELEGRAM_BOT_TOKEN" in checks["telegram bot"]["detail"]
    assert "a-stale-token" not in out
    assert [c.method for c in telegram.fake.calls] == ["getMe"]

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    code, checks, _ = run_doctor(tmp_path, capsys, extra)
    assert code == 0
    assert checks["telegram bot"] == {"name": "telegram bot", "status": "ok",
                                      "detail": "@fake_bot: the token in $TELEGRAM_BOT_TOKEN "
                                                "works"}
    assert checks["telegram chat"]["status"] == "ok"

    telegram.on(telegram.fake.set_member, CHAT, BOT_ID, "administrator",
                can_delete_messages=False)
    _, checks, _ = run_doctor(tmp_path, capsys, extra)
    assert checks["telegram chat"]["status"] == "warn"
    assert "@fake_bot may not delete messages" in checks["telegram chat"]["detail"]
    gone = extra.replace(str(CHAT), "-100999")
    code, checks, _ = run_doctor(tmp_path, capsys, gone)
    assert code == 1 and checks["telegram chat"]["status"] == "fail"
    assert checks["telegram chat"]["detail"].startswith(
        "telegram.chat_id: @fake_bot cannot reach chat -100999 (Chat not found)")


def test_slack_tokens_are_tried_and_a_refused_one_fails(tmp_path, capsys, monkeypatch, slack):
    extra = f'[slack]\nchannel = "C0BRIDGE"\nbase_url = "{slack.fake.base_url}"\n'
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    code, checks, _ = run_doctor(tmp_path, capsys, extra)
    assert code == 0
    assert checks["slack bot"]["detail"] == ("@bridge in Fake Team: the token in "
                                             "$SLACK_BOT_TOKEN works")
    assert checks["slack app"]["status"] == "ok"
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-revoked")
    code, checks, out = run_doctor(tmp_path, capsys, extra)
    assert code == 1
    assert checks["slack app"]["detail"].startswith(
        "Slack refuses the token in $SLACK_APP_TOKEN (invalid_auth)")
    assert "revoked" not in out


def test_an_unreachable_platform_is_a_warning_not_a_failure(tmp_path, capsys, monkeypatch):
    port = closed_port()
    extra = (f"[telegram]\nchat_id = -1\nallowed_user_ids = [1]\n"
             f'base_url = "http://127.0.0.1:{port}/bot"\n'
             f'[slack]\nchannel = "C0BRIDGE"\nbase_url = "http://127.0.0.1:{port}/api/"\n')
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    code, checks, out = run_doctor(tmp_path, capsys, extra)
    assert code == 0, out
    for name in ("telegram bot", "slack bot", "slack app"):
        assert checks[name]["status"] == "warn"
        assert "did not answer" in checks[name]["detail"] and "offline?" in checks[name]["detail"]
    assert TOKEN not in out
    _, checks, _ = run_doctor(tmp_path, capsys, extra, "offline")
    assert "telegram bot" not in checks and "slack bot" not in checks


def npm_agent(tmp_path: Path, wants: str, *, node_script: bool) -> Path:
    """An agent installed the way npm installs one: a package with engines.node, its bin."""
    package = tmp_path / "node_modules" / "@acme" / "agent"
    (package / "bin").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps(
        {"name": "@acme/agent", "version": "1.2.3", "engines": {"node": wants}}))
    binary = package / "bin" / "agent.js"
    binary.write_text("#!/usr/bin/env node\nconsole.log('agent 1.2.3')\n" if node_script
                      else "#!/bin/sh\necho agent 1.2.3\n")
    binary.chmod(0o755)
    return binary


def fake_node(tmp_path: Path, version: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    node = bin_dir / "node"
    node.write_text(f"#!/bin/sh\necho {version}\n")
    node.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize(("wants", "node_script", "node", "status", "said"), [
    (">=16", True, "v20.1.0", "ok", "node v20.1.0 (@acme/agent@1.2.3 wants >=16)"),
    (">=22.0.0", True, "v20.1.0", "fail", "node v20.1.0 is older than >=22.0.0, which "
                                          "@acme/agent@1.2.3 asks for (it runs on Node)"),
    (">=22.0.0", False, "v20.1.0", "warn", "(only installing or updating it needs Node: the "
                                           "binary runs without)"),
    ("^18 || >=20", True, "v18.0.0", "ok", "wants ^18 || >=20"),
    (">=16", True, None, "fail", "node is not on PATH, and @acme/agent@1.2.3 needs it"),
])
def test_the_node_an_agent_package_asks_for(tmp_path, capsys, monkeypatch, wants, node_script,
                                            node, status, said):
    binary = npm_agent(tmp_path, wants, node_script=node_script)
    path = [str(fake_node(tmp_path, node))] if node else []
    monkeypatch.setenv("PATH", ":".join([*path, "/usr/bin", "/bin"]))
    if node is None and node_script:
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    _, checks, _ = run_doctor(tmp_path, capsys,
                              f"[agents.acme]\ncommand = {json.dumps([str(binary)])}\n")
    check = checks["node for acme"]
    assert check["status"] == status and said in check["detail"], check
    assert "node for claude" not in checks  # a plain executable needs no Node


@pytest.mark.parametrize(("wants", "lowest"), [
    (">=22.0.0", (22, 0, 0)), (">=16", (16, 0, 0)), ("^20.10", (20, 10, 0)),
    ("20.x", (20, 0, 0)), (">=18 <21", (18, 0, 0)), ("^18 || >=20", (18, 0, 0)),
    ("*", None), ("lts", None),
])
def test_engine_ranges(wants, lowest):
    assert minimum(wants) == lowest


@pytest.mark.real_agents
def test_the_pinned_real_agents_as_npm_installs_them():
    """The real packages: Codex's command is a Node script (Node >=16), Claude Code's a native
    binary whose package asks for Node >=22 to install."""
    CLAUDE.require()
    CODEX.require()
    bins = NODE_MODULES / ".bin"
    config = load_config(f'[agents.claude]\ncommand = ["{bins / "claude"}"]\n'
                         f'[agents.codex]\nprotocol = "codex"\ncommand = ["{bins / "codex"}"]\n')
    needs = {n.agent: n for n in node_needs(config, {"PATH": "/usr/bin:/bin"})}
    assert needs["codex"].runs_on_node and needs["codex"].package == f"@openai/codex@{CODEX.pinned}"
    assert needs["codex"].wants == ">=16"
    assert not needs["claude"].runs_on_node
    assert needs["claude"].package == f"@anthropic-ai/claude-code@{CLAUDE.pinned}"
    assert needs["claude"].wants == ">=22.0.0"
