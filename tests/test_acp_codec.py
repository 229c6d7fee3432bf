"""The ACP codec against hand-written transcripts: the exact JSON of the shared reference
(reference/agent-protocols.md §3.2), replayed through the framer in random chunk sizes."""

import json

import pytest

from bridge.codecs.acp import AcpCodec
from bridge.errors import ApprovalError, ProtocolError
from bridge.events import (
    AnswerApproval,
    ApprovalRequested,
    ApprovalWithdrawn,
    AssistantText,
    ControlAnswered,
    DecisionKind,
    Interrupt,
    Notice,
    SendPrompt,
    SessionStarted,
    ToolFinished,
    ToolStarted,
    TurnCompleted,
    TurnStarted,
    UnknownEvent,
)
from tests.transcripts import chunks

CWD = "/home/dev/repo"
SESSION = "sess_abc123"
INITIALIZED = {"jsonrpc": "2.0", "id": 0, "result": {
    "protocolVersion": 1,
    "agentCapabilities": {
        "loadSession": True,
        "promptCapabilities": {"image": True, "audio": False, "embeddedContext": True},
        "mcpCapabilities": {"http": True, "sse": True},
        "sessionCapabilities": {"list": {}, "resume": {}, "close": {}, "fork": {}}},
    "agentInfo": {"name": "@agentclientprotocol/claude-agent-acp", "title": "Claude Agent",
                  "version": "0.25.0"},
    "authMethods": []}}
SESSION_NEW = {"jsonrpc": "2.0", "id": 1, "result": {"sessionId": SESSION, "modes": {
    "currentModeId": "default", "availableModes": [
        {"id": "default", "name": "Default"}, {"id": "acceptEdits", "name": "Accept Edits"},
        {"id": "plan", "name": "Plan Mode"}]}}}
TOOL_CALL = {"toolCallId": "toolu_01", "title": "`pytest -x`", "kind": "execute",
             "status": "pending", "rawInput": {"command": "pytest -x"}}
OPTIONS = [{"optionId": "allow_always", "name": "Always Allow", "kind": "allow_always"},
           {"optionId": "allow", "name": "Allow", "kind": "allow_once"},
           {"optionId": "reject", "name": "Reject", "kind": "reject_once"}]
PERMISSION = {"jsonrpc": "2.0", "id": 5, "method": "session/request_permission", "params": {
    "sessionId": SESSION, "toolCall": TOOL_CALL, "options": OPTIONS}}


def update(body: dict) -> dict:
    return {"jsonrpc": "2.0", "method": "session/update",
            "params": {"sessionId": SESSION, "update": body}}


BEFORE_PERMISSION = [
    update({"sessionUpdate": "agent_message_chunk", "messageId": "msg_1",
            "content": {"type": "text", "text": "Looking…"}}),
    update({"sessionUpdate": "tool_call", **TOOL_CALL}),
    PERMISSION,
]
AFTER_PERMISSION = [
    update({"sessionUpdate": "tool_call_update", "toolCallId": "toolu_01",
            "status": "in_progress"}),
    update({"sessionUpdate": "tool_call_update", "toolCallId": "toolu_01", "status": "completed",
            "content": [{"type": "content", "content": {"type": "text", "text": "1 passed"}}]}),
    update({"sessionUpdate": "usage_update", "used": 53000, "size": 200000,
            "cost": {"amount": 0.045, "currency": "USD"}}),
    {"jsonrpc": "2.0", "id": 2, "result": {"stopReason": "end_turn"}},
]


def wire(*messages: dict) -> bytes:
    return b"".join(json.dumps(m, ensure_ascii=False).encode() + b"\n" for m in messages)


def sent(codec: AcpCodec) -> list[dict]:
    lines = [json.loads(line) for line in codec.data_to_send().splitlines()]
    assert all(line["jsonrpc"] == "2.0" for line in lines)  # required by ACP
    return lines


