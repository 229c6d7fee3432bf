"""`agent-bridge setup slack` end to end: the real CLI process and slack_sdk against the fake
Slack Web API; the config it writes runs the daemon."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.slack_api import ALICE, APP_TOKEN, BOT_TOKEN, CHANNEL
from tests.harness import Bridge, wait_until
from tests.setup_harness import Running, setup_env
from tests.slack_harness import ThreadedSlack

EXISTING = """# kept as it is
[approvals]
timeout = "10m"   # short
"""


@pytest.fixture
def slack() -> Iterator[ThreadedSlack]:
    fake = ThreadedSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN)
    try:
        yield fake
    finally:
        fake.close()


def run_setup(tmp_path: Path, slack: ThreadedSlack, config: Path, *extra: str,
              bot: str = BOT_TOKEN, app: str = APP_TOKEN, answers: tuple[str, ...] = ()
              ) -> Running:
    env = setup_env(tmp_path, SLACK_BOT_TOKEN=bot, SLACK_APP_TOKEN=app)
    setup = Running(["setup", "slack", "--config", str(config), "--base-url",
                     slack.fake.base_url, *extra], env, tmp_path)
    for answer in answers:
        setup.answer(answer)
    setup.finish()
    return setup


def test_finds_the_channel_by_name_checks_both_tokens_and_writes_a_config_run_accepts(
        tmp_path, slack):
    bridge = Bridge(tmp_path)
    bridge.config.write_text(bridge.config.read_text() + EXISTING)
    kept = bridge.config.read_text()
    for i in range(250):  # the channel is on the second page of conversations.list
        slack.on(slack.fake.add_channel, f"C1{i:05d}", f"noise-{i}")
    slack.on(slack.fake.channel_info.pop, CHANNEL)
    slack.on(slack.fake.add_channel, CHANNEL, "agent-bridge")
    setup = run_setup(tmp_path, slack, bridge.config, "--channel", "#Agent-Bridge",
                      "--user", ALICE, "--yes")
    assert setup.process.returncode == 0, setup.output + setup.stderr
    out = setup.output
    manifest = json.loads(out[out.index("{"):out.index("\n}") + 2])
    assert {"chat:write", "commands", "channels:read"} <= set(
        manifest["oauth_config"]["scopes"]["bot"])
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "Bot token ($SLACK_BOT_TOKEN): @bridge in Fake Team, it works." in out
    assert "App token ($SLACK_APP_TOKEN): Socket Mode opens, it works." in out
    assert "✗" not in out
    assert len(slack.fake.calls_to("conversations.list")) == 2
    text = bridge.config.read_text()
    assert text.startswith(kept)
    section = tomllib.loads(text)["slack"]
    assert section == {"channel": CHANNEL, "allowed_user_ids": [ALICE],
                       "base_url": slack.fake.base_url}
    assert BOT_TOKEN not in text and APP_TOKEN not in text
    assert slack.fake.connections == 0  # checked, not connected

    bridge.env.update(slack.env())
    try:
        bridge.start()  # `run` accepts the file and connects to the workspace it names
        wait_until(lambda: slack.fake.connections == 1, what="the daemon's Socket Mode")
    finally:
        assert bridge.cleanup() == []


def test_asks_for_the_channel_and_says_the_bot_is_not_in_it(tmp_path, slack):
    slack.on(slack.fake.add_channel, "C0TEAM", "team", member=False)
    config = tmp_path / "config.toml"
    setup = run_setup(tmp_path, slack, config, answers=("team", "U0ALICE", "y"))
    assert setup.process.returncode == 0, setup.output + setup.stderr
    assert "✗ the bot is not in #team: type `/invite @bridge` there" in setup.output
    section = tomllib.loads(config.read_text())["slack"]
    assert section["channel"] == "C0TEAM" and section["allowed_user_ids"] == ["U0ALICE"]


def test_an_unknown_channel_and_a_missing_list_scope_say_what_to_do(tmp_path, slack):
    config = tmp_path / "config.toml"
    setup = run_setup(tmp_path, slack, config, "--channel", "nope", "--yes")
    assert setup.process.returncode == 1
    assert "no channel #nope that the bot can see" in setup.stderr
    assert "/invite @bridge" in setup.stderr
    slack.on(slack.fake.fail_next, "conversations.list", "missing_scope")
    setup = run_setup(tmp_path, slack, config, "--channel", "agent-bridge", "--yes")
    assert setup.process.returncode == 1
    assert "add channels:read and groups:read" in setup.stderr
    assert not config.exists()


@pytest.mark.parametrize(("bot", "app", "said"), [
    ("xoxb-1-stale", APP_TOKEN,
     "Slack refused the bot token in $SLACK_BOT_TOKEN (invalid_auth): copy the Bot User"),
    (APP_TOKEN, APP_TOKEN, "(not_allowed_token_type): that is an app-level token"),
    (BOT_TOKEN, BOT_TOKEN, "Slack refused the app token in $SLACK_APP_TOKEN "
                           "(not_allowed_token_type): it is not an app-level token"),
    (BOT_TOKEN, "xapp-1-stale", "Slack refused the app token in $SLACK_APP_TOKEN (invalid_auth)"),
])
def test_a_refused_token_is_named_with_what_to_do(tmp_path, slack, bot, app, said):
    config = tmp_path / "config.toml"
    setup = run_setup(tmp_path, slack, config, "--channel", "agent-bridge", "--yes",
                      bot=bot, app=app)
    assert setup.process.returncode == 1
    assert said in setup.stderr
    assert "stale" not in setup.stderr
    assert not config.exists()


def test_missing_tokens_show_the_manifest_and_what_to_export(tmp_path):
    setup = Running(["setup", "slack", "--yes"], setup_env(tmp_path), tmp_path)
    assert setup.finish() == 1
    assert "From an app manifest" in setup.output
    assert "$SLACK_BOT_TOKEN and $SLACK_APP_TOKEN not set" in setup.stderr
    assert "export SLACK_BOT_TOKEN=… SLACK_APP_TOKEN=…" in setup.stderr


def test_the_readme_manifest_is_the_one_setup_prints():
    """Two copies of the manifest (the README's YAML, setup's JSON) must not drift apart."""
    from daemon.setup_slack import MANIFEST

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme[readme.index("oauth_config:"):readme.index("settings:", readme.index(
        "oauth_config:"))]
    scopes = re.findall(r"^\s+- ([a-z_.:]+)(?:\s|$)", block, re.MULTILINE)
    assert scopes == MANIFEST["oauth_config"]["scopes"]["bot"]
    commands = re.findall(r"^\s+- command: (/\w+)", readme, re.MULTILINE)
    assert commands == [c["command"] for c in MANIFEST["features"]["slash_commands"]]


def test_without_yes_and_without_a_terminal_nothing_is_written(tmp_path, slack):
    config = tmp_path / "config.toml"
    env = setup_env(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN)
    setup = Running(["setup", "slack", "--config", str(config), "--base-url",
                     slack.fake.base_url, "--channel", "agent-bridge", "--user", ALICE],
                    env, tmp_path)
    assert setup.process.stdin is not None
    setup.process.stdin.close()  # as under cron or in a pipeline
    assert setup.finish() == 1
    assert "no answer (the input is closed): nothing written; run again with --yes" \
        in setup.stderr
    assert "+channel = \"C0BRIDGE\"" in setup.output  # shown all the same
    assert not config.exists()
