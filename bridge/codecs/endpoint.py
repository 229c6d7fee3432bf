"""The JSON-lines half every codec shares (sans-IO): one JSON object per line each way.

Incoming bytes are re-framed into lines (`LineFramer`) and each line is read by
`json_line`: a blank line is nothing, a line that does not start with `{` is stray output
kept as a `Notice`, one that starts with `{` and does not parse is a `ProtocolError` with the
line attached. Each object is handed to the subclass's `_message`; `_asks_us` tells
`json_line` which objects are requests the bridge must answer (those are kept exactly or
refused, never repaired). Output ending in the middle of a line is a `ProtocolError`.
Outgoing objects are queued by `_write` and taken by `data_to_send()`.
"""

from __future__ import annotations

import json
from typing import Any

from bridge.errors import ProtocolError
from bridge.events import JSON, AgentEvent, Notice
from bridge.framing import LineFramer, json_line


class JsonLinesEndpoint:
    """Framing both ways. Subclasses implement `_asks_us` and `_message`; events a
    subclass owes outside a `receive` (appended to `_later`) come out with the next one."""

    def __init__(self, max_line: int) -> None:
        self._framer = LineFramer(max_line)
        self._out: list[bytes] = []
        self._later: list[AgentEvent] = []  # owed by send(); emitted by the next receive()

    # -- outgoing -------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        return data

    def _write(self, message: JSON) -> None:
        self._out.append(json.dumps(message, ensure_ascii=False).encode() + b"\n")

    # -- incoming -------------------------------------------------------------------

    def receive(self, data: bytes) -> list[AgentEvent]:
        events, self._later = self._later, []
        for line in self._framer.feed(data):
            events.extend(self._line(line))
        return events

    def receive_eof(self) -> list[AgentEvent]:
        rest = self._framer.finish()
        if rest is not None:
            raise ProtocolError("output ended in the middle of a line", rest)
        events, self._later = self._later, []
        return events

    def _line(self, line: bytes) -> list[AgentEvent]:
        message = json_line(line, is_request=self._asks_us)
        if message is None:
            return []
        if isinstance(message, str):
            return [Notice(text=message)]
        return self._message(message, line.strip())

    def _asks_us(self, message: dict[str, Any]) -> bool:
        """A request the bridge must answer (a person may decide it)."""
        raise NotImplementedError

    def _message(self, message: JSON, line: bytes) -> list[AgentEvent]:
        """The events one parsed object means; `line` (stripped) goes with a
        `ProtocolError`."""
        raise NotImplementedError
