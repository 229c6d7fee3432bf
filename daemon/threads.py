"""The sessions' threads on one surface, as delivery writes into them.

`SessionThreads` makes a session's thread with its status card the first time it is
needed, posts into it (long texts in pieces, files), and edits the status cards that are
due (a session is marked dirty; its card is edited at most every `status_interval`
seconds, to its latest state, and only with what the rate budget has left after everything
else: `Priority.STATUS`, least recently edited first). A thread made for an approval card
gets its status card the same way, after the card. An item of several messages
records each as a step once it is out, so that a retry resumes after the last one sent
(`steps_of`). Which items go when, and what happens when they fail, is the lanes'
business (`daemon/delivery.py`); what an item shows is `daemon/showing.py`."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from bridge.approvals import Approval
from bridge.model import SessionView
from bridge.questions import Question
from bridge.redact import Redactor
from bridge.refs import MessageRef, StatusRef, ThreadRef
from bridge.render import Card, render_status_card, split_text, topic_title
from bridge.render_outbox import without_clock
from bridge.surface import SurfaceError, SurfaceRetry, SurfaceUnavailable, ThreadGone
from daemon.errors import NotFound
from daemon.outbound import Outbound
from daemon.pacing import PRIORITY, TICKET, Priority, Ticket
from daemon.progress import ProgressMessages
from daemon.store import OutboxItem, Store

log = logging.getLogger(__name__)
STATUS_POST_TRIES = 5  # a status card the platform keeps refusing to post is given up on


@dataclass(slots=True)
class _Progress:
    """The steps (messages) of the item being delivered: `done` were sent by an earlier
    attempt and are skipped."""

    item: OutboxItem
    done: int
    next: int = 0


# set while an item is delivered, in the task delivering it
_PROGRESS: contextvars.ContextVar[_Progress | None] = contextvars.ContextVar(
    "progress", default=None)


@contextlib.contextmanager
def steps_of(item: OutboxItem) -> Iterator[None]:
    """While `item` is delivered in this task: its messages are its steps."""
    _PROGRESS.set(_Progress(item, item.steps))  # this task's own context
    try:
        yield
    finally:
        _PROGRESS.set(None)


class ThreadsHub(Protocol):
    """What the threads use of the daemon: the store, the clock, the redactor, how many
    approvals a session waits on (for its status card), and the chat its thread goes in."""

    @property
    def store(self) -> Store: ...
    @property
    def redactor(self) -> Redactor: ...
    def clock(self) -> float: ...
    async def pending_approvals(self, session_id: str | None = None) -> list[Approval]: ...
    async def pending_questions(self, session_id: str | None = None) -> list[Question]: ...
    def chat_for(self, surface: str, session: SessionView) -> str | None: ...


class SessionThreads:
    """The sessions' threads on one surface (see the module's docstring). `on_sent` is
    called whenever a message is out (the platform is reachable again)."""

    def __init__(self, hub: ThreadsHub, surface: Outbound, *, status_interval: float,
                 on_sent: Callable[[], None], progress: ProgressMessages | None = None) -> None:
        self.hub = hub
        self.store = hub.store
        self.surface = surface
        self.name = surface.name
        self.status_interval = status_interval
        self.on_sent = on_sent
        self.progress = progress  # the sessions' progress messages, edited with the cards
        self.dirty: set[str] = set()  # sessions whose status card may need an edit
        self._status_text: dict[str, str] = {}
        self.titles: dict[str, str] = {}  # session → the thread title last set
        self._status_at: dict[str, float] = {}
        self._threads: dict[str, str] = {}  # session → its thread, once made
        self._refused: dict[str, int] = {}  # session → times its status card's post was refused
        # session → held while its thread is made (kept: a lock dropped while another task
        # waits on it would let a third make a second thread beside the second)
        self._making: dict[str, asyncio.Lock] = {}
        self._tickets: dict[str, Ticket] = {}  # session → where the making of its thread waits

    def status_due(self) -> float | None:
        """When the next dirty session's status card may be edited (monotonic); None when
        none is dirty."""
        if not self.dirty:
            return None
        return min(self._status_at.get(s, 0.0) + self.status_interval for s in self.dirty)

    async def forget_thread(self, sid: str, e: ThreadGone) -> None:
        log.info("%s: thread of %s is gone (%s); making a new one", self.name, sid, e)
        self._threads.pop(sid, None)
        await self.store.set_refs(self.name, {ThreadRef(session_id=sid).key: "",
                                              StatusRef(session_id=sid).key: ""})

    async def thread(self, sid: str) -> str:
        """The session's thread, made (with its status card) the first time it is needed.

        What was made is stored in one transaction once the thread has its card — or as
        soon as a rate limit (or any failure) stops us in between, so that the retry resumes
        where it stopped instead of making another thread."""
        known = self._threads.get(sid)
        if known:
            return known
        making = self._making.setdefault(sid, asyncio.Lock())
        if making.locked():  # another lane makes it, perhaps waiting at a lower priority
            ticket = self._tickets.get(sid)
            if ticket is not None:
                ticket.boost(PRIORITY.get())  # it is wanted now at ours: not behind the story
        async with making:  # both lanes may need it at once: one of them makes it
            self._tickets[sid] = ticket = Ticket()
            token = TICKET.set(ticket)
            try:
                return await self._make_thread(sid)
            finally:
                TICKET.reset(token)
                del self._tickets[sid]

    async def _make_thread(self, sid: str) -> str:
        known = self._threads.get(sid)
        if known:
            return known
        thread = await self.store.get_ref(self.name, ThreadRef(session_id=sid).key)
        status = await self.store.get_ref(self.name, StatusRef(session_id=sid).key)
        if thread and (status or PRIORITY.get() <= Priority.CARD):
            self._threads[sid] = thread
            if not status:
                self.dirty.add(sid)  # its status card is still to come
            return thread
        session = await self.store.session(sid)
        pending = len(await self.hub.pending_approvals(sid))
        questions = len(await self.hub.pending_questions(sid))
        card = render_status_card(session, now=self.hub.clock(), pending=pending,
                                  questions=questions, redactor=self.hub.redactor)
        made: dict[str, str] = {}
        try:
            if not thread:
                title = topic_title(session, redactor=self.hub.redactor)
                thread, status = await self.surface.open_thread(
                    session, title, card, chat=self.hub.chat_for(self.name, session))
                made[ThreadRef(session_id=sid).key] = thread
                self.titles[sid] = title
            if status:
                made[StatusRef(session_id=sid).key] = status
                made[MessageRef(session_id=sid, message=status).key] = status
            elif PRIORITY.get() > Priority.CARD:
                status = await self.surface.post(thread, card, notify=False)
                made[StatusRef(session_id=sid).key] = status
                made[MessageRef(session_id=sid, message=status).key] = status
            # else: a card waits for the thread; the status card follows with what the
            # budget has left (`flush_status`)
        finally:
            if made:  # urgent: a card (or the person who started the session) waits for it
                await self.store.set_refs(self.name, made, urgent=True)
        if StatusRef(session_id=sid).key in made:
            self._status_text[sid] = without_clock(card.text)
            self._status_at[sid] = time.monotonic()
        self._threads[sid] = thread
        self.dirty.add(sid)  # the card was drawn before the thread was made: check it again
        return thread

    def piece_limit(self) -> int:
        return self.surface.limits.text - 100

    async def post_long(self, sid: str, card: Card, *, notify: bool = True) -> None:
        """A card whose text may exceed the platform's limit: the rest follows in pieces,
        each a step of the item (see `_step`)."""
        thread = await self.thread(sid)
        pieces = split_text(await self.surface.text(card.text), self.piece_limit())
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            if not await self._step_begins():
                continue
            ref = await self.surface.post(
                thread, Card(piece, card.buttons if last else ()), notify=notify and i == 0
            )
            await self._step_done({MessageRef(session_id=sid, message=ref).key: ref})

    async def send_file(self, sid: str, filename: str, data: bytes, caption: str) -> None:
        """A file in the session's thread, as a step of the item."""
        thread = await self.thread(sid)
        if await self._step_begins():
            await self.surface.send_file(thread, filename, data, caption)
            await self._step_done({})

    async def _step_begins(self) -> bool:
        """Whether the item's next message is to be sent (False: an earlier attempt sent
        it)."""
        progress = _PROGRESS.get()
        if progress is None:
            return True
        index = progress.next
        progress.next += 1
        return index >= progress.done

    async def _step_done(self, refs: dict[str, str]) -> None:
        """The message a step sent is out: remembered with its references, so that a retry
        of the item resumes after it."""
        self.on_sent()
        progress = _PROGRESS.get()
        if progress is None:
            if refs:
                await self.store.set_refs(self.name, refs)
            return
        await self.store.record_step(self.name, progress.item.id, progress.next, refs=refs,
                                     urgent=PRIORITY.get() <= Priority.CARD)

    async def flush_status(self) -> bool:
        """Edit the status cards (and titles) that are due and changed, with what the rate
        budget has left after everything else, the card edited longest ago first; whether
        any was edited."""
        did = False
        now = time.monotonic()
        token = PRIORITY.set(Priority.STATUS)
        try:
            for sid in sorted(self.dirty, key=lambda s: self._status_at.get(s, 0.0)):
                if now - self._status_at.get(sid, 0.0) < self.status_interval:
                    continue
                try:
                    flushed = await self._flush_one(sid)
                except (SurfaceRetry, SurfaceUnavailable):
                    raise
                except Exception:  # one session's card must not stop the others' (or delivery)
                    log.exception("%s: could not update the status of %s", self.name, sid)
                    self._status_at[sid] = time.monotonic()
                    self.dirty.discard(sid)
                    continue
                did = did or flushed
        finally:
            PRIORITY.reset(token)
        return did

    async def _flush_one(self, sid: str) -> bool:
        """Bring the session's status card (and title) up to date where the budget has room
        now: whether a call was made. What had no room stays due."""
        try:
            session = await self.store.session(sid)
        except NotFound:
            self.dirty.discard(sid)
            return False
        thread = await self.store.get_ref(self.name, ThreadRef(session_id=sid).key)
        if not thread:
            self.dirty.discard(sid)  # no thread yet: it is made with a fresh card
            return False
        ref = await self.store.get_ref(self.name, StatusRef(session_id=sid).key)
        pending = len(await self.hub.pending_approvals(sid))
        questions = len(await self.hub.pending_questions(sid))
        card = render_status_card(session, now=self.hub.clock(), pending=pending,
                                  questions=questions, redactor=self.hub.redactor)
        title = topic_title(session, redactor=self.hub.redactor)
        changed_text = not ref or self._status_text.get(sid) != without_clock(card.text)
        changed_title = self.surface.limits.thread_titles and self.titles.get(sid) != title
        did = progress_due = False
        try:
            if changed_text and self.surface.pacer(ref or thread, edit=bool(ref)).room(
                    Priority.STATUS):
                if ref:
                    await self.surface.edit(ref, card)
                else:  # the thread was made for a card: its status card comes now
                    made = await self.surface.post(thread, card, notify=False)
                    await self.store.set_refs(self.name, {
                        StatusRef(session_id=sid).key: made,
                        MessageRef(session_id=sid, message=made).key: made})
                self._status_text[sid] = without_clock(card.text)
                changed_text, did = False, True
            if changed_title and self.surface.pacer(thread, edit=True).room(Priority.STATUS):
                await self.surface.set_thread(thread, title=title, open=None)
                self.titles[sid] = title
                changed_title, did = False, True
            if self.progress is not None:  # after the card: it goes first in the budget
                progressed, progress_due = await self.progress.flush(session, thread)
                did = did or progressed
        except ThreadGone as e:  # the next item for the session makes a new thread
            await self.forget_thread(sid, e)
            changed_text = changed_title = False
        except SurfaceError as e:  # e.g. the card was deleted: the summary still comes
            log.warning("%s: could not update the status of %s: %s", self.name, sid, e)
            if ref or self._refused.get(sid, 0) >= STATUS_POST_TRIES:
                self._status_text[sid] = without_clock(card.text)
                self.titles[sid] = title
                changed_text = changed_title = False
            else:  # a status card not posted yet: tried again in a while
                self._refused[sid] = self._refused.get(sid, 0) + 1
            self._status_at[sid] = time.monotonic()
        if did:
            self._status_at[sid] = time.monotonic()
        if not changed_text and not changed_title and not progress_due:
            self.dirty.discard(sid)
        return did
