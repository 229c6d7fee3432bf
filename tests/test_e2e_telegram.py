"""End to end through Telegram: the daemon (subprocess) with the real python-telegram-bot,
against the fake Bot API, with the fake agent. Every step is what a user on a phone does."""

from __future__ import annotations

import re

import pytest

from tests.harness import wait_until
from tests.telegram_harness import ALICE, STRANGER

ORIGINAL_INPUT = {"command": "echo hi > out.txt", "description": "write a file"}


@pytest.fixture
def chat(make_bridge, tg):
    bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.wait_for("setMyCommands")
    tg.wait_for("getUpdates", ok=None)
    return bridge


def start_session(tg, prompt: str = "please run a command", extra: str = ""):
    tg.say(f"/new demo {prompt}{extra}")
    topic_call = tg.wait_for("createForumTopic")
    thread = topic_call.result["message_thread_id"]
    card = tg.message_with("Approval needed", thread)
    return thread, card


def approval_id(card) -> str:
    return card.callback_data[0].split(":")[1]


def test_new_topic_card_tap_allow_and_summary(chat, tg):
    thread, card = start_session(tg)
    assert "echo hi > out.txt" in card.text
    assert str(chat.project) in card.text
    assert [b["text"] for b in card.buttons] == [
        "Allow once", "Allow for session", "Deny", "Deny with reason…", "Stop"]
    assert all(len(d.encode()) <= 64 for d in card.callback_data)
    status = tg.messages(thread)[0]
    assert "demo" in status.text and "claude" in status.text
    aid = approval_id(card)
    query = tg.tap(card, f"ao:{aid}")
    assert "Allowed once" in tg.answer(query).text
    wait_until(lambda: chat.answers(), what="the agent to receive the decision")
    assert chat.answers()[0]["response"] == {"behavior": "allow", "updatedInput": ORIGINAL_INPUT}
    summary = tg.message_with("Turn finished", thread)
    assert "All done." in summary.text
    edited = tg.message_with("Allowed once by @alice (telegram)", thread)
    assert edited.message_id == card.message_id and edited.buttons == []
    # a title is a status change: it gets what the group's 20 a minute leaves (≤ 5 a minute)
    tg.wait_until(lambda: tg.fake.topics[thread].name.startswith("💤"), timeout=65)
    assert not tg.fake.rate_limited


def test_deny_with_reason_asks_then_passes_the_reply_to_the_agent(chat, tg):
    thread, card = start_session(tg)
    query = tg.tap(card, f"dr:{approval_id(card)}")
    assert "reason" in tg.answer(query).text
    tg.say("not in this repo", thread=thread)
    wait_until(lambda: chat.answers(), what="the deny to reach the agent")
    answer = chat.answers()[0]["response"]
    assert answer["behavior"] == "deny" and answer["message"] == "not in this repo"
    tg.message_with("Denied by @alice (telegram)", thread)
    assert not (chat.project / "out.txt").exists()


def test_a_stranger_and_a_double_tap_change_nothing(chat, tg):
    _, card = start_session(tg)
    aid = approval_id(card)
    stranger = tg.answer(tg.tap(card, f"ao:{aid}", user=STRANGER))
    assert "not allowed" in stranger.text and stranger.show_alert
    assert chat.answers() == []
    assert chat.json("sessions")[0]["pending_approvals"][0]["id"] == aid
    tg.answer(tg.tap(card, f"dn:{aid}"))
    second = tg.answer(tg.tap(card, f"ao:{aid}"))
    assert "Already denied by @alice" in second.text
    wait_until(lambda: chat.answers(), what="the deny")
    assert len(chat.answers()) == 1 and chat.answers()[0]["response"]["behavior"] == "deny"


def test_stop_from_the_card_stops_the_session(chat, tg):
    thread, card = start_session(tg)
    tg.answer(tg.tap(card, f"st:{approval_id(card)}"))
    sid = chat.json("sessions")[0]["id"]
    chat.wait_state(sid, "stopped")
    tg.message_with("Stopped by @alice", thread)
    assert chat.answers()[0]["response"]["interrupt"] is True


