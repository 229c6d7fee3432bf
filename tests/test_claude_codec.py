import json

import pytest

from bridge.codecs.claude import ClaudeCodec, claude_argv
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
    UnknownEvent,
)
from tests.transcripts import agent_bytes, chunks, load


def sent_by_daemon(lines, kind):
    return next(line for d, line in lines if d == "to_agent" and line["type"] == kind)

CLAUDE = [
    "claude-code-2.1.331-allow.jsonl",
    "claude-code-2.1.331-deny.jsonl",
    "claude-code-2.1.331-interrupt.jsonl",
    "claude-code-2.1.331-resume.jsonl",
]


def replay(data: bytes, seed: int):
    codec = ClaudeCodec()
    events = []
    for chunk in chunks(data, seed):
        events.extend(codec.receive(chunk))
    events.extend(codec.receive_eof())
    return codec, events


@pytest.mark.parametrize("name", CLAUDE)
def test_real_transcripts_decode_the_same_in_any_chunking(name):
    data = agent_bytes(load(name))
    _, reference = replay(data, seed=0)
    for seed in range(1, 25):
        assert replay(data, seed)[1] == reference
    kinds = [type(e) for e in reference]
    assert kinds[:4] == [ControlAnswered, SessionStarted, ToolStarted, ApprovalRequested]
    assert isinstance(reference[-1], TurnCompleted)
    started = reference[1]
    assert started.version == "2.1.331"
    assert reference[-1].agent_session_id == started.agent_session_id


def test_allow_transcript_events_and_our_answer_match_the_real_wire():
    lines = load("claude-code-2.1.331-allow.jsonl")
    codec, events = replay(agent_bytes(lines[:6]), seed=3)  # up to the permission prompt
    request = events[-1]
    assert isinstance(request, ApprovalRequested)
    assert request.tool == "Bash"
    assert request.input == {"command": "echo hi > out.txt", "description": "write a file"}
    assert request.description == "write a file"
    codec.send(AnswerApproval(request_id=request.request_id, decision=DecisionKind.ALLOW_ONCE))
    sent = json.loads(codec.data_to_send())
    recorded = sent_by_daemon(lines, "control_response")
    assert sent == recorded
    rest = codec.receive(agent_bytes(lines[6:]))
    assert [type(e) for e in rest] == [ToolFinished, AssistantText, TurnCompleted]
    assert rest[0].is_error is False
    assert rest[1].text == "All done."
    done = rest[2]
    assert done.is_error is False and done.interrupted is False
    assert done.cost_usd == pytest.approx(0.00028)


def test_deny_with_a_reason_reaches_the_agent_as_its_message():
    lines = load("claude-code-2.1.331-deny.jsonl")
    codec, events = replay(agent_bytes(lines[:6]), seed=5)
    codec.send(AnswerApproval(request_id=events[-1].request_id, decision=DecisionKind.DENY,
                              message="not in this repo"))
    sent = json.loads(codec.data_to_send())
    recorded = sent_by_daemon(lines, "control_response")
    assert sent["response"]["request_id"] == recorded["response"]["request_id"]
    assert sent["response"]["response"]["behavior"] == "deny"
    assert sent["response"]["response"]["message"] == "not in this repo"
    rest = codec.receive(agent_bytes(lines[6:]))
    assert rest[0] == ToolFinished(tool_use_id=rest[0].tool_use_id, is_error=True,
                                   output="not in this repo")


def test_interrupt_transcript_ends_the_turn_as_interrupted_not_failed():
    _, events = replay(agent_bytes(load("claude-code-2.1.331-interrupt.jsonl")), seed=9)
    withdrawn = [e for e in events if isinstance(e, ApprovalWithdrawn)]
    assert len(withdrawn) == 1  # nobody answered in this replay: the CLI withdrew it
    done = events[-1]
    assert isinstance(done, TurnCompleted)
    assert done.is_error and done.interrupted


def test_answering_twice_or_after_a_withdrawal_raises():
    codec = ClaudeCodec()
    codec.receive(b'{"type":"control_request","request_id":"r1","request":{"subtype":"can_use_tool",'
                  b'"tool_name":"Bash","input":{"command":"ls"},"tool_use_id":"t1"}}\n')
    codec.send(AnswerApproval(request_id="r1", decision=DecisionKind.DENY))
    with pytest.raises(ApprovalError):
        codec.send(AnswerApproval(request_id="r1", decision=DecisionKind.ALLOW_ONCE))
    codec.receive(b'{"type":"control_request","request_id":"r2","request":{"subtype":"can_use_tool",'
                  b'"tool_name":"Bash","input":{"command":"ls"}}}\n')
    assert codec.receive(b'{"type":"control_cancel_request","request_id":"r2"}\n') == [
        ApprovalWithdrawn(request_id="r2")
    ]
    codec.data_to_send()
    with pytest.raises(ApprovalError):
        codec.send(AnswerApproval(request_id="r2", decision=DecisionKind.ALLOW_ONCE))
    assert codec.data_to_send() == b""  # nothing written for a withdrawn request