def feed(codec: AcpCodec, *messages: dict) -> list:
    return codec.receive(wire(*messages))


def opened(prompt: str | None = "Fix the failing test", **kwargs: object) -> AcpCodec:
    codec = AcpCodec(cwd=CWD, **kwargs)  # type: ignore[arg-type]
    codec.start(prompt)
    feed(codec, INITIALIZED, SESSION_NEW)
    codec.data_to_send()
    return codec


def test_the_reference_flow_sends_and_decodes_the_reference_json():
    codec = AcpCodec(cwd=CWD)
    codec.start("Fix the failing test")
    (init,) = sent(codec)
    assert init == {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": 1,
        "clientCapabilities": {"fs": {"readTextFile": False, "writeTextFile": False},
                               "terminal": False, "elicitation": {"form": {}}},
        "clientInfo": {"name": "agent-bridge", "title": "agent-bridge", "version": "0.1"}}}
    assert feed(codec, INITIALIZED) == []
    assert sent(codec) == [{"jsonrpc": "2.0", "id": 1, "method": "session/new",
                            "params": {"cwd": CWD, "mcpServers": []}}]
    assert feed(codec, SESSION_NEW) == [
        SessionStarted(agent_session_id=SESSION, cwd=CWD, version="0.25.0", mode="default"),
        ControlAnswered(request_id="1", ok=True, of="initialize"),
        TurnStarted(),
    ]
    assert sent(codec) == [{"jsonrpc": "2.0", "id": 2, "method": "session/prompt", "params": {
        "sessionId": SESSION, "prompt": [{"type": "text", "text": "Fix the failing test"}]}}]
    events = feed(codec, *BEFORE_PERMISSION)
    assert events[:2] == [
        AssistantText(text="Looking…"),
        ToolStarted(tool_use_id="toolu_01", tool="Bash", input={"command": "pytest -x"}),
    ]
    request = events[2]
    assert request == ApprovalRequested(
        request_id="5", tool="Bash", input={"command": "pytest -x"}, tool_use_id="toolu_01",
        description="`pytest -x`", raw=PERMISSION["params"])  # all four offered
    codec.send(AnswerApproval(request_id="5", decision=DecisionKind.ALLOW_ONCE))
    assert sent(codec) == [{"jsonrpc": "2.0", "id": 5,
                            "result": {"outcome": {"outcome": "selected", "optionId": "allow"}}}]
    assert feed(codec, *AFTER_PERMISSION) == [
        ToolFinished(tool_use_id="toolu_01", is_error=False, output="1 passed"),
        TurnCompleted(is_error=False, result_text="Looking…", cost_usd=0.045,
                      agent_session_id=SESSION),
    ]


def test_the_agent_side_decodes_the_same_in_any_chunking():
    data = wire(INITIALIZED, SESSION_NEW, *BEFORE_PERMISSION, *AFTER_PERMISSION)

    def replay(seed: int) -> list:
        codec = AcpCodec(cwd=CWD)
        codec.start("Fix the failing test")
        events = []
        for chunk in chunks(data, seed):
            events.extend(codec.receive(chunk))
        return events + codec.receive_eof()

    reference = replay(0)
    assert [type(e) for e in reference] == [
        SessionStarted, ControlAnswered, TurnStarted, AssistantText, ToolStarted,
        ApprovalRequested, ToolFinished, ApprovalWithdrawn, TurnCompleted]  # never answered
    for seed in range(1, 25):
        assert replay(seed) == reference


@pytest.mark.parametrize(("decision", "option"), [
    (DecisionKind.ALLOW_ONCE, "allow"),
    # the daemon keeps the exact session rule: the agent's "always" would be broader
    (DecisionKind.ALLOW_SESSION, "allow"),
    (DecisionKind.DENY, "reject"),
])
def test_each_decision_selects_the_agents_option_of_that_kind(decision, option):
    codec = opened()
    feed(codec, *BEFORE_PERMISSION)
    codec.send(AnswerApproval(request_id="5", decision=decision))
    assert sent(codec) == [{"jsonrpc": "2.0", "id": 5,
                            "result": {"outcome": {"outcome": "selected", "optionId": option}}}]
    with pytest.raises(ApprovalError):
        codec.send(AnswerApproval(request_id="5", decision=decision))