def test_a_message_in_the_topic_continues_the_session(make_bridge, tg):
    bridge = make_bridge(agents={"chat": ["text"]}, extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.say("/new demo hello --agent chat")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    tg.message_with("Turn finished", thread)
    tg.say("and again", thread=thread)
    wait_until(lambda: len([m for m in bridge.recorded() if m.get("type") == "user"]) == 2,
               what="the reply to reach the agent")
    tg.wait_until(lambda: len([m for m in tg.messages(thread) if "Turn finished" in m.text]) == 2)


def test_commands_sessions_status_help_and_bad_input(chat, tg):
    thread, _ = start_session(tg)
    sid = chat.json("sessions")[0]["id"]
    tg.say("/sessions")
    listing = tg.message_with(sid)
    assert listing.buttons
    tg.say("/status", thread=thread)  # the id may be left out inside the topic
    tg.wait_until(lambda: any(m.text.startswith("🔐") and sid in m.text
                              for m in tg.messages(thread)))
    tg.say("/stop zzzzzz")
    tg.message_with("no session 'zzzzzz'")
    tg.say("/frobnicate")
    tg.message_with("Unknown command /frobnicate")
    tg.say("/new")
    tg.message_with("Usage: /new PROJECT PROMPT")
    tg.say("/help")
    tg.message_with("/resume ID [PROMPT]")
    commands = [c["command"] for c in tg.on(lambda: tg.fake.commands)]
    assert {"new", "sessions", "resume", "stop", "archive", "unarchive", "status", "diff",
            "help"} <= set(commands)


def test_a_stranger_cannot_start_sessions(chat, tg):
    tg.say("/new demo do things", user=STRANGER)
    tg.message_with("not allowed")
    assert chat.json("sessions") == []


def test_archive_closes_the_topic_and_unarchive_reopens_it(chat, tg):
    thread, _ = start_session(tg)
    sid = chat.json("sessions")[0]["id"]
    tg.say(f"/archive {sid}")
    tg.wait_until(lambda: tg.fake.topics[thread].closed)
    tg.say(f"/unarchive {sid}")
    tg.wait_until(lambda: not tg.fake.topics[thread].closed)


def test_429_storms_are_honoured_and_nothing_is_lost(chat, tg):
    tg.on(tg.fake.fail_next, "sendMessage", 429, retry_after=1, times=2)
    tg.on(tg.fake.fail_next, "createForumTopic", 429, retry_after=1, times=1)
    thread, card = start_session(tg)
    tg.answer(tg.tap(card, f"ao:{approval_id(card)}"))
    tg.message_with("Turn finished", thread)
    failed = tg.on(lambda: [c for c in tg.fake.calls if c.status == 429])
    assert len(failed) >= 2


def test_a_restart_with_a_pending_approval_marks_the_card_expired(chat, tg):
    thread, card = start_session(tg)
    # the status card is edited only after the approval card's delivery is recorded
    tg.wait_for("editMessageText", lambda c: "approval waiting" in c.params.get("text", ""))
    aid = approval_id(card)
    chat.kill()
    chat.start()
    expired = tg.message_with("Expired", thread)
    assert expired.message_id == card.message_id and expired.buttons == []
    late = tg.on(tg.fake.inject_callback, card.message_id, card.chat_id, ALICE, f"ao:{aid}",
                 require_button=False)
    late = tg.answer(late)
    assert "Expired" in late.text or "no longer" in late.text
    assert all(a["response"]["behavior"] != "allow" for a in chat.answers())


def test_messages_queued_while_telegram_is_down_arrive_in_order(chat, tg):
    thread, card = start_session(tg)
    tg.on(tg.fake.set_unreachable, True)
    chat.cli("approve", approval_id(card))
    sid = chat.json("sessions")[0]["id"]
    chat.wait_state(sid, "idle")
    tg.on(tg.fake.set_unreachable, False)
    summary = tg.message_with("Turn finished", thread, timeout=40)
    edited = tg.message_with("Allowed once by local CLI", thread)
    assert edited.message_id == card.message_id
    assert summary.message_id > card.message_id


def test_a_flooding_agent_never_pushes_the_bot_over_the_limits(make_bridge, tg):
    bridge = make_bridge(agents={"flood": ["flood", "--flood", "5000"]}, extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    for i in range(3):
        tg.say(f"/new demo flood number {i} --agent flood")
    wait_until(lambda: len([s for s in bridge.json("sessions") if s["state"] == "idle"]) == 3,
               timeout=60, what="three flooding sessions to finish")
    tg.wait_until(lambda: len([m for m in tg.messages() if "Turn finished" in m.text]) == 3,
                  timeout=90)
    assert not tg.fake.rate_limited
    sends = tg.on(lambda: [c for c in tg.fake.calls if c.method in ("sendMessage",
                                                                      "editMessageText")])
    assert len(sends) < 40
    assert sum(bridge.session(s["id"])["turns"] for s in bridge.json("sessions")) == 3


def test_plain_ids_in_cards_are_typeable(chat, tg):
    _, card = start_session(tg)
    aid = approval_id(card)
    assert re.fullmatch(r"[a-z2-9]{6}", aid)


def test_a_private_chat_without_topics_uses_a_reply_chain(make_bridge, tg):
    bridge = make_bridge(agents={"chat": ["text"]}, extra=tg.config(chat=ALICE))
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.say("/new demo hello --agent chat", chat=ALICE)
    summary = tg.message_with_in(ALICE, "Turn finished")
    header = tg.messages(chat=ALICE)
    head = next(m for m in header if m.text.startswith("💤") or "demo · chat" in m.text)
    assert summary.reply_to_message_id == head.message_id
    tg.on(tg.fake.inject_message, ALICE, ALICE, "once more", reply_to_message_id=summary.message_id)
    wait_until(lambda: len([m for m in bridge.recorded() if m.get("type") == "user"]) == 2,
               what="the reply to continue the session")


def test_webhook_mode_checks_the_secret_token(make_bridge, tg):
    import json
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = tg.config() + (
        'mode = "webhook"\nwebhook_url = "https://bridge.example.org/telegram"\n'
        f'webhook_listen = "127.0.0.1"\nwebhook_port = {port}\n'
    )
    bridge = make_bridge(extra=extra)
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.env["TELEGRAM_WEBHOOK_SECRET"] = "s3cret-webhook-token"
    bridge.start()
    hook = tg.wait_for("setWebhook")
    assert hook.params["url"] == "https://bridge.example.org/telegram"
    assert hook.params["secret_token"] == "s3cret-webhook-token"

    def post(secret: str, update_id: int) -> int:
        update = {"update_id": update_id, "message": {
            "message_id": 100 + update_id, "date": 0, "text": "/help",
            "chat": {"id": -100123, "type": "supergroup", "is_forum": True},
            "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"},
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}]}}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/telegram", data=json.dumps(update).encode(),
            headers={"Content-Type": "application/json",
                     "X-Telegram-Bot-Api-Secret-Token": secret})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    wait_until(lambda: _accepts(port), what="the webhook server")
    assert post("wrong", 1) == 403
    assert post("s3cret-webhook-token", 2) == 200
    tg.message_with("/resume ID [PROMPT]")  # /help was answered
    helps = [m for m in tg.messages() if "/resume ID" in m.text]
    assert len(helps) == 1  # the forged update did nothing


def _accepts(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
