"""A chat surface as delivery sees it: every text redacted, every call paced.

`Outbound` wraps a surface so that what leaves the machine passes two checks in one place:
each text (cards, thread titles, captions, file names) is redacted, and each call waits for
its slot in the rate budget it spends (`ChatSurface.budget_of`), at its task's priority
(`daemon/pacing.py`). A 429 stops that budget for as long as the platform asked. File
contents are redacted by the caller before they are packed (a zip must not be rewritten
afterwards).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render import Card
from bridge.surface import ChatSurface, SurfaceRetry
from daemon.pacing import Budgets, Pacer, Priority
from daemon.redaction import redact_text

T = TypeVar("T")


class Outbound:
    def __init__(self, surface: ChatSurface, redactor: Redactor, budgets: Budgets) -> None:
        self.inner = surface
        self.redactor = redactor
        self.budgets = budgets
        self.name = surface.name
        self.limits = surface.limits

    def pacer(self, ref: str, *, edit: bool = False) -> Pacer:
        """The budget a call about `ref` spends (see `ChatSurface.budget_of`)."""
        name, rates = self.inner.budget_of(ref, edit=edit)
        return self.budgets.pacer(name, rates)

    async def answer_slot(self, ref: str) -> None:
        """A slot for the answer to a person's action in the chat of `ref`: first in line."""
        await self.pacer(ref).take(Priority.ANSWER)

    async def _paced(self, ref: str, call: Callable[[], Awaitable[T]], *,
                     edit: bool = False) -> T:
        pacer = self.pacer(ref, edit=edit)
        await pacer.take()
        try:
            return await call()
        except SurfaceRetry as e:
            pacer.block(e.after)  # at once: whatever else waits for this budget waits too
            raise

    async def _card(self, card: Card) -> Card:
        return Card(await self.text(card.text), card.buttons)

    async def text(self, text: str) -> str:
        """`text` redacted (off the loop when large): callers that cut a text into pieces
        redact it first, since half a token is no longer recognised."""
        return await redact_text(self.redactor, text)

    async def open_thread(
        self, session: SessionView, title: str, card: Card, chat: str | None = None
    ) -> tuple[str, str | None]:
        """The session's thread in `chat` (None: the home chat), paced by that chat's
        budget."""
        title, card = await self.text(title), await self._card(card)
        where = "" if chat is None else self.inner.chat_ref(chat)
        return await self._paced(where, lambda: self.inner.open_thread(session, title, card,
                                                                       chat))

    async def set_thread(self, thread: str, *, title: str | None, open: bool | None) -> None:
        if not self.limits.thread_titles:
            return  # no titles, and nothing to close: no call, no slot spent
        shown = None if title is None else await self.text(title)
        await self._paced(thread, lambda: self.inner.set_thread(thread, title=shown, open=open),
                          edit=True)

    async def post(self, thread: str, card: Card, *, notify: bool,
                   mention: str | None = None) -> str:
        shown = await self._card(card)
        return await self._paced(thread, lambda: self.inner.post(thread, shown, notify=notify,
                                                                 mention=mention))

    async def post_paid(self, thread: str, pacer: Pacer, card: Card, *, notify: bool) -> str:
        """Post with the slot of `pacer` the caller has already taken."""
        shown = await self._card(card)
        try:
            return await self.inner.post(thread, shown, notify=notify)
        except SurfaceRetry as e:
            pacer.block(e.after)
            raise

    async def edit(self, message: str, card: Card) -> None:
        shown = await self._card(card)
        await self._paced(message, lambda: self.inner.edit(message, shown), edit=True)

    async def send_file(self, thread: str, filename: str, data: bytes, caption: str) -> None:
        name, shown = await self.text(filename), await self.text(caption)
        await self._paced(thread, lambda: self.inner.send_file(thread, name, data, shown))

    def thread_link(self, thread: str) -> str | None:
        return self.inner.thread_link(thread)
