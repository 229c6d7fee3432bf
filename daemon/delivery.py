"""Delivery: from the outbox to one chat surface, in order, within the platform's limits.

Everything a surface shows was first written to the outbox in the same transaction as the
event behind it, so nothing is lost to a crash or an outage: rows are marked delivered only
after the platform accepted them, and an unreachable platform is retried with backoff, in
order. Status edits are not queued one by one: a session is marked dirty and its card is
edited at most every `status_interval` seconds, with what the rate budget has left.

Every call takes its slot of the rate budget in order of priority (`daemon/pacing.py`):
the answers to a person's actions, then new approval cards, then the rest of the story,
then status cards (`bridge.outbox.priority_of`). The urgent items — approval cards, and the
answers a person asked for through the outbox (a diff, the digest) — have a lane of their
own, woken by each new one: it sends them side by side (each session's in order) while the
main lane goes on with the rest. An urgent item (a "card" below) still
waits for what its own session was sent before it (but not for its thread's opening or
status: the card opens the thread itself), and what its session sends after it waits for
the card. What a delivery leaves to remember (message references) is stored in the same
transaction that marks it delivered.

Faults. Delivery never stops for one item: an item the platform refuses, or whose delivery
raises anything unexpected, is retried with backoff up to MAX_ATTEMPTS times and then given
up on, with the reason stored on its row (`agent-bridge show` lists it) and logged; its
session's later items wait for it meanwhile, other sessions' go on. An item of several
messages (a long summary, its diff) records each message as a step once it is out, so a
retry resumes after the last one sent. While the platform is unreachable, both lanes back
off per failure, exponentially up to BACKOFF_CAP, and each success starts the count again;
a 429 pauses the budget it hit for exactly what the platform asked.

A send whose response was lost (a timeout, a dropped connection after the platform took
it) cannot be told from one that never arrived: neither Telegram nor Slack takes an
idempotency key for a new message, so its retry may show the message twice. Everything
that can be repeated safely is: edits, renames, a thread already recorded, a step already
sent.

This module holds the lanes (which item goes when, and what a failure does); the rate
budgets are `daemon/pacing.py` (spent in `daemon/outbound.py`), the sessions' threads and
status cards `daemon/threads.py`, what each item shows `daemon/showing.py`, and its texts
`bridge/render_outbox.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from bridge.outbox import OutboxKind, priority_of
from bridge.session import LIVE_STATES
from bridge.surface import (
    ChatSurface,
    SurfaceError,
    SurfaceRetry,
    SurfaceUnavailable,
    ThreadGone,
)
from daemon.grouping import CardGroups, Room
from daemon.outbound import Outbound
from daemon.pacing import BACKOFF_CAP, BACKOFF_FIRST, PRIORITY, Budgets, Priority, backoff
from daemon.progress import ProgressMessages, enabled_on
from daemon.showing import ItemShower, ShowingHub
from daemon.store import OutboxItem
from daemon.threads import SessionThreads, steps_of

__all__ = ["BACKOFF_CAP", "BACKOFF_FIRST", "MAX_ATTEMPTS", "Delivery", "backoff"]

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5  # tries of one item before it is given up on


class DeliveryHub(ShowingHub, Protocol):
    """What delivery uses of the daemon beyond showing's needs: how many urgent items were
    queued so far (a new one wakes the urgent lane)."""

    @property
    def urgent_queued(self) -> int: ...


class Delivery:
    def __init__(self, hub: DeliveryHub, surface: ChatSurface, *,
                 status_interval: float = 2.0) -> None:
        self.hub = hub
        self.store = hub.store
        self.name = surface.name
        self.budgets = Budgets(surface.limits.overall)
        self.outbound = Outbound(surface, hub.redactor, self.budgets)
        self.progress = ProgressMessages(
            hub.store, self.outbound, hub.redactor,
            enabled_on(surface.name, hub.config, hub.chat_for))
        self.threads = SessionThreads(hub, self.outbound, status_interval=status_interval,
                                      on_sent=self._sent, progress=self.progress)
        self.groups = CardGroups(hub, self.outbound)
        self.shower = ItemShower(hub, self.threads, self.groups)
        self.wakeup = asyncio.Event()
        self.cards_wakeup = asyncio.Event()
        self._cards_seen = 0  # hub.urgent_queued when the urgent lane last looked
        self._claimed: set[int] = set()  # outbox rows a lane is delivering right now
        self._sending: set[asyncio.Task[None]] = set()  # the urgent lane's sessions under way
        # rows delivered (or given up on) since the urgent lane's last read began: that read
        # may still show them pending, and they must not go twice
        self._finished: set[int] = set()
        self._failures = 0  # platform unreachable this many times in a row
        self._outage_until = 0.0  # the pause after the last of them ends then (monotonic)
        self._retry_at: dict[int, float] = {}  # item → not retried before (monotonic)
        self.delivered = 0
        self.given_up = 0

    async def thread(self, sid: str) -> str:
        """The session's thread, made (with its status card) the first time it is needed."""
        return await self.threads.thread(sid)

    def _sent(self) -> None:
        self._failures = 0

    async def answer_slot(self, ref: str) -> None:
        """Wait for the slot of an answer to a person's action (first in line)."""
        await self.outbound.answer_slot(ref)

    def notify(self) -> None:
        self.wakeup.set()
        if self.hub.urgent_queued != self._cards_seen:
            self.cards_wakeup.set()

    async def run(self) -> None:
        for session in await self.store.sessions():
            if session.state in LIVE_STATES:
                self.threads.dirty.add(session.id)
        try:
            async with asyncio.TaskGroup() as lanes:
                lanes.create_task(self._serve(self._round, self.wakeup, self._idle_wait))
                lanes.create_task(self._card_lane())
        finally:
            for task in list(self._sending):
                task.cancel()
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _card_lane(self) -> None:
        PRIORITY.set(Priority.CARD)
        await self._serve(self._card_round, self.cards_wakeup, self._retry_wait)

    async def _serve(self, round_: Callable[[], Awaitable[bool]], wakeup: asyncio.Event,
                     idle_wait: Callable[[], float]) -> None:
        """Run `round_` until it has nothing to do, then wait for `wakeup`; back off while
        the platform is unreachable, pause while it asks us to. Never ends but by
        cancellation: a round that fails unexpectedly is logged and tried again later."""
        errors = 0  # rounds in a row that failed unexpectedly
        while True:
            wakeup.clear()
            try:
                progressed = await round_()
                errors = 0
            except SurfaceUnavailable as e:
                delay = self._unreachable(e)
                await asyncio.sleep(delay)
                continue
            except SurfaceRetry as e:  # its budget is stopped for that long (`Outbound`)
                log.info("%s asked to wait %.1fs", self.name, e.after)
                continue
            except Exception:  # a bug or the store: delivery must go on
                errors += 1
                delay = backoff(errors)
                log.exception("%s: delivery round failed; retrying in %.2fs", self.name, delay)
                await asyncio.sleep(delay)
                continue
            if progressed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=idle_wait())

    def _unreachable(self, e: SurfaceUnavailable) -> float:
        """The platform could not be reached: every budget stops for the next step of the
        backoff, and how long is returned. Failures met while that pause lasts (the other
        lane's, the other sessions' cards') are the same outage and count once."""
        now = time.monotonic()
        if now >= self._outage_until:
            self._failures += 1
            delay = backoff(self._failures)
            self._outage_until = now + delay
            log.warning("%s unreachable (%s); retrying in %.2fs", self.name, e, delay)
            self.budgets.block_all(delay)
        return max(0.0, self._outage_until - now)

    def _retry_wait(self) -> float:
        """Until the first item waiting after a failure may be tried again."""
        if not self._retry_at:
            return 60.0
        return max(0.01, min(self._retry_at.values()) - time.monotonic())

    def _idle_wait(self) -> float:
        due = self.threads.status_due()
        if due is None:
            return self._retry_wait()
        now = time.monotonic()
        return min(self._retry_wait(),
                   max(0.05, due - now, self.budgets.wait_time(Priority.STATUS)))

    def _backing_off(self, item: OutboxItem, now: float) -> bool:
        return self._retry_at.get(item.id, 0.0) > now

    async def _card_round(self) -> bool:
        """The urgent items that may go now (see the module's docstring)."""
        self._cards_seen = self.hub.urgent_queued
        self._finished.clear()
        # the cards, and what they wait for: not the rows they need not wait for, which
        # may be many (a status row per state change) and would push the cards off the page
        items = await self.store.outbox_pending(self.name, limit=100,
                                                skip_kinds=_CARD_NEED_NOT_WAIT)
        now = time.monotonic()
        # a session whose card is under way (or waits after a failure) keeps its order: its
        # next card waits for it; every other session's cards start now, each session's in
        # a task of its own, without waiting for the cards already under way
        busy = {i.session_id for i in items
                if i.id in self._claimed or self._backing_off(i, now)}
        queues: dict[str | None, list[OutboxItem]] = {}
        for card in _cards_first(items)[0]:
            if card.id in self._claimed or card.id in self._finished:
                continue
            if card.session_id in busy:
                continue
            queues.setdefault(card.session_id, []).append(card)
        seated, opened = await self.groups.seat([q[0] for q in queues.values()])
        for room in opened:
            self._start(self._send_group(room))
        for queue in queues.values():
            if queue[0].id in seated:  # it waits with its chat's other approvals
                self._claimed.add(queue[0].id)  # and the session's next cards wait for it
                continue
            for card in queue:
                self._claimed.add(card.id)
            self._start(self._send_cards(queue))
        return bool(queues)

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_group(self, room: Room) -> None:
        """The approvals that waited in `room` for its slot: one grouped card, or the only
        one's own card (`daemon/grouping.py`)."""
        PRIORITY.set(Priority.CARD)
        items = room.items
        try:
            items = await self.groups.wait_and_close(room)
            if self.groups.alone(room):
                await self._side_by_side(items, urgent=True)
                return
            try:
                refs = await self.groups.post(room)
            except (SurfaceRetry, SurfaceUnavailable):
                raise
            except Exception as e:
                # a refusal (or a bug) of the grouped message is no approval's fault: each
                # goes as its own card now, and only a card that fails on its own is charged
                log.warning("%s: the grouped card of %d approvals was refused (%s); each "
                            "goes on its own", self.name, len(items), e,
                            exc_info=not isinstance(e, SurfaceError))  # a bug: with its traceback
                await self._side_by_side(items, urgent=True)
                return
            done = [i.id for i in items]
            await self.store.record_delivery(self.name, done, refs=refs,
                                             now=self.hub.clock(), urgent=True)
            self._finished.update(done)
            self.delivered += len(done)
            self._failures = 0
            for item_id in done:  # a try that failed before is behind them
                self._retry_at.pop(item_id, None)
        except SurfaceUnavailable as e:
            self._unreachable(e)
        except SurfaceRetry as e:
            log.info("%s asked to wait %.1fs", self.name, e.after)
        except Exception:  # a bug or the store: delivery must go on
            log.exception("%s: sending grouped approvals failed", self.name)
        finally:
            self._claimed.difference_update(i.id for i in items)
            self.cards_wakeup.set()
            self.wakeup.set()

    async def _send_cards(self, queue: list[OutboxItem]) -> None:
        """One session's urgent items, in order, beside the other sessions' (see
        `_card_round`); a failure is handled as `_serve` handles a round's."""
        PRIORITY.set(Priority.CARD)
        try:
            await self._side_by_side(queue, urgent=True)
        except SurfaceUnavailable as e:
            self._unreachable(e)
        except SurfaceRetry as e:  # its budget is stopped for that long (`Outbound`)
            log.info("%s asked to wait %.1fs", self.name, e.after)
        except Exception:  # a bug or the store: delivery must go on
            log.exception("%s: sending urgent items failed", self.name)
        finally:
            self.cards_wakeup.set()  # the session's next card may go now
            self.wakeup.set()  # and what it sent after its cards

    async def _round(self) -> bool:
        """Everything but what the urgent lane sends, then the status cards."""
        items = await self.store.outbox_pending(self.name, limit=100)
        statuses = [i for i in items if i.kind == OutboxKind.STATUS]
        for item in statuses:
            if item.session_id:
                self.threads.dirty.add(item.session_id)
        if statuses:
            await self.store.mark_delivered([i.id for i in statuses], now=self.hub.clock())
        cards, rest = _cards_first(items)
        # Only the card lane sends approval cards; this list may be stale by the time we
        # get to an item, so a session with a card in it (going first, being sent, or held
        # behind what its session was sent before) sends nothing more in this round: its
        # later items wait for the card, and the card lane is told when it may go.
        waiting = {c.session_id for c in cards}
        held_cards = any(c.id not in self._claimed for c in cards)  # not yet under way
        now = time.monotonic()
        batch: list[OutboxItem] = []  # each session's items up to the first that must wait
        for item in rest:
            if item.kind == OutboxKind.STATUS or item.session_id in waiting:
                continue
            if self._backing_off(item, now):
                waiting.add(item.session_id)  # it failed a moment ago: the session waits
                continue
            if _urgent(item) or item.id in self._claimed:
                waiting.add(item.session_id)
                held_cards = True
                self.cards_wakeup.set()  # what it waited for is out (or it is under way)
                continue
            batch.append(item)
        # the sessions side by side, each in order: one chat's spent budget (or one slow
        # item) does not hold up another chat's story; a session whose item fails stops there
        if batch:
            await self._side_by_side(batch)
        progressed = bool(statuses) or bool(batch)
        if held_cards:
            self.cards_wakeup.set()
        flushed = await self.threads.flush_status()
        return progressed or flushed

    async def _side_by_side(self, items: list[OutboxItem], *, urgent: bool = False) -> bool:
        """Deliver `items`, each session's in order and different sessions' side by side,
        and mark them delivered in one transaction with the references they made (`urgent`
        as for `Store.transaction`). False when one failed (it is retried, or its thread is
        made again); the platform's pause or outage is raised once the rest is recorded."""
        queues: dict[str | None, list[OutboxItem]] = {}
        for item in items:
            queues.setdefault(item.session_id, []).append(item)
            self._claimed.add(item.id)
        refs: dict[str, str] = {}
        done: list[int] = []

        async def deliver_in_order(queue: list[OutboxItem]) -> None:
            for item in queue:
                PRIORITY.set(priority_of(item.kind, item.payload))  # this task's own
                with steps_of(item):
                    refs.update(await self.shower.show(item))
                done.append(item.id)
                self._failures = 0

        try:
            outcomes = await asyncio.gather(*(deliver_in_order(q) for q in queues.values()),
                                            return_exceptions=True)
            if done:
                await self.store.record_delivery(self.name, done, refs=refs,
                                                 now=self.hub.clock(), urgent=urgent)
                self._finished.update(done)
                self.delivered += len(done)
                for item_id in done:
                    self._retry_at.pop(item_id, None)
            ok = True
            pause: BaseException | None = None
            for queue, outcome in zip(queues.values(), outcomes, strict=True):
                if not isinstance(outcome, BaseException):
                    continue
                ok = False
                if isinstance(outcome, SurfaceRetry | SurfaceUnavailable):
                    pause = pause or outcome  # the platform's pause or outage
                elif isinstance(outcome, Exception):  # a refusal, or a bug
                    await self._failed(next(i for i in queue if i.id not in done), outcome,
                                       urgent=urgent)
                else:
                    raise outcome  # cancelled
            if pause is not None:
                raise pause
            return ok
        finally:
            self._claimed.difference_update(i.id for i in items)

    async def _failed(self, item: OutboxItem, e: Exception, *, urgent: bool = False) -> None:
        """An item the platform refused, or whose delivery failed unexpectedly: retried with
        backoff (its thread made again first if that is what was gone), and given up on
        after MAX_ATTEMPTS tries, with the reason on its row."""
        if isinstance(e, ThreadGone) and item.session_id is not None:
            await self.threads.forget_thread(item.session_id, e)
            if item.steps:  # what it sent is gone with its thread: all of it again
                await self.store.record_step(self.name, item.id, 0, refs={})
        expected = isinstance(e, SurfaceError | ThreadGone)
        reason = str(e) if expected else f"{type(e).__name__}: {e}"
        attempts = item.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            log.error("%s: giving up on %s #%d of %s after %d tries: %s", self.name,
                      item.kind, item.id, item.session_id, attempts, reason,
                      exc_info=None if expected else e)
            await self.store.mark_failed(item.id, reason, give_up_at=self.hub.clock(),
                                         urgent=urgent)
            self._finished.add(item.id)
            self._retry_at.pop(item.id, None)
            self.given_up += 1
            return
        delay = 0.0 if isinstance(e, ThreadGone) else backoff(attempts)
        log.warning("%s: %s #%d of %s failed (try %d of %d; again in %.2fs): %s", self.name,
                    item.kind, item.id, item.session_id, attempts, MAX_ATTEMPTS, delay, reason,
                    exc_info=None if expected else e)
        await self.store.mark_failed(item.id, reason, urgent=urgent)
        self._retry_at[item.id] = time.monotonic() + delay


