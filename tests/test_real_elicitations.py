"""Conformance: MCP elicitations from the REAL Claude Code and Codex, answered through the
daemon. A stdio MCP server of our own (tests/fakes/mcp_forms.py) asks a form when its tool
is called; the mock model API calls that tool; the agent forwards the form to the bridge
(Claude: the `elicitation` control request; Codex: `mcpServer/elicitation/request`). Enum
fields are buttons, text fields are answered by reply; a form a chat cannot fill (here a
boolean) is declined with a notice. The MCP server's tool returns what it received, and the
model sees it. A format the real binary rejects fails here; never a skip.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes import mcp_forms
from tests.fakes.model_api import (
    ANTHROPIC,
    OPENAI,
    FunctionCall,
    ThreadedModelAPI,
    ToolUse,
    tool_then_finish,
)
from tests.harness import Bridge, wait_until
from tests.real_binaries import CLAUDE, CODEX, START, events, use_real_claude, use_real_codex

pytestmark = pytest.mark.real_agents

FORM = {"type": "object", "required": ["region"], "properties": {
    "region": {"type": "string", "title": "Region",
               "oneOf": [{"const": "eu-west", "title": "Europe"},
                         {"const": "us-east", "title": "America"}]},
    "note": {"type": "string", "title": "Note", "description": "for the release log"}}}
UNFILLABLE = {"type": "object", "properties": {"force": {"type": "boolean", "title": "Force"}}}
TOOL = "mcp__forms__fill_form"


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI()
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


def server_argv(schema: Any) -> list[str]:
    return [sys.executable, mcp_forms.__file__, json.dumps(schema)]


def codex(make_bridge: Any, model: ThreadedModelAPI, schema: Any) -> Bridge:
    # Codex offers an MCP server's tools in a namespace `mcp__<server>`
    model.script = tool_then_finish(FunctionCall(name="fill_form", namespace="mcp__forms",
                                                 arguments={}))
    bridge = make_bridge()
    command, *args = server_argv(schema)
    use_real_codex(bridge, CODEX.require(), model.base_url, approval_policy="on-request",
                   config=f"\n[mcp_servers.forms]\ncommand = {json.dumps(command)}\n"
                          f"args = {json.dumps(args)}\n")
    bridge.start()
    return bridge


def claude(make_bridge: Any, model: ThreadedModelAPI, schema: Any) -> Bridge:
    model.script = tool_then_finish(ToolUse(name=TOOL, input={}))
    bridge = make_bridge()
    command, *args = server_argv(schema)
    config = {"mcpServers": {"forms": {"type": "stdio", "command": command, "args": args}}}
    use_real_claude(bridge, CLAUDE.require(), model.base_url,
                    args=["--mcp-config", json.dumps(config), "--strict-mcp-config"])
    bridge.start()
    return bridge


def wait_questions(bridge: Bridge, sid: str, count: int) -> list[dict[str, Any]]:
    def ready() -> Any:
        session = bridge.session(sid)
        for approval in session["pending_approvals"]:  # Claude asks to use the MCP tool
            if approval["tool"] == TOOL:
                bridge.cli("approve", approval["id"])
        questions = session["pending_questions"]
        return len(questions) == count and questions

    try:
        return wait_until(ready, timeout=START, what=f"{count} question(s) in {sid}")
    except AssertionError as e:
        session = bridge.session(sid)
        raise AssertionError(f"{e}\nsession: {session['state']} {session['error']}\n"
                             f"events: {session['events'][-6:]}\n"
                             f"daemon log: {bridge.log_text()[-3000:]}") from None


def tool_text(model: ThreadedModelAPI, api: str) -> Any:
    (output,) = model.requests(api)[-1].tool_results()
    start = output.index("{")
    return json.loads(output[start:output.rindex("}") + 1])


def answer_the_form(bridge: Bridge, model: ThreadedModelAPI, agent: str, api: str) -> None:
    sid = bridge.json("new", "demo", "fill the form", "--agent", agent)["id"]
    # one question per field, in the order the agent sent them (Codex sorts them by name)
    by_header = {q["header"]: q for q in wait_questions(bridge, sid, 2)}
    region, note = by_header["forms: Region"], by_header["forms: Note"]
    assert "Deploy settings" in region["text"]
    assert [o["label"] for o in region["options"]] == ["Europe", "America"]
    assert note["options"] == [] and "for the release log" in note["text"]
    bridge.cli("answer", region["id"], "Europe")
    bridge.cli("answer", note["id"], "--text", "ship it")
    wait_until(lambda: (s := bridge.session(sid))["turns"] == 1 and s["state"] == "idle",
               timeout=START, what="the turn to finish")
    assert tool_text(model, api) == {"action": "accept",
                                     "content": {"note": "ship it", "region": "eu-west"}}


def decline_the_unfillable(bridge: Bridge, model: ThreadedModelAPI, agent: str,
                           api: str) -> None:
    sid = bridge.json("new", "demo", "fill the form", "--agent", agent)["id"]

    def notice() -> Any:
        session = bridge.session(sid)
        for approval in session["pending_approvals"]:
            if approval["tool"] == TOOL:
                bridge.cli("approve", approval["id"])
        return session["turns"] == 1 and session["state"] == "idle" and session

    session = wait_until(notice, timeout=START, what="the turn to finish")
    (declined,) = [n for n in events(session, "notice") if "Declined" in n["text"]]
    assert "Force" in declined["text"] and "forms" in declined["text"]
    assert session["pending_questions"] == []
    assert tool_text(model, api)["action"] == "decline"


def test_codex_form_enum_by_button_text_by_reply(make_bridge, model):
    answer_the_form(codex(make_bridge, model, FORM), model, "codex", OPENAI)


def test_codex_unfillable_form_is_declined_with_a_notice(make_bridge, model):
    decline_the_unfillable(codex(make_bridge, model, UNFILLABLE), model, "codex", OPENAI)


def test_claude_form_enum_by_button_text_by_reply(make_bridge, model):
    answer_the_form(claude(make_bridge, model, FORM), model, "claude", ANTHROPIC)


def test_claude_unfillable_form_is_declined_with_a_notice(make_bridge, model):
    decline_the_unfillable(claude(make_bridge, model, UNFILLABLE), model, "claude", ANTHROPIC)
