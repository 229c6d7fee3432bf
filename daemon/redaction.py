"""Redaction off the event loop for large bodies.

Redacting is linear, but a multi-megabyte diff still takes a noticeable fraction of a
second: done on the loop it would hold up every session's cards and the control socket.
Above `OFF_LOOP_CHARS` the work runs in a thread (the regex engine keeps the GIL for one
search at a time, so the loop gets its turn between searches).
"""

from __future__ import annotations

import asyncio

from bridge.redact import Redactor

OFF_LOOP_CHARS = 64 * 1024


async def redact_text(redactor: Redactor, text: str) -> str:
    if len(text) < OFF_LOOP_CHARS:
        return redactor.redact(text).text
    return (await asyncio.to_thread(redactor.redact, text)).text


async def redact_bytes(redactor: Redactor, data: bytes) -> bytes:
    if len(data) < OFF_LOOP_CHARS:
        return redactor.redact_bytes(data)
    return await asyncio.to_thread(redactor.redact_bytes, data)
