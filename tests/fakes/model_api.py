"""A scripted mock of the two model APIs the real agent CLIs call, for offline conformance tests.

Theory of operation
-------------------
`MockModelAPI` is an aiohttp server on 127.0.0.1 with a random port. It speaks just enough of
two wire APIs for a whole agent turn (shared/reference/real-agents.md):

* Anthropic Messages, ``POST /v1/messages`` (Claude Code, ``ANTHROPIC_BASE_URL`` = `base_url`):
  Server-Sent Events ``message_start``, ``content_block_start``, ``content_block_delta``
  (``text_delta`` or ``input_json_delta``), ``content_block_stop``, ``message_delta`` (with
  ``stop_reason`` ``tool_use`` or ``end_turn`` and ``usage``), ``message_stop``; a plain JSON
  message when the request does not ask for a stream.
* OpenAI Responses, ``POST /v1/responses`` (Codex, ``base_url = "<base_url>/v1"`` in its
  ``config.toml``): SSE ``response.created``, one ``response.output_item.done`` per output item
  (an assistant ``message`` or a ``function_call`` of ``exec_command``), ``response.completed``
  with ``usage``.

What the "model" answers is decided per request by a `Script`: a callable that gets the
parsed `ModelRequest` and returns one reply or several (`Text`, `ToolUse`, `ExecCommand`).
`tool_then_finish()` builds the usual one: call a tool for a fresh prompt, and once the
request carries the tool's result, finish with text that quotes it. A request that does not
come from the agent's main loop (no tools offered: a title, a summary, a probe) gets a short
text answer without consulting the script.

Every request, on any path, is recorded in `requests` (oldest first), so a test can assert
what the model was shown, e.g. the deny reason inside a ``tool_result``. Paths the CLIs probe
besides the two above get a harmless answer: ``count_tokens`` a token count, ``GET …/models``
an empty list, anything else 404.

`ThreadedModelAPI` runs the server on its own event loop in a thread, so synchronous tests
that drive a daemon subprocess can use it (the pattern of tests/telegram_harness.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSON = dict[str, Any]

ANTHROPIC = "anthropic"
OPENAI = "openai"


# ---------------------------------------------------------------------------------------------
# What the model says


@dataclass(frozen=True, slots=True, kw_only=True)
class Text:
    """Assistant text (Anthropic: a text block; OpenAI: an assistant message item)."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolUse:
    """An Anthropic ``tool_use`` block: Claude Code's ``Bash`` / ``Write`` / … with its input."""

    name: str
    input: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecCommand:
    """An OpenAI ``function_call`` of Codex's ``exec_command`` tool.

    `escalated` marks it ``"sandbox_permissions": "require_escalated"`` with a
    `justification`: what makes Codex ask under ``approvalPolicy: "on-request"``.
    """

    cmd: str
    escalated: bool = False
    justification: str = "the test needs it"


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCall:
    """An OpenAI ``function_call`` of any Codex tool (``request_user_input``, an MCP tool's
    ``mcp__server__tool``, …) with its arguments."""

    name: str
    arguments: JSON
    namespace: str | None = None  # a namespaced tool's (MCP: `mcp__<server>`)


Reply = Text | ToolUse | ExecCommand | FunctionCall


def bash(command: str, description: str = "run a command for the test") -> ToolUse:
    return ToolUse(name="Bash", input={"command": command, "description": description})


def write(file_path: str, content: str) -> ToolUse:
    return ToolUse(name="Write", input={"file_path": file_path, "content": content})


# ---------------------------------------------------------------------------------------------
# What the model was asked


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRequest:
    api: str  # ANTHROPIC | OPENAI | "other"
    method: str
    path: str
    body: Any  # the parsed JSON body (None when there was none or it was not JSON)
    at: float

    @property
    def offers_tools(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("tools"))

    @property
    def streaming(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))

    def latest_turn(self) -> list[Any]:
        """The conversation since the last prompt a person typed: the items that decide what
        the model does next (``role: "system"`` entries between them are skipped)."""
        if self.api == ANTHROPIC:
            messages = [m for m in self.body.get("messages", []) if m.get("role") != "system"]
            start = 0
            for i, message in enumerate(messages):
                if message.get("role") == "user" and _anthropic_typed_text(message):
                    start = i
            return messages[start:]
        if self.api == OPENAI:
            items = [i for i in self.body.get("input", []) if isinstance(i, dict)]
            start = 0
            for i, item in enumerate(items):
                if _openai_typed_text(item):
                    start = i
            return items[start:]
        return []

    def tool_results(self) -> list[str]:
        """The text of every tool result in the latest turn (``tool_result`` blocks, or
        ``function_call_output`` items), oldest first."""
        results = []
        for entry in self.latest_turn():
            if self.api == ANTHROPIC:
                content = entry.get("content")
                if entry.get("role") == "user" and isinstance(content, list):
                    results += [_text_of(b.get("content")) for b in content
                                if isinstance(b, dict) and b.get("type") == "tool_result"]
            elif entry.get("type") == "function_call_output":
                results.append(_text_of(entry.get("output")))
        return results

    def all_text(self) -> str:
        """Everything in the body as one string, for "did the model see X" assertions."""
        return json.dumps(self.body, ensure_ascii=False)

    def prompts(self) -> list[str]:
        """The texts of the user messages in the whole conversation, oldest first."""
        texts = []
        if self.api == ANTHROPIC:
            for message in self.body.get("messages", []):
                if message.get("role") == "user":
                    texts += _anthropic_typed_text(message)
        elif self.api == OPENAI:
            for item in self.body.get("input", []):
                if isinstance(item, dict):
                    texts += _openai_typed_text(item)
        return texts


