"""A stdio MCP server whose one tool, `fill_form`, asks the user a form: it sends the MCP
`elicitation/create` request to its client (the real Claude Code or Codex) and returns what
came back as the tool's text, `{"action": …, "content": …}`.

Run as `python -m tests.fakes.mcp_forms SCHEMA_JSON` (or `python path/mcp_forms.py`); the
form's `requestedSchema` is SCHEMA_JSON, its message "Deploy settings". Newline-delimited
JSON-RPC 2.0 over stdin/stdout, as MCP's stdio transport is.
"""

from __future__ import annotations

import json
import sys
from typing import Any

MESSAGE = "Deploy settings"


def _send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", **message}) + "\n")
    sys.stdout.flush()


def _read() -> dict[str, Any] | None:
    line = sys.stdin.readline()
    if not line:
        return None
    message: dict[str, Any] = json.loads(line)
    return message


def _elicit(schema: Any) -> Any:
    _send({"id": "elicit-1", "method": "elicitation/create",
           "params": {"message": MESSAGE, "requestedSchema": schema}})
    while True:
        message = _read()
        if message is None:
            raise SystemExit(0)
        if message.get("id") == "elicit-1" and "method" not in message:
            return message.get("result", message.get("error"))
        if message.get("method") == "ping" and "id" in message:
            _send({"id": message["id"], "result": {}})


def main() -> None:
    schema = json.loads(sys.argv[1])
    while True:
        message = _read()
        if message is None:
            return
        method, wire_id = message.get("method"), message.get("id")
        if wire_id is None:
            continue  # a notification
        if method == "initialize":
            version = message["params"].get("protocolVersion", "2025-06-18")
            _send({"id": wire_id, "result": {
                "protocolVersion": version, "capabilities": {"tools": {}},
                "serverInfo": {"name": "forms", "version": "1.0"}}})
        elif method == "tools/list":
            _send({"id": wire_id, "result": {"tools": [{
                "name": "fill_form", "description": "Ask the user for the deploy settings.",
                "inputSchema": {"type": "object", "properties": {}}}]}})
        elif method == "tools/call":
            answer = _elicit(schema)
            _send({"id": wire_id, "result": {
                "content": [{"type": "text", "text": json.dumps(answer, sort_keys=True)}],
                "isError": False}})
        elif method == "ping":
            _send({"id": wire_id, "result": {}})
        else:
            _send({"id": wire_id, "error": {"code": -32601, "message": f"no {method}"}})


if __name__ == "__main__":
    main()
