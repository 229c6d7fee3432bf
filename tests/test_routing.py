"""Projects routed to their own chat or channel (issue 16): `[[projects]] telegram_chat_id` and
`slack_channel`. The config names the key of a bad value; a routed project's sessions get their
thread (topic, reply chain, Slack thread) and cards in its chat, paced by that chat's own
budget, while other projects' stay in the home chat; actions in a routed chat count, those in
a chat nobody configured are still refused. In-process against the fake Bot API enforcing
Telegram's real limits, and end to end (the daemon as a subprocess) on both surfaces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bots.telegram import TelegramSurface
from bridge.approvals import Approval
from bridge.config import load_config
from bridge.errors import ConfigError
from bridge.events import DecisionKind
from bridge.refs import ThreadRef
from bridge.session import SessionState
from daemon.delivery import Delivery
from daemon.hub import Hub
from daemon.store import Store
from tests.fakes.slack_api import OTHER_CHANNEL
from tests.fakes.telegram_api import FORUM_CHAT_ID, FakeTelegram, RateLimit
from tests.harness import Bridge, wait_until
from tests.slack_harness import CHANNEL, ThreadedSlack

TOKEN = "123456:TEST-token"
ROUTED = -100456  # a second forum group, where one project's sessions go
PLAIN = -100789  # a group without topics
NOBODYS = -100999  # a group the bot is in that no config names
ELSEWHERE = "acts only in its own chat or channel"
TELEGRAM = "[telegram]\nchat_id = -100123\n"
SLACK = '[slack]\nchannel = "C0BRIDGE"\n'


# -- the config ------------------------------------------------------------------------------


def projects(*routes: str, sections: str = TELEGRAM + SLACK) -> str:
    text = sections
    for i, route in enumerate(routes):
        text += f'[[projects]]\nname = "p{i}"\npath = "/src/p{i}"\n{route}\n'
    return text


def test_routes_are_read_per_project_and_surface():
    config = load_config(projects("", "telegram_chat_id = -100456",
                                  'slack_channel = "C0SIDE"\ntelegram_chat_id = 4242'))
    home, side, both = config.projects
    assert (home.chat_on("telegram"), home.chat_on("slack")) == (None, None)
    assert (side.chat_on("telegram"), side.chat_on("slack")) == ("-100456", None)
    assert (both.chat_on("telegram"), both.chat_on("slack")) == ("4242", "C0SIDE")
    assert config.routed_chats("telegram") == {"-100456", "4242"}
    assert config.routed_chats("slack") == {"C0SIDE"}


@pytest.mark.parametrize(("route", "sections", "key", "says"), [
    ('telegram_chat_id = "-100456"', TELEGRAM, "telegram_chat_id", "expected an integer"),
    ("telegram_chat_id = true", TELEGRAM, "telegram_chat_id", "expected an integer"),
    ("telegram_chat_id = 0", TELEGRAM, "telegram_chat_id", "not a chat id"),
    ("telegram_chat_id = -100456", SLACK, "telegram_chat_id", "no [telegram] section"),
    ("slack_channel = 42", SLACK, "slack_channel", "expected a string"),
    ('slack_channel = "#general"', SLACK, "slack_channel", "not a channel id"),
    ('slack_channel = "C0SIDE"', TELEGRAM, "slack_channel", "no [slack] section"),
])
def test_a_bad_route_names_its_key(route: str, sections: str, key: str, says: str):
    with pytest.raises(ConfigError) as caught:
        load_config(projects("", "", route, sections=sections))
    assert caught.value.key == f"projects[2].{key}"
    assert says in caught.value.message


# -- in-process: the real surface and delivery under Telegram's real limits ------------------


@pytest.fixture
async def routed(tmp_path: Path) -> AsyncIterator[tuple[FakeTelegram, Store, Hub, Delivery]]:
    """Project `demo` in the home forum, `side` routed to another forum, `plain` to a group
    without topics; the fake counts sends, edits and topic changes together, one a second
    per chat and 20 a minute per group, as Telegram does."""
    limits = {"group_limit": RateLimit(20, 60.0), "chat_limit": RateLimit(1, 1.0),
              "edit_limit": None, "shared_budget": True}
    async with FakeTelegram(**limits) as fake:  # type: ignore[arg-type]
        fake.add_chat(ROUTED, "supergroup", is_forum=True, title="Side")
        fake.add_chat(PLAIN, "supergroup", title="Plain")
        config = load_config(
            f"[daemon]\nstate_dir = \"{tmp_path / 'state'}\"\n"
            f"[telegram]\nchat_id = {FORUM_CHAT_ID}\nallowed_user_ids = [4242]\n"
            f'base_url = "{fake.base_url}"\nbase_file_url = "{fake.base_file_url}"\n'
            "poll_timeout = 1\n"
            f'[[projects]]\nname = "demo"\npath = "{tmp_path}"\n'
            f'[[projects]]\nname = "side"\npath = "{tmp_path}"\ntelegram_chat_id = {ROUTED}\n'
            f'[[projects]]\nname = "plain"\npath = "{tmp_path}"\ntelegram_chat_id = {PLAIN}\n')
        assert config.telegram is not None
        store = await Store.open(tmp_path / "state" / "db.sqlite")
        hub = Hub(config=config, store=store)
        surface = TelegramSurface(config.telegram, TOKEN)

        async def inbox(_incoming: Any) -> None:
            return None

        await surface.start(inbox)
        delivery = Delivery(hub, surface, status_interval=0.0)
        hub.add_surface(surface.name, delivery.notify)
        task = asyncio.create_task(delivery.run())
        try:
            yield fake, store, hub, delivery
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await surface.stop()
            await hub.shutdown()
            await store.close()


async def ask_approval(store: Store, hub: Hub, project: str, n: int, cwd: Path, *,
                       plan: bool = False) -> str:
    """A running session of `project` whose agent asks to run `echo card-N` (or, with
    `plan`, to approve a plan saying so: a card that never goes grouped)."""
    session = await store.create_session(project=project, agent="claude", protocol="claude",
                                         cwd=str(cwd), host="local", title=f"s{n}",
                                         now=hub.clock())
    await store.update_session(session.id, state=SessionState.RUNNING)
    approval = await store.add_approval(Approval(
        id=f"appr{n:02d}", session_id=session.id, request_id=f"r{n}",
        tool="ExitPlanMode" if plan else "Bash",
        input={"plan": f"echo card-{n}"} if plan else {"command": f"echo card-{n}"},
        offered=tuple(DecisionKind),
        requested_at=hub.clock()))
    await store.enqueue(["telegram"], session_id=session.id, kind="approval",
                        payload={"approval_id": approval.id}, now=hub.clock())
    hub.approvals_requested += 1
    return session.id


def card_in(fake: FakeTelegram, n: int) -> int | None:
    """The chat the approval card `echo card-N` was posted in, once it is out."""
    return next((chat for (chat, _), m in fake.messages.items()
                 if f"echo card-{n}" in (m.text or "")), None)


async def test_a_routed_chats_card_goes_on_its_own_budget_while_the_home_chat_is_busy(
        routed, tmp_path):
    """Six sessions in the home chat ask at once to approve their plans (a topic and a card
    each: twelve calls at one a second; a plan's card never goes grouped); a routed
    project's card, asked at the same moment and last in line, is out within its own chat's
    two slots, while the home chat's are still going out."""
    fake, store, hub, delivery = routed
    for n in range(6):
        await ask_approval(store, hub, "demo", n, tmp_path, plan=True)
    await ask_approval(store, hub, "side", 6, tmp_path)
    loop = asyncio.get_running_loop()
    asked = loop.time()
    delivery.notify()
    async with asyncio.timeout(10):
        while card_in(fake, 6) is None:
            await asyncio.sleep(0.02)
    carded = loop.time() - asked
    home_done = sum(card_in(fake, n) is not None for n in range(6))
    assert card_in(fake, 6) == ROUTED
    assert carded <= 2.5, carded  # its topic, then the card: two slots a second apart
    assert home_done < 6, "the home chat must still be busy, or the test means nothing"
    # the side session's topic is in its chat; the home sessions' in the home chat
    async with asyncio.timeout(20):
        while any(card_in(fake, n) is None for n in range(6)):
            await asyncio.sleep(0.05)
    assert {card_in(fake, n) for n in range(6)} == {FORUM_CHAT_ID}
    topics = fake.calls_to("createForumTopic", ok=True)
    assert [c.params["chat_id"] for c in topics].count(ROUTED) == 1
    assert [c.params["chat_id"] for c in topics].count(FORUM_CHAT_ID) == 6
    assert not fake.violations


async def test_a_routed_chats_story_does_not_wait_behind_the_home_chats(routed, tmp_path):
    """The home chat has a backlog of texts (one a second at best); a routed session's text,
    queued after them, is out within a couple of its own chat's slots."""
    fake, store, hub, delivery = routed
    sessions = {}
    for project in ("demo", "side"):
        s = await store.create_session(project=project, agent="claude", protocol="claude",
                                       cwd=str(tmp_path), host="local", title=project,
                                       now=hub.clock())
        await store.update_session(s.id, state=SessionState.RUNNING)
        sessions[project] = s.id
    for n in range(10):
        await store.enqueue(["telegram"], session_id=sessions["demo"], kind="text",
                            payload={"text": f"home {n}"}, now=hub.clock())
    await store.enqueue(["telegram"], session_id=sessions["side"], kind="text",
                        payload={"text": "routed text"}, now=hub.clock())
    loop = asyncio.get_running_loop()
    queued = loop.time()
    delivery.notify()
    async with asyncio.timeout(15):
        while not any(m.text == "routed text" for m in fake.messages.values()):
            await asyncio.sleep(0.02)
    took = loop.time() - queued
    home_out = sum((m.text or "").startswith("home ") for m in fake.messages.values())
    assert home_out < 10, "the home chat must still be busy, or the test means nothing"
    assert took <= 4.0, took  # its topic, status card and text: its own chat's slots
    assert not fake.violations


async def test_whether_a_chat_has_topics_is_known_per_chat(routed, tmp_path):
    """A project routed to a group without topics gets reply chains there, while the home
    forum keeps making topics: one chat's answer does not decide for another's."""
    fake, store, hub, delivery = routed
    plain = await ask_approval(store, hub, "plain", 1, tmp_path)
    delivery.notify()
    async with asyncio.timeout(10):
        while card_in(fake, 1) is None:
            await asyncio.sleep(0.02)
    await ask_approval(store, hub, "demo", 2, tmp_path)
    await ask_approval(store, hub, "plain", 3, tmp_path)
    delivery.notify()
    async with asyncio.timeout(10):
        while card_in(fake, 2) is None or card_in(fake, 3) is None:
            await asyncio.sleep(0.02)
    assert (card_in(fake, 1), card_in(fake, 2), card_in(fake, 3)) == (PLAIN, FORUM_CHAT_ID,
                                                                       PLAIN)
    made = [c.params["chat_id"] for c in fake.calls_to("createForumTopic", ok=True)]
    assert made == [FORUM_CHAT_ID]  # the plain group was asked once, and refused
    assert [c.params["chat_id"] for c in fake.calls_to("createForumTopic", ok=False)] == [PLAIN]
    # the plain session's thread is a reply chain under its status message, in its group
    thread = await store.get_ref("telegram", ThreadRef(session_id=plain).key)
    assert thread is not None and f'"c": {PLAIN}' in thread and '"r":' in thread
    assert not fake.violations


# -- end to end: the daemon, the real bots, the fakes -----------------------------------------


def test_telegram_a_routed_projects_topic_cards_taps_and_commands_are_in_its_chat(
        make_bridge, tg):
    tg.on(tg.fake.add_chat, ROUTED, "supergroup", is_forum=True, title="Side")
    tg.on(tg.fake.add_chat, NOBODYS, "supergroup", is_forum=True, title="Nobody's")
    bridge: Bridge = make_bridge(extra=f"telegram_chat_id = {ROUTED}\n" + tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = TOKEN
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    tg.say("/new demo please run a command")  # asked in the home chat
    tg.message_with("Started")  # answered where asked
    topic = tg.wait_for("createForumTopic")
    assert topic.params["chat_id"] == ROUTED
    thread = topic.result["message_thread_id"]
    card: list[Any] = []
    tg.wait_until(lambda: card.extend(m for m in tg.messages(thread, chat=ROUTED)
                                      if "Approval needed" in m.text) or card)
    assert not any("Approval needed" in m.text for m in tg.messages())  # not at home
    aid = card[0].callback_data[0].split(":")[1]
    forwarded = tg.on(tg.fake.forward_message, ROUTED, card[0].message_id, NOBODYS)
    assert "Allowed once" in tg.answer(tg.tap(card[0], f"ao:{aid}")).text  # a tap there acts
    wait_until(lambda: bridge.answers(), what="the agent to receive the decision")
    assert bridge.answers()[0]["response"]["behavior"] == "allow"
    sid = bridge.json("sessions")[0]["id"]
    tg.say("/status", thread=thread, chat=ROUTED)  # a command there acts, answered there
    tg.wait_until(lambda: any(sid in m.text and m.text.startswith("🔐")
                              for m in tg.messages(thread, chat=ROUTED)))
    tg.say("/sessions", chat=NOBODYS)  # a chat no config names: refused
    tg.message_with_in(NOBODYS, ELSEWHERE)
    refused = tg.answer(tg.tap(forwarded, f"dn:{aid}"))
    assert ELSEWHERE in refused.text and refused.show_alert
    assert not tg.fake.rate_limited


@pytest.fixture
def slack() -> Any:
    fake = ThreadedSlack()
    yield fake
    fake.close()


def test_slack_a_routed_projects_thread_is_in_its_channel(make_bridge, slack):
    third = "C0THIRD"
    slack.on(slack.fake.channels.add, third)
    bridge: Bridge = make_bridge(extra=f'slack_channel = "{OTHER_CHANNEL}"\n' + slack.config())
    bridge.env.update(slack.env())
    bridge.start()
    slack.connected()
    slack.command("new demo please run a command")  # asked in the home channel
    parent = slack.wait_until(lambda: next(
        (m for m in slack.fake.top_level(OTHER_CHANNEL) if m.bot_id), None))
    assert "demo" in parent.shown  # the thread's head, the status card, in the project's
    card = slack.wait_until(lambda: next(
        (m for m in slack.fake.replies(OTHER_CHANNEL, parent.ts) if "Approval needed" in
         m.shown), None))
    assert not [m for m in slack.fake.top_level(CHANNEL) if m.bot_id]  # nothing at home
    before = slack.ephemeral_count()
    slack.tap(card, card.values[0])  # a tap in the routed channel acts
    assert "Allowed once" in slack.ephemeral_after(before).shown
    wait_until(lambda: bridge.answers(), what="the agent to receive the decision")
    assert bridge.answers()[0]["response"]["behavior"] == "allow"
    before = slack.ephemeral_count()
    slack._run(slack.fake.inject_command("/agent", "sessions", channel=OTHER_CHANNEL))
    assert "demo" in slack.ephemeral_after(before).shown
    before = slack.ephemeral_count()
    slack._run(slack.fake.inject_command("/agent", "sessions", channel=third))
    assert ELSEWHERE in slack.ephemeral_after(before).shown
    assert not slack.fake.rate_limited
