"""Grouped approval cards: when a chat's budget is spent, its waiting approvals go together.

A chat's rate budget is the platform's: a Telegram group takes 20 messages a minute, sends
and edits together, so with a dozen busy sessions in one group their approval cards would
queue for minutes, one message each. Instead, an approval card that cannot go at once (its
chat's budget has no slot for a card now) waits in its chat's *waiting room*; the room
waits for one slot, and the approvals that joined it by then go out as one message in the
chat's home place (`bridge.render_batch`), each with its own buttons. A room that holds one
approval when its slot comes gives the slot back and the card goes as usual, in its
session's thread (a new session's topic, which another lane may be making behind the story,
is moved up to the card's priority: `daemon.pacing.Ticket`). So a grouped card appears
only when the budget is short, and then one slot carries every approval that waited for
it.

A room is kept per budget (a chat), open until its slot is granted; what arrives after
that opens the next. The cards' order within a session holds: only a session's first card
joins a room, and its next waits for it, as for a single card. Editing a grouped card once
an entry is settled re-reads all its entries under a lock per message, so edits that cross
on the way never leave an older state showing, and an edit already waiting stands for any
that come after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bridge.approvals import Approval
from bridge.model import SessionView
from bridge.outbox import OutboxKind
from bridge.refs import ApprovalCardRef, BatchCardRef
from bridge.render_batch import BATCH_MOST, batchable, render_batch_card
from daemon.errors import NotFound
from daemon.outbound import Outbound
from daemon.pacing import Pacer, Priority
from daemon.store import OutboxItem
from daemon.threads import ThreadsHub

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class Room:
    """A chat's approvals waiting for one slot: `where` is the chat's home place."""

    where: str
    pacer: Pacer
    items: list[OutboxItem] = field(default_factory=list)
    closed: bool = False


@dataclass(slots=True)
class _Edit:
    """A grouped card's edits: one at a time, and at most one waiting (it shows the
    states as they are when its turn comes, so a third would show nothing new)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queued: bool = False


class CardGroups:
    """The waiting rooms of one surface, and its grouped cards (see the module)."""

    def __init__(self, hub: ThreadsHub, outbound: Outbound) -> None:
        self.hub = hub
        self.store = hub.store
        self.outbound = outbound
        self._rooms: dict[int, Room] = {}  # id(pacer) → its open room
        self._edits: dict[str, _Edit] = {}  # grouped card → its edits under way

    async def seat(self, leads: list[OutboxItem]) -> tuple[set[int], list[Room]]:
        """Which of `leads` (each the first urgent item of its session) wait in a room:
        an approval card that may go grouped, whose chat has a room open already, or has
        no slot for a card now, or has more than one such card in this round. Returns the
        ids seated, and the rooms opened (their caller waits for each one's slot:
        `wait_and_close`); every other item goes on its own."""
        by_pacer: dict[int, tuple[str, Pacer, list[OutboxItem]]] = {}
        for item in leads:
            spot = await self._spot(item)
            if spot is not None:
                by_pacer.setdefault(id(spot[1]), (*spot, []))[2].append(item)
        seated: set[int] = set()
        opened: list[Room] = []
        for key, (where, pacer, items) in by_pacer.items():
            room = self._rooms.get(key)
            if room is None or room.closed:
                if len(items) == 1 and pacer.room(Priority.CARD):
                    continue  # it takes the slot at once: on its own, in its thread
                room = None
            for item in items:
                if room is None or len(room.items) >= BATCH_MOST:
                    room = self._rooms[key] = Room(where, pacer)
                    opened.append(room)
                room.items.append(item)
                seated.add(item.id)
        return seated, opened

    @staticmethod
    def alone(room: Room) -> bool:
        """Whether `room` holds one card: it goes as its own card, in its thread."""
        return len(room.items) == 1

    async def _spot(self, item: OutboxItem) -> tuple[str, Pacer] | None:
        """Where an approval card that may go grouped would go (its chat's home place)
        and that chat's budget; None for any other item."""
        if item.kind != OutboxKind.APPROVAL or item.session_id is None:
            return None
        try:
            approval = await self.store.approval(str(item.payload.get("approval_id", "")))
            session = await self.store.session(item.session_id)
        except NotFound:
            return None
        if not batchable(approval):
            return None
        chat = self.hub.chat_for(self.outbound.name, session)
        where = "" if chat is None else self.outbound.inner.chat_ref(chat)
        return where, self.outbound.pacer(where)

    async def wait_and_close(self, room: Room) -> list[OutboxItem]:
        """Wait for the room's slot, close it and return what joined it. With one item the
        slot is given back: it goes as its own card."""
        try:
            taken = await room.pacer.take(Priority.CARD)
        finally:
            room.closed = True
            if self._rooms.get(id(room.pacer)) is room:
                del self._rooms[id(room.pacer)]
        if self.alone(room):
            room.pacer.give_back(taken)
        return room.items

    async def post(self, room: Room) -> dict[str, str]:
        """Post the grouped card of `room` (its slot taken); the references to store."""
        entries = await self._entries([str(i.payload.get("approval_id", ""))
                                       for i in room.items])
        card = render_batch_card(entries, redactor=self.hub.redactor)
        ref = await self.outbound.post_paid(room.where, room.pacer, card, notify=True)
        log.info("%s: %d approvals went grouped in one message (%s)", self.outbound.name,
                 len(entries), ", ".join(a.id for a, _ in entries))
        refs = {ApprovalCardRef(approval_id=a.id).key: ref for a, _ in entries}
        refs[BatchCardRef(message=ref).key] = " ".join(a.id for a, _ in entries)
        return refs

    async def edit(self, card_ref: str) -> bool:
        """Edit the grouped card `card_ref` to its entries' states; False when `card_ref`
        is a card of its own."""
        members = await self.store.get_ref(self.outbound.name, BatchCardRef(message=card_ref).key)
        if not members:
            return False
        edit = self._edits.setdefault(card_ref, _Edit())
        if edit.queued:  # an edit waits already: it reads the states when its turn comes
            return True
        edit.queued = True
        acquired = False
        try:
            async with edit.lock:  # read after the edit before it is out: the last is current
                edit.queued, acquired = False, True
                entries = await self._entries(members.split())
                await self.outbound.edit(card_ref, render_batch_card(
                    entries, redactor=self.hub.redactor))
        finally:
            if not acquired:  # cancelled while it waited: it no longer stands for later ones
                edit.queued = False
            if not edit.lock.locked() and not edit.queued:
                self._edits.pop(card_ref, None)
        return True

    async def _entries(self, ids: Sequence[str]) -> list[tuple[Approval, SessionView]]:
        entries: list[tuple[Approval, SessionView]] = []
        for approval_id in ids:
            try:
                approval = await self.store.approval(approval_id)
                entries.append((approval, await self.store.session(approval.session_id)))
            except NotFound:
                continue
        return entries
