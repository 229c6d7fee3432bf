"""A secret question through each chat surface (the contract suite's drivers): the card
offers no option to tap, only a reply; the reply reaches the agent, leaves the chat where
the platform lets the bot delete it (Telegram), or the person is told to delete it (Slack:
a bot token cannot delete a person's message); the answer is never echoed nor stored."""

from __future__ import annotations

from typing import Any

from tests.harness import FakeAgent, wait_until
from tests.slack_harness import ALICE as SLACK_ALICE
from tests.slack_harness import CHANNEL as SLACK_CHANNEL
from tests.test_surface_contract import Driver, driver, start_bridge  # noqa: F401

TOKEN = "tok-41d7e-deploy"


def test_a_secret_question_is_answered_by_a_reply_that_leaves_the_chat(
        make_bridge: Any, driver: Driver) -> None:  # noqa: F811
    bridge = start_bridge(make_bridge, driver, agents={
        "cx": FakeAgent(protocol="codex", scenario="secret_question")})
    thread = driver.start_session("demo deploy it --agent cx")
    card = driver.card_with(thread, "Your deploy token?")
    assert [label for label, _ in card.buttons] == ["Other…"]  # a secret is never a tap
    assert "secret" in card.text
    assert "next message" in driver.tap(card, card.payload("Other…"))
    driver.reply(thread, TOKEN)

    def answered() -> Any:
        return [m["result"] for m in bridge.recorded()
                if isinstance(m.get("result"), dict) and "answers" in m["result"]]

    (answer,) = wait_until(answered, what="the answer to reach the agent")
    assert answer == {"answers": {"token": {"answers": [TOKEN]}}}
    assert "1 answer(s) of 16 characters" in driver.card_with(thread, "Turn finished").text
    wait_until(lambda: "(hidden)" in driver.current(card).text, timeout=75,
               what="the card to say it was answered")
    if driver.name == "telegram":
        tg = driver.tg  # type: ignore[attr-defined]
        tg.wait_for("deleteMessage")
        assert not [m for m in tg.on(lambda: list(tg.fake.user_messages.values()))
                    if m.get("text") == TOKEN]
        shown = [m.text or "" for m in tg.messages(thread)]
    else:
        slack = driver.slack  # type: ignore[attr-defined]
        told = slack.wait_until(lambda: [e.shown for e in slack.fake.ephemerals_for(SLACK_ALICE)
                                         if "Delete your message" in e.shown])
        assert "(hidden)" in told[0]
        shown = [m.shown for m in slack.fake.replies(SLACK_CHANNEL, thread) if m.bot_id]
    assert shown and not [text for text in shown if TOKEN in text]  # never echoed
    stored = [f for f in (bridge.tmp / "state").rglob("*") if f.is_file()]
    assert stored and not [f for f in stored if TOKEN.encode() in f.read_bytes()]
    assert TOKEN not in bridge.log.read_text()
