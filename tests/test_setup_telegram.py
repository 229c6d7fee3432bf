"""`agent-bridge setup telegram` end to end: the real CLI process and python-telegram-bot
against the fake Bot API, the `/pair CODE` message sent in the chat as a person sends it."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.config import load_config
from tests.fakes.telegram_api import BOT_ID
from tests.harness import Bridge
from tests.setup_harness import Running, setup_env
from tests.telegram_harness import ALICE, CHAT, STRANGER, ThreadedTelegram

TOKEN = "123456:setup-test-token"
EXISTING = """# my config: comments and order stay
default_agent = "claude"

[[projects]]
name = "api"
path = "/srv/api"   # where the code is
"""


@pytest.fixture
def telegram() -> Iterator[ThreadedTelegram]:
    fake = ThreadedTelegram()
    try:
        yield fake
    finally:
        fake.close()


def start_setup(tmp_path: Path, telegram: ThreadedTelegram, config: Path, *extra: str,
                token: str = TOKEN) -> Running:
    env = setup_env(tmp_path, TELEGRAM_BOT_TOKEN=token)
    return Running(["setup", "telegram", "--config", str(config), "--base-url",
                    telegram.fake.base_url, *extra], env, tmp_path)


def pairing_code(setup: Running) -> str:
    return setup.wait_line(r"^\s+/pair@fake_bot (\w+)$").group(1)


def test_pairing_in_a_forum_ignores_a_wrong_code_and_writes_a_config_run_accepts(
        tmp_path, telegram):
    """The wrong code (from someone else) is ignored and said so; the chat and the person come
    from the right message; the rest of the file stays; the daemon then runs on it."""
    bridge = Bridge(tmp_path)
    before = bridge.config.read_text()
    bridge.config.write_text(EXISTING + before.split("[[projects]]")[0])
    setup = start_setup(tmp_path, telegram, bridge.config, "--yes")
    try:
        code = pairing_code(setup)
        telegram.say(f"/pair@fake_bot {code[::-1]}X", user=STRANGER)
        setup.wait_line(r"Ignored /pair with a wrong code from @mallory in \"Agent Bridge\"")
        telegram.say("hello, is this the bot?")  # not a /pair: skipped in silence
        telegram.say(f"/pair@fake_bot {code.lower()}")
        assert setup.finish() == 0, setup.output + setup.stderr
    finally:
        setup.close()
    assert "✗" not in setup.output  # the default forum: topics on, the bot a full admin
    text = bridge.config.read_text()
    assert text.startswith(EXISTING)  # comments, order, other tables as they were
    section = tomllib.loads(text)["telegram"]
    assert section["chat_id"] == CHAT and section["allowed_user_ids"] == [ALICE]
    assert section["base_url"] == telegram.fake.base_url
    assert section["base_file_url"] == telegram.fake.base_file_url
    assert TOKEN not in text and TOKEN not in setup.output
    assert "+chat_id = -100123" in setup.output  # the change was shown as a diff
    sent = telegram.wait_for("sendMessage", lambda c: c.params["chat_id"] == CHAT)
    assert "paired" in sent.params["text"]
    assert telegram.on(lambda: telegram.fake.pending_updates) == []  # /pair not left over

    bridge.env["TELEGRAM_BOT_TOKEN"] = TOKEN
    try:
        bridge.start()  # `run` accepts the file and talks to the paired chat
        telegram.say("/sessions")
        telegram.wait_for("sendMessage", lambda c: c.params["chat_id"] == CHAT
                          and "No sessions" in c.params.get("text", ""))
    finally:
        assert bridge.cleanup() == []


def test_pairing_in_a_private_chat_adds_the_person_to_those_allowed(tmp_path, telegram):
    config = tmp_path / "config.toml"
    config.write_text("[telegram]\nchat_id = -1\nallowed_user_ids = [\n  55,\n]\n")
    setup = start_setup(tmp_path, telegram, config, "--yes")
    try:
        code = setup.wait_line(r"^\s+/pair (\w+)$").group(1)
        telegram.say(f"/pair {code}", chat=ALICE)
        assert setup.finish() == 0, setup.output + setup.stderr
    finally:
        setup.close()
    section = load_config(config.read_text()).telegram
    assert section is not None
    assert section.chat_id == ALICE and section.allowed_user_ids == [55, ALICE]
    assert "✗" not in setup.output


@pytest.mark.parametrize("forum", [True, False])
def test_missing_topics_and_admin_rights_are_named_with_the_fix(tmp_path, telegram, forum):
    """A forum where the bot may neither manage topics nor delete messages; a supergroup
    without topics where the bot is no admin. Asked before writing: the answer is y."""
    team = -100555
    telegram.on(telegram.fake.add_chat, team, "supergroup", is_forum=forum, title="Team")
    if forum:
        telegram.on(telegram.fake.set_member, team, BOT_ID, "administrator",
                    can_manage_topics=False, can_delete_messages=False)
    config = tmp_path / "config.toml"
    setup = start_setup(tmp_path, telegram, config)
    try:
        code = pairing_code(setup)
        telegram.say(f"/pair@fake_bot {code}", chat=team)
        setup.wait_line(r"^\+chat_id = -100555$")
        setup.answer("y")
        assert setup.finish() == 0, setup.output + setup.stderr
    finally:
        setup.close()
    out = setup.output
    if forum:
        assert "@fake_bot may not manage topics in \"Team\"" in out
        assert "@fake_bot may not delete messages in \"Team\"" in out
        assert "turn on Manage topics" in out and "turn on Delete messages" in out
        assert "Topics are off" not in out
    else:
        assert "Topics are off in \"Team\"" in out and "Topics → on" in out
        assert "@fake_bot is not an admin in \"Team\" (it is member)" in out
        assert "Add Admin → @fake_bot, with Manage topics and Delete messages" in out
    assert load_config(config.read_text()).telegram.chat_id == team  # type: ignore[union-attr]


def test_no_answer_writes_nothing(tmp_path, telegram):
    config = tmp_path / "config.toml"
    config.write_text(EXISTING)
    setup = start_setup(tmp_path, telegram, config)
    try:
        telegram.say(f"/pair@fake_bot {pairing_code(setup)}")
        setup.wait_line(r"^\+chat_id")
        setup.answer("n")
        assert setup.finish() == 0
    finally:
        setup.close()
    assert "Nothing written" in setup.output
    assert config.read_text() == EXISTING


def test_no_pairing_message_times_out_with_what_to_do(tmp_path, telegram):
    config = tmp_path / "config.toml"
    config.write_text(EXISTING)
    setup = start_setup(tmp_path, telegram, config, "--yes", "--timeout", "1")
    try:
        code = pairing_code(setup)
        assert setup.finish() == 1
    finally:
        setup.close()
    assert f"no `/pair {code}` arrived within 1 s" in setup.stderr
    assert "run setup again" in setup.stderr
    assert config.read_text() == EXISTING


def test_a_refused_or_missing_token_says_what_to_do(tmp_path):
    strict = ThreadedTelegram(token="999:the-real-one")
    try:
        config = tmp_path / "config.toml"
        setup = start_setup(tmp_path, strict, config, "--yes", token="999:a-wrong-one")
        assert setup.finish() == 1
        assert "Telegram refused the token in $TELEGRAM_BOT_TOKEN" in setup.stderr
        assert "@BotFather" in setup.stderr and "a-wrong-one" not in setup.stderr
        assert [c.method for c in strict.fake.calls] == ["getMe"]
    finally:
        strict.close()
    setup = Running(["setup", "telegram", "--config", str(config), "--yes"],
                    setup_env(tmp_path), tmp_path)
    assert setup.finish() == 1
    assert "$TELEGRAM_BOT_TOKEN is not set" in setup.stderr
    assert "export TELEGRAM_BOT_TOKEN=" in setup.stderr
    assert not config.exists()


@pytest.mark.parametrize(("webhook", "said"), [
    (False, "another program is reading this bot's messages (is `agent-bridge run` running"),
    (True, "the bot has a webhook set"),
])
def test_another_reader_of_the_bots_updates_is_named(tmp_path, telegram, webhook, said):
    if webhook:  # what the daemon in webhook mode leaves set
        telegram.on(setattr, telegram.fake, "webhook", {"url": "https://example.org/telegram"})
    else:  # the daemon polling with the same token: Telegram ends one of the two polls
        telegram.on(telegram.fake.fail_next, "getUpdates", 409)
    config = tmp_path / "config.toml"
    setup = start_setup(tmp_path, telegram, config, "--yes")
    assert setup.finish() == 1
    assert said in setup.stderr
    assert not config.exists()