def test_reject_always_answers_deny_when_there_is_no_reject_once_and_no_reject_no_deny():
    codec = opened()
    options = [{"optionId": "yes", "name": "Yes", "kind": "allow_once"},
               {"optionId": "never", "name": "Never", "kind": "reject_always"}]
    (request,) = feed(codec, {**PERMISSION, "params": {**PERMISSION["params"], "options": options}})
    assert request.offered == (DecisionKind.ALLOW_ONCE, DecisionKind.DENY, DecisionKind.STOP)
    codec.send(AnswerApproval(request_id="5", decision=DecisionKind.DENY))
    assert sent(codec)[0]["result"]["outcome"] == {"outcome": "selected", "optionId": "never"}
    (request,) = feed(codec, {**PERMISSION, "id": 6, "params": {
        **PERMISSION["params"], "options": options[:1]}})
    assert request.offered == (DecisionKind.ALLOW_ONCE, DecisionKind.STOP)


def test_an_allow_always_the_card_cannot_show_is_never_chosen():
    """An agent offering `allow_always` without `allow_once` (claude-agent-acp's plan: "clear
    context and use auto mode"): no allow button is offered, since none would answer with
    what the card shows; and no answer ever selects `allow_always`."""
    codec = opened()
    options = [{"optionId": "auto", "name": "Yes, and use auto mode", "kind": "allow_always"},
               {"optionId": "no", "name": "No, keep planning", "kind": "reject_once"}]
    (request,) = feed(codec, {**PERMISSION, "params": {**PERMISSION["params"], "options": options}})
    assert request.offered == (DecisionKind.DENY, DecisionKind.STOP)
    for wire_id, decision in ((5, DecisionKind.ALLOW_ONCE), (6, DecisionKind.ALLOW_SESSION)):
        if wire_id == 6:
            feed(codec, {**PERMISSION, "id": 6, "params": {**PERMISSION["params"],
                                                           "options": options}})
        codec.send(AnswerApproval(request_id=str(wire_id), decision=decision))
        # (the daemon refuses a decision that was not offered; the codec still never
        # selects an option the card did not show)
        assert sent(codec)[-1]["result"]["outcome"] == {"outcome": "cancelled"}


