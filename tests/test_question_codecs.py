"""The codecs' side of questions that are not Claude's AskUserQuestion: Codex
`item/tool/requestUserInput`, MCP elicitations from Codex (`mcpServer/elicitation/request`)
and Claude (the `elicitation` control request), and Codex's MCP tool-call approval that
arrives as an elicitation. Shapes as the real binaries send them (tests/test_real_*
prove them end to end)."""

from __future__ import annotations

import json

import pytest

from bridge.codecs.claude import ClaudeCodec
from bridge.codecs.codex import CodexCodec
from bridge.errors import ApprovalError
from bridge.events import (
    AnswerApproval,
    AnswerQuestions,
    ApprovalRequested,
    ApprovalWithdrawn,
    AskedQuestion,
    DecisionKind,
    Notice,
    QuestionOption,
    QuestionsAsked,
)

ASK = {"threadId": "t1", "turnId": "u1", "itemId": "call_1", "isBlocking": True, "questions": [
    {"id": "database", "header": "Database", "question": "Which database?", "isOther": True,
     "isSecret": False, "options": [{"label": "SQLite", "description": "one file"},
                                    {"label": "Postgres", "description": "a server"}]},
    {"id": "token", "header": "Token", "question": "Your token?", "isOther": True,
     "isSecret": True, "options": None}]}
FORM = {"type": "object", "required": ["region"], "properties": {
    "region": {"type": "string", "title": "Region",
               "oneOf": [{"const": "eu-west", "title": "Europe"},
                         {"const": "us-east", "title": "America"}]},
    "tags": {"type": "array", "title": "Tags",
             "items": {"type": "string", "enum": ["a", "b"]}},
    "size": {"type": "string", "enum": ["s", "m"], "enumNames": ["Small", "Medium"]},
    "note": {"type": "string", "description": "for the log", "format": "email"}}}


def sent(codec) -> list[dict]:
    return [json.loads(line) for line in codec.data_to_send().splitlines()]


def feed(codec, *messages: dict) -> list:
    return codec.receive(b"".join(json.dumps(m).encode() + b"\n" for m in messages))


def test_codex_request_user_input_is_asked_and_answered_by_id():
    codec = CodexCodec(cwd="/w")
    (asked,) = feed(codec, {"id": 5, "method": "item/tool/requestUserInput", "params": ASK})
    assert asked == QuestionsAsked(request_id="5", tool_use_id="call_1", questions=(
        AskedQuestion(key="database", text="Which database?", header="Database",
                      options=(QuestionOption(label="SQLite", description="one file"),
                               QuestionOption(label="Postgres", description="a server")),
                      is_other=True),
        AskedQuestion(key="token", text="Your token?", header="Token", is_other=True,
                      is_secret=True)))
    assert codec.pending_requests() == ["5"]
    codec.send(AnswerQuestions(request_id="5", answers={"database": ("Postgres",),
                                                       "token": ("s3cret",)}))
    assert sent(codec) == [{"id": 5, "result": {"answers": {
        "database": {"answers": ["Postgres"]}, "token": {"answers": ["s3cret"]}}}}]
    assert codec.pending_requests() == []
    with pytest.raises(ApprovalError):
        codec.send(AnswerQuestions(request_id="5"))


def test_codex_unanswered_abandoned_and_withdrawn_questions():
    codec = CodexCodec(cwd="/w")
    feed(codec, {"id": "a", "method": "item/tool/requestUserInput", "params": ASK},
         {"id": "b", "method": "item/tool/requestUserInput", "params": ASK})
    (withdrawn,) = feed(codec, {"method": "serverRequest/resolved",
                                "params": {"threadId": "t1", "requestId": "a"}})
    assert withdrawn == ApprovalWithdrawn(request_id="a")
    codec.abandon()  # nobody answers: no answers, never made-up ones
    assert sent(codec) == [{"id": "b", "result": {"answers": {}}}]


def test_codex_malformed_request_user_input_is_refused_with_a_notice():
    codec = CodexCodec(cwd="/w")
    (notice,) = feed(codec, {"id": 9, "method": "item/tool/requestUserInput",
                             "params": {"questions": [{"id": "x"}]}})
    assert isinstance(notice, Notice)
    (reply,) = sent(codec)
    assert reply["id"] == 9 and reply["error"]["code"] == -32602
    assert codec.pending_requests() == []


def test_an_mcp_form_is_one_question_per_field_and_its_answer_the_content():
    codec = CodexCodec(cwd="/w")
    (asked,) = feed(codec, {"id": 3, "method": "mcpServer/elicitation/request", "params": {
        "threadId": "t1", "turnId": "u1", "serverName": "forms", "mode": "form",
        "_meta": None, "message": "Deploy settings", "requestedSchema": FORM}})
    region, tags, size, note = asked.questions
    assert (region.key, region.header) == ("region", "forms: Region")
    assert [o.label for o in region.options] == ["Europe", "America"]
    assert not region.multi_select and not region.is_other
    assert tags.multi_select and [o.label for o in tags.options] == ["a", "b"]
    assert [o.label for o in size.options] == ["Small", "Medium"]
    assert note.options == () and "for the log" in note.text and "Deploy settings" in note.text
    codec.send(AnswerQuestions(request_id="3", answers={
        "region": ("Europe",), "tags": ("a", "b"), "size": ("Medium",), "note": ("a@b.c",)}))
    assert sent(codec) == [{"id": 3, "result": {"action": "accept", "_meta": None, "content": {
        "region": "eu-west", "tags": ["a", "b"], "size": "m", "note": "a@b.c"}}}]


