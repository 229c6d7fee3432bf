"""Modes, models, interrupt and steering in the core: what each codec writes (the shapes the
real binaries accepted in tests/test_real_modes.py), which modes chat may choose, how the
commands parse, and what the status card shows."""

import json
from functools import partial

import pytest

from bridge import render
from bridge.actions import Verb
from bridge.codecs.acp import AcpCodec
from bridge.codecs.claude import ClaudeCodec
from bridge.codecs.codex import CodexCodec
from bridge.commands import CommandError, CommandName, parse_command
from bridge.events import (
    ControlAnswered,
    Notice,
    SendPrompt,
    SessionStarted,
    SetMode,
    SetModel,
    SettingsChanged,
)
from bridge.machine import SessionMachine
from bridge.model import SessionView
from bridge.modes import BYPASS_KEY, Mode, ModeError, codex_turn_settings, parse_mode
from bridge.redact import Redactor
from bridge.session import SessionState

CWD = "/src/api"


def lines(codec) -> list[dict]:
    return [json.loads(x) for x in codec.data_to_send().splitlines()]


def feed(codec, *messages: dict) -> list:
    return codec.receive(b"".join(json.dumps(m).encode() + b"\n" for m in messages))


# -- which modes, from where --------------------------------------------------------------


def test_chat_offers_default_plan_accept_edits_and_never_a_mode_that_never_asks():
    assert parse_mode("PLAN", from_chat=True, allow_bypass=False) is Mode.PLAN
    assert parse_mode("acceptedits", from_chat=True, allow_bypass=False) is Mode.ACCEPT_EDITS
    for never in ("bypassPermissions", "dontAsk", "auto"):
        with pytest.raises(ModeError, match=r"\[approvals\] allow_bypass_from_chat = true"):
            parse_mode(never, from_chat=True, allow_bypass=False)
        assert parse_mode(never, from_chat=True, allow_bypass=True).value == never
        assert parse_mode(never, from_chat=False, allow_bypass=False).value == never
    with pytest.raises(ModeError, match="unknown mode 'yolo'; modes: default, plan"):
        parse_mode("yolo", from_chat=False, allow_bypass=True)
    assert BYPASS_KEY == "[approvals] allow_bypass_from_chat"


def test_codex_turn_settings_per_mode():
    assert codex_turn_settings("plan", "untrusted") == ("untrusted", "plan")
    assert codex_turn_settings("default", "untrusted") == ("untrusted", "default")
    assert codex_turn_settings("acceptEdits", "untrusted") == ("on-request", "default")
    assert codex_turn_settings("bypassPermissions", "untrusted") == ("never", "default")


# -- Claude --------------------------------------------------------------------------------


def test_claude_mode_and_model_are_control_requests_answered_with_what_it_runs():
    codec = ClaudeCodec()
    codec.send(SetMode(mode="plan"))
    codec.send(SetModel(model="sonnet"))
    mode, model = lines(codec)
    assert mode["request"] == {"subtype": "set_permission_mode", "mode": "plan"}
    assert model["request"] == {"subtype": "set_model", "model": "sonnet"}
    # the shapes Claude Code 2.1.331 answers with
    events = feed(codec,
                  {"type": "control_response", "response": {
                      "subtype": "success", "request_id": mode["request_id"],
                      "response": {"mode": "plan"}}},
                  {"type": "control_response", "response": {
                      "subtype": "success", "request_id": model["request_id"],
                      "response": {"model": "claude-sonnet-5-5"}}})
    assert events[1] == SettingsChanged(mode="plan")
    assert events[3] == SettingsChanged(model="claude-sonnet-5-5")
    announced = feed(codec, {"type": "system", "subtype": "status", "status": None,
                           "permissionMode": "acceptEdits", "session_id": "s"})
    assert announced == [SettingsChanged(mode="acceptEdits")]


def test_claude_refusal_changes_nothing():
    codec = ClaudeCodec()
    codec.send(SetMode(mode="plan"))
    (mode,) = lines(codec)
    (event,) = feed(codec, {"type": "control_response", "response": {
        "subtype": "error", "request_id": mode["request_id"], "error": "no"}})
    assert event == ControlAnswered(request_id=mode["request_id"], ok=False, error="no",
                                    of="set_permission_mode")


# -- Codex ---------------------------------------------------------------------------------


def open_codex(codec: CodexCodec, prompt: str | None) -> None:
    codec.start(prompt)
    start = lines(codec)[-1]
    feed(codec, {"id": start["id"], "result": {"thread": {"id": "t1"}, "model": "gpt-x"}})


def test_codex_mode_and_model_ride_on_the_next_turn_start():
    codec = CodexCodec(cwd=CWD, approval_policy="untrusted")
    open_codex(codec, None)
    codec.send(SetMode(mode="plan"))
    assert codec.data_to_send() == b""  # nothing to send until a turn starts
    codec.send(SendPrompt(text="plan it"))
    (turn,) = lines(codec)
    assert turn["params"]["approvalPolicy"] == "untrusted"
    assert turn["params"]["collaborationMode"] == {
        "mode": "plan", "settings": {"model": "gpt-x", "reasoning_effort": None,
                                     "developer_instructions": None}}
    feed(codec, {"id": turn["id"], "result": {"turn": {"id": "u1"}}},
         {"method": "turn/completed", "params": {"threadId": "t1",
                                                 "turn": {"id": "u1", "status": "completed"}}})
    codec.send(SetModel(model="gpt-y"))
    codec.send(SetMode(mode="default"))
    codec.send(SendPrompt(text="do it"))
    (turn,) = lines(codec)
    assert turn["params"]["model"] == "gpt-y"
    assert turn["params"]["collaborationMode"]["mode"] == "default"
    assert turn["params"]["collaborationMode"]["settings"]["model"] == "gpt-y"


