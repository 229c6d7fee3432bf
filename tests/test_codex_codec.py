import json

import pytest

from bridge.codecs.codex import CodexCodec, codex_argv, resume_hint
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
    UsageUpdated,
)
from tests.transcripts import agent_bytes, chunks, load

CWD = "/home/dev/ws"
PROMPT = "please run a command"
THREAD = "01a20e18-c900-7bb2-92c3-4212eb280461"
ALL = ApprovalRequested(request_id="", tool="", input={}).offered  # a tool's four
TRANSCRIPTS = {
    "codex-0.169.0-app-server-accept.jsonl": None,
    "codex-0.169.0-app-server-decline.jsonl": None,
    "codex-0.169.0-app-server-resume.jsonl": THREAD,
}


def recorded_codec(resume: str | None = None) -> CodexCodec:
    """A codec set up the way the recordings were made (policy `untrusted`)."""
    codec = CodexCodec(cwd=CWD, approval_policy="untrusted", resume=resume)
    codec.start(PROMPT)
    return codec


def sent(codec: CodexCodec) -> list[dict]:
    return [json.loads(line) for line in codec.data_to_send().splitlines()]


def feed(codec: CodexCodec, *messages: dict) -> list:
    return codec.receive(b"".join(json.dumps(m).encode() + b"\n" for m in messages))


def replay(name: str, seed: int) -> list:
    codec = recorded_codec(TRANSCRIPTS[name])
    events = []
    for chunk in chunks(agent_bytes(load(name)), seed):
        events.extend(codec.receive(chunk))
    events.extend(codec.receive_eof())
    return events


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_real_transcripts_decode_the_same_in_any_chunking(name):
    everything = replay(name, seed=0)
    for seed in range(1, 25):
        assert replay(name, seed) == everything
    # the model's token counts come as running totals, each larger than the one before
    usage = [e.total_tokens for e in everything if isinstance(e, UsageUpdated)]
    assert usage and usage == sorted(usage) and usage[0] > 0
    reference = [e for e in everything if not isinstance(e, UsageUpdated)]
    started = reference[0]
    assert started == SessionStarted(agent_session_id=started.agent_session_id, model="gpt-mock",
                                     cwd=CWD, version="0.169.0")
    assert reference[1] == ControlAnswered(request_id="1", ok=True, of="initialize")
    assert isinstance(reference[2], TurnStarted)
    done = reference[-1]
    assert done == TurnCompleted(is_error=False, result_text="All done.", agent_session_id=
                                 started.agent_session_id, duration_ms=done.duration_ms)
    assert reference[-2] == AssistantText(text="All done.")
    assert not [e for e in reference if isinstance(e, UnknownEvent | Notice)]  # noise dropped


@pytest.mark.parametrize(("name", "decision"), [
    ("codex-0.169.0-app-server-accept.jsonl", DecisionKind.ALLOW_ONCE),
    ("codex-0.169.0-app-server-decline.jsonl", DecisionKind.DENY),
    ("codex-0.169.0-app-server-resume.jsonl", None),
])
def test_what_we_send_is_what_the_real_conversation_sent(name, decision):
    """Walk a recording: every line we write equals the line recorded at that point (the
    initialize differs only by the capabilities we add), answers included."""
    lines = load(name)
    codec = recorded_codec(TRANSCRIPTS[name])
    ours = sent(codec)
    events = []
    for direction, line in lines:
        if direction == "from_agent":
            new = feed(codec, line)
            events += new
            for event in new:
                if isinstance(event, ApprovalRequested):
                    codec.send(AnswerApproval(request_id=event.request_id, decision=decision,
                                              message="not in this repo"))
            ours += sent(codec)
    recorded = [line for direction, line in lines if direction == "to_agent"]
    assert ours[0]["params"].pop("capabilities") == {"experimentalApi": True}
    # one deliberate addition: approvals go to the person, never to Codex's auto-reviewer
    assert ours[2]["params"].pop("approvalsReviewer") == "user"
    assert ours == recorded
    if decision is not None:
        (request,) = [e for e in events if isinstance(e, ApprovalRequested)]
        assert request.tool == "Bash"
        # the card shows the whole command Codex runs, its `/bin/bash -lc` wrapper too
        assert request.input == {"command": "/bin/bash -lc 'echo hi > cx.txt'", "cwd": CWD}
        assert request.tool_use_id == request.raw["itemId"]
        # recorded: accept, an execpolicy amendment, cancel — decline is still offered
        assert request.offered == (DecisionKind.ALLOW_ONCE, DecisionKind.DENY, DecisionKind.STOP)
        assert codec.pending_requests() == []
        assert not [e for e in events if isinstance(e, ApprovalWithdrawn)]  # we answered it
        (finished,) = [e for e in events if isinstance(e, ToolFinished)]
        assert finished.is_error is (decision is DecisionKind.DENY)