def _anthropic_typed_text(message: JSON) -> list[str]:
    """The text blocks a person typed in an Anthropic user message: a string content, or
    text blocks next to no tool result (Claude Code adds `<system-reminder>` text blocks
    to tool-result messages too, so those do not count as a new prompt)."""
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return []
    return [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"
            and not _is_injected_context(b.get("text", ""))]


def _openai_typed_text(item: JSON) -> list[str]:
    """The texts of an OpenAI input item that is a user's prompt. Codex sends its
    `<environment_context>` (and similar tagged context) as user messages too: not prompts."""
    if item.get("type", "message") != "message" or item.get("role") != "user":
        return []
    content = item.get("content")
    parts = [content] if isinstance(content, str) else [
        b.get("text", "") for b in content or [] if isinstance(b, dict)]
    return [t for t in parts if isinstance(t, str) and not _is_injected_context(t)]


def _is_injected_context(text: str) -> bool:
    stripped = text.lstrip()
    return stripped.startswith("<") and stripped[1:2].isalpha() and ">" in stripped[:80]


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(b.get("text", b.get("content"))) if isinstance(b, dict)
                         else str(b) for b in content)
    return json.dumps(content)


Script = Callable[[ModelRequest], Reply | Sequence[Reply]]


def tool_then_finish(call: Reply | Callable[[ModelRequest], Reply],
                     final: str = "All done.") -> Script:
    """The model calls `call` for a fresh prompt; once the tool's result is in the request it
    answers `final`, followed by the results it saw (so they show up in the turn summary)."""

    def script(request: ModelRequest) -> Reply:
        results = request.tool_results()
        if results:
            return Text(text=f"{final} The tool said: {' | '.join(results)[:500]}")
        return call(request) if callable(call) else call

    return script


def text_only(text: str = "Hello from the mock model.") -> Script:
    return lambda _request: Text(text=text)


# ---------------------------------------------------------------------------------------------
# The server


