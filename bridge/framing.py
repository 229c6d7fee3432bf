"""Newline framing of a byte stream, independent of how the bytes were chunked."""

from __future__ import annotations

import json
from typing import Any

from bridge.errors import ProtocolError

DEFAULT_MAX_LINE = 8 * 1024 * 1024


class LineFramer:
    """Splits chunks into complete lines (without the newline).

    A line longer than `max_line` raises `ProtocolError`: an agent that writes one is
    broken, and buffering it without bound would let it take the daemon's memory.
    """

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.max_line = max_line
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        if b"\n" not in data:
            self._buffer += data
            self._check()
            return []
        self._buffer += data
        *lines, rest = bytes(self._buffer).split(b"\n")
        self._buffer = bytearray(rest)
        for line in lines:
            if len(line) > self.max_line:
                message = f"line of {len(line)} bytes exceeds {self.max_line}"
                raise ProtocolError(message, line[:200])
        self._check()
        return lines

    def finish(self) -> bytes | None:
        """What is left at end of input: a truncated line, or None."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest if rest.strip() else None

    def _check(self) -> None:
        if len(self._buffer) > self.max_line:
            head = bytes(self._buffer[:200])
            size = len(self._buffer)
            self._buffer.clear()
            raise ProtocolError(f"line of more than {size} bytes exceeds {self.max_line}", head)


def json_line(line: bytes) -> dict[str, Any] | str | None:
    """One line of an agent's JSON-lines output: the object it holds; the text itself when
    it is not JSON at all (a stray log line, kept as a notice); None when blank. A line that
    looks like JSON but is corrupt, or JSON that is not an object, is a protocol error."""
    stripped = line.strip()
    if not stripped:
        return None
    if not stripped.startswith(b"{"):
        return stripped[:2000].decode("utf-8", "replace")
    try:
        message = json.loads(stripped)
    except ValueError as e:
        raise ProtocolError(f"corrupt JSON line: {e}", stripped) from e
    if not isinstance(message, dict):
        raise ProtocolError("a JSON message that is not an object", stripped)
    return message
