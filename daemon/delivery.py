"""Delivery: from the outbox to one chat surface, in order, within the platform's limits.

Everything a surface shows was first written to the outbox in the same transaction as the
event behind it, so nothing is lost to a crash or an outage: rows are marked delivered only
after the platform accepted them, and an unreachable platform is retried with backoff, in
order. Status edits are not queued one by one: a session is marked dirty and its card is
edited at most every `status_interval` seconds, and only while the rate budget keeps a
reserve for approval cards, which always go first: ahead of other sessions' items in the
outbox, and ahead of the rest of a round (thread openings, status edits) when a new request
arrives while the round is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bridge.approvals import ApprovalState
from bridge.diffs import DeliveryKind, package_diff, render_diff_summary
from bridge.digest import render_digest
from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render import (
    Card,
    TurnSummary,
    elapsed,
    render_approval_card,
    render_status_card,
    render_summary_card,
    split_text,
    tool_preview,
    topic_title,
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
from daemon.errors import NotFound
from daemon.hub import Hub
from daemon.store import OutboxItem

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


class Pacer:
    """A sliding window: at most `max_calls` in any `window` seconds (the way Telegram
    counts "20 messages per minute in a group"), and a hard stop while the platform asked
    us to wait. `reserve` keeps slots free for what matters more (approval cards)."""

    def __init__(self, max_calls: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_calls = max_calls
        self.window = window
        self.clock = clock
        self.recent: deque[float] = deque()
        self.blocked_until = 0.0

    def _expire(self, now: float) -> None:
        while self.recent and self.recent[0] <= now - self.window:
            self.recent.popleft()

    def try_take(self, reserve: float = 0.0) -> bool:
        now = self.clock()
        self._expire(now)
        if now < self.blocked_until or len(self.recent) + 1 + reserve > self.max_calls:
            return False
        self.recent.append(now)
        return True

    def wait_time(self, reserve: float = 0.0) -> float:
        now = self.clock()
        self._expire(now)
        blocked = max(0.0, self.blocked_until - now)
        over = len(self.recent) + 1 + int(reserve) - self.max_calls
        if over <= 0:
            return blocked
        index = min(over - 1, len(self.recent) - 1)
        return max(blocked, self.recent[index] + self.window - now + 0.01)

    async def take(self) -> None:
        while not self.try_take():  # noqa: ASYNC110 (waiting on time, not on an event)
            await asyncio.sleep(self.wait_time())

    def block(self, seconds: float) -> None:
        self.blocked_until = max(self.blocked_until, self.clock() + seconds)


class Redacting:
    """A surface seen through the redactor: every text that leaves the machine (cards,
    thread titles, captions) is redacted here, in one place. File contents are redacted by
    the caller before they are packed (a zip must not be rewritten afterwards)."""

    def __init__(self, surface: ChatSurface, redactor: Redactor) -> None:
        self.inner = surface
        self.redactor = redactor
        self.name = surface.name
        self.limits = surface.limits

    def _card(self, card: Card) -> Card:
        return Card(self.redactor.redact(card.text).text, card.buttons)

    def _text(self, text: str) -> str:
        return self.redactor.redact(text).text

    async def open_thread(
        self, session: SessionView, title: str, card: Card
    ) -> tuple[str, str | None]:
        return await self.inner.open_thread(session, self._text(title), self._card(card))

    async def set_thread(self, thread: str, *, title: str | None, open: bool | None) -> None:
        await self.inner.set_thread(thread, title=None if title is None else self._text(title),
                                    open=open)

    async def post(self, thread: str, card: Card, *, notify: bool,
                   mention: str | None = None) -> str:
        return await self.inner.post(thread, self._card(card), notify=notify, mention=mention)

    async def edit(self, message: str, card: Card) -> None:
        await self.inner.edit(message, self._card(card))

    async def send_file(self, thread: str, filename: str, data: bytes, caption: str) -> None:
        await self.inner.send_file(thread, filename, data, self._text(caption))


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
        self.dirty: set[str] = set()
        self._status_text: dict[str, str] = {}
        self._title: dict[str, str] = {}
        self._status_at: dict[str, float] = {}
        self._approvals_seen = 0  # hub.approvals_requested when the round fetched the outbox
        self.delivered = 0

    def notify(self) -> None:
        self.wakeup.set()

    async def run(self) -> None:
        for session in await self.store.sessions():
            if session.state in LIVE_STATES:
                self.dirty.add(session.id)
        backoff = 1.0
        while True:
            self.wakeup.clear()
            try:
                progressed = await self._round()
                backoff = 1.0
            except SurfaceUnavailable as e:
                log.warning("%s unreachable (%s); retrying in %.0fs", self.name, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except SurfaceRetry as e:
                log.info("%s asked to wait %.1fs", self.name, e.after)
                self.pacer.block(e.after)
                continue
            if progressed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=self._idle_wait())

    def _idle_wait(self) -> float:
        if not self.dirty:
            return 60.0
        now = time.monotonic()
        due = min(self._status_at.get(s, 0.0) + self.status_interval for s in self.dirty)
        return max(0.05, due - now, self.pacer.wait_time(self.reserve))

    def _approval_waiting(self) -> bool:
        """Whether an approval was requested after this round fetched the outbox."""
        return self.hub.approvals_requested != self._approvals_seen

    async def _round(self) -> bool:
        self._approvals_seen = self.hub.approvals_requested
        items = await self.store.outbox_pending(self.name, limit=100)
        statuses = [i for i in items if i.kind == "status"]
        for item in statuses:
            if item.session_id:
                self.dirty.add(item.session_id)
        if statuses:
            await self.store.mark_delivered([i.id for i in statuses], now=self.hub.clock())
        for item in _approvals_first(items):
            if item.kind == "status":
                continue
            if item.kind != "approval" and self._approval_waiting():
                return True  # a new card goes first: the next round fetches it
            await self._take_budget()
            try:
                await self._deliver(item)
            except ThreadGone:
                log.info("%s: thread of %s is gone; making a new one", self.name, item.session_id)
                await self.store.set_ref(self.name, f"thread:{item.session_id}", "")
                await self.store.set_ref(self.name, f"status:{item.session_id}", "")
                return True
            except SurfaceError as e:
                if item.attempts + 1 >= MAX_ATTEMPTS:
                    log.error("%s: giving up on %s #%d: %s", self.name, item.kind, item.id, e)
                    await self.store.mark_failed(item.id, str(e))
                    await self.store.mark_delivered([item.id], now=self.hub.clock())
                else:
                    await self.store.mark_failed(item.id, str(e))
                return True
            await self.store.mark_delivered([item.id], now=self.hub.clock())
            self.delivered += 1
        flushed = await self._flush_status()
        return bool(items) or flushed

    async def _take_budget(self) -> None:
        await self.pacer.take()

    # -- one item ---------------------------------------------------------------------

    async def _deliver(self, item: OutboxItem) -> None:
        sid = item.session_id
        payload = item.payload
        if item.kind == "digest":
            await self._digest(requested=bool(payload.get("requested")))
            return
        if sid is None:
            return
        try:
            session = await self.store.session(sid)
        except NotFound:
            return
        match item.kind:
            case "session_opened":
                await self.thread(sid)
            case "approval":
                approval = await self.store.approval(payload["approval_id"])
                thread = await self.thread(sid)
                pending = approval.state is ApprovalState.PENDING
                ref = await self.surface.post(
                    thread, render_approval_card(approval, session), notify=pending,
                    mention=session.owner_on(self.name) if pending else None)
                await self.store.set_ref(self.name, f"approval:{approval.id}", ref)
                await self.store.set_ref(self.name, f"msg:{sid}/{ref}", ref)
            case "approval_settled":
                card_ref = await self.store.get_ref(self.name,
                                                    f"approval:{payload['approval_id']}")
                if card_ref:
                    approval = await self.store.approval(payload["approval_id"])
                    await self.surface.edit(card_ref, render_approval_card(approval, session))
                self.dirty.add(sid)
            case "summary":
                await self._summary(session, payload)
                self.dirty.add(sid)
            case "diff":
                await self._diff(session, requested=True)
            case "approval_reminder":
                approval = await self.store.approval(payload["approval_id"])
                if approval.state is ApprovalState.PENDING:
                    timeout = self.hub.config.approvals.timeout
                    left = ""
                    if timeout is not None and self.hub.config.approvals.on_timeout == "deny":
                        remaining = approval.requested_at + timeout - self.hub.clock()
                        left = f"; it will be denied in {elapsed(max(0, remaining))}"
                    text = (f"⏰ Still waiting for you: {approval.tool} "
                            f"{tool_preview(approval.tool, approval.input, 200)} "
                            f"(request {approval.id}){left}.")
                    await self.post_long(sid, Card(text, render_approval_card(
                        approval, session).buttons))
            case "archived" | "unarchived":
                thread = await self.thread(sid)
                title = topic_title(session)
                await self.surface.set_thread(
                    thread, title=title if self._title.get(sid) != title else None,
                    open=item.kind == "unarchived",
                )
                self._title[sid] = title
                self.dirty.add(sid)
            case "text":
                await self.post_long(sid, Card(str(payload.get("text", ""))))
            case "file":
                thread = await self.thread(sid)
                data = bytes.fromhex(payload["hex"])
                await self.surface.send_file(thread, payload["filename"], data,
                                             payload.get("caption", ""))
            case _:
                log.warning("%s: unknown outbox kind %s", self.name, item.kind)

    async def _digest(self, *, requested: bool) -> None:
        lines = await self.hub.digest_lines()
        links: dict[str, str] = {}
        thread_link = getattr(self.surface.inner, "thread_link", None)
        if thread_link is not None:
            for line in lines:
                thread = await self.store.get_ref(self.name, f"thread:{line.session.id}")
                link = thread_link(thread) if thread else None
                if link:
                    links[line.session.id] = link
        card = render_digest(lines, now=self.hub.clock(), links=links)
        if card is None:
            if requested:
                await self.surface.post("", Card("📋 Nothing needs you right now."), notify=False)
            return
        await self.surface.post("", card, notify=True)

    async def _summary(self, session: SessionView, payload: dict[str, Any]) -> None:
        """The end-of-turn summary, then the diff as an attachment sized for the platform."""
        changes = await self.hub.changes.diff(session.id)
        lines = [render_diff_summary(changes.summary)] if not changes.summary.is_empty else []
        if changes.note:
            lines.append(f"({changes.note})")
        summary = replace(
            _summary(payload),
            changes="\n".join(lines) or None,
            verification=last_check(await self.store.turn_tools(session.id)),
            resume_command=self.hub.resume_command(session),
        )
        await self.post_long(session.id, render_summary_card(session, summary))
        await self._send_diff(session, changes.raw, quiet_when_empty=True)

    async def _diff(self, session: SessionView, *, requested: bool) -> None:
        changes = await self.hub.changes.diff(session.id)
        head = f"Diff of {session.id} ({session.place}) since the session started"
        if changes.note and changes.summary.is_empty:
            await self.post_long(session.id, Card(f"{head}: {changes.note}."))
            return
        text = f"{head}:\n{render_diff_summary(changes.summary)}"
        if changes.note:
            text += f"\n({changes.note})"
        await self.post_long(session.id, Card(text))
        await self._send_diff(session, changes.raw, quiet_when_empty=not requested)

    async def _send_diff(self, session: SessionView, raw: bytes, *,
                         quiet_when_empty: bool) -> None:
        limits = self.surface.limits
        package = package_diff(
            self.hub.redactor.redact_bytes(raw), name=f"{session.id}-{max(session.turns, 1)}",
            inline_limit=limits.inline_diff, file_limit=limits.file_bytes, ref=session.id,
        )
        thread = await self.thread(session.id)
        match package.kind:
            case DeliveryKind.INLINE:
                await self._take_budget()
                await self.post_long(session.id, Card(package.text or ""), notify=False)
            case DeliveryKind.DOCUMENT | DeliveryKind.ZIP:
                await self._take_budget()
                caption = f"{session.id}: {package.filename} ({package.size} bytes of diff)"
                await self.surface.send_file(thread, package.filename or "changes.diff",
                                             package.data or b"", caption)
            case DeliveryKind.TOO_LARGE:
                await self._take_budget()
                await self.post_long(session.id, Card(package.message or ""), notify=False)
            case DeliveryKind.EMPTY:
                if not quiet_when_empty:
                    await self._take_budget()
                    await self.post_long(session.id, Card("No changes."), notify=False)

    async def thread(self, sid: str) -> str:
        """The session's thread, made (with its status card) the first time it is needed.

        Each step is stored as soon as it succeeded, so a rate limit between making the
        topic and posting its card resumes where it stopped instead of making another."""
        thread = await self.store.get_ref(self.name, f"thread:{sid}")
        status = await self.store.get_ref(self.name, f"status:{sid}")
        if thread and status:
            return thread
        session = await self.store.session(sid)
        pending = len(await self.hub.pending_approvals(sid))
        card = render_status_card(session, now=self.hub.clock(), pending=pending)
        if not thread:
            title = topic_title(session)
            thread, status = await self.surface.open_thread(session, title, card)
            await self.store.set_ref(self.name, f"thread:{sid}", thread)
            self._title[sid] = title
        if not status:
            await self._take_budget()
            status = await self.surface.post(thread, card, notify=False)
        await self.store.set_ref(self.name, f"status:{sid}", status)
        await self.store.set_ref(self.name, f"msg:{sid}/{status}", status)
        self._status_text[sid] = _static(card.text)
        self._status_at[sid] = time.monotonic()
        return thread

    async def post_long(self, sid: str, card: Card, *, notify: bool = True) -> None:
        """A card whose text may exceed the platform's limit: the rest follows in pieces."""
        thread = await self.thread(sid)
        limit = self.surface.limits.text - 100
        pieces = split_text(card.text, limit)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            if i:
                await self._take_budget()
            ref = await self.surface.post(
                thread, Card(piece, card.buttons if last else ()), notify=notify and i == 0
            )
            await self.store.set_ref(self.name, f"msg:{sid}/{ref}", ref)

    async def _flush_status(self) -> bool:
        did = False
        now = time.monotonic()
        for sid in sorted(self.dirty):
            if now - self._status_at.get(sid, 0.0) < self.status_interval:
                continue
            try:
                session = await self.store.session(sid)
            except NotFound:
                self.dirty.discard(sid)
                continue
            ref = await self.store.get_ref(self.name, f"status:{sid}")
            if not ref:
                self.dirty.discard(sid)  # no thread yet: it is made with a fresh card
                continue
            pending = len(await self.hub.pending_approvals(sid))
            card = render_status_card(session, now=self.hub.clock(), pending=pending)
            title = topic_title(session)
            changed_text = self._status_text.get(sid) != _static(card.text)
            changed_title = self._title.get(sid) != title
            if not changed_text and not changed_title:
                self.dirty.discard(sid)
                continue
            if not self.pacer.try_take(self.reserve):
                return did
            if changed_text:
                await self.surface.edit(ref, card)
                self._status_text[sid] = _static(card.text)
            if changed_title:
                thread = await self.store.get_ref(self.name, f"thread:{sid}")
                if thread:
                    await self.surface.set_thread(thread, title=title, open=None)
                self._title[sid] = title
            self._status_at[sid] = time.monotonic()
            self.dirty.discard(sid)
            did = True
            if self._approval_waiting():
                break  # the other cards wait for the next round; a new approval does not
        return did


