"""The rate budget (issue 16): priorities, reserves, the platform's pause, and — in-process,
through the real python-telegram-bot surface against a fake Bot API enforcing Telegram's real
limits (20 sends, edits and topic changes a minute in a group, one a second) — a person's
answer and an approval card going before a flood of the story and the status cards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bots.telegram import TelegramSurface
from bridge.approvals import Actor, Approval
from bridge.config import load_config
from bridge.events import DecisionKind
from bridge.session import SessionState
from bridge.surface import Rate
from daemon.delivery import Delivery
from daemon.hub import Hub
from daemon.pacing import TICKET, Budgets, Pacer, Priority, Ticket, Window
from daemon.store import Store
from tests.fakes.telegram_api import FORUM_CHAT_ID, FakeTelegram, RateLimit

TOKEN = "123456:TEST-token"
ACTOR = Actor(surface="telegram", user_id="4242", name="@dev")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_priority_leaves_its_share_of_the_window_to_those_before_it():
    clock = Clock()
    pacer = Pacer([Window(Rate(20, 60.0))], clock)
    taken = dict.fromkeys(Priority, 0)
    for p in reversed(Priority):  # the least urgent first: each takes what it may
        while pacer.try_take(p):
            taken[p] += 1
            clock.now += 3.0  # one every 3 s: not a burst (see the next test)
    # status edits leave 15 of 20, the story 10, cards 5, answers none
    assert taken == {Priority.STATUS: 5, Priority.STORY: 5, Priority.CARD: 5,
                     Priority.ANSWER: 5}
    assert not pacer.try_take(Priority.ANSWER)
    clock.now += 61.0  # the window has passed
    assert pacer.try_take(Priority.STATUS)


def test_below_answers_a_long_window_is_never_filled_in_a_burst():
    """20 a minute: all but answers take at most 4 in any 7.5 s, so that the window frees
    its slots steadily and an answer never waits for a whole window to pass."""
    clock = Clock()
    pacer = Pacer([Window(Rate(20, 60.0))], clock)
    assert [pacer.try_take(Priority.CARD) for _ in range(5)] == [True] * 4 + [False]
    assert not pacer.try_take(Priority.STORY)
    assert pacer.try_take(Priority.ANSWER) and pacer.try_take(Priority.ANSWER)
    clock.now += 7.5
    assert pacer.try_take(Priority.CARD)


def test_a_one_call_window_has_no_reserve_but_keeps_the_order():
    clock = Clock()
    pacer = Pacer([Window(Rate(1, 1.0))], clock)
    assert pacer.try_take(Priority.STATUS)
    assert not pacer.try_take(Priority.ANSWER)
    clock.now += 1.2
    assert pacer.try_take(Priority.STATUS)


async def test_waiting_calls_go_in_order_of_priority_then_arrival():
    pacer = Pacer([Window(Rate(1, 0.05))])
    assert pacer.try_take(Priority.STATUS)
    order: list[str] = []

    async def call(name: str, priority: Priority) -> None:
        await pacer.take(priority)
        order.append(name)

    calls = [("status", Priority.STATUS), ("story 1", Priority.STORY),
             ("card", Priority.CARD), ("story 2", Priority.STORY),
             ("answer", Priority.ANSWER)]
    async with asyncio.timeout(5):
        await asyncio.gather(*(call(n, p) for n, p in calls))
    assert order == ["answer", "card", "story 1", "story 2", "status"]


async def test_a_call_someone_waits_for_is_moved_up_to_their_priority():
    """A thread being made at the status cards' priority, which a card then needs: the
    card's lane boosts it (through its ticket) past the story waiting before it."""
    pacer = Pacer([Window(Rate(1, 0.05))])
    assert pacer.try_take(Priority.STATUS)
    order: list[str] = []
    ticket = Ticket()

    async def call(name: str, priority: Priority, with_ticket: bool = False) -> None:
        if with_ticket:
            TICKET.set(ticket)
        await pacer.take(priority)
        order.append(name)

    async with asyncio.timeout(5):
        story = asyncio.ensure_future(call("story", Priority.STORY))
        thread = asyncio.ensure_future(call("thread", Priority.STATUS, with_ticket=True))
        await asyncio.sleep(0)  # both in line now
        assert ticket.waiting is not None and not ticket.waiting.granted.done()
        ticket.boost(Priority.CARD)
        ticket.boost(Priority.STATUS)  # never moved down
        await asyncio.gather(story, thread)
    assert order == ["thread", "story"]


