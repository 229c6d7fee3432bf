"""Redaction off the event loop for large bodies.

Redacting is linear, but a multi-megabyte diff still takes a noticeable fraction of a
second: done on the loop it would hold up every session's cards and the control socket.
Above `OFF_LOOP_CHARS` the work runs in a thread (the regex engine keeps the GIL for one
search at a time, so the loop gets its turn between searches).

`Redacting` wraps a chat surface so that every text delivery sends through it is redacted
in one place.
"""

from __future__ import annotations

import asyncio

from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render import Card
from bridge.surface import ChatSurface

OFF_LOOP_CHARS = 64 * 1024


async def redact_text(redactor: Redactor, text: str) -> str:
    if len(text) < OFF_LOOP_CHARS:
        return redactor.redact(text).text
    return (await asyncio.to_thread(redactor.redact, text)).text


async def redact_bytes(redactor: Redactor, data: bytes) -> bytes:
    if len(data) < OFF_LOOP_CHARS:
        return redactor.redact_bytes(data)
    return await asyncio.to_thread(redactor.redact_bytes, data)


class Redacting:
    """A surface seen through the redactor: every text that leaves the machine (cards,
    thread titles, captions) is redacted here, in one place. File contents are redacted by
    the caller before they are packed (a zip must not be rewritten afterwards)."""

    def __init__(self, surface: ChatSurface, redactor: Redactor) -> None:
        self.inner = surface
        self.redactor = redactor
        self.name = surface.name
        self.limits = surface.limits

    async def _card(self, card: Card) -> Card:
        return Card(await self.text(card.text), card.buttons)

    async def text(self, text: str) -> str:
        """`text` redacted (off the loop when large): callers that cut a text into pieces
        redact it first, since half a token is no longer recognised."""
        return await redact_text(self.redactor, text)

    async def open_thread(
        self, session: SessionView, title: str, card: Card
    ) -> tuple[str, str | None]:
        return await self.inner.open_thread(session, await self.text(title),
                                            await self._card(card))

    async def set_thread(self, thread: str, *, title: str | None, open: bool | None) -> None:
        await self.inner.set_thread(
            thread, title=None if title is None else await self.text(title), open=open)

    async def post(self, thread: str, card: Card, *, notify: bool,
                   mention: str | None = None) -> str:
        return await self.inner.post(thread, await self._card(card), notify=notify,
                                     mention=mention)

    async def edit(self, message: str, card: Card) -> None:
        await self.inner.edit(message, await self._card(card))

    async def send_file(self, thread: str, filename: str, data: bytes, caption: str) -> None:
        await self.inner.send_file(thread, await self.text(filename), data,
                                   await self.text(caption))

    def thread_link(self, thread: str) -> str | None:
        return self.inner.thread_link(thread)