def test_the_decline_reason_is_kept_and_told_with_the_next_prompt():
    lines = load("codex-0.169.0-app-server-decline.jsonl")
    codec = recorded_codec()
    asked = next(i for i, (_, line) in enumerate(lines)
                 if line.get("method") == "item/commandExecution/requestApproval") + 1
    events = codec.receive(agent_bytes(lines[:asked]))
    request = events[-1]
    codec.send(AnswerApproval(request_id=request.request_id, decision=DecisionKind.DENY,
                              message="not in this repo"))
    assert sent(codec)[-1] == {"id": 0, "result": {"decision": "decline"}}  # only a decision
    rest = codec.receive(agent_bytes(lines[asked:]))
    assert isinstance(rest[0], Notice) and "not in this repo" in rest[0].text
    assert rest[0].shown  # people see that the reason could not travel
    codec.send(SendPrompt(text="go on"))
    (turn,) = sent(codec)
    first, second = turn["params"]["input"]
    assert "not in this repo" in first["text"] and "echo hi > cx.txt" in first["text"]
    assert second == {"type": "text", "text": "go on", "text_elements": []}
    codec.send(SendPrompt(text="later"))  # told once
    assert codec.data_to_send() == b""  # a turn runs: queued


def test_a_prompt_waits_for_the_thread_and_for_the_running_turn():
    codec = CodexCodec(cwd=CWD)
    codec.start("one")
    init, initialized, start = sent(codec)
    assert init["params"] == {"clientInfo": {"name": "agent-bridge", "title": "agent-bridge",
                                             "version": "0.1"},
                              "capabilities": {"experimentalApi": True}}
    assert initialized == {"method": "initialized"}
    assert "jsonrpc" not in init
    assert start["params"] == {"cwd": CWD, "approvalPolicy": "on-request",
                               "approvalsReviewer": "user", "sandbox": "workspace-write"}
    codec.send(SendPrompt(text="two"))
    assert codec.data_to_send() == b""  # no thread yet
    feed(codec, {"id": start["id"], "result": {"thread": {"id": "t1"}}})
    (turn,) = sent(codec)
    assert turn["params"]["input"][0]["text"] == "one"
    feed(codec, {"method": "turn/started",
                 "params": {"threadId": "t1", "turn": {"id": "u1", "status": "inProgress"}}})
    assert codec.data_to_send() == b""  # Codex refuses a second turn/start
    feed(codec, {"method": "turn/completed",
                 "params": {"threadId": "t1", "turn": {"id": "u1", "status": "completed"}}})
    (turn,) = sent(codec)
    assert turn["params"]["input"][0]["text"] == "two"