async def test_a_call_waiting_ahead_keeps_a_lower_one_from_jumping_the_queue():
    clock = Clock()
    pacer = Pacer([Window(Rate(2, 60.0))], clock)
    assert pacer.try_take(Priority.ANSWER) and pacer.try_take(Priority.ANSWER)
    waiting = asyncio.ensure_future(pacer.take(Priority.CARD))
    await asyncio.sleep(0)  # it is in line now
    assert not pacer.room(Priority.STORY) and not pacer.room(Priority.CARD)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    clock.now += 61.0
    assert pacer.room(Priority.STORY)  # the cancelled call no longer holds the line


async def test_the_platforms_pause_stops_every_priority_for_as_long_as_it_asked():
    pacer = Pacer([Window(Rate(100, 1.0))])
    loop = asyncio.get_running_loop()
    pacer.block(0.3)
    assert not pacer.room(Priority.ANSWER)
    began = loop.time()
    async with asyncio.timeout(5):
        await pacer.take(Priority.ANSWER)
    assert loop.time() - began >= 0.29


def test_a_surfaces_overall_limit_is_shared_by_its_chats():
    clock = Clock()
    budgets = Budgets([Rate(3, 1.0)], clock)
    first = budgets.pacer("chat 1", [Rate(20, 60.0)])
    second = budgets.pacer("chat 2", [Rate(20, 60.0)])
    assert budgets.pacer("chat 1", []) is first
    assert [first.try_take(Priority.ANSWER) for _ in range(2)] == [True, True]
    assert second.try_take(Priority.ANSWER)
    assert not second.try_take(Priority.ANSWER)  # 3 a second in all
    clock.now += 1.2
    assert second.try_take(Priority.ANSWER)


# -- in-process: the real surface and delivery under Telegram's real limits ------------------


@pytest.fixture
async def paced(tmp_path: Path) -> AsyncIterator[tuple[FakeTelegram, Store, Hub, Delivery]]:
    limits = {"group_limit": RateLimit(20, 60.0), "chat_limit": RateLimit(1, 1.0),
              "edit_limit": None, "shared_budget": True}
    async with FakeTelegram(**limits) as fake:  # type: ignore[arg-type]
        config = load_config(
            f"[daemon]\nstate_dir = \"{tmp_path / 'state'}\"\n"
            f"[telegram]\nchat_id = {FORUM_CHAT_ID}\nallowed_user_ids = [4242]\n"
            f'base_url = "{fake.base_url}"\nbase_file_url = "{fake.base_file_url}"\n'
            "poll_timeout = 1\n")
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


async def test_an_answer_and_a_card_go_before_a_flood_of_the_story(paced, tmp_path):
    """Three sessions flood the group with texts and status changes; a person's answer,
    and a quiet session's new approval card (its thread not made yet), still go out within
    a second or two, while the flood waits; no call meets a 429."""
    fake, store, hub, delivery = paced
    sessions = []
    for i in range(4):
        s = await store.create_session(project="demo", agent="claude", protocol="claude",
                                       cwd=str(tmp_path), host="local", title=f"s{i}",
                                       now=hub.clock())
        await store.update_session(s.id, state=SessionState.RUNNING)
        sessions.append(s.id)
    for n in range(12):
        for sid in sessions[:3]:
            await store.enqueue(["telegram"], session_id=sid, kind="text",
                                payload={"text": f"flood {n}"}, now=hub.clock())
            await store.update_session(sid, last_tool=f"Bash echo {n}")
            delivery.threads.dirty.add(sid)
    delivery.notify()
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(20):
        while sum("flood" in (m.text or "") for m in fake.messages.values()) < 3:
            await asyncio.sleep(0.02)
    # the flood is under way: a person asks, and an agent asks for approval
    began = loop.time()
    async with asyncio.timeout(10):
        await delivery.answer_slot("")
    answered = loop.time() - began
    approval = await store.add_approval(Approval(
        id="aaaaaa", session_id=sessions[3], request_id="r1", tool="Bash",
        input={"command": "rm -rf build"}, offered=tuple(DecisionKind), requested_at=hub.clock()))
    await store.enqueue(["telegram"], session_id=sessions[3], kind="approval",
                        payload={"approval_id": approval.id}, now=hub.clock())
    hub.approvals_requested += 1
    asked = loop.time()
    delivery.notify()
    async with asyncio.timeout(10):
        while not any("rm -rf build" in (m.text or "") for m in fake.messages.values()):
            await asyncio.sleep(0.02)
    carded = loop.time() - asked
    flood_left = [i for i in await store.outbox_pending("telegram") if i.kind == "text"]
    assert flood_left, "the flood must still be waiting, or the test means nothing"
    assert answered <= 1.2, answered  # one a second in the chat, and nothing before it
    assert carded <= 3.5, carded  # its topic, then the card: two slots, a second apart
    assert not fake.violations


