"""Delivery: from the outbox to one chat surface, in order, within the platform's limits.

Everything a surface shows was first written to the outbox in the same transaction as the
event behind it, so nothing is lost to a crash or an outage: rows are marked delivered only
after the platform accepted them, and an unreachable platform is retried with backoff, in
order. Status edits are not queued one by one: a session is marked dirty and its card is
edited at most every `status_interval` seconds, and only while the rate budget keeps a
reserve for approval cards.

Approval cards always go first. They have a lane of their own, woken by each new request:
it sends them side by side (each session's in order) while the main lane goes on with the
rest, and they take the next slot of the rate budget before anything else. A card still
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
a 429 pauses both lanes for exactly what the platform asked.

A send whose response was lost (a timeout, a dropped connection after the platform took
it) cannot be told from one that never arrived: neither Telegram nor Slack takes an
idempotency key for a new message, so its retry may show the message twice. Everything
that can be repeated safely is: edits, renames, a thread already recorded, a step already
sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridge.approvals import ApprovalState
from bridge.diffs import DeliveryKind, package_diff, summarize_diff
from bridge.digest import render_digest
from bridge.model import SessionView
from bridge.outbox import (
    OpenThread,
    OutboxKind,
    PostApproval,
    PostDiff,
    PostDigest,
    PostSummary,
    PostText,
    RefreshStatus,
    RemindApproval,
    SendFile,
    SetArchived,
    UnknownIntent,
    UpdateApproval,
    decode,
)
from bridge.refs import ApprovalCardRef, MessageRef, StatusRef, ThreadRef
from bridge.render import (
    Card,
    render_approval_card,
    render_status_card,
    render_summary_card,
    split_text,
    topic_title,
)
from bridge.render_outbox import (
    NO_CHANGES,
    NOTHING_NEEDS_YOU,
    changes_text,
    diff_caption,
    diff_name,
    final_attachment,
    final_caption,
    render_diff_reply,
    render_reminder,
    turn_summary,
    without_clock,
)
from bridge.session import LIVE_STATES
from bridge.surface import (
    ChatSurface,
    SurfaceError,
    SurfaceRetry,
    SurfaceUnavailable,
    ThreadGone,
)
from bridge.verify import last_check
from daemon.changes import Changes
from daemon.errors import NotFound
from daemon.hub import Hub
from daemon.pacing import BACKOFF_CAP, BACKOFF_FIRST, CARD_LANE, Pacer, backoff
from daemon.redaction import Redacting, redact_bytes, redact_text
from daemon.store import OutboxItem

__all__ = ["BACKOFF_CAP", "BACKOFF_FIRST", "MAX_ATTEMPTS", "Delivery", "Pacer", "backoff"]

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5  # tries of one item before it is given up on


@dataclass(slots=True)
class _Progress:
    """The steps (messages) of the item being delivered: `done` were sent by an earlier
    attempt and are skipped; `sent` says whether this attempt has sent one yet."""

    item: OutboxItem
    done: int
    next: int = 0
    sent: bool = False


# set while an item is delivered, in the task delivering it
_PROGRESS: contextvars.ContextVar[_Progress | None] = contextvars.ContextVar(
    "progress", default=None)


class Delivery:
    def __init__(self, hub: Hub, surface: ChatSurface, *, status_interval: float = 2.0,
                 reserve: float = 3.0) -> None:
        self.hub = hub
        self.store = hub.store
        self.surface = Redacting(surface, hub.redactor)
        self.name = surface.name
        self.status_interval = status_interval
        limits = surface.limits
        self.reserve = min(reserve, max(0.0, limits.max_messages - 2))
        self.pacer = Pacer(limits.max_messages, limits.window)
        self.wakeup = asyncio.Event()
        self.cards_wakeup = asyncio.Event()
        self.dirty: set[str] = set()
        self._status_text: dict[str, str] = {}
        self._title: dict[str, str] = {}
        self._status_at: dict[str, float] = {}
        self._cards_seen = 0  # hub.approvals_requested when the card lane last looked
        self._claimed: set[int] = set()  # outbox rows a lane is delivering right now
        self._threads: dict[str, str] = {}  # session → its thread, once it has its status card
        # session → held while its thread is made (kept: a lock dropped while another task
        # waits on it would let a third make a second thread beside the second)
        self._making: dict[str, asyncio.Lock] = {}
        self._failures = 0  # platform unreachable this many times in a row
        self._retry_at: dict[int, float] = {}  # item → not retried before (monotonic)
        self.delivered = 0
        self.given_up = 0

    def notify(self) -> None:
        self.wakeup.set()
        if self.hub.approvals_requested != self._cards_seen:
            self.cards_wakeup.set()

    async def run(self) -> None:
        for session in await self.store.sessions():
            if session.state in LIVE_STATES:
                self.dirty.add(session.id)
        async with asyncio.TaskGroup() as lanes:
            lanes.create_task(self._serve(self._round, self.wakeup, self._idle_wait))
            lanes.create_task(self._card_lane())

    async def _card_lane(self) -> None:
        CARD_LANE.set(True)
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
                self._failures += 1
                delay = backoff(self._failures)
                log.warning("%s unreachable (%s); retrying in %.2fs", self.name, e, delay)
                self.pacer.block(delay)  # the other lane waits too
                await asyncio.sleep(delay)
                continue
            except SurfaceRetry as e:
                log.info("%s asked to wait %.1fs", self.name, e.after)
                self.pacer.block(e.after)
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

    def _retry_wait(self) -> float:
        """Until the first item waiting after a failure may be tried again."""
        if not self._retry_at:
            return 60.0
        return max(0.01, min(self._retry_at.values()) - time.monotonic())

    def _idle_wait(self) -> float:
        if not self.dirty:
            return self._retry_wait()
        now = time.monotonic()
        due = min(self._status_at.get(s, 0.0) + self.status_interval for s in self.dirty)
        return min(self._retry_wait(),
                   max(0.05, due - now, self.pacer.wait_time(self.reserve)))

    def _backing_off(self, item: OutboxItem, now: float) -> bool:
        return self._retry_at.get(item.id, 0.0) > now

    async def _card_round(self) -> bool:
        """The approval cards that may go now (see the module's docstring)."""
        self._cards_seen = self.hub.approvals_requested
        # the cards, and what they wait for: not the rows they need not wait for, which
        # may be many (a status row per state change) and would push the cards off the page
        items = await self.store.outbox_pending(self.name, limit=100,
                                                skip_kinds=_CARD_NEED_NOT_WAIT)
        now = time.monotonic()
        cards = [i for i in _cards_first(items)[0]
                 if i.id not in self._claimed and not self._backing_off(i, now)]
        if not cards:
            return False
        await self._side_by_side(cards, urgent=True)
        self.wakeup.set()  # what the sessions sent after their cards may go now
        return True

    async def _round(self) -> bool:
        """Everything but the cards the card lane sends, then the status cards."""
        items = await self.store.outbox_pending(self.name, limit=100)
        statuses = [i for i in items if i.kind == OutboxKind.STATUS]
        for item in statuses:
            if item.session_id:
                self.dirty.add(item.session_id)
        if statuses:
            await self.store.mark_delivered([i.id for i in statuses], now=self.hub.clock())
        cards, rest = _cards_first(items)
        # Only the card lane sends approval cards; this list may be stale by the time we
        # get to an item, so a session with a card in it (going first, being sent, or held
        # behind what its session was sent before) sends nothing more in this round: its
        # later items wait for the card, and the card lane is told when it may go.
        waiting = {c.session_id for c in cards}
        held_cards = any(c.id not in self._claimed for c in cards)  # not yet under way
        progressed = bool(statuses)
        now = time.monotonic()
        for item in rest:
            if item.kind == OutboxKind.STATUS or item.session_id in waiting:
                continue
            if self._backing_off(item, now):
                waiting.add(item.session_id)  # it failed a moment ago: the session waits
                continue
            if item.kind == OutboxKind.APPROVAL or item.id in self._claimed:
                waiting.add(item.session_id)
                held_cards = True
                self.cards_wakeup.set()  # what it waited for is out (or it is under way)
                continue
            progressed = True
            if not await self._side_by_side([item]):
                waiting.add(item.session_id)  # it failed: the session's next items wait
        if held_cards:
            self.cards_wakeup.set()
        flushed = await self._flush_status()
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
                await self._take_budget()
                _PROGRESS.set(_Progress(item, item.steps))  # this task's own context
                try:
                    refs.update(await self._deliver(item))
                except SurfaceRetry as e:
                    self.pacer.block(e.after)  # at once: the other sessions' posts wait too
                    raise
                finally:
                    _PROGRESS.set(None)
                done.append(item.id)
                self._failures = 0

        try:
            outcomes = await asyncio.gather(*(deliver_in_order(q) for q in queues.values()),
                                            return_exceptions=True)
            if done:
                await self.store.record_delivery(self.name, done, refs=refs,
                                                 now=self.hub.clock(), urgent=urgent)
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
            await self._forget_thread(item.session_id, e)
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
            self._retry_at.pop(item.id, None)
            self.given_up += 1
            return
        delay = 0.0 if isinstance(e, ThreadGone) else backoff(attempts)
        log.warning("%s: %s #%d of %s failed (try %d of %d; again in %.2fs): %s", self.name,
                    item.kind, item.id, item.session_id, attempts, MAX_ATTEMPTS, delay, reason,
                    exc_info=None if expected else e)
        await self.store.mark_failed(item.id, reason, urgent=urgent)
        self._retry_at[item.id] = time.monotonic() + delay

    async def _forget_thread(self, sid: str, e: ThreadGone) -> None:
        log.info("%s: thread of %s is gone (%s); making a new one", self.name, sid, e)
        self._threads.pop(sid, None)
        await self.store.set_refs(self.name, {ThreadRef(session_id=sid).key: "",
                                              StatusRef(session_id=sid).key: ""})

    async def _take_budget(self) -> None:
        await self.pacer.take_in_lane()

    # -- one item ---------------------------------------------------------------------

    async def _deliver(self, item: OutboxItem) -> dict[str, str]:
        """Deliver one item; returns the references to store with its delivered mark."""
        sid = item.session_id
        try:
            intent = decode(item.kind, item.payload)
        except UnknownIntent:
            log.warning("%s: unknown outbox kind %s", self.name, item.kind)
            return {}
        if isinstance(intent, PostDigest):
            await self._digest(requested=intent.requested)
            return {}
        if sid is None:
            return {}
        try:
            session = await self.store.session(sid)
        except NotFound:
            return {}
        redactor = self.hub.redactor
        match intent:
            case OpenThread():
                await self.thread(sid)
            case PostApproval(approval_id=approval_id):
                approval = await self.store.approval(approval_id)
                thread = await self.thread(sid)
                pending = approval.state is ApprovalState.PENDING
                ref = await self.surface.post(
                    thread, render_approval_card(approval, session, redactor=redactor),
                    notify=pending,
                    mention=session.owner_on(self.name) if pending else None)
                return {ApprovalCardRef(approval_id=approval.id).key: ref,
                        MessageRef(session_id=sid, message=ref).key: ref}
            case UpdateApproval(approval_id=approval_id):
                card_ref = await self.store.get_ref(
                    self.name, ApprovalCardRef(approval_id=approval_id).key)
                if card_ref:
                    approval = await self.store.approval(approval_id)
                    await self.surface.edit(card_ref, render_approval_card(
                        approval, session, redactor=redactor))
                self.dirty.add(sid)
            case PostSummary():
                await self._summary(session, intent)
                self.dirty.add(sid)
            case PostDiff():
                await self._diff(session, requested=True)
            case RemindApproval(approval_id=approval_id):
                approval = await self.store.approval(approval_id)
                if approval.state is ApprovalState.PENDING:
                    cfg = self.hub.config.approvals
                    await self.post_long(sid, render_reminder(
                        approval, session, now=self.hub.clock(), timeout=cfg.timeout,
                        on_timeout=cfg.on_timeout, redactor=redactor))
            case SetArchived(archived=archived):
                thread = await self.thread(sid)
                title = topic_title(session, redactor=redactor)
                await self.surface.set_thread(
                    thread, title=title if self._title.get(sid) != title else None,
                    open=not archived,
                )
                self._title[sid] = title
                self.dirty.add(sid)
            case PostText(text=text):
                await self.post_long(sid, Card(text))
            case SendFile(filename=filename, data=data, caption=caption):
                await self._send_file(sid, filename, data, caption)
            case RefreshStatus():
                pass  # the lanes mark the session dirty; its card is edited when due
        return {}

    async def _digest(self, *, requested: bool) -> None:
        lines = await self.hub.digest_lines()
        links: dict[str, str] = {}
        for line in lines:
            thread = await self.store.get_ref(self.name, ThreadRef(session_id=line.session.id).key)
            link = self.surface.thread_link(thread) if thread else None
            if link:
                links[line.session.id] = link
        card = render_digest(lines, now=self.hub.clock(), links=links,
                             redactor=self.hub.redactor)
        if card is None:
            if requested:
                await self.surface.post("", NOTHING_NEEDS_YOU, notify=False)
            return
        await self.surface.post("", card, notify=True)

    async def _changes(self, session: SessionView) -> Changes:
        """The session's changes; when they cannot be read, none, with the reason as the
        note (the summary they belong to still goes out)."""
        try:
            return await self.hub.changes.diff(session.id)
        except Exception as e:
            log.exception("%s: could not read the changes of %s", self.name, session.id)
            return Changes(b"", summarize_diff(b""),
                           f"could not read the changes: {type(e).__name__}: {e}")

    async def _summary(self, session: SessionView, intent: PostSummary) -> None:
        """The end-of-turn summary with the whole final message (as a `.md` file when it
        would take more than FINAL_MESSAGES messages), then the diff as an attachment sized
        for the platform."""
        changes = await self._changes(session)
        summary = turn_summary(
            intent,
            changes=changes_text(changes.summary, changes.note),
            verification=last_check(await self.store.turn_tools(session.id),
                                    redactor=self.hub.redactor),
            resume_command=self.hub.resume_command(session),
        )
        final = summary.final_text or ""
        attached = final_attachment(session, final, self._piece_limit())
        await self.post_long(session.id,
                             render_summary_card(session, summary, attached=attached,
                                                 redactor=self.hub.redactor))
        if attached:
            data = (await redact_text(self.hub.redactor, final)).encode()
            await self._send_file(session.id, attached, data, final_caption(session, final))
        await self._send_diff(session, changes.raw, quiet_when_empty=True)

    async def _diff(self, session: SessionView, *, requested: bool) -> None:
        changes = await self._changes(session)
        card, follows = render_diff_reply(session, changes.summary, changes.note)
        await self.post_long(session.id, card)
        if follows:
            await self._send_diff(session, changes.raw, quiet_when_empty=not requested)

    async def _send_diff(self, session: SessionView, raw: bytes, *,
                         quiet_when_empty: bool) -> None:
        limits = self.surface.limits
        package = package_diff(
            await redact_bytes(self.hub.redactor, raw), name=diff_name(session),
            inline_limit=limits.inline_diff, file_limit=limits.file_bytes, ref=session.id,
        )
        match package.kind:
            case DeliveryKind.INLINE:
                await self.post_long(session.id, Card(package.text or ""), notify=False)
            case DeliveryKind.DOCUMENT | DeliveryKind.ZIP:
                await self._send_file(session.id, package.filename or "changes.diff",
                                      package.data or b"", diff_caption(session, package))
            case DeliveryKind.TOO_LARGE:
                await self.post_long(session.id, Card(package.message or ""), notify=False)
            case DeliveryKind.EMPTY:
                if not quiet_when_empty:
                    await self.post_long(session.id, NO_CHANGES, notify=False)

    async def thread(self, sid: str) -> str:
        """The session's thread, made (with its status card) the first time it is needed.

        What was made is stored in one transaction once the thread has its card — or as
        soon as a rate limit (or any failure) stops us in between, so that the retry resumes
        where it stopped instead of making another thread."""
        known = self._threads.get(sid)
        if known:
            return known
        making = self._making.setdefault(sid, asyncio.Lock())
        async with making:  # both lanes may need it at once: one of them makes it
            return await self._make_thread(sid)

    async def _make_thread(self, sid: str) -> str:
        known = self._threads.get(sid)
        if known:
            return known
        thread = await self.store.get_ref(self.name, ThreadRef(session_id=sid).key)
        status = await self.store.get_ref(self.name, StatusRef(session_id=sid).key)
        if thread and status:
            self._threads[sid] = thread
            return thread
        session = await self.store.session(sid)
        pending = len(await self.hub.pending_approvals(sid))
        card = render_status_card(session, now=self.hub.clock(), pending=pending,
                                  redactor=self.hub.redactor)
        made: dict[str, str] = {}
        try:
            if not thread:
                title = topic_title(session, redactor=self.hub.redactor)
                thread, status = await self.surface.open_thread(session, title, card)
                made[ThreadRef(session_id=sid).key] = thread
                self._title[sid] = title
            if not status:
                await self._take_budget()
                status = await self.surface.post(thread, card, notify=False)
            made[StatusRef(session_id=sid).key] = status
            made[MessageRef(session_id=sid, message=status).key] = status
        finally:
            if made:  # urgent: a card (or the person who started the session) waits for it
                await self.store.set_refs(self.name, made, urgent=True)
        self._status_text[sid] = without_clock(card.text)
        self._status_at[sid] = time.monotonic()
        self._threads[sid] = thread
        self.dirty.add(sid)  # the card was drawn before the thread was made: check it again
        return thread

    def _piece_limit(self) -> int:
        return self.surface.limits.text - 100

    async def post_long(self, sid: str, card: Card, *, notify: bool = True) -> None:
        """A card whose text may exceed the platform's limit: the rest follows in pieces,
        each a step of the item (see `_step`)."""
        thread = await self.thread(sid)
        pieces = split_text(await self.surface.text(card.text), self._piece_limit())
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            if not await self._step_begins():
                continue
            ref = await self.surface.post(
                thread, Card(piece, card.buttons if last else ()), notify=notify and i == 0
            )
            await self._step_done({MessageRef(session_id=sid, message=ref).key: ref})

    async def _send_file(self, sid: str, filename: str, data: bytes, caption: str) -> None:
        """A file in the session's thread, as a step of the item."""
        thread = await self.thread(sid)
        if await self._step_begins():
            await self.surface.send_file(thread, filename, data, caption)
            await self._step_done({})

    async def _step_begins(self) -> bool:
        """Whether the item's next message is to be sent (False: an earlier attempt sent
        it); when so, its slot of the rate budget is taken (the item's first message has
        the slot the item took)."""
        progress = _PROGRESS.get()
        if progress is None:
            await self._take_budget()
            return True
        index = progress.next
        progress.next += 1
        if index < progress.done:
            return False
        if progress.sent:
            await self._take_budget()
        progress.sent = True
        return True

    async def _step_done(self, refs: dict[str, str]) -> None:
        """The message a step sent is out: remembered with its references, so that a retry
        of the item resumes after it."""
        self._failures = 0
        progress = _PROGRESS.get()
        if progress is None:
            if refs:
                await self.store.set_refs(self.name, refs)
            return
        await self.store.record_step(self.name, progress.item.id, progress.next, refs=refs,
                                     urgent=CARD_LANE.get())

    async def _flush_status(self) -> bool:
        did = False
        now = time.monotonic()
        for sid in sorted(self.dirty):
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
            if flushed is None:
                return did  # out of budget
            did = did or flushed
        return did

    async def _flush_one(self, sid: str) -> bool | None:
        """Edit the session's status card (and title) if they changed: whether it did, or
        None when the rate budget has no room now."""
        try:
            session = await self.store.session(sid)
        except NotFound:
            self.dirty.discard(sid)
            return False
        ref = await self.store.get_ref(self.name, StatusRef(session_id=sid).key)
        if not ref:
            self.dirty.discard(sid)  # no thread yet: it is made with a fresh card
            return False
        pending = len(await self.hub.pending_approvals(sid))
        card = render_status_card(session, now=self.hub.clock(), pending=pending,
                                  redactor=self.hub.redactor)
        title = topic_title(session, redactor=self.hub.redactor)
        changed_text = self._status_text.get(sid) != without_clock(card.text)
        changed_title = self._title.get(sid) != title
        if not changed_text and not changed_title:
            self.dirty.discard(sid)
            return False
        if not self.pacer.try_take(self.reserve):
            return None
        try:
            if changed_text:
                await self.surface.edit(ref, card)
            if changed_title:
                thread = await self.store.get_ref(self.name, ThreadRef(session_id=sid).key)
                if thread:
                    await self.surface.set_thread(thread, title=title, open=None)
        except ThreadGone as e:  # the next item for the session makes a new thread
            await self._forget_thread(sid, e)
        except SurfaceError as e:  # e.g. the card was deleted: the summary still comes
            log.warning("%s: could not update the status of %s: %s", self.name, sid, e)
        self._status_text[sid] = without_clock(card.text)
        self._title[sid] = title
        self._status_at[sid] = time.monotonic()
        self.dirty.discard(sid)
        return True


# what a later approval card of the same session need not wait for: the card opens the
# thread itself, and edits of earlier cards and reminders about them do not move it
_CARD_NEED_NOT_WAIT = frozenset({OutboxKind.SESSION_OPENED, OutboxKind.STATUS,
                                 OutboxKind.APPROVAL_SETTLED, OutboxKind.APPROVAL_REMINDER})


def _cards_first(items: list[OutboxItem]) -> tuple[list[OutboxItem], list[OutboxItem]]:
    """The approval cards that go before the rest of the outbox — each one unless an
    earlier item of its own session must be seen before it (a turn's summary, a text, a
    file) — and the rest, in order."""
    first: list[OutboxItem] = []
    rest: list[OutboxItem] = []
    held: set[str | None] = set()  # sessions whose order must be kept from here on
    for item in items:
        if item.kind == OutboxKind.APPROVAL and item.session_id not in held:
            first.append(item)
            continue
        rest.append(item)
        if item.kind not in _CARD_NEED_NOT_WAIT:
            held.add(item.session_id)
    return first, rest