def _approvals_first(items: list[OutboxItem]) -> list[OutboxItem]:
    """The outbox in order, except that approval cards go first — each one unless an
    earlier item of its own session must be seen before it (its thread's opening and its
    status do not: the card opens the thread itself)."""
    first: list[OutboxItem] = []
    rest: list[OutboxItem] = []
    held: set[str | None] = set()  # sessions whose order must be kept from here on
    for item in items:
        if item.kind == "approval" and item.session_id not in held:
            first.append(item)
            continue
        rest.append(item)
        if item.kind not in ("session_opened", "status"):
            held.add(item.session_id)
    return first + rest


def _static(text: str) -> str:
    """A status card without its clock, so a ticking 'elapsed' alone is not an edit."""
    return re.sub(r"elapsed [^·\n]*(· )?", "", text)


def _summary(payload: dict[str, Any]) -> TurnSummary:
    return TurnSummary(
        final_text=payload.get("final_text"),
        is_error=bool(payload.get("is_error")),
        error=payload.get("error"),
        cost_usd=payload.get("cost_usd"),
        duration_ms=payload.get("duration_ms"),
        num_turns=payload.get("num_turns"),
        changes=payload.get("changes"),
        verification=payload.get("verification"),
        resume_command=payload.get("resume_command"),
    )