def test_allow_for_session_keeps_rules_in_the_session():
    codec = ClaudeCodec()
    request = {"subtype": "can_use_tool", "tool_name": "Bash", "input": {"command": "make"},
               "permission_suggestions": [{"type": "addRules", "behavior": "allow",
                                           "rules": [{"toolName": "Bash", "ruleContent": "make"}],
                                           "destination": "localSettings"},
                                          {"type": "setMode", "mode": "acceptEdits",
                                           "destination": "session"}]}
    codec.receive(json.dumps({"type": "control_request", "request_id": "r", "request": request})
                  .encode() + b"\n")
    codec.send(AnswerApproval(request_id="r", decision=DecisionKind.ALLOW_SESSION))
    response = json.loads(codec.data_to_send())["response"]["response"]
    assert response["behavior"] == "allow"
    assert response["updatedInput"] == {"command": "make"}
    assert response["updatedPermissions"] == [
        {"type": "addRules", "behavior": "allow", "rules": [{"toolName": "Bash",
                                                             "ruleContent": "make"}],
         "destination": "session"}
    ]


def test_stop_denies_and_interrupts():
    codec = ClaudeCodec()
    codec.receive(b'{"type":"control_request","request_id":"r","request":{"subtype":"can_use_tool",'
                  b'"tool_name":"Write","input":{"file_path":"/x"}}}\n')
    codec.send(AnswerApproval(request_id="r", decision=DecisionKind.STOP))
    codec.send(Interrupt())
    first, second = codec.data_to_send().splitlines()
    assert json.loads(first)["response"]["response"]["interrupt"] is True
    assert json.loads(second)["request"] == {"subtype": "interrupt"}


def test_start_sends_initialize_then_the_prompt_and_names_the_answer():
    codec = ClaudeCodec()
    codec.start("fix it")
    init, prompt = (json.loads(x) for x in codec.data_to_send().splitlines())
    assert init["request"] == {"subtype": "initialize", "hooks": None}
    assert prompt == {"type": "user", "session_id": "", "parent_tool_use_id": None,
                      "message": {"role": "user", "content": "fix it"}}
    answer = {"type": "control_response",
              "response": {"subtype": "success", "request_id": init["request_id"], "response": {}}}
    (event,) = codec.receive(json.dumps(answer).encode() + b"\n")
    assert event == ControlAnswered(request_id=init["request_id"], ok=True, of="initialize")
    codec.send(SendPrompt(text="more"))
    assert json.loads(codec.data_to_send())["message"]["content"] == "more"


def test_unknown_types_are_kept_and_stray_text_is_a_notice():
    codec = ClaudeCodec()
    events = codec.receive(b'{"type":"brand_new","x":1}\n[SandboxDebug] hello\n\n')
    assert events == [UnknownEvent(type="brand_new", raw={"type": "brand_new", "x": 1}),
                      Notice(text="[SandboxDebug] hello")]


@pytest.mark.parametrize(
    "line",
    [
        b'{"type": "assistant", "message": {oops\n',
        b'{"type": 5}\n',
        b'{"no_type": 1}\n',
        b'{"type": "result", "subtype": "success", "is_error": "no", "session_id": "s"}\n',
        b'{"type": "result", "subtype": "success"}\n',
        b'{"type": "control_request", "request_id": "r", "request": {"subtype": "can_use_tool"}}\n',
        b'{"type": "assistant", "message": {"content": [{"type": "tool_use"}]}}\n',
    ],
)
def test_corrupt_lines_are_protocol_errors_with_the_line(line):
    with pytest.raises(ProtocolError) as info:
        ClaudeCodec().receive(line)
    assert info.value.line


def test_a_line_cut_off_at_end_of_output_is_an_error():
    codec = ClaudeCodec()
    assert codec.receive(b'{"type": "assistant", "mess') == []
    with pytest.raises(ProtocolError, match="middle of a line"):
        codec.receive_eof()


def test_an_oversized_line_is_an_error_even_without_a_newline():
    codec = ClaudeCodec(max_line=1000)
    with pytest.raises(ProtocolError, match="exceeds"):
        for _ in range(20):
            codec.receive(b"x" * 100)


def test_hook_callbacks_we_never_registered_are_refused_at_once():
    codec = ClaudeCodec()
    events = codec.receive(b'{"type":"control_request","request_id":"h","request":'
                           b'{"subtype":"hook_callback","callback_id":"x","input":{}}}\n')
    assert isinstance(events[0], Notice)
    answer = json.loads(codec.data_to_send())
    assert answer["response"]["subtype"] == "error"
    assert answer["response"]["request_id"] == "h"


def test_argv_puts_resume_in_one_token():
    argv = claude_argv(["claude"], resume="-abc", extra=["--setting-sources="])
    assert argv[0] == "claude"
    assert "--permission-prompt-tool" in argv and "stdio" in argv
    assert argv[-1] == "--resume=-abc"
