"""Newline framing of a byte stream, independent of how the bytes were chunked."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
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


MAX_DEPTH = 128  # nesting no agent message comes near; deeper is an attack on the parser

# a `\uD800`-`\uDFFF` escape: the only way a JSON text read as UTF-8 can hold a surrogate
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# in a decoded str, a surrogate code point left over is a lone one (pairs are combined)
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_line(line: bytes, *,
              is_request: Callable[[dict[str, Any]], bool] = lambda _: True,
              ) -> dict[str, Any] | str | None:
    """One line of an agent's JSON-lines output: the object it holds; the text itself when
    it is not JSON at all (a stray log line, kept as a notice); None when blank. A line that
    looks like JSON but is corrupt, or JSON that is not an object, is a protocol error.

    So is what would break later, far from the line that caused it: bytes that are not
    UTF-8, and nesting deeper than `MAX_DEPTH` (it exhausts the recursion of whatever walks
    it next). A lone surrogate (`"\\ud800"`: it cannot be stored or sent to a chat) is a
    protocol error in a message for which `is_request` holds (something a person is asked
    to decide: what they would see is not what the agent asked); elsewhere (text cut in the
    middle of an emoji) it becomes U+FFFD and the message is kept."""
    stripped = line.strip()
    if not stripped:
        return None
    if not stripped.startswith(b"{"):
        return stripped[:2000].decode("utf-8", "replace")
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(f"a JSON line that is not UTF-8: {e.reason} at byte {e.start}",
                            stripped) from e
    try:
        message = json.loads(text)
    except RecursionError as e:
        raise ProtocolError(f"JSON nested more than {MAX_DEPTH} levels deep", stripped) from e
    except ValueError as e:
        raise ProtocolError(f"corrupt JSON line: {e}", stripped) from e
    if not isinstance(message, dict):
        raise ProtocolError("a JSON message that is not an object", stripped)
    deep = stripped.count(b"{") + stripped.count(b"[") > MAX_DEPTH
    surrogate = _SURROGATE_ESCAPE.search(stripped) is not None
    if deep or surrogate:
        problem = _unsafe(message)
        if problem == LONE_SURROGATE and not is_request(message):
            return _without_surrogates(message)  # type: ignore[no-any-return]
        if problem:
            raise ProtocolError(problem, stripped)
    return message


LONE_SURROGATE = "a lone UTF-16 surrogate in a JSON string (not valid Unicode)"


def _unsafe(message: Any) -> str | None:
    """Why `message` cannot be kept as it is (too deep, a lone surrogate), or None; depth
    first, since it makes the message unusable whatever it is. Walks without recursion, so
    that depth alone cannot break it."""
    stack: list[tuple[Any, int]] = [(message, 1)]
    surrogate = False
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            surrogate = surrogate or _has_surrogate(value)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            return f"JSON nested more than {MAX_DEPTH} levels deep"
        if isinstance(value, dict):
            stack.extend((k, depth) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        else:
            stack.extend((v, depth + 1) for v in value)
    return LONE_SURROGATE if surrogate else None


def _without_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate replaced by U+FFFD (depth already checked)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