def test_resume_uses_thread_resume_and_a_lost_thread_fails_the_turn_with_the_reason():
    codec = CodexCodec(cwd=CWD, resume="gone", approval_policy="never")
    codec.start("go on")
    resume = sent(codec)[-1]
    assert resume["method"] == "thread/resume"
    assert resume["params"] == {"threadId": "gone", "cwd": CWD, "approvalPolicy": "never",
                                "approvalsReviewer": "user"}
    (done,) = feed(codec, {"id": resume["id"], "error": {
        "code": -32600, "message": "no rollout found for thread id gone"}})
    assert done == TurnCompleted(is_error=True,
                                 error="thread/resume failed: no rollout found for thread id gone")
    assert codec.data_to_send() == b""  # its prompt is dropped with it
    codec.send(SendPrompt(text="try again"))
    retry = sent(codec)
    assert [m["method"] for m in retry] == ["thread/resume"]
    events = feed(codec, {"id": retry[0]["id"], "result": {"thread": {"id": "gone",
                                                                      "cliVersion": "0.169.0"}}})
    assert events[0] == SessionStarted(agent_session_id="gone", version="0.169.0")
    assert sent(codec)[0]["params"]["input"][0]["text"] == "try again"


def open_thread(codec: CodexCodec, *, turn: bool = True) -> None:
    codec.start("x" if turn else None)
    start = sent(codec)[-1]
    feed(codec, {"id": start["id"], "result": {"thread": {"id": "t1"}}})
    codec.data_to_send()
    if turn:
        feed(codec, {"method": "turn/started", "params": {"threadId": "t1", "turn": {"id": "u1"}}})


@pytest.mark.parametrize(("available", "offered"), [
    (None, ALL),
    (["accept", "acceptForSession", {"acceptWithExecpolicyAmendment": {}}, "decline", "cancel"],
     ALL),
    (["accept", "cancel"], (DecisionKind.ALLOW_ONCE, DecisionKind.DENY, DecisionKind.STOP)),
    ([], (DecisionKind.DENY, DecisionKind.STOP)),
])
def test_offered_decisions_follow_available_decisions(available, offered):
    codec = CodexCodec(cwd=CWD)
    params = {"threadId": "t1", "turnId": "u1", "itemId": "c1", "command": "ls", "cwd": CWD}
    if available is not None:
        params["availableDecisions"] = available
    (request,) = feed(codec, {"id": 3, "method": "item/commandExecution/requestApproval",
                              "params": params})
    assert request.offered == offered


@pytest.mark.parametrize(("decision", "wire"), [
    (DecisionKind.ALLOW_ONCE, "accept"), (DecisionKind.ALLOW_SESSION, "acceptForSession"),
    (DecisionKind.DENY, "decline"), (DecisionKind.STOP, "cancel"),
])
def test_answers_echo_the_original_id(decision, wire):
    codec = CodexCodec(cwd=CWD)
    for wire_id in (7, "req-7"):
        (request,) = feed(codec, {"id": wire_id, "method": "item/commandExecution/requestApproval",
                                  "params": {"itemId": "c", "command": "ls", "reason": "why"}})
        assert request.request_id == str(wire_id)
        assert request.input == {"command": "ls", "cwd": CWD, "reason": "why"}
        assert request.description == "why"
        codec.send(AnswerApproval(request_id=request.request_id, decision=decision))
        assert sent(codec) == [{"id": wire_id, "result": {"decision": wire}}]
        with pytest.raises(ApprovalError):
            codec.send(AnswerApproval(request_id=request.request_id, decision=decision))