def test_stop_cancels_the_prompt_and_every_pending_permission():
    codec = opened()
    feed(codec, *BEFORE_PERMISSION, {**PERMISSION, "id": 6})
    codec.send(AnswerApproval(request_id="5", decision=DecisionKind.STOP))
    assert sent(codec) == [
        {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": SESSION}},
        {"jsonrpc": "2.0", "id": 5, "result": {"outcome": {"outcome": "cancelled"}}},
        {"jsonrpc": "2.0", "id": 6, "result": {"outcome": {"outcome": "cancelled"}}},
    ]
    assert codec.pending_requests() == []
    codec.send(Interrupt())  # the supervisor interrupts after a stop: no second cancel
    assert codec.data_to_send() == b""
    (done,) = feed(codec, {"jsonrpc": "2.0", "id": 2, "result": {"stopReason": "cancelled"}})
    assert done.interrupted and not done.is_error


def test_interrupt_sends_session_cancel_and_answers_pending_permissions_cancelled():
    codec = opened()
    feed(codec, *BEFORE_PERMISSION)
    codec.send(Interrupt())
    cancel, answer = sent(codec)
    assert cancel == {"jsonrpc": "2.0", "method": "session/cancel",
                      "params": {"sessionId": SESSION}}
    assert answer["result"] == {"outcome": {"outcome": "cancelled"}}


def test_abandon_cancels_what_waits():
    codec = opened()
    feed(codec, *BEFORE_PERMISSION)
    codec.abandon()
    assert [m.get("method") or m["result"]["outcome"]["outcome"] for m in sent(codec)] == [
        "session/cancel", "cancelled"]


def test_a_deny_reason_is_kept_and_told_with_the_next_prompt():
    codec = opened()
    feed(codec, *BEFORE_PERMISSION)
    codec.send(AnswerApproval(request_id="5", decision=DecisionKind.DENY,
                              message="not in this repo"))
    assert sent(codec)[0]["result"] == {"outcome": {"outcome": "selected", "optionId": "reject"}}
    events = feed(codec, AFTER_PERMISSION[-1])
    assert isinstance(events[0], Notice) and "not in this repo" in events[0].text
    assert events[0].shown  # people see that the reason could not travel
    codec.send(SendPrompt(text="go on"))
    (prompt,) = sent(codec)
    note, text = prompt["params"]["prompt"]
    assert "not in this repo" in note["text"] and "pytest -x" in note["text"]
    assert text == {"type": "text", "text": "go on"}


def test_prompts_wait_for_the_running_one():
    codec = opened()
    codec.send(SendPrompt(text="second"))
    assert codec.data_to_send() == b""
    events = feed(codec, {"jsonrpc": "2.0", "id": 2, "result": {"stopReason": "end_turn"}})
    assert [type(e) for e in events] == [TurnCompleted, TurnStarted]
    (prompt,) = sent(codec)
    assert prompt["params"]["prompt"] == [{"type": "text", "text": "second"}]


def test_a_prompt_that_ends_while_a_permission_waits_withdraws_it():
    codec = opened()
    feed(codec, *BEFORE_PERMISSION)
    events = feed(codec, {"jsonrpc": "2.0", "id": 2, "result": {"stopReason": "refusal"}})
    assert events[0] == ApprovalWithdrawn(request_id="5")
    assert events[1] == Notice(text="the agent ended the turn: refusal")
    assert events[2] == TurnCompleted(is_error=False, result_text="Looking…",
                                      agent_session_id=SESSION)
    assert sent(codec)[0]["result"] == {"outcome": {"outcome": "cancelled"}}


def test_resume_prefers_session_resume():
    codec = AcpCodec(cwd=CWD, resume=SESSION)
    codec.start(None)
    codec.data_to_send()
    feed(codec, INITIALIZED)
    (resume,) = sent(codec)
    assert resume["method"] == "session/resume"
    assert resume["params"] == {"sessionId": SESSION, "cwd": CWD, "mcpServers": []}
    assert feed(codec, {"jsonrpc": "2.0", "id": resume["id"], "result": {}}) == [
        SessionStarted(agent_session_id=SESSION, cwd=CWD, version="0.25.0"),
        ControlAnswered(request_id=str(resume["id"]), ok=True, of="initialize"),
    ]


def test_resume_falls_back_to_session_load_and_ignores_the_replayed_history():
    codec = AcpCodec(cwd=CWD, resume=SESSION)
    codec.start("and now?")
    codec.data_to_send()
    caps = {**INITIALIZED["result"]["agentCapabilities"], "sessionCapabilities": {"list": {}}}
    feed(codec, {**INITIALIZED, "result": {**INITIALIZED["result"], "agentCapabilities": caps}})
    (load,) = sent(codec)
    assert load["method"] == "session/load"
    assert load["params"] == {"sessionId": SESSION, "cwd": CWD, "mcpServers": []}
    replay = [update({"sessionUpdate": "user_message_chunk",
                      "content": {"type": "text", "text": "old"}}),
              update({"sessionUpdate": "agent_message_chunk",
                      "content": {"type": "text", "text": "old answer"}}),
              update({"sessionUpdate": "tool_call", **TOOL_CALL})]
    assert feed(codec, *replay) == []
    events = feed(codec, {"jsonrpc": "2.0", "id": load["id"], "result": None})
    assert events[0] == SessionStarted(agent_session_id=SESSION, cwd=CWD, version="0.25.0")
    assert isinstance(events[-1], TurnStarted)
    (prompt,) = sent(codec)
    assert prompt["params"]["prompt"] == [{"type": "text", "text": "and now?"}]
    feed(codec, update({"sessionUpdate": "agent_message_chunk",
                        "content": {"type": "text", "text": "new"}}))
    (done,) = feed(codec, {"jsonrpc": "2.0", "id": prompt["id"], "result": {"stopReason":
                                                                           "end_turn"}})[1:]
    assert done.result_text == "new"  # not "old answer"


def test_an_agent_that_cannot_resume_fails_the_turn_with_the_reason():
    codec = AcpCodec(cwd=CWD, resume=SESSION)
    codec.start("go on")
    codec.data_to_send()
    caps = {"loadSession": False, "sessionCapabilities": {}}
    (done,) = feed(codec, {**INITIALIZED, "result": {**INITIALIZED["result"],
                                                     "agentCapabilities": caps}})
    assert done.is_error
    assert done.error == ("Claude Agent cannot resume a session: it offers neither "
                          "session/resume nor session/load")
    assert codec.data_to_send() == b""
    codec.send(SendPrompt(text="again"))  # a new prompt tries again from the start
    assert [m["method"] for m in sent(codec)] == ["initialize"]


def test_errors_answering_our_requests_end_the_turn_failed():
    codec = AcpCodec(cwd=CWD, resume="sess_gone")
    codec.start("go on")
    codec.data_to_send()
    feed(codec, INITIALIZED)
    (resume,) = sent(codec)
    (done,) = feed(codec, {"jsonrpc": "2.0", "id": resume["id"], "error": {
        "code": -32002, "message": "Resource not found", "data": {"uri": "sess_gone"}}})
    assert done.is_error and done.error.startswith("session/resume failed: Resource not found")
    codec = opened()
    events = feed(codec, {"jsonrpc": "2.0", "id": 2, "error": {"code": -32603,
                                                               "message": "Internal error"}})
    assert events == [TurnCompleted(is_error=True, error="Internal error",
                                    agent_session_id=SESSION)]


@pytest.mark.parametrize("method", ["fs/read_text_file", "fs/write_text_file",
                                    "terminal/create", "_vendor/thing"])
def test_requests_we_never_advertised_are_refused_with_method_not_found(method):
    codec = opened()
    (notice,) = feed(codec, {"jsonrpc": "2.0", "id": "r1", "method": method,
                             "params": {"sessionId": SESSION}})
    assert isinstance(notice, Notice) and notice.shown
    assert sent(codec) == [{"jsonrpc": "2.0", "id": "r1", "error": {
        "code": -32601, "message": f"Method not found: {method}"}}]
    assert codec.pending_requests() == []


def test_quiet_updates_are_dropped_and_unknown_ones_kept():
    codec = opened()
    assert feed(codec, update({"sessionUpdate": "available_commands_update"}),
                update({"sessionUpdate": "agent_thought_chunk",
                        "content": {"type": "text", "text": "hm"}})) == []
    odd = update({"sessionUpdate": "brand_new", "x": 1})
    assert feed(codec, odd) == [UnknownEvent(type="session/update/brand_new", raw=odd)]


@pytest.mark.parametrize("line", [
    b'{"jsonrpc": "2.0", "method": "session/update", oops\n',
    b'{"jsonrpc": "2.0", "method": "session/update", "params": {"update": {}}}\n',
    b'{"jsonrpc": "2.0", "id": 5, "method": "session/request_permission", "params": {}}\n',
    b'{"jsonrpc": "2.0", "id": 2, "result": {}}\n',
    b'{"jsonrpc": "2.0"}\n',
])
def test_corrupt_lines_are_protocol_errors_with_the_line(line):
    with pytest.raises(ProtocolError) as info:
        opened().receive(line)
    assert info.value.line
