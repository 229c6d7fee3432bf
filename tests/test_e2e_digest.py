"""The digest through Telegram: one message that says what needs you, and one tap acts."""

from __future__ import annotations

from tests.harness import wait_until
from tests.telegram_harness import CHAT


def test_digest_lists_waiting_unreviewed_and_stalled_runs_with_working_buttons(make_bridge, tg):
    bridge = make_bridge(
        agents={"chat": ["text"], "slow": ["text", "--delay-ms", "60000"]},
        extra=tg.config() + '[digest]\nstalled_after = "0s"\nunreviewed_after = "0s"\n',
    )
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.say("/new demo please run a command")
    tg.message_with("Approval needed")
    tg.say("/new demo hello --agent chat")
    tg.message_with("Turn finished")
    tg.say("/new demo think for a long time --agent slow")
    sessions = {s["title"]: s for s in bridge.json("sessions")}
    waiting = sessions["please run a command"]["id"]
    finished = sessions["hello"]["id"]
    slow = sessions["think for a long time"]["id"]
    bridge.wait_state(slow, "running")
    bridge.wait_state(finished, "idle")

    tg.say("/digest")
    digest = tg.message_with("📋 Digest")
    assert digest.thread_id is None  # the main chat, not a session's topic
    text = digest.text
    assert text.index("Waiting on you") < text.index("Finished, not reviewed") < text.index(
        "Stalled")
    for sid in (waiting, finished, slow):
        assert sid in text
    by_session = {}
    for row in digest.reply_markup["inline_keyboard"]:
        by_session[row[0]["text"].split()[-1]] = row
    assert by_session[waiting][0]["url"].startswith("https://t.me/c/")

    def data(sid: str, label: str) -> str:
        return next(b["callback_data"] for b in by_session[sid] if b["text"] == label)

    tg.answer(tg.tap(digest, data(slow, "Archive")))
    wait_until(lambda: bridge.session(slow)["archived"], what="the tap to archive")
    tg.answer(tg.tap(digest, data(finished, "Diff")))
    tg.message_with(f"Diff of {finished}")
    stop = tg.answer(tg.tap(digest, data(waiting, "Stop")))
    assert "stopped" in stop.text
    # looked at, archived or stopped: the next digest no longer shows them as before
    tg.say("/digest")
    wait_until(lambda: len([m for m in tg.messages() if m.text.startswith("📋")]) == 2,
               what="a second digest")
    second = [m for m in tg.messages() if m.text.startswith("📋")][-1]
    assert slow not in second.text and finished not in second.text


def test_an_empty_digest_is_not_sent_but_asking_gets_an_answer(make_bridge, tg):
    bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    assert "Nothing needs you" in bridge.cli("digest").stdout
    tg.say("/digest")
    tg.message_with("Nothing needs you right now")
    assert [m for m in tg.messages(chat=CHAT) if m.text.startswith("📋 Digest")] == []