def test_a_file_change_approval_shows_the_diff_from_its_item():
    codec = CodexCodec(cwd=CWD)
    open_thread(codec)
    change = {"path": f"{CWD}/hello.py", "kind": {"type": "add", "move_path": None},
              "diff": "print('hi')\n"}
    item = {"type": "fileChange", "id": "c2", "status": "inProgress", "changes": [change]}
    (started,) = feed(codec, {"method": "item/started", "params": {"threadId": "t1",
                                                                   "turnId": "u1", "item": item}})
    assert started == ToolStarted(tool_use_id="c2", tool="Edit", input=started.input)
    (request,) = feed(codec, {"id": 0, "method": "item/fileChange/requestApproval", "params": {
        "threadId": "t1", "turnId": "u1", "itemId": "c2", "reason": None, "grantRoot": None}})
    assert request.tool == "Edit"
    assert request.input == {
        "file_path": f"{CWD}/hello.py", "content": "print('hi')\n",
        "changes": [{"path": f"{CWD}/hello.py", "kind": "add", "diff": "print('hi')\n"}]}
    assert request.offered == ALL
    codec.send(AnswerApproval(request_id="0", decision=DecisionKind.ALLOW_ONCE))
    assert sent(codec) == [{"id": 0, "result": {"decision": "accept"}}]
    (finished,) = feed(codec, {"method": "item/completed", "params": {
        "threadId": "t1", "item": {**item, "status": "completed"}}})
    assert finished == ToolFinished(tool_use_id="c2", is_error=False, output=f"add {CWD}/hello.py")


def test_server_resolved_withdraws_a_pending_approval():
    codec = CodexCodec(cwd=CWD)
    open_thread(codec)
    feed(codec, {"id": 4, "method": "item/commandExecution/requestApproval",
                 "params": {"threadId": "t1", "itemId": "c", "command": "ls"}})
    (withdrawn,) = feed(codec, {"method": "serverRequest/resolved",
                                "params": {"threadId": "t1", "requestId": 4}})
    assert withdrawn == ApprovalWithdrawn(request_id="4")
    assert codec.pending_requests() == []
    with pytest.raises(ApprovalError):
        codec.send(AnswerApproval(request_id="4", decision=DecisionKind.ALLOW_ONCE))
    assert codec.data_to_send() == b""


@pytest.mark.parametrize(("method", "answer"), [
    ("item/permissions/requestApproval", {"result": {"permissions": {}, "scope": "turn"}}),
    ("mcpServer/elicitation/request",
     {"result": {"action": "decline", "content": None, "_meta": None}}),
    ("item/tool/call", {"error": {"code": -32601}}),
    ("execCommandApproval", {"error": {"code": -32601}}),
    ("brand/new", {"error": {"code": -32601}}),
])
def test_every_other_server_request_is_refused_at_once(method, answer):
    codec = CodexCodec(cwd=CWD)
    (notice,) = feed(codec, {"id": 9, "method": method, "params": {"reason": "net"}})
    assert isinstance(notice, Notice)
    (reply,) = sent(codec)
    assert reply["id"] == 9
    if "error" in answer:
        assert reply["error"]["code"] == -32601 and method in reply["error"]["message"]
    else:
        assert reply == {"id": 9, **answer}
    assert codec.pending_requests() == []


def test_interrupt_names_the_turn_and_waits_for_its_id():
    codec = CodexCodec(cwd=CWD)
    open_thread(codec, turn=False)
    codec.send(Interrupt())
    assert codec.data_to_send() == b""  # nothing runs: nothing to interrupt
    codec.send(SendPrompt(text="go"))
    turn_start = sent(codec)[0]
    codec.send(Interrupt())
    assert codec.data_to_send() == b""  # the turn has no id yet
    feed(codec, {"id": turn_start["id"], "result": {"turn": {"id": "u9", "status": "inProgress"}}})
    (interrupt,) = sent(codec)
    assert interrupt["method"] == "turn/interrupt"
    assert interrupt["params"] == {"threadId": "t1", "turnId": "u9"}
    (answered,) = feed(codec, {"id": interrupt["id"], "result": {}})
    assert answered == ControlAnswered(request_id=str(interrupt["id"]), ok=True, of="interrupt")
    (done,) = feed(codec, {"method": "turn/completed", "params": {
        "threadId": "t1", "turn": {"id": "u9", "status": "interrupted", "error": None}}})
    assert done.interrupted and not done.is_error


