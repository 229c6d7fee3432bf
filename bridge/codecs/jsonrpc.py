"""The JSON-RPC 2.0 half that the Codex and ACP codecs share (sans-IO).

One object per line, in both directions, framed by `JsonLinesEndpoint` (stray output is a
`Notice`, a corrupt line a `ProtocolError`, as for Claude); a message that lacks what its
kind requires is a `ProtocolError` with the line attached. Each message is one of
three kinds, routed to the subclass: a request from the agent (it has `method` and `id`; it
must be answered), a notification (`method`, no `id`), or the answer to one of our requests
(`id` with `result` or `error`; routed with the method we called). Our ids are integers
counted from 0; the agent's ids are echoed back exactly as received, int or string.
"""

from __future__ import annotations

import json
from itertools import count
from typing import Any

from bridge.codecs.endpoint import JsonLinesEndpoint
from bridge.errors import ProtocolError
from bridge.events import JSON, AgentEvent, Notice

METHOD_NOT_FOUND = -32601
WireId = int | str


class JsonRpcEndpoint(JsonLinesEndpoint):
    """Routing and our request ids over the shared JSON-lines framing. Subclasses implement
    the three `_on_*` handlers; they raise KeyError/TypeError/ValueError on a malformed
    message."""

    def __init__(self, max_line: int, *, jsonrpc_member: bool) -> None:
        super().__init__(max_line)
        self._jsonrpc_member = jsonrpc_member  # send `"jsonrpc": "2.0"` (ACP) or not (Codex)
        self._ids = count()
        self._calls: dict[int, str] = {}  # our requests still unanswered → method

    # -- outgoing -------------------------------------------------------------------

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
        super()._write(message)

    # -- incoming -------------------------------------------------------------------

    def _asks_us(self, message: dict[str, Any]) -> bool:
        """A request the bridge must answer (a person may decide it): kept exactly or
        refused."""
        return "method" in message and "id" in message

    def _message(self, message: JSON, line: bytes) -> list[AgentEvent]:
        wire = message.get("id")
        if "method" in message and isinstance(wire, int | str) and (
                str(wire) in self.pending_requests()):
            # never an overwrite: the answer to the first request would go to the second
            raise ProtocolError(
                f"request id {wire!r} reused while that request is still pending", line)
        try:
            return self._route(message)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            what = message.get("method") or "response"
            raise ProtocolError(f"malformed {what} message: {e!r}", line) from e

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