def test_codex_steers_a_running_turn_and_a_refused_steer_becomes_the_next_turn():
    codec = CodexCodec(cwd=CWD)
    open_codex(codec, "one")
    (turn,) = lines(codec)
    assert not codec.steers
    feed(codec, {"id": turn["id"], "result": {"turn": {"id": "u1"}}})
    assert codec.steers
    codec.send(SendPrompt(text="also this"))
    (steer,) = lines(codec)
    assert steer["method"] == "turn/steer"
    assert steer["params"] == {"threadId": "t1", "expectedTurnId": "u1",
                               "input": [{"type": "text", "text": "also this",
                                          "text_elements": []}]}
    codec.send(SendPrompt(text="late"))
    (steer,) = lines(codec)
    # the turn ended before it arrived: Codex refuses it (its words), and it runs next
    (notice,) = feed(codec, {"id": steer["id"], "error": {
        "code": -32600, "message": "expected active turn id `u1` but found `u2`"}})
    assert isinstance(notice, Notice) and "sent as the next turn" in notice.text
    feed(codec, {"method": "turn/completed", "params": {
        "threadId": "t1", "turn": {"id": "u1", "status": "completed"}}})
    (turn,) = lines(codec)
    assert turn["method"] == "turn/start"
    assert turn["params"]["input"][0]["text"] == "late"


# -- ACP -----------------------------------------------------------------------------------


def test_acp_set_mode_waits_for_the_session_and_checks_the_offered_modes():
    codec = AcpCodec(cwd=CWD)
    codec.start("hi")
    codec.send(SetMode(mode="plan"))
    codec.send(SetModel(model="m2"))
    (init,) = lines(codec)
    feed(codec, {"jsonrpc": "2.0", "id": init["id"],
                 "result": {"protocolVersion": 1, "agentCapabilities": {}}})
    (new,) = lines(codec)
    events = feed(codec, {"jsonrpc": "2.0", "id": new["id"], "result": {
        "sessionId": "s1",
        "modes": {"currentModeId": "default",
                  "availableModes": [{"id": "default", "name": "Default"},
                                     {"id": "plan", "name": "Plan"}]}}})
    assert isinstance(events[0], SessionStarted) and events[0].mode == "default"
    assert any(isinstance(e, Notice) and "no choice of model" in e.text for e in events)
    set_mode, prompt = lines(codec)
    assert set_mode["method"] == "session/set_mode"
    assert set_mode["params"] == {"sessionId": "s1", "modeId": "plan"}
    assert prompt["method"] == "session/prompt"  # after the mode: the turn runs in it
    assert feed(codec, {"jsonrpc": "2.0", "id": set_mode["id"], "result": {}}) == [
        SettingsChanged(mode="plan")]
    codec.send(SetMode(mode="acceptEdits"))
    assert codec.data_to_send() == b""
    (notice,) = codec.receive(b"")
    assert "offers no mode 'acceptEdits'" in notice.text


# -- the machine, commands, the card ---------------------------------------------------------


def test_the_machine_keeps_what_the_agent_runs_in():
    machine = SessionMachine(session_id="s", state=SessionState.STARTING, cwd=CWD,
                             new_id=lambda: "q")
    facts = machine.received([SessionStarted(agent_session_id="a", model="m1", mode="plan")],
                             0.0)
    assert facts.changes["model"] == "m1" and facts.changes["mode"] == "plan"
    facts = machine.received([SettingsChanged(model="m2")], 1.0)
    assert facts.changes["model"] == "m2" and "mode" not in facts.changes


def test_mode_model_and_interrupt_commands_parse():
    mode = parse_command("/mode abc234 plan")
    assert (mode.name, mode.session_id, mode.argument) == (CommandName.MODE, "abc234", "plan")
    # in a thread one word is the mode, though `plan` would also read as an id
    mode = parse_command("/mode plan", thread_session="abc234")
    assert (mode.session_id, mode.argument) == ("abc234", "plan")
    model = parse_command("/model opus", thread_session="abc234")
    assert (model.name, model.argument) == (CommandName.MODEL, "opus")
    assert isinstance(parse_command("/model"), CommandError)
    assert isinstance(parse_command("/mode plan"), CommandError)
    stop = parse_command("/interrupt", thread_session="abc234")
    assert (stop.name, stop.session_id) == (CommandName.INTERRUPT, "abc234")
    new = parse_command("/new api fix the test --plan")
    assert new.plan and new.prompt == "fix the test"


def test_the_status_card_shows_mode_and_model_and_offers_interrupt_mid_turn():
    card = partial(render.render_status_card, now=0.0, redactor=Redactor())
    session = SessionView(id="abc234", project="api", agent="claude", protocol="claude",
                          cwd=CWD, state=SessionState.RUNNING, created_at=0.0, updated_at=0.0,
                          mode="plan", model="claude-sonnet-5-5")
    running = card(session)
    assert "mode plan · model claude-sonnet-5-5" in running.text
    labels = [b.label for row in running.buttons for b in row]
    assert labels[:2] == ["Interrupt", "Stop"]
    assert running.buttons[0][0].action.verb is Verb.INTERRUPT
    idle = card(SessionView(**{**{f: getattr(session, f) for f in session.__slots__},
                               "state": SessionState.IDLE, "mode": None, "model": None}))
    assert "Interrupt" not in [b.label for row in idle.buttons for b in row]
    assert "mode" not in idle.text