# what a later approval card of the same session need not wait for: the card opens the
# thread itself, and edits of earlier cards and reminders about them do not move it (a
# question's settled edit is not here: a toggle's edit answers a tap and is urgent itself,
# and the urgent lane reads only the kinds not listed)
_CARD_NEED_NOT_WAIT = frozenset({OutboxKind.SESSION_OPENED, OutboxKind.STATUS,
                                 OutboxKind.APPROVAL_SETTLED, OutboxKind.APPROVAL_REMINDER})


def _urgent(item: OutboxItem) -> bool:
    return priority_of(item.kind, item.payload) <= Priority.CARD


def _cards_first(items: list[OutboxItem]) -> tuple[list[OutboxItem], list[OutboxItem]]:
    """The urgent items (approval cards, answers) that go before the rest of the outbox —
    each one unless an earlier item of its own session must be seen before it (a turn's
    summary, a text, a file) — and the rest, in order."""
    first: list[OutboxItem] = []
    rest: list[OutboxItem] = []
    held: set[str | None] = set()  # sessions whose order must be kept from here on
    for item in items:
        if _urgent(item) and (item.session_id is None or item.session_id not in held):
            first.append(item)
            continue
        rest.append(item)
        if item.kind not in _CARD_NEED_NOT_WAIT:
            held.add(item.session_id)
    return first, rest