async def ask(store: Store, hub: Hub, cwd: Path, n: int, *, tool: str = "Bash") -> str:
    """A running session whose agent asks to run `echo ask-N`; the approval's id."""
    s = await store.create_session(project="demo", agent="claude", protocol="claude",
                                   cwd=str(cwd), host="local", title=f"s{n}", now=hub.clock())
    await store.update_session(s.id, state=SessionState.RUNNING)
    approval = await store.add_approval(Approval(
        id=f"ask{n:03d}", session_id=s.id, request_id=f"r{n}", tool=tool,
        input={"plan" if tool == "ExitPlanMode" else "command": f"echo ask-{n}"},
        offered=tuple(DecisionKind), requested_at=hub.clock()))
    await store.enqueue(["telegram"], session_id=s.id, kind="approval",
                        payload={"approval_id": approval.id}, now=hub.clock())
    hub.approvals_requested += 1
    return approval.id


def shown(fake: FakeTelegram, n: int) -> list[Any]:
    return [m for m in fake.messages.values() if f"echo ask-{n}" in (m.text or "")]


async def test_approvals_that_wait_for_a_spent_budget_go_out_together(paced, tmp_path):
    """Six sessions ask at once in a group that takes one message a second: the six cards
    go out as one message in the General topic, each with its own buttons, in one slot.
    Settling one entry edits that message: its buttons go, the others' stay. A card asked
    on its own afterwards, while the budget has a slot, goes as its own card in its topic.
    No call meets a 429."""
    fake, store, hub, delivery = paced
    loop = asyncio.get_running_loop()
    ids = [await ask(store, hub, tmp_path, n) for n in range(6)]
    asked = loop.time()
    delivery.notify()
    async with asyncio.timeout(10):
        while any(not shown(fake, n) for n in range(6)):
            await asyncio.sleep(0.02)
    out = loop.time() - asked
    (group,) = [m for m in fake.messages.values() if "approvals waiting" in (m.text or "")]
    assert group.thread_id is None  # the chat's home place, not a session's topic
    assert all(shown(fake, n) == [group] for n in range(6))
    labels = [b["text"] for row in group.reply_markup["inline_keyboard"] for b in row]
    assert labels == [f"{verb} #{k}" for k in range(1, 7) for verb in ("Allow once", "Deny")]
    assert out <= 1.5, out  # one slot, at once
    # the second entry is settled (nobody runs it: it expires): the group is edited
    await hub.decide(ids[1], DecisionKind.ALLOW_ONCE, actor=ACTOR)
    delivery.notify()
    async with asyncio.timeout(10):
        while "Expired" not in (fake.messages[(FORUM_CHAT_ID, group.message_id)].text or ""):
            await asyncio.sleep(0.02)
    edited = fake.messages[(FORUM_CHAT_ID, group.message_id)]
    assert "5 of 6 approvals waiting" in (edited.text or "")
    datas = [b["callback_data"] for row in edited.reply_markup["inline_keyboard"] for b in row]
    assert len(datas) == 10 and not any(ids[1] in d for d in datas)
    assert all(any(ids[n] in d for d in datas) for n in range(6) if n != 1)
    # later, one alone with a slot free: its own card, in its topic
    async with asyncio.timeout(10):
        while not delivery.outbound.pacer("").room(Priority.CARD):
            await asyncio.sleep(0.05)
    await ask(store, hub, tmp_path, 6)
    delivery.notify()
    async with asyncio.timeout(10):
        while not shown(fake, 6):
            await asyncio.sleep(0.02)
    assert shown(fake, 6)[0].thread_id is not None
    assert "approvals waiting" not in (shown(fake, 6)[0].text or "")
    assert not fake.violations


async def test_a_plan_never_goes_grouped(paced, tmp_path):
    """Plans keep their own card (their own buttons and file) even when the budget is
    spent: each goes on its own, in its topic."""
    fake, store, hub, delivery = paced
    for n in range(3):
        await ask(store, hub, tmp_path, n, tool="ExitPlanMode")
    delivery.notify()
    async with asyncio.timeout(15):
        while any(not shown(fake, n) for n in range(3)):
            await asyncio.sleep(0.02)
    assert not any("approvals waiting" in (m.text or "") for m in fake.messages.values())
    assert all(shown(fake, n)[0].thread_id is not None for n in range(3))
    assert not fake.violations


def test_no_kind_the_urgent_lane_skips_can_be_urgent():
    """The urgent lane reads the outbox without the kinds a card need not wait for; any of
    them that could be urgent would be sent by no lane at all."""
    from bridge.outbox import priority_of
    from daemon.delivery import _CARD_NEED_NOT_WAIT

    for kind in _CARD_NEED_NOT_WAIT:
        for payload in ({}, {"requested": True, "toggled": True}):
            assert priority_of(kind, payload) > Priority.CARD, kind