def test_an_mcp_form_missing_a_required_answer_is_cancelled():
    codec = CodexCodec(cwd="/w")
    feed(codec, {"id": 3, "method": "mcpServer/elicitation/request", "params": {
        "serverName": "forms", "message": "m", "requestedSchema": FORM}})
    codec.send(AnswerQuestions(request_id="3", answers={"note": ("x",)}))
    assert sent(codec) == [{"id": 3, "result": {"action": "cancel", "_meta": None}}]


@pytest.mark.parametrize("params", [
    {"mode": "form", "requestedSchema": {"type": "object",
                                         "properties": {"n": {"type": "number"}}}},
    {"mode": "form", "requestedSchema": {"type": "object", "properties": {}}},
    {"mode": "url", "url": "https://example.invalid/login", "elicitationId": "e1"},
])
def test_a_form_a_chat_cannot_fill_is_declined_with_a_notice(params):
    codec = CodexCodec(cwd="/w")
    (notice,) = feed(codec, {"id": 4, "method": "mcpServer/elicitation/request",
                             "params": {"serverName": "forms", "message": "Fill me", **params}})
    assert isinstance(notice, Notice) and "Declined" in notice.text and "forms" in notice.text
    assert sent(codec) == [{"id": 4, "result": {"action": "decline", "content": None,
                                                "_meta": None}}]
    assert codec.pending_requests() == []


@pytest.mark.parametrize(("decision", "action"), [
    (DecisionKind.ALLOW_ONCE, "accept"), (DecisionKind.DENY, "decline"),
    (DecisionKind.STOP, "cancel")])
def test_codex_mcp_tool_call_approval_is_an_approval_card(decision, action):
    codec = CodexCodec(cwd="/w")
    (request,) = feed(codec, {"id": 6, "method": "mcpServer/elicitation/request", "params": {
        "threadId": "t1", "turnId": "u1", "serverName": "forms", "mode": "form",
        "_meta": {"codex_approval_kind": "mcp_tool_call", "persist": ["session", "always"],
                  "tool_name": "fill_form", "tool_params": {"x": 1}},
        "message": 'Allow the forms MCP server to run tool "fill_form"?',
        "requestedSchema": {"type": "object", "properties": {}}}})
    assert isinstance(request, ApprovalRequested)
    assert (request.tool, request.input) == ("mcp__forms__fill_form", {"x": 1})
    assert DecisionKind.ALLOW_SESSION not in request.offered  # `persist` is never chosen
    codec.send(AnswerApproval(request_id="6", decision=decision))
    assert sent(codec) == [{"id": 6, "result": {
        "action": action, "content": {} if action == "accept" else None, "_meta": None}}]


def claude_elicitation(request_id: str, schema: dict, mode: str | None = None) -> dict:
    request = {"subtype": "elicitation", "mcp_server_name": "forms", "message": "Deploy",
               "requested_schema": schema, "property_order": list(schema["properties"])}
    if mode:
        request["mode"] = mode
    return {"type": "control_request", "request_id": request_id, "request": request}


def test_claude_elicitation_asked_answered_abandoned_and_cancelled():
    codec = ClaudeCodec()
    (asked,) = feed(codec, claude_elicitation("r1", FORM))
    assert [q.key for q in asked.questions] == ["region", "tags", "size", "note"]
    codec.send(AnswerQuestions(request_id="r1", answers={"region": ("America",)}))
    (reply,) = sent(codec)
    assert reply["response"] == {"subtype": "success", "request_id": "r1",
                                 "response": {"action": "accept",
                                              "content": {"region": "us-east"}}}
    feed(codec, claude_elicitation("r2", FORM), claude_elicitation("r3", FORM))
    assert feed(codec, {"type": "control_cancel_request", "request_id": "r2"}) == [
        ApprovalWithdrawn(request_id="r2")]
    codec.abandon()
    (reply,) = sent(codec)
    assert reply["response"]["response"] == {"action": "cancel"}
    assert codec.pending_requests() == []


def test_claude_elicitation_a_chat_cannot_fill_is_declined():
    codec = ClaudeCodec()
    (notice,) = feed(codec, claude_elicitation(
        "r1", {"type": "object", "properties": {"ok": {"type": "boolean", "title": "OK"}}}))
    assert isinstance(notice, Notice) and "OK" in notice.text
    (reply,) = sent(codec)
    assert reply["response"]["response"] == {"action": "decline"}
    assert codec.pending_requests() == []
