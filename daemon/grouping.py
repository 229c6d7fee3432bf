"""Grouped approval cards: when a chat's budget is spent, its waiting approvals go together.

A chat's rate budget is the platform's: a Telegram group takes 20 messages a minute, sends
and edits together, so with a dozen busy sessions in one group their approval cards would
queue for minutes, one message each. Instead, an approval card that cannot go at once (its
chat's budget has no slot for a card now) waits in its chat's *waiting room*; the room
waits for one slot, and the approvals that joined it by then go out as one message in the
chat's home place (`bridge.render_batch`), each with its own buttons. A room that holds one
approval when its slot comes gives the slot back and the card goes as usual, in its
session's thread. So a grouped card appears only when the budget is short, and then one
slot carries every approval that waited for it.

A room is kept per budget (a chat), open until its slot is granted; what arrives after
that opens the next. The cards' order within a session holds: only a session's first card
joins a room, and its next waits for it, as for a single card. Editing a grouped card once
an entry is settled re-reads all its entries under a lock per message, so edits that cross
on the way never leave an older state showing.
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


class CardGroups:
    """The waiting rooms of one surface, and its grouped cards (see the module)."""

    def __init__(self, hub: ThreadsHub, outbound: Outbound) -> None:
        self.hub = hub
        self.store = hub.store
        self.outbound = outbound
        self._rooms: dict[int, Room] = {}  # id(pacer) → its open room
        self._edits: dict[str, asyncio.Lock] = {}  # grouped card → held while it is edited
        self._alone: dict[int, int] = {}  # pacer → cards on their way on their own
        self._gone: dict[int, asyncio.Event] = {}  # pacer → set once none is on its way

    def release(self, pacer_key: int) -> None:
        """A card that went on its own (`room_for` gave `pacer_key`) is out, or failed."""
        left = self._alone.get(pacer_key, 0) - 1
        if left > 0:
            self._alone[pacer_key] = left
            return
        self._alone.pop(pacer_key, None)
        gone = self._gone.pop(pacer_key, None)
        if gone is not None:
            gone.set()

    async def room_for(self, item: OutboxItem) -> Room | int | None:
        """The room `item` would wait in: an approval card that may go grouped, whose chat
        has no slot for a card now, or one on its way alone already. Else it goes on its
        own: None, or (when it may go grouped) its pacer's key, for `release` once it is
        out."""
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
        pacer = self.outbound.pacer(where)
        room = self._rooms.get(id(pacer))
        if room is not None and not room.closed and len(room.items) < BATCH_MOST:
            return room  # others wait already: it joins them, never overtakes them
        if pacer.room(Priority.CARD) and id(pacer) not in self._alone:
            self._alone[id(pacer)] = 1  # it takes the slot: the next card waits in a room
            return id(pacer)
        return Room(where, pacer)

    def join(self, room: Room, item: OutboxItem) -> bool:
        """`item` waits in `room`; True when the room is new (its caller waits for the
        slot: `wait_and_close`)."""
        room.items.append(item)
        if self._rooms.get(id(room.pacer)) is room:
            return False
        self._rooms[id(room.pacer)] = room
        return True

    async def wait_and_close(self, room: Room) -> list[OutboxItem]:
        """Wait for the room's slot, close it and return what joined it. With one item the
        slot is given back: it goes as its own card. The room waits first for the card on
        its way alone (which may have yet to take its slots: its topic, its card)."""
        key = id(room.pacer)
        try:
            while key in self._alone:
                await self._gone.setdefault(key, asyncio.Event()).wait()
            taken = await room.pacer.take(Priority.CARD)
        finally:
            room.closed = True
            if self._rooms.get(id(room.pacer)) is room:
                del self._rooms[id(room.pacer)]
        if len(room.items) == 1:
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
        lock = self._edits.setdefault(card_ref, asyncio.Lock())
        try:
            async with lock:  # read after the edit before it is out: the last edit is current
                entries = await self._entries(members.split())
                await self.outbound.edit(card_ref, render_batch_card(
                    entries, redactor=self.hub.redactor))
        finally:
            if not lock.locked():
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
