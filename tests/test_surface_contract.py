"""One contract for every chat surface: the same scenarios, end to end (daemon subprocess,
fake agent, the real platform library against its fake server), on Telegram and on Slack.

Each platform gets a small driver that knows how a person starts a session, finds a card,
taps a button, reads what the bot answered and replies in a session's thread there; the
scenarios below are written once against that driver.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from bridge.actions import MAX_PAYLOAD_BYTES
from tests.harness import Bridge, wait_until
from tests.slack_harness import ALICE as SLACK_ALICE
from tests.slack_harness import CHANNEL as SLACK_CHANNEL
from tests.slack_harness import STRANGER as SLACK_STRANGER
from tests.slack_harness import ThreadedSlack
from tests.telegram_harness import ALICE as TG_ALICE
from tests.telegram_harness import CHAT as TG_CHAT
from tests.telegram_harness import STRANGER as TG_STRANGER
from tests.telegram_harness import ThreadedTelegram

APPROVAL_LABELS = ["Allow once", "Allow for session", "Deny", "Deny with reason…", "Stop"]
ORIGINAL_INPUT = {"command": "echo hi > out.txt", "description": "write a file"}


@dataclass
class Seen:
    """A bot message as a person sees it: its text and its buttons (label, payload)."""

    key: Any  # what the driver needs to find the message again
    text: str
    buttons: list[tuple[str, str]]

    def payload(self, label: str) -> str:
        return next(p for lbl, p in self.buttons if lbl == label)


class Driver(Protocol):
    name: str
    alice: str
    stranger: str

    def config(self) -> str: ...
    def env(self) -> dict[str, str]: ...
    def ready(self) -> None: ...
    def start_session(self, text: str) -> Any: ...
    def status_card(self, thread: Any) -> Seen: ...
    def card_with(self, thread: Any, text: str, count: int = 1) -> Seen: ...
    def current(self, card: Seen) -> Seen: ...
    def tap(self, card: Seen, payload: str, *, stranger: bool = False) -> str: ...
    def give_reason(self, thread: Any, text: str) -> None: ...
    def reply(self, thread: Any, text: str) -> None: ...
    def send_file(self, thread: Any, name: str, mime: str, data: bytes, caption: str) -> None: ...
    def command(self, text: str, *, stranger: bool = False) -> str: ...


class TelegramDriver:
    name = "telegram"
    alice = "@alice"
    stranger = "@mallory"

    def __init__(self, tg: ThreadedTelegram) -> None:
        self.tg = tg

    def config(self) -> str:
        return self.tg.config()

    def env(self) -> dict[str, str]:
        return {"TELEGRAM_BOT_TOKEN": "123456:TEST-token"}

    def ready(self) -> None:
        self.tg.wait_for("setMyCommands")
        self.tg.wait_for("getUpdates", ok=None)

    def _seen(self, message: Any) -> Seen:
        buttons = [(b["text"], b["callback_data"]) for b in message.buttons]
        return Seen(message.message_id, message.text or "", buttons)

    def start_session(self, text: str) -> Any:
        before = len(self.tg.on(lambda: self.tg.fake.calls_to("createForumTopic", ok=True)))
        self.tg.say(f"/new {text}")
        self.tg.wait_until(
            lambda: len(self.tg.fake.calls_to("createForumTopic", ok=True)) > before)
        call = self.tg.on(lambda: self.tg.fake.calls_to("createForumTopic", ok=True)[before])
        return call.result["message_thread_id"]

    def status_card(self, thread: Any) -> Seen:
        self.tg.wait_until(lambda: self.tg.messages(thread))
        return self._seen(self.tg.messages(thread)[0])

    def card_with(self, thread: Any, text: str, count: int = 1) -> Seen:
        self.tg.wait_until(
            lambda: len([m for m in self.tg.messages(thread) if text in (m.text or "")]) >= count)
        found = [m for m in self.tg.messages(thread) if text in (m.text or "")]
        return self._seen(found[count - 1])

    def current(self, card: Seen) -> Seen:
        return self._seen(self.tg.on(lambda: self.tg.fake.messages[(TG_CHAT, card.key)]))

    def tap(self, card: Seen, payload: str, *, stranger: bool = False) -> str:
        message = self.tg.on(lambda: self.tg.fake.messages[(TG_CHAT, card.key)])
        query = self.tg.tap(message, payload, user=TG_STRANGER if stranger else TG_ALICE)
        return self.tg.answer(query).text or ""

    def give_reason(self, thread: Any, text: str) -> None:
        self.tg.say(text, thread=thread)

    def reply(self, thread: Any, text: str) -> None:
        self.tg.say(text, thread=thread)

    def send_file(self, thread: Any, name: str, mime: str, data: bytes, caption: str) -> None:
        self.tg.on(self.tg.fake.inject_file, TG_CHAT, TG_ALICE, "document", data,
                   file_name=name, mime_type=mime, caption=caption, thread_id=thread)

    def command(self, text: str, *, stranger: bool = False) -> str:
        user = TG_STRANGER if stranger else TG_ALICE
        update = self.tg.on(self.tg.fake.inject_message, TG_CHAT, user, f"/{text}")
        asked = update["message"]["message_id"]
        self.tg.wait_until(lambda: any(m.reply_to_message_id == asked
                                       for m in self.tg.messages()))
        return next(m.text or "" for m in self.tg.messages() if m.reply_to_message_id == asked)


class SlackDriver:
    name = "slack"
    alice = "@alice"
    stranger = "@mallory"

    def __init__(self, slack: ThreadedSlack) -> None:
        self.slack = slack
        self.users = {False: SLACK_ALICE, True: SLACK_STRANGER}

    def config(self) -> str:
        return self.slack.config()

    def env(self) -> dict[str, str]:
        return self.slack.env()

    def ready(self) -> None:
        self.slack.connected()

    def _seen(self, message: Any) -> Seen:
        buttons = [(b["text"]["text"], b["value"]) for b in message.buttons if "value" in b]
        return Seen(message.ts, message.shown, buttons)

    def start_session(self, text: str) -> Any:
        before = len(self.slack.on(lambda: [m for m in self.slack.fake.top_level() if m.bot_id]))
        self.slack.command(f"new {text}")
        return self.slack.new_thread(since=before).ts

    def status_card(self, thread: Any) -> Seen:
        return self._seen(self.slack.thread_messages(thread)[0])

    def card_with(self, thread: Any, text: str, count: int = 1) -> Seen:
        found = self.slack.wait_until(lambda: (
            m := [x for x in self.slack.fake.replies(SLACK_CHANNEL, thread)
                  if text in x.shown]) and len(m) >= count and m)
        return self._seen(found[count - 1])

    def current(self, card: Seen) -> Seen:
        return self._seen(self.slack.on(self.slack.fake.message, SLACK_CHANNEL, card.key))

    def tap(self, card: Seen, payload: str, *, stranger: bool = False) -> str:
        user = self.users[stranger]
        ephemerals = self.slack.ephemeral_count(user)
        views = self.slack.on(lambda: len(self.slack.fake.views))
        message = self.slack.on(self.slack.fake.message, SLACK_CHANNEL, card.key)
        # a person taps the card as their client shows it, which may be from before an edit
        # (a double tap): the button must be on that card, not necessarily on the current one
        assert payload in [p for _, p in card.buttons], "no such button on the card"
        self.slack.tap(message, payload, user=user, require_button=False)

        def answered() -> str | None:
            if len(self.slack.fake.views) > views:
                view = self.slack.fake.views[-1].view
                return f"{view['title']['text']}: {view['blocks'][0]['label']['text']}"
            shown = self.slack.fake.ephemerals_for(user)[ephemerals:]
            return shown[0].shown if shown else None

        return self.slack.wait_until(answered)

    def give_reason(self, thread: Any, text: str) -> None:
        view = self.slack.on(lambda: self.slack.fake.views[-1])
        self.slack.submit(view, text)

    def reply(self, thread: Any, text: str) -> None:
        self.slack.say(text, thread_ts=thread)

    def send_file(self, thread: Any, name: str, mime: str, data: bytes, caption: str) -> None:
        self.slack._run(self.slack.fake.inject_file_share([(name, mime, data)], caption,
                                                          thread_ts=thread))

    def command(self, text: str, *, stranger: bool = False) -> str:
        user = self.users[stranger]
        before = self.slack.ephemeral_count(user)
        self.slack.command(text, user=user)
        return self.slack.ephemeral_after(before, user).shown


@pytest.fixture(params=["telegram", "slack"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    if request.param == "telegram":
        tg = ThreadedTelegram()
        yield TelegramDriver(tg)
        tg.close()
    else:
        slack = ThreadedSlack()
        yield SlackDriver(slack)
        slack.close()


def start_bridge(make_bridge: Any, driver: Driver, **kwargs: Any) -> Bridge:
    bridge: Bridge = make_bridge(extra=driver.config(), **kwargs)
    bridge.env.update(driver.env())
    bridge.start()
    driver.ready()
    return bridge


@pytest.fixture
def chat(make_bridge: Any, driver: Driver) -> Bridge:
    return start_bridge(make_bridge, driver)


def test_a_session_gets_a_thread_a_card_and_one_tap_allows_it(chat: Bridge,
                                                              driver: Driver) -> None:
    thread = driver.start_session("demo please run a command")
    status = driver.status_card(thread)
    assert "demo" in status.text and "claude" in status.text
    card = driver.card_with(thread, "Approval needed")
    assert "echo hi > out.txt" in card.text and str(chat.project) in card.text
    assert [label for label, _ in card.buttons] == APPROVAL_LABELS
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES for _, p in card.buttons)
    assert "Allowed once" in driver.tap(card, card.payload("Allow once"))
    wait_until(lambda: chat.answers(), what="the agent to receive the decision")
    assert chat.answers()[0]["response"] == {"behavior": "allow",
                                            "updatedInput": ORIGINAL_INPUT}
    who = f"Allowed once by {driver.alice} ({driver.name})"
    wait_until(lambda: who in driver.current(card).text, what=f"the card to say {who!r}")
    assert driver.current(card).buttons == []
    summary = driver.card_with(thread, "Turn finished")
    assert "All done." in summary.text


def test_a_stranger_changes_nothing_and_a_double_tap_is_already_decided(
        chat: Bridge, driver: Driver) -> None:
    thread = driver.start_session("demo please run a command")
    card = driver.card_with(thread, "Approval needed")
    assert "not allowed" in driver.tap(card, card.payload("Allow once"), stranger=True)
    assert chat.answers() == []
    aid = card.payload("Deny").split(":")[1]
    assert chat.json("sessions")[0]["pending_approvals"][0]["id"] == aid
    assert driver.current(card).buttons == card.buttons
    driver.tap(card, card.payload("Deny"))
    second = driver.tap(card, card.payload("Allow once"))
    assert f"Already denied by {driver.alice}" in second
    wait_until(lambda: chat.answers(), what="the deny")
    assert len(chat.answers()) == 1 and chat.answers()[0]["response"]["behavior"] == "deny"
    assert not (chat.project / "out.txt").exists()


def test_deny_with_reason_passes_the_reason_to_the_agent(chat: Bridge, driver: Driver) -> None:
    thread = driver.start_session("demo please run a command")
    card = driver.card_with(thread, "Approval needed")
    assert "reason" in driver.tap(card, card.payload("Deny with reason…")).lower()
    driver.give_reason(thread, "not in this repo")
    wait_until(lambda: chat.answers(), what="the deny to reach the agent")
    answer = chat.answers()[0]["response"]
    assert answer["behavior"] == "deny" and answer["message"] == "not in this repo"
    who = f"Denied by {driver.alice} ({driver.name})"
    wait_until(lambda: who in driver.current(card).text, what=f"the card to say {who!r}")
    assert "not in this repo" in driver.current(card).text
    assert not (chat.project / "out.txt").exists()


def test_stop_on_the_card_stops_the_session(chat: Bridge, driver: Driver) -> None:
    thread = driver.start_session("demo please run a command")
    card = driver.card_with(thread, "Approval needed")
    driver.tap(card, card.payload("Stop"))
    sid = chat.json("sessions")[0]["id"]
    chat.wait_state(sid, "stopped")
    wait_until(lambda: "Stopped by" in driver.current(card).text, what="the card to say so")
    assert chat.answers()[0]["response"]["interrupt"] is True


def test_a_reply_in_the_thread_continues_the_session(make_bridge: Any, driver: Driver) -> None:
    bridge = start_bridge(make_bridge, driver, agents={"chat": ["text"]})
    thread = driver.start_session("demo hello --agent chat")
    driver.card_with(thread, "Turn finished")
    driver.reply(thread, "and again")
    wait_until(lambda: len([m for m in bridge.recorded() if m.get("type") == "user"]) == 2,
               what="the reply to reach the agent")
    second = driver.card_with(thread, "Turn finished", count=2)
    assert "Hello from fake claude." in second.text


def test_a_file_sent_in_the_thread_is_saved_and_given_to_the_agent(make_bridge: Any,
                                                                   driver: Driver) -> None:
    bridge = start_bridge(make_bridge, driver, agents={"chat": ["text"]})
    thread = driver.start_session("demo hello --agent chat")
    driver.card_with(thread, "Turn finished")
    driver.send_file(thread, "../notes.txt", "text/plain", b"hello\n", "read this")
    wait_until(lambda: len([m for m in bridge.recorded() if m.get("type") == "user"]) == 2,
               what="the file to reach the agent")
    saved = bridge.project / ".agent-bridge" / "uploads" / "notes.txt"
    assert saved.read_bytes() == b"hello\n"
    prompt = [m for m in bridge.recorded() if m.get("type") == "user"][1]["message"]["content"]
    assert prompt.startswith("read this") and f"- {saved} (6 B)" in prompt
    driver.card_with(thread, "Turn finished", count=2)


def test_commands_answer_and_strangers_cannot_start_sessions(chat: Bridge,
                                                             driver: Driver) -> None:
    assert "/resume ID [PROMPT]" in driver.command("help")
    assert "Unknown command /frobnicate" in driver.command("frobnicate")
    assert "new PROJECT PROMPT" in driver.command("new")  # Slack: "/agent new PROJECT …"
    assert "not allowed" in driver.command("new demo do things", stranger=True)
    assert chat.json("sessions") == []
    driver.start_session("demo please run a command")
    sid = chat.json("sessions")[0]["id"]
    assert sid in driver.command("sessions")
    assert "no session 'zzzzzz'" in driver.command("stop zzzzzz")


def test_questions_are_answered_with_option_taps_toggles_and_a_typed_reply(
        make_bridge: Any, driver: Driver) -> None:
    bridge = start_bridge(make_bridge, driver, agents={"ask": ["question"]})
    thread = driver.start_session("demo ask me --agent ask")
    db = driver.card_with(thread, "Which database?")
    colours = driver.card_with(thread, "Which colours?")
    assert "Approval needed" not in db.text and "one file" in db.text  # descriptions shown
    assert [label for label, _ in db.buttons] == ["SQLite", "Postgres", "Other…"]
    assert [label for label, _ in colours.buttons] == ["Red", "Blue", "Green", "Submit",
                                                       "Other…"]
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES for _, p in db.buttons + colours.buttons)
    (listed,) = [s for s in bridge.json("sessions") if s["pending_questions"]]
    assert [q["kind"] for q in listed["pending_questions"]] == ["question", "question"]
    assert listed["pending_approvals"] == []

    assert "not allowed" in driver.tap(colours, colours.payload("Red"), stranger=True)
    assert "Choose an option first" in driver.tap(colours, colours.payload("Submit"))
    driver.tap(colours, colours.payload("Red"))
    assert "Red, Green" in driver.tap(colours, colours.payload("Green"))
    wait_until(lambda: "✓ Red" in [lbl for lbl, _ in driver.current(colours).buttons],
               what="the card to show the toggle")
    assert "Answered: Red, Green" in driver.tap(colours, colours.payload("Submit"))
    assert bridge.answers() == []  # the other question of the request still waits

    assert "next message" in driver.tap(db, db.payload("Other…"))
    driver.reply(thread, "DuckDB")
    wait_until(lambda: bridge.answers(), what="the answers to reach the agent")
    (answer,) = bridge.answers()
    assert answer["response"]["behavior"] == "allow"
    assert answer["response"]["updatedInput"]["answers"] == {
        "Which database?": "DuckDB", "Which colours?": "Red, Green"}
    who = f"Answered by {driver.alice} ({driver.name})"
    # a settled card's edit is part of the story: in a Telegram group (20 calls a minute) the
    # story keeps to half of the window (daemon/pacing.py), and this test spends it all
    wait_until(lambda: who in driver.current(db).text, what=f"the card to say {who!r}",
               timeout=75)
    assert "DuckDB" in driver.current(db).text and driver.current(db).buttons == []
    assert "Thanks for answering." in driver.card_with(thread, "Turn finished").text


def test_a_single_select_question_is_answered_by_one_tap(make_bridge: Any,
                                                         driver: Driver) -> None:
    bridge = start_bridge(make_bridge, driver, agents={"ask": ["question"]})
    thread = driver.start_session("demo ask me --agent ask")
    db = driver.card_with(thread, "Which database?")
    assert "Answered: Postgres" in driver.tap(db, db.payload("Postgres"))
    qid = db.payload("SQLite").split(":")[1].split(".")[0]
    again = bridge.cli("answer", qid, "SQLite", check=False)
    assert again.returncode != 0 and f"Already answered by {driver.alice}" in again.stderr
    colours = driver.card_with(thread, "Which colours?")
    driver.tap(colours, colours.payload("Blue"))
    driver.tap(colours, colours.payload("Submit"))
    wait_until(lambda: bridge.answers(), what="the answers to reach the agent")
    assert bridge.answers()[0]["response"]["updatedInput"]["answers"] == {
        "Which database?": "Postgres", "Which colours?": "Blue"}
