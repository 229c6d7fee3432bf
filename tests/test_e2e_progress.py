"""End to end: the progress message of a running turn through Telegram. On by default in a
private chat, off with `[telegram] progress = false` until `/verbose ID on`; it shows the last
tool calls with how they ended and the agent's latest text, edited in place and coalesced (far
fewer edits than steps), and it never goes before the approval card of the same step."""

from __future__ import annotations

from typing import Any

from tests.harness import Bridge
from tests.telegram_harness import ALICE


def start(make_bridge: Any, tg: Any, *, progress: bool | None = None) -> Bridge:
    extra = tg.config(chat=ALICE)
    if progress is not None:
        extra += f"progress = {str(progress).lower()}\n"
    bridge: Bridge = make_bridge(agents={"claude": ["slow_approve"]}, extra=extra)
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    return bridge


def progress_messages(tg: Any) -> list[Any]:
    return [m for m in tg.messages(chat=ALICE) if (m.text or "").startswith("🛠")]


def test_progress_is_coalesced_in_place_and_follows_the_card(make_bridge, tg):
    bridge = start(make_bridge, tg)  # a private chat: on by default
    tg.say("/new demo think then write", chat=ALICE)
    card = tg.message_with_in(ALICE, "Approval needed")
    tg.wait_until(lambda: any("thinking step 10" in m.text and "▶️ Bash" in m.text
                              for m in progress_messages(tg)), timeout=20)
    (progress,) = progress_messages(tg)  # one message, edited in place
    assert "echo hi > out.txt · running" in progress.text
    assert "thinking step 9" not in progress.text  # the latest text only
    assert progress.message_id > card.message_id  # the card went first
    sid = bridge.json("sessions")[0]["id"]
    tg.answer(tg.tap(card, card.callback_data[0]))
    tg.message_with_in(ALICE, "Turn finished")
    edits = [c for c in tg.fake.calls_to("editMessageText")
             if c.params.get("message_id") == progress.message_id]
    assert len(edits) < 5  # eleven steps, a few edits: the latest state only
    assert len(progress_messages(tg)) == 1
    assert bridge.session(sid)["state"] == "idle"


def test_progress_off_by_config_until_verbose_on(make_bridge, tg):
    bridge = start(make_bridge, tg, progress=False)
    tg.say("/new demo think then write", chat=ALICE)
    tg.message_with_in(ALICE, "Approval needed")
    sid = bridge.json("sessions")[0]["id"]
    tg.say(f"/verbose {sid} maybe", chat=ALICE)
    tg.message_with_in(ALICE, "Usage: /verbose ID on|off")
    assert progress_messages(tg) == []
    tg.say(f"/verbose {sid} on", chat=ALICE)
    tg.message_with_in(ALICE, f"{sid}: progress message on")
    tg.wait_until(lambda: bool(progress_messages(tg)), timeout=20)
    assert "▶️ Bash" in progress_messages(tg)[0].text
    assert bridge.session(sid)["events"][-1]["kind"] == "verbose"