@dataclass
class MockModelAPI:
    script: Script = field(default_factory=text_only)
    model: str = "mock-model"
    requests: list[ModelRequest] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # extra headers on every Anthropic Messages answer (e.g. anthropic-ratelimit-unified-*)
    anthropic_headers: dict[str, str] = field(default_factory=dict)
    openai_headers: dict[str, str] = field(default_factory=dict)  # e.g. x-codex-primary-*

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)
        self.port = 0

    @property
    def base_url(self) -> str:
        """Without a trailing ``/v1``: Anthropic clients add it; Codex's provider wants it in."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- dispatch ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = request.path
        api = "other"
        if request.method == "POST" and path.rstrip("/") == "/v1/messages":
            api = ANTHROPIC
        elif request.method == "POST" and path.rstrip("/") == "/v1/responses":
            api = OPENAI
        recorded = ModelRequest(api=api, method=request.method, path=path, body=body,
                                at=time.time())
        self.requests.append(recorded)
        if api == "other":
            return self._other(request)
        if not isinstance(body, dict):
            return web.json_response({"error": {"message": "body is not a JSON object"}},
                                     status=400)
        try:
            replies = self._replies(recorded)
        except Exception as e:  # a broken script is reported to the test, not swallowed
            self.errors.append(f"{type(e).__name__}: {e}")
            return web.json_response({"error": {"message": f"mock script failed: {e}"}},
                                     status=500)
        if api == ANTHROPIC:
            return await self._anthropic(request, recorded, replies)
        return await self._openai(request, replies)

    def _replies(self, request: ModelRequest) -> list[Reply]:
        if not request.offers_tools:
            # not the agent's main loop (title, summary, classifier…): keep it short
            return [Text(text="ok")]
        replies = self.script(request)
        return ([replies] if isinstance(replies, Text | ToolUse | ExecCommand | FunctionCall)
                else list(replies))

    def _other(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        if path.endswith("/count_tokens"):
            return web.json_response({"input_tokens": 10})
        if request.method == "GET" and path.endswith("/models"):
            return web.json_response({"data": [], "models": [], "object": "list"})
        return web.json_response({"error": {"type": "not_found_error", "message": "mock"}},
                                 status=404)

    # -- Anthropic Messages -----------------------------------------------------------------

    async def _anthropic(self, request: web.Request, recorded: ModelRequest,
                         replies: list[Reply]) -> web.StreamResponse:
        message_id = f"msg_mock{next(self._ids):04d}"
        blocks: list[JSON] = []
        for reply in replies:
            match reply:
                case Text(text=text):
                    blocks.append({"type": "text", "text": text})
                case ToolUse(name=name, input=tool_input):
                    blocks.append({"type": "tool_use", "id": f"toolu_mock{next(self._ids):04d}",
                                   "name": name, "input": tool_input})
                case ExecCommand():
                    raise TypeError("ExecCommand is a Codex tool; use ToolUse for Claude Code")
        stop_reason = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        usage = {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0}
        model = recorded.body.get("model") or self.model
        if not recorded.streaming:
            return web.json_response(headers=self.anthropic_headers, data={
                "id": message_id, "type": "message", "role": "assistant", "model": model,
                "content": blocks, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": usage,
            })
        events: list[tuple[str, JSON]] = [("message_start", {
            "type": "message_start",
            "message": {"id": message_id, "type": "message", "role": "assistant",
                        "model": model, "content": [], "stop_reason": None,
                        "stop_sequence": None, "usage": {**usage, "output_tokens": 1}},
        })]
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                start = {"type": "text", "text": ""}
                delta = {"type": "text_delta", "text": block["text"]}
            else:
                start = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            events += [
                ("content_block_start",
                 {"type": "content_block_start", "index": index, "content_block": start}),
                ("content_block_delta",
                 {"type": "content_block_delta", "index": index, "delta": delta}),
                ("content_block_stop", {"type": "content_block_stop", "index": index}),
            ]
        events += [
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                               "usage": {"output_tokens": 5}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        return await _sse(request, events, self.anthropic_headers)

    # -- OpenAI Responses -------------------------------------------------------------------

    async def _openai(self, request: web.Request, replies: list[Reply]) -> web.StreamResponse:
        response_id = f"resp_mock{next(self._ids):04d}"
        items: list[JSON] = []
        for reply in replies:
            match reply:
                case Text(text=text):
                    items.append({"type": "message", "id": f"msg_mock{next(self._ids):04d}",
                                  "role": "assistant", "status": "completed",
                                  "content": [{"type": "output_text", "text": text,
                                               "annotations": []}]})
                case ExecCommand(cmd=cmd, escalated=escalated, justification=why):
                    arguments: JSON = {"cmd": cmd}
                    if escalated:
                        arguments |= {"sandbox_permissions": "require_escalated",
                                      "justification": why}
                    items.append({"type": "function_call", "id": f"fc_mock{next(self._ids):04d}",
                                  "call_id": f"call_mock{next(self._ids):04d}",
                                  "name": "exec_command", "arguments": json.dumps(arguments),
                                  "status": "completed"})
                case FunctionCall(name=name, arguments=arguments, namespace=namespace):
                    call: JSON = {"type": "function_call", "id": f"fc_mock{next(self._ids):04d}",
                                  "call_id": f"call_mock{next(self._ids):04d}",
                                  "name": name, "arguments": json.dumps(arguments),
                                  "status": "completed"}
                    if namespace is not None:
                        call["namespace"] = namespace
                    items.append(call)
                case ToolUse():
                    raise TypeError("ToolUse is a Claude Code tool; use ExecCommand for Codex")
        usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": 15}
        events: list[tuple[str, JSON]] = [("response.created", {
            "type": "response.created", "response": {"id": response_id, "status": "in_progress"},
        })]
        for index, item in enumerate(items):
            events.append(("response.output_item.done", {
                "type": "response.output_item.done", "output_index": index, "item": item,
            }))
        events.append(("response.completed", {
            "type": "response.completed",
            "response": {"id": response_id, "status": "completed", "usage": usage},
        }))
        return await _sse(request, events, self.openai_headers)


async def _sse(request: web.Request, events: list[tuple[str, JSON]],
               headers: dict[str, str] | None = None) -> web.StreamResponse:
    response = web.StreamResponse(
        status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                             **(headers or {})})
    await response.prepare(request)
    for name, data in events:
        await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
    await response.write_eof()
    return response


# ---------------------------------------------------------------------------------------------
# For synchronous tests


class ThreadedModelAPI:
    """`MockModelAPI` on its own event loop in a daemon thread."""

    def __init__(self, script: Script | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="mock-model-api")
        self.thread.start()
        self.api = MockModelAPI(script=script or text_only())
        asyncio.run_coroutine_threadsafe(self.api.start(), self.loop).result(30)

    @property
    def base_url(self) -> str:
        return self.api.base_url

    @property
    def script(self) -> Script:
        return self.api.script

    @script.setter
    def script(self, script: Script) -> None:
        self.api.script = script

    def requests(self, api: str | None = None, *, main_loop: bool = True) -> list[ModelRequest]:
        """The recorded requests (a snapshot), by default only the agent's main-loop calls."""
        return [r for r in list(self.api.requests)
                if (api is None or r.api == api) and (not main_loop or r.offers_tools)]

    def wait_for(self, predicate: Callable[[ModelRequest], bool], *, timeout: float = 30.0,
                 what: str = "a model request") -> ModelRequest:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for request in list(self.api.requests):
                if predicate(request):
                    return request
            time.sleep(0.02)
        seen = [(r.method, r.path) for r in self.api.requests]
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; requests: {seen}")

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.api.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
