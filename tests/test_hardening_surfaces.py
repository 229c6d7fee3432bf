"""Hardening of the chat surfaces (issue 14, items 1, 7 and 13), end to end through the real
daemon, python-telegram-bot and slack-bolt against the fake Telegram and Slack servers.

- Secrets are required where a check rests on them: webhook mode without its secret, Slack
  HTTP without its signing secret, refuse to start; only the composition root reads them.
- Only the configured chat, or workspace and channel, acts: a card forwarded elsewhere, a
  private chat, another channel or workspace decides nothing and is told why.
- A delivery acts once: Slack retries and replays, Telegram's repeated update ids; a second
  deny-reason form is refused, never a prompt; a malformed timestamp is a 401.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.config import SlackConfig, TelegramConfig
from bridge.errors import ConfigError
from tests.fakes.slack_api import OTHER_CHANNEL, block_actions_payload, message_event
from tests.fakes.slack_api import slash_command_form as slash_form
from tests.harness import ROOT, Bridge, agent_bridge_argv, wait_until
from tests.slack_harness import ALICE as SLACK_ALICE
from tests.slack_harness import CHANNEL, ThreadedSlack
from tests.telegram_harness import ALICE, CHAT, ThreadedTelegram
from tests.test_e2e_slack import accepts, free_port, new_session, start, tap
from tests.test_e2e_telegram import approval_id, start_session

TOKEN = "123456:TEST-token"
WEBHOOK_SECRET = "s3cret-webhook-token"
ELSEWHERE = "acts only in its own chat or channel"


@pytest.fixture
def slack() -> Iterator[ThreadedSlack]:
    fake = ThreadedSlack()
    yield fake
    fake.close()


def webhook_config(tg: ThreadedTelegram, port: int) -> str:
    return tg.config() + (
        'mode = "webhook"\nwebhook_url = "https://bridge.example.org/telegram"\n'
        f'webhook_listen = "127.0.0.1"\nwebhook_port = {port}\n'
    )


def logged(bridge: Bridge, text: str) -> bool:
    return text in bridge.log.read_text(errors="replace")


# -- 1. secrets --------------------------------------------------------------------------------


def test_webhook_mode_without_its_secret_refuses_to_start(make_bridge: Any,
                                                          tg: ThreadedTelegram) -> None:
    bridge: Bridge = make_bridge(extra=webhook_config(tg, free_port()))
    bridge.env["TELEGRAM_BOT_TOKEN"] = TOKEN
    bridge.env.pop("TELEGRAM_WEBHOOK_SECRET", None)
    started = time.monotonic()
    try:
        result = subprocess.run(
            [*agent_bridge_argv(), "--config", str(bridge.config), "run"], env=bridge.env,
            capture_output=True, text=True, timeout=30, cwd=bridge.tmp)
    except subprocess.TimeoutExpired:
        pytest.fail("webhook mode without a secret started (it would take forged updates)")
    assert result.returncode == 2, result.stderr
    assert "telegram.webhook_secret_env" in result.stderr
    assert "TELEGRAM_WEBHOOK_SECRET is not set" in result.stderr
    assert time.monotonic() - started < 20
    assert tg.on(lambda: tg.fake.calls) == []  # it never reached Telegram


def test_surfaces_refuse_to_run_a_check_without_its_secret() -> None:
    from bots.slack import SlackSurface
    from bots.telegram import TelegramSurface

    webhook = TelegramConfig(chat_id=CHAT, mode="webhook", webhook_url="https://x.org/t")
    with pytest.raises(ConfigError) as raised:
        TelegramSurface(webhook, TOKEN)
    assert raised.value.key == "telegram.webhook_secret_env"
    http = SlackConfig(channel=CHANNEL, mode="http")
    with pytest.raises(ConfigError) as raised:
        SlackSurface(http, "xoxb-1", signing_secret="")
    assert raised.value.key == "slack.signing_secret_env"


def test_only_the_composition_root_reads_the_environment() -> None:
    for source in sorted((ROOT / "bots").glob("*.py")):
        text = source.read_text()
        assert "environ" not in text and "getenv" not in text, source


# -- 7. only the bridge's own chat, channel and workspace act ---------------------------------


@pytest.fixture
def tg_chat(make_bridge: Any, tg: ThreadedTelegram) -> Bridge:
    bridge: Bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = TOKEN
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    return bridge


def test_telegram_taps_and_commands_outside_the_chat_decide_nothing(
        tg_chat: Bridge, tg: ThreadedTelegram) -> None:
    _, card = start_session(tg)
    aid = approval_id(card)
    other_group = -100777
    tg.on(tg.fake.add_chat, other_group, "supergroup", title="Elsewhere")
    for chat in (other_group, ALICE):  # a group of hers, her private chat with the bot
        forwarded = tg.on(tg.fake.forward_message, CHAT, card.message_id, chat)
        answer = tg.answer(tg.on(tg.fake.inject_callback, forwarded.message_id, chat, ALICE,
                                 f"ao:{aid}"))
        assert ELSEWHERE in answer.text and answer.show_alert
    tg.say("/new demo from my private chat", chat=ALICE)
    tg.message_with_in(ALICE, ELSEWHERE)
    tg.say(f"/stop {tg_chat.json('sessions')[0]['id']}", chat=other_group)
    tg.message_with_in(other_group, ELSEWHERE)
    assert tg_chat.answers() == []
    sessions = tg_chat.json("sessions")
    assert len(sessions) == 1 and sessions[0]["pending_approvals"][0]["id"] == aid
    # the same tap in the bridge's chat acts
    assert "Allowed once" in tg.answer(tg.tap(card, f"ao:{aid}")).text
    wait_until(lambda: tg_chat.answers(), what="the decision")


def test_slack_taps_and_commands_from_another_channel_or_workspace_decide_nothing(
        make_bridge: Any, slack: ThreadedSlack) -> None:
    bridge = start(make_bridge, slack)
    slack.connected()
    thread, card = new_session(slack)
    allow = card.values[0]
    # a tap on a message in another channel (a forged or copied button)
    slack._run(slack.fake.inject_message("look", channel=OTHER_CHANNEL))
    other = slack.on(lambda: slack.fake.messages[OTHER_CHANNEL][-1])
    before = slack.ephemeral_count()
    slack.tap(other, allow, require_button=False)
    refused = slack.ephemeral_after(before)
    assert ELSEWHERE in refused.shown and refused.channel == OTHER_CHANNEL
    # a tap on the card itself by the same person id, from another workspace
    user = {**slack.fake.users[SLACK_ALICE], "team_id": "T0EVIL"}
    payload = block_actions_payload(
        user=user, channel=CHANNEL,
        message={"type": "message", "ts": card.ts, "thread_ts": thread, "text": card.text,
                 "blocks": card.blocks},
        container={"type": "message", "message_ts": card.ts, "channel_id": CHANNEL,
                   "is_ephemeral": False, "thread_ts": thread},
        action={"type": "button", "action_id": "btn0", "block_id": "row0", "value": allow,
                "text": {"type": "plain_text", "text": "Allow once"}},
        response_url=f"http://127.0.0.1:{slack.fake.port}/respond/none", trigger_id="9.evil")
    payload["user"]["team_id"] = payload["team"]["id"] = "T0EVIL"
    before = slack.ephemeral_count()
    slack._run(slack.fake.push("interactive", payload))
    assert ELSEWHERE in slack.ephemeral_after(before).shown
    # a command from another channel
    before = slack.ephemeral_count()
    slack._run(slack.fake.inject_command("/agent", "new demo elsewhere", channel=OTHER_CHANNEL))
    assert ELSEWHERE in slack.ephemeral_after(before).shown
    assert bridge.answers() == []
    assert len(bridge.json("sessions")) == 1
    assert bridge.json("sessions")[0]["pending_approvals"]
    assert "Allowed once" in tap(slack, card, allow)  # at home it acts
    wait_until(lambda: bridge.answers(), what="the decision")


# -- 13. each delivery acts once --------------------------------------------------------------


def test_a_redelivered_socket_mode_envelope_acts_once(make_bridge: Any,
                                                      slack: ThreadedSlack) -> None:
    bridge = start(make_bridge, slack)
    slack.connected()
    envelope = slack.command("new demo please run a command")
    slack.new_thread()
    slack._run(slack.fake.redeliver(envelope))
    wait_until(lambda: logged(bridge, "again: acknowledged, ignored"),
               what="the redelivery to be recognised")
    assert len(bridge.json("sessions")) == 1


def test_a_second_deny_reason_form_is_refused_never_a_prompt(make_bridge: Any,
                                                            slack: ThreadedSlack) -> None:
    bridge = start(make_bridge, slack)
    slack.connected()
    thread, card = new_session(slack)
    deny_reason = next(v for v in card.values if v.startswith("dr:"))
    slack.tap(card, deny_reason)
    slack.tap(card, deny_reason)  # a second form, opened before the first was sent
    first, second = slack.wait_until(lambda: len(slack.fake.views) == 2 and slack.fake.views)
    slack.submit(first, "wrong branch")
    wait_until(lambda: bridge.answers(), what="the deny")
    assert bridge.answers()[0]["response"]["message"] == "wrong branch"
    before = slack.ephemeral_count()
    slack.submit(second, "use the staging database instead")
    refused = slack.ephemeral_after(before)
    assert "Already denied by @alice (slack)" in refused.shown
    prompts = [m for m in bridge.recorded() if m.get("type") == "user"]
    assert "staging" not in json.dumps(prompts)
    assert len(bridge.answers()) == 1
    # and a reply in the thread afterwards is a reply again, not a late reason
    slack.say("carry on", thread_ts=thread)
    wait_until(lambda: "carry on" in json.dumps(
        [m for m in bridge.recorded() if m.get("type") == "user"]),
        what="the reply to reach the agent")


def test_a_second_telegram_reason_prompt_is_refused_never_a_prompt(
        tg_chat: Bridge, tg: ThreadedTelegram) -> None:
    thread, card = start_session(tg)
    deny_reason = f"dr:{approval_id(card)}"
    tg.answer(tg.tap(card, deny_reason))
    tg.answer(tg.tap(card, deny_reason))  # asked twice: two "send the reason" prompts
    tg.wait_until(lambda: len([m for m in tg.messages(thread) if "Send the reason" in m.text])
                  == 2)
    first, second = [m for m in tg.messages(thread) if "Send the reason" in m.text]
    tg.on(tg.fake.inject_message, CHAT, ALICE, "wrong branch", thread_id=thread,
          reply_to_message_id=first.message_id)
    wait_until(lambda: tg_chat.answers(), what="the deny")
    assert tg_chat.answers()[0]["response"]["message"] == "wrong branch"
    tg.on(tg.fake.inject_message, CHAT, ALICE, "use the staging database", thread_id=thread,
          reply_to_message_id=second.message_id)
    tg.message_with("Already denied by @alice (telegram)", thread)
    prompts = [m for m in tg_chat.recorded() if m.get("type") == "user"]
    assert "staging" not in json.dumps(prompts) and len(tg_chat.answers()) == 1


@pytest.fixture
def http(make_bridge: Any, slack: ThreadedSlack) -> tuple[Bridge, str]:
    port = free_port()
    bridge: Bridge = make_bridge(extra=slack.config(mode="http", http_port=port),
                                 agents={"chat": ["text"]})
    bridge.env.update(slack.env())
    bridge.start()
    wait_until(lambda: accepts(port), what="the Slack HTTP endpoint")
    url = f"http://127.0.0.1:{port}/slack/events"
    slack.fake.deliver_to = url
    return bridge, url


def test_http_replays_and_retries_act_once(http: tuple[Bridge, str],
                                           slack: ThreadedSlack) -> None:
    bridge, url = http
    form = "application/x-www-form-urlencoded"

    def send(body: str, ctype: str, **kwargs: Any) -> int:
        return int(slack._run(slack.fake.send_signed(url, body, ctype, **kwargs))[0])

    # a slash command replayed with its very signature, inside the five minutes
    command = urllib.parse.urlencode(slash_form(
        "/agent", "new demo hello --agent chat", user=slack.fake.users[SLACK_ALICE],
        channel=CHANNEL, response_url=f"http://127.0.0.1:{slack.fake.port}/respond/none",
        trigger_id="5.replayed"))
    signed_at = int(time.time())
    assert send(command, form, timestamp=signed_at) == 200
    thread = slack.new_thread().ts
    slack.message_with("Turn finished", thread)
    assert send(command, form, timestamp=signed_at) == 200
    wait_until(lambda: logged(bridge, "trigger_id:5.replayed again"), what="the replay")
    assert len(bridge.json("sessions")) == 1
    # an event Slack retries (signed anew, X-Slack-Retry-Num) is one reply, not two
    event = json.dumps(message_event(user=SLACK_ALICE, channel=CHANNEL, text="and again",
                                     ts="1800000000.000100", thread_ts=thread,
                                     event_id="Ev0RETRIED"))
    assert send(event, "application/json") == 200
    assert send(event, "application/json", timestamp=int(time.time()) + 1,
                headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
                ) == 200
    wait_until(lambda: logged(bridge, "event_id:Ev0RETRIED again"), what="the retry")
    slack.wait_until(lambda: len([m for m in slack.thread_messages(thread)
                                  if "Turn finished" in m.shown]) == 2)
    prompts = [m for m in bridge.recorded() if m.get("type") == "user"]
    assert len(prompts) == 2, prompts


def test_a_malformed_timestamp_gets_401(http: tuple[Bridge, str], slack: ThreadedSlack) -> None:
    bridge, url = http
    body = urllib.parse.urlencode(slash_form(
        "/agent", "help", user=slack.fake.users[SLACK_ALICE], channel=CHANNEL,
        response_url=f"http://127.0.0.1:{slack.fake.port}/respond/none", trigger_id="6.x"))
    for timestamp in ("not-a-number", "", "1.5e9", "9" * 5000):
        status, _ = slack._run(slack.fake.send_signed(
            url, body, "application/x-www-form-urlencoded", timestamp=timestamp))
        assert status == 401, timestamp
    assert "Traceback" not in bridge.log_text()


def test_telegram_webhook_acts_once_per_update_and_only_with_the_secret(
        make_bridge: Any, tg: ThreadedTelegram) -> None:
    port = free_port()
    bridge: Bridge = make_bridge(extra=webhook_config(tg, port))
    bridge.env["TELEGRAM_BOT_TOKEN"] = TOKEN
    bridge.env["TELEGRAM_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    bridge.start()
    tg.wait_for("setWebhook")
    wait_until(lambda: accepts(port), what="the webhook server")

    def post(update_id: int, text: str, secret: str | None = WEBHOOK_SECRET) -> int:
        command = text.split()[0]
        update = {"update_id": update_id, "message": {
            "message_id": 100 + update_id, "date": int(time.time()), "text": text,
            "chat": {"id": CHAT, "type": "supergroup", "is_forum": True},
            "from": {"id": ALICE, "is_bot": False, "first_name": "Alice", "username": "alice"},
            "entities": [{"type": "bot_command", "offset": 0, "length": len(command)}]}}
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        request = urllib.request.Request(f"http://127.0.0.1:{port}/telegram",
                                         data=json.dumps(update).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            return e.code

    assert post(1, "/new demo forged", secret=None) == 403
    assert post(2, "/new demo please run a command") == 200
    tg.wait_for("createForumTopic")
    assert post(2, "/new demo please run a command") == 200  # Telegram sending it again
    wait_until(lambda: logged(bridge, "telegram update 2 arrived again"), what="the repeat")
    assert len(bridge.json("sessions")) == 1

