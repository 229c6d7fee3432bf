"""Grouped approval cards end to end (issue 16): the real daemon process, fake agents, and
the fake Bot API enforcing Telegram's limits for a forum group (20 messages a minute and one
a second, sends, edits and topic changes together). Sessions that ask at once while the
group's budget is spent get one grouped message; a tap on an entry's button decides exactly
that approval, and the agent behind it goes on."""

from __future__ import annotations

import pytest

from tests.fakes.telegram_api import Fault, RateLimit
from tests.telegram_harness import CHAT, STRANGER, ThreadedTelegram

SESSIONS = 3


@pytest.fixture
def group():
    fake = ThreadedTelegram(group_limit=RateLimit(20, 60.0), chat_limit=RateLimit(1, 1.0),
                            edit_limit=None, shared_budget=True)
    yield fake
    fake.close()


def sessions_asking(make_bridge, tg: ThreadedTelegram):
    """The daemon on the group, and SESSIONS sessions each asking for an approval at once:
    the bridge, the session ids, and each session's approval id."""
    bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    ids = [bridge.json("new", "demo", f"please run a command {n}")["id"] for n in range(SESSIONS)]
    return bridge, ids, {sid: bridge.wait_approval(sid)[0]["id"] for sid in ids}


def test_a_tap_on_a_grouped_card_decides_exactly_its_approval(make_bridge, group):
    tg = group
    bridge, ids, approvals = sessions_asking(make_bridge, tg)
    grouped = tg.message_with("approvals waiting", timeout=30)
    assert grouped.thread_id is None  # the group's General topic
    inside = [sid for sid in ids if f"request {approvals[sid]}" in (grouped.text or "")]
    assert len(inside) >= 2, grouped.text
    # every approval is on a card by now: its own, or the grouped one
    tg.wait_until(lambda: all(any(f"ao:{approvals[sid]}" in m.callback_data
                                  for m in tg.fake.messages.values()) for sid in ids),
                  timeout=30)

    chosen, other = inside[1], inside[0]
    number = inside.index(chosen) + 1
    data = f"ao:{approvals[chosen]}"
    button = next(b for b in grouped.buttons if b["callback_data"] == data)
    assert button["text"] == f"Allow once #{number}"
    refused = tg.answer(tg.tap(grouped, data, user=STRANGER))
    assert "not allowed" in refused.text, refused
    assert bridge.session(chosen)["pending_approvals"]
    query = tg.tap(grouped, data)
    assert "Allowed once" in tg.answer(query).text
    bridge.wait_state(chosen, "idle", timeout=30)  # its agent went on and finished the turn
    assert bridge.session(other)["pending_approvals"]
    # the grouped card says who allowed it, and only that entry lost its buttons
    tg.wait_until(lambda: "Allowed once by" in (tg.fake.messages[(CHAT, grouped.message_id)].text
                                                  or ""), timeout=30)
    edited = tg.fake.messages[(CHAT, grouped.message_id)]
    assert data not in edited.callback_data
    assert f"ao:{approvals[other]}" in edited.callback_data
    assert not tg.fake.rate_limited


def test_a_refused_grouped_card_sends_each_approval_on_its_own(make_bridge, group):
    """Telegram refusing the grouped message (say, text it cannot parse) is no approval's
    fault: each goes as its own card at once, none is charged a failure or given up."""
    tg = group
    refused: list[str] = []

    def refuse_grouped(method: str, params: dict) -> Fault | None:
        if method == "sendMessage" and "approvals waiting" in str(params.get("text", "")):
            refused.append(str(params["text"]))
            return Fault.REFUSED
        return None

    tg.fake.faults = refuse_grouped
    bridge, ids, approvals = sessions_asking(make_bridge, tg)
    tg.wait_until(lambda: refused, timeout=30)  # the budget was short: it was grouped
    # every approval still reaches the chat, each on its own card in its session's topic
    tg.wait_until(lambda: all(any(f"ao:{approvals[sid]}" in m.callback_data
                                  and m.thread_id is not None
                                  for m in tg.fake.messages.values()) for sid in ids),
                  timeout=90)
    for sid in ids:  # and each still waits for its person: nothing was given up
        assert bridge.session(sid)["pending_approvals"]
    assert "giving up" not in bridge.log_text()