def test_abandon_declines_every_pending_approval():
    codec = CodexCodec(cwd=CWD)
    for wire_id in (0, 1):
        feed(codec, {"id": wire_id, "method": "item/commandExecution/requestApproval",
                     "params": {"itemId": f"c{wire_id}", "command": "ls"}})
    codec.abandon()
    assert sent(codec) == [{"id": 0, "result": {"decision": "decline"}},
                           {"id": 1, "result": {"decision": "decline"}}]
    assert codec.pending_requests() == []


def test_a_failed_turn_carries_codexs_error():
    codec = CodexCodec(cwd=CWD)
    open_thread(codec)
    assert feed(codec, {"method": "error", "params": {"threadId": "t1", "willRetry": True,
                                                      "error": {"message": "stream reset"}}}) == [
        Notice(text="Codex error, retrying: stream reset")]
    fatal = {"threadId": "t1", "willRetry": False, "error": {"message": "quota exceeded"}}
    assert feed(codec, {"method": "error", "params": fatal}) == []
    (done,) = feed(codec, {"method": "turn/completed", "params": {
        "threadId": "t1", "turn": {"id": "u1", "status": "failed", "error": None}}})
    assert done == TurnCompleted(is_error=True, error="quota exceeded", agent_session_id="t1")


def test_token_usage_is_the_threads_running_total():
    codec = CodexCodec(cwd=CWD)
    open_thread(codec)
    breakdown = {"totalTokens": 1500, "inputTokens": 1200, "cachedInputTokens": 0,
                 "outputTokens": 300, "reasoningOutputTokens": 0}
    assert feed(codec, {"method": "thread/tokenUsage/updated", "params": {
        "threadId": "t1", "turnId": "u1", "tokenUsage": {
            "total": breakdown, "last": {**breakdown, "totalTokens": 15},
            "modelContextWindow": 258400}}}) == [
        UsageUpdated(total_tokens=1500, input_tokens=1200, output_tokens=300)]
    # a report without totals (or with nonsense in them) changes nothing
    assert feed(codec, {"method": "thread/tokenUsage/updated",
                        "params": {"tokenUsage": {"total": {"totalTokens": "many"}}}}) == []


def test_other_threads_and_noise_are_dropped_and_the_unknown_is_kept():
    codec = CodexCodec(cwd=CWD)
    open_thread(codec)
    assert feed(codec, {"jsonrpc": "2.0", "method": "turn/completed", "params": {
        "threadId": "sub-agent", "turn": {"id": "x", "status": "completed"}}}) == []
    assert feed(codec, {"method": "item/agentMessage/delta", "params": {"delta": "a"}},
                {"method": "thread/tokenUsage/updated", "params": {}},
                {"method": "configWarning", "params": {"summary": "s"}}) == []
    message = {"method": "thread/brandNew", "params": {"x": 1}}
    assert feed(codec, message) == [UnknownEvent(type="thread/brandNew", raw=message)]


@pytest.mark.parametrize("line", [
    b'{"method": "item/started", "params": {oops\n',
    b'{"method": "turn/started", "params": [1, 2]}\n',
    b'{"method": 5}\n',
    b'{"id": 1}\n',
    b'{"method": "turn/started", "params": {"turn": {}}}\n',
    b'{"method": "item/started", "params": {"item": {"id": "x"}}}\n',
    b'{"method": "item/commandExecution/requestApproval", "id": true, "params": {}}\n',
])
def test_corrupt_lines_are_protocol_errors_with_the_line(line):
    with pytest.raises(ProtocolError) as info:
        CodexCodec(cwd=CWD).receive(line)
    assert info.value.line


def test_a_line_cut_off_at_end_of_output_is_an_error():
    codec = CodexCodec(cwd=CWD)
    assert codec.receive(b'{"method": "turn/sta') == []
    with pytest.raises(ProtocolError, match="middle of a line"):
        codec.receive_eof()


def test_argv_and_resume_hint():
    assert codex_argv(["codex", "app-server"], ["-c", "model=x"]) == [
        "codex", "app-server", "-c", "model=x"]
    assert resume_hint("t1") == "codex resume t1"
