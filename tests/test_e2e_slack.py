"""End to end through Slack: the daemon (subprocess) with the real slack-bolt, over Socket
Mode or signed HTTP, against the fake Slack, with the fake agent. What the surface contract
does not cover: files, HTTP signatures, both surfaces at once, Slack's own failure modes."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.slack_api import (
    APP_TOKEN,
    BOT_TOKEN,
    OTHER_CHANNEL,
    SIGNING_SECRET,
    block_actions_payload,
)
from tests.harness import Bridge, wait_until
from tests.slack_harness import ALICE, CHANNEL, STRANGER, ThreadedSlack
from tests.test_e2e_changes import make_repo


@pytest.fixture
def slack() -> Iterator[ThreadedSlack]:
    fake = ThreadedSlack()
    yield fake
    fake.close()


def start(make_bridge: Any, slack: ThreadedSlack, *, extra: str = "", **kwargs: Any) -> Bridge:
    bridge: Bridge = make_bridge(extra=slack.config() + extra, **kwargs)
    bridge.env.update(slack.env())
    bridge.start()
    return bridge


@pytest.fixture
def chat(make_bridge: Any, slack: ThreadedSlack) -> Bridge:
    bridge = start(make_bridge, slack)
    slack.connected()
    return bridge


def new_session(slack: ThreadedSlack, text: str = "demo please run a command") -> tuple[str, Any]:
    before = len(slack.on(lambda: [m for m in slack.fake.top_level() if m.bot_id]))
    slack.command(f"new {text}")
    thread = slack.new_thread(since=before).ts
    return thread, slack.message_with("Approval needed", thread)


def tap(slack: ThreadedSlack, message: Any, value: str, *, user: str = ALICE) -> str:
    before = slack.ephemeral_count(user)
    slack.tap(message, value, user=user)
    return slack.ephemeral_after(before, user).shown


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_socket_mode_session_with_summary_and_diff_files_in_the_thread(
        make_bridge: Any, slack: ThreadedSlack) -> None:
    bridge = start(make_bridge, slack)
    make_repo(bridge.project)
    # an untracked file too big for an inline diff: the diff goes up as a file
    (bridge.project / "notes.txt").write_text("".join(f"note {i}: {'x' * 60}\n"
                                                     for i in range(80)))
    slack.connected()
    thread, card = new_session(slack)
    parent = slack.thread_messages(thread)[0]
    assert parent.thread_ts is None and "demo" in parent.shown  # the status card is the parent
    assert card.thread_ts == thread and "$ echo hi > out.txt" in card.shown
    assert "&gt;" in card.text  # the fallback text is escaped mrkdwn, the section plain text
    # in a thread Slack notifies only participants: the card calls the one who started it
    assert card.text.startswith(f"<@{ALICE}> ")
    assert card.blocks[0]["text"] == {"type": "mrkdwn", "text": f"<@{ALICE}>"}
    assert len({b["action_id"] for b in card.buttons}) == 5
    assert "Allowed once" in tap(slack, card, card.values[0])
    summary = slack.message_with("Turn finished", thread)
    assert "All done." in summary.shown
    # the turn's own change (out.txt; notes.txt was there before the turn) goes inline
    inline = slack.message_with("diff --git", thread)
    assert "out.txt" in inline.shown and "notes.txt" not in inline.shown
    sid = bridge.json("sessions")[0]["id"]
    slack.wait_until(lambda: "idle" in (slack.fake.message(CHANNEL, thread) or parent).shown)
    # the whole diff, asked for: too big inline, it goes up as a file in the thread
    slack.command(f"diff {sid}")
    upload = slack.wait_until(lambda: next((f for f in slack.fake.files.values()
                                            if f.completed), None))
    assert (upload.channel, upload.thread_ts) == (CHANNEL, thread)
    assert upload.data is not None and b"notes.txt" in upload.data
    assert b"+hi" in upload.data  # the agent's allowed command ran
    # asked for again: another file, same thread
    slack.command(f"diff {sid}")
    slack.wait_until(lambda: len([f for f in slack.fake.files.values() if f.completed]) == 2)
    assert all(f.thread_ts == thread for f in slack.fake.files.values())
    # every envelope was acknowledged, nothing was rate limited, no token was logged
    slack.wait_until(lambda: all(e.id in slack.fake.acks for e in slack.fake.envelopes))
    assert not slack.fake.rate_limited
    log = bridge.log.read_text(errors="replace")
    assert BOT_TOKEN not in log and APP_TOKEN not in log


def test_stale_and_forged_taps_get_an_ephemeral_explanation(chat: Bridge,
                                                            slack: ThreadedSlack) -> None:
    thread, card = new_session(slack)
    before = slack.ephemeral_count(STRANGER)
    slack.tap(card, "zz:nothing", user=STRANGER, require_button=False)
    assert "no longer valid" in slack.ephemeral_after(before, STRANGER).shown
    before = slack.ephemeral_count()
    slack.tap(card, "ao:zzzzzz", require_button=False)
    gone = slack.ephemeral_after(before)
    assert "no approval 'zzzzzz'" in gone.shown
    # on the tap's response_url: not counted against chat.postEphemeral's 100 a minute
    assert gone.thread_ts == thread and gone.via == "response_url"
    assert chat.answers() == []


def test_deny_reason_as_a_thread_reply_when_no_modal_can_open(chat: Bridge,
                                                              slack: ThreadedSlack) -> None:
    thread, card = new_session(slack)
    slack.on(slack.fake.fail_next, "views.open", "expired_trigger_id")
    asked = tap(slack, card, next(v for v in card.values if v.startswith("dr:")))
    assert "reason" in asked
    slack.say("a stranger's opinion", thread_ts=thread, user=STRANGER)
    slack.say("wrong branch", thread_ts=thread)
    wait_until(lambda: chat.answers(), what="the deny")
    answer = chat.answers()[0]["response"]
    assert answer["behavior"] == "deny" and answer["message"] == "wrong branch"
    assert len(chat.answers()) == 1
    edited = slack.wait_until(lambda: (m := slack.fake.message(CHANNEL, card.ts)) is not None
                              and "Denied by @alice (slack)" in m.shown and m)
    assert "wrong branch" in edited.shown and edited.buttons == []


def test_only_allowed_people_in_a_session_thread_continue_it(make_bridge: Any,
                                                             slack: ThreadedSlack) -> None:
    bridge = start(make_bridge, slack, agents={"chat": ["text"]})
    slack.connected()
    slack.command("new demo hello --agent chat")
    thread = slack.new_thread().ts
    slack.message_with("Turn finished", thread)

    def prompts() -> list[Any]:
        return [m["message"]["content"] for m in bridge.recorded() if m.get("type") == "user"]

    slack._run(slack.fake.inject_message("elsewhere", channel=OTHER_CHANNEL))
    slack.say("not in a thread")
    slack.say("from a stranger", thread_ts=thread, user=STRANGER)
    slack.say("continue please", thread_ts=thread)
    wait_until(lambda: len(prompts()) == 2, what="the reply to reach the agent")
    slack.wait_until(lambda: len([m for m in slack.thread_messages(thread)
                                  if "Turn finished" in m.shown]) == 2)
    assert "continue please" in json.dumps(prompts()[1])
    assert len(prompts()) == 2
    assert slack.ephemeral_count(STRANGER) == 0  # strangers talking are not answered


def test_rate_limits_are_waited_out_and_nothing_is_lost(chat: Bridge,
                                                        slack: ThreadedSlack) -> None:
    slack.on(slack.fake.fail_next, "chat.postMessage", "ratelimited", retry_after=1, times=2)
    started = time.monotonic()
    thread, card = new_session(slack)
    assert time.monotonic() - started >= 1.0
    tap(slack, card, card.values[0])
    slack.message_with("Turn finished", thread)
    assert [c.status for c in slack.fake.calls_to("chat.postMessage")][:3] == [429, 429, 200]
    assert len(slack.fake.top_level()) == 1  # one thread, not one per retry


def test_an_outage_delays_delivery_in_order(chat: Bridge, slack: ThreadedSlack) -> None:
    thread, card = new_session(slack)
    slack.on(slack.fake.set_unreachable, True)
    chat.cli("approve", card.values[0].split(":")[1])
    chat.wait_state(chat.json("sessions")[0]["id"], "idle")
    slack.on(slack.fake.set_unreachable, False)
    summary = slack.message_with("Turn finished", thread, timeout=40)
    slack.wait_until(lambda: "Allowed once by local CLI"
                     in (slack.fake.message(CHANNEL, card.ts) or card).shown)
    assert float(summary.ts) > float(card.ts)


def test_socket_mode_reconnects_after_slack_drops_the_connection(chat: Bridge,
                                                                 slack: ThreadedSlack) -> None:
    slack._run(slack.fake.close_sockets())
    slack.wait_until(lambda: slack.fake.connections >= 2 and slack.fake.sockets, timeout=30)
    new_session(slack)


def test_http_mode_checks_signatures_and_timestamps(make_bridge: Any,
                                                    slack: ThreadedSlack) -> None:
    port = free_port()
    bridge: Bridge = make_bridge(extra=slack.config(mode="http", http_port=port))
    bridge.env["SLACK_BOT_TOKEN"] = BOT_TOKEN
    bridge.env["SLACK_SIGNING_SECRET"] = SIGNING_SECRET
    bridge.start()
    wait_until(lambda: accepts(port), what="the Slack HTTP endpoint")
    url = f"http://127.0.0.1:{port}/slack/events"
    slack.fake.deliver_to = url
    assert slack.command("new demo please run a command") == "200"
    thread = slack.new_thread().ts
    card = slack.message_with("Approval needed", thread)
    payload = block_actions_payload(
        user=slack.fake.users[ALICE], channel=CHANNEL,
        message={"type": "message", "ts": card.ts, "thread_ts": thread, "text": card.text,
                 "blocks": card.blocks},
        container={"type": "message", "message_ts": card.ts, "channel_id": CHANNEL,
                   "is_ephemeral": False, "thread_ts": thread},
        action={"type": "button", "action_id": "btn0", "block_id": "row0",
                "value": card.values[0], "text": {"type": "plain_text", "text": "Allow once"}},
        response_url=f"http://127.0.0.1:{slack.fake.port}/respond/none",
        trigger_id="1.x",
    )
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    form = "application/x-www-form-urlencoded"

    def send(**kwargs: Any) -> int:
        return int(slack._run(slack.fake.send_signed(url, body, form, **kwargs))[0])

    # Bolt answers 401 before any listener runs: once the response is in, nothing can follow
    answered = slack.ephemeral_count()
    assert send(secret="not-the-signing-secret") == 401
    assert send(timestamp=int(time.time()) - 6 * 60) == 401
    assert bridge.answers() == []
    assert bridge.json("sessions")[0]["pending_approvals"]
    assert slack.ephemeral_count() == answered
    assert send() == 200
    wait_until(lambda: bridge.answers(), what="the signed tap to be acted on")
    assert bridge.answers()[0]["response"]["behavior"] == "allow"
    assert "Allowed once" in slack.ephemeral_after(answered).shown
    slack.wait_until(lambda: "Allowed once by @alice (slack)"
                     in (slack.fake.message(CHANNEL, card.ts) or card).shown)
    assert slack.fake.calls_to("apps.connections.open") == []


def test_both_surfaces_show_each_others_decisions(make_bridge: Any, slack: ThreadedSlack,
                                                  tg: Any) -> None:
    bridge: Bridge = make_bridge(extra=tg.config() + slack.config())
    bridge.env.update(slack.env())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    slack.connected()

    # a decision on Telegram edits the card on Slack too
    thread, card = new_session(slack)
    stale_deny = card.values[2]  # the card is the fake's live message: its buttons go
    topic = tg.wait_for("createForumTopic").result["message_thread_id"]
    tg_card = tg.message_with("Approval needed", topic)
    tg.answer(tg.tap(tg_card, tg_card.callback_data[0]))
    slack.wait_until(lambda: "Allowed once by @alice (telegram)"
                     in (slack.fake.message(CHANNEL, card.ts) or card).shown)
    assert (slack.fake.message(CHANNEL, card.ts) or card).buttons == []
    before = slack.ephemeral_count()
    slack.tap(card, stale_deny, require_button=False)  # a client still showing the old card
    assert "Already allowed once by @alice (telegram)" in slack.ephemeral_after(before).shown
    slack.message_with("Turn finished", thread)

    # and one on Slack edits the card on Telegram
    tg.say("/new demo once more")
    thread2 = slack.new_thread(since=1).ts
    card2 = slack.message_with("Approval needed", thread2)
    topic2 = tg.wait_for("createForumTopic", lambda c: c.result["message_thread_id"] != topic
                         ).result["message_thread_id"]
    tg_card2 = tg.message_with("Approval needed", topic2)
    tap(slack, card2, next(v for v in card2.values if v.startswith("dn:")))
    edited = tg.message_with("Denied by @alice (slack)", topic2)
    assert edited.message_id == tg_card2.message_id and edited.buttons == []
    wait_until(lambda: len(bridge.answers()) == 2, what="both decisions")
    assert [a["response"]["behavior"] for a in bridge.answers()] == ["allow", "deny"]
