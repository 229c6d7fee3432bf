"""The JSON-RPC 2.0 half that the Codex and ACP codecs share (sans-IO).

One object per line, in both directions. A line that does not start with `{` is stray output
(kept as a `Notice`, as for Claude); one that starts with `{` and does not parse, or lacks
what its kind requires, is a `ProtocolError` with the line attached. Each message is one of
three kinds, routed to the subclass: a request from the agent (it has `method` and `id`; it
must be answered), a notification (`method`, no `id`), or the answer to one of our requests
(`id` with `result` or `error`; routed with the method we called). Our ids are integers
counted from 0; the agent's ids are echoed back exactly as received, int or string.
"""

from __future__ import annotations

import json
from itertools import count
from typing import Any

from bridge.errors import ProtocolError
from bridge.events import JSON, AgentEvent, Notice
from bridge.framing import LineFramer, json_line

METHOD_NOT_FOUND = -32601
WireId = int | str


class JsonRpcEndpoint:
    """Framing, routing and our request ids. Subclasses implement the three `_on_*`
    handlers; they raise KeyError/TypeError/ValueError on a malformed message."""

    def __init__(self, max_line: int, *, jsonrpc_member: bool) -> None:
        self._framer = LineFramer(max_line)
        self._jsonrpc_member = jsonrpc_member  # send `"jsonrpc": "2.0"` (ACP) or not (Codex)
        self._out: list[bytes] = []
        self._ids = count()
        self._calls: dict[int, str] = {}  # our requests still unanswered → method
        self._later: list[AgentEvent] = []  # owed by send(); emitted by the next receive()

    # -- outgoing -------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        return data

    def _request(self, method: str, params: JSON) -> int:
        wire_id = next(self._ids)
        self._calls[wire_id] = method
        self._write({"method": method, "id": wire_id, "params": params})
        return wire_id

    def _notify(self, method: str, params: JSON | None = None) -> None:
        self._write({"method": method} if params is None else {"method": method, "params": params})

    def _reply(self, wire_id: WireId, result: Any) -> None:
        self._write({"id": wire_id, "result": result})

    def _refuse(self, wire_id: WireId, message: str, code: int = METHOD_NOT_FOUND) -> None:
        self._write({"id": wire_id, "error": {"code": code, "message": message}})

    def _write(self, message: JSON) -> None:
        if self._jsonrpc_member:
            message = {"jsonrpc": "2.0", **message}
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
        message = json_line(line, is_request=_asks_us)
        if message is None:
            return []
        if isinstance(message, str):
            return [Notice(text=message)]
        stripped = line.strip()
        wire = message.get("id")
        if "method" in message and isinstance(wire, int | str) and (
                str(wire) in self.pending_requests()):
            # never an overwrite: the answer to the first request would go to the second
            raise ProtocolError(
                f"request id {wire!r} reused while that request is still pending", stripped)
        try:
            return self._route(message)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            what = message.get("method") or "response"
            raise ProtocolError(f"malformed {what} message: {e!r}", stripped) from e

    def _route(self, m: JSON) -> list[AgentEvent]:
        method = m.get("method")
        if method is not None:
            if not isinstance(method, str):
                raise TypeError("method is not a string")
            params = m.get("params")
            params = {} if params is None else obj(params, "params")
            if "id" in m:
                return self._on_request(wire_id(m["id"]), method, params)
            return self._on_notification(method, params, m)
        if "id" in m and ("result" in m or "error" in m):
            answered = m["id"]
            called = self._calls.pop(answered, None) if isinstance(answered, int) else None
            if called is None:
                return [Notice(text=f"an answer to no request of ours: {json.dumps(m)[:500]}")]
            error = error_text(m["error"]) if "error" in m else None
            return self._on_response(called, answered, m.get("result"), error)
        raise TypeError("neither a request, a notification nor a response")

    def pending_requests(self) -> list[str]:
        """Ids (as strings) of the agent's requests that still wait for an answer."""
        raise NotImplementedError

    def _on_request(self, wire_id: WireId, method: str, params: JSON) -> list[AgentEvent]:
        raise NotImplementedError

    def _on_notification(self, method: str, params: JSON, m: JSON) -> list[AgentEvent]:
        raise NotImplementedError

    def _on_response(
        self, method: str, wire_id: int, result: Any, error: str | None
    ) -> list[AgentEvent]:
        raise NotImplementedError


def error_text(error: Any) -> str:
    """A JSON-RPC error (or an agent's error object) as one line: its message and data."""
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        data = error.get("data")
        detail = f" ({json.dumps(data)[:300]})" if data not in (None, {}, "") else ""
        return str(error["message"]) + detail
    return "" if error is None else json.dumps(error)[:500]


def wire_id(value: Any) -> WireId:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("a request id must be a number or a string")
    return value


def obj(value: Any, name: str) -> JSON:
    if not isinstance(value, dict):
        raise TypeError(f"{name} is not an object")
    return value


def string(m: JSON, key: str) -> str:
    value = m[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is not a string")
    return value


def declined_note(declined: list[str]) -> str:
    """What the model is told with the next prompt about refusals whose reason could not
    travel with the refusal itself."""
    lines = "\n".join(f"- {d}" for d in declined)
    return f"(agent-bridge) Earlier the user refused, with these reasons:\n{lines}"


def _asks_us(message: dict[str, Any]) -> bool:
    """A request the bridge must answer (a person may decide it): kept exactly or refused."""
    return "method" in message and "id" in message
