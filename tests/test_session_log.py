"""The daemon's log says what happens to sessions: one INFO line per notable event, each
naming the session; `run --log-format json` writes the same as one JSON object per line;
configured secrets never reach it, in the message or in a field."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from bridge.config import load_config
from daemon import sessionlog
from daemon.app import setup_logging
from tests.fakes.model_api import ThreadedModelAPI, bash, tool_then_finish
from tests.harness import FakeAgent, wait_until
from tests.real_binaries import CLAUDE, START, use_real_claude, wait_approval

TOKEN = "123456:TEST-token"
LEAKY = [sys.executable, "-c",
         "import os, sys; sys.stderr.write('boom ' + os.environ['TELEGRAM_BOT_TOKEN'] + "
         "'\\n'); sys.exit(3)"]


class LeakyAgent(FakeAgent):
    """An agent that dies at once, printing the bot's token (in its environment, as every
    agent's) to its stderr: the reason the session failed then holds the token."""

    def command(self, record: Path) -> list[str]:
        return list(LEAKY)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def events_of(lines: list[dict[str, Any]], sid: str) -> list[str]:
    return [line["event"] for line in lines if line.get("session") == sid]


def test_each_session_event_is_one_json_line_with_the_session_id(make_bridge, tg):
    bridge = make_bridge(agents={
        "claude": ["approve"],
        "ask": FakeAgent(scenario="question"),
        "crash": ["crash_mid_approval"],
        "leaky": LeakyAgent(),
    }, extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = TOKEN
    bridge.start("--log-format", "json")

    asked = bridge.json("new", "demo", "please run a command")["id"]
    (approval,) = bridge.wait_approval(asked)
    bridge.cli("approve", approval["id"])
    bridge.wait_state(asked, "idle")
    bridge.cli("stop", asked)

    questioned = bridge.json("new", "demo", "ask me", "--agent", "ask")["id"]
    questions = wait_until(lambda: len(q := bridge.session(questioned)["pending_questions"])
                           == 2 and q, what="two questions")
    for question in questions:
        bridge.cli("answer", question["id"], question["options"][0]["label"])
    bridge.wait_state(questioned, "idle")

    crashed = bridge.json("new", "demo", "please run a command", "--agent", "crash")["id"]
    bridge.wait_state(crashed, "failed")
    leaked = bridge.json("new", "demo", "hello", "--agent", "leaky")["id"]
    bridge.wait_state(leaked, "failed")

    def logged() -> list[dict[str, Any]]:
        return json_lines(bridge.log.read_text())

    wait_until(lambda: "stopped" in events_of(logged(), asked), what="the stop in the log")
    lines = logged()  # every line parses: nothing but JSON objects
    assert events_of(lines, asked) == ["started", "approval_asked", "approval_decided",
                                       "turn_ended", "stopped"]
    assert events_of(lines, questioned) == ["started", "question_asked", "question_asked",
                                            "question_answered", "question_answered",
                                            "turn_ended"]
    assert events_of(lines, crashed)[:2] == ["started", "approval_asked"]
    assert {"approval_expired", "failed"} <= set(events_of(lines, crashed))
    assert events_of(lines, leaked)[-1] == "failed"

    by_event = {(line["session"], line["event"]): line for line in lines if "session" in line}
    decided = by_event[(asked, "approval_decided")]
    assert decided["level"] == "INFO" and decided["logger"] == "agent-bridge.sessions"
    assert decided["message"] == (f"session {asked}: approval {approval['id']} allowed "
                                  "(allow_once) by local CLI")
    assert (decided["approval"], decided["decision"]) == (approval["id"], "allow_once")
    turn = by_event[(asked, "turn_ended")]
    assert turn["cost_usd"] > 0 and f"${turn['cost_usd']:.4f}" in turn["message"]
    assert by_event[(asked, "stopped")]["by"] == "local CLI"
    assert by_event[(asked, "approval_asked")]["message"].endswith(
        "asked for Bash: $ echo hi > out.txt")
    failed = by_event[(leaked, "failed")]
    assert "exited with code 3" in failed["message"] and "boom [redacted]" in failed["message"]
    assert TOKEN not in bridge.log.read_text()


def test_the_text_format_says_the_same_in_a_line_a_person_reads(make_bridge):
    bridge = make_bridge()
    bridge.start()
    sid = bridge.json("new", "demo", "please run a command")["id"]
    (approval,) = bridge.wait_approval(sid)
    bridge.cli("deny", approval["id"], "--reason", "not now")
    bridge.wait_state(sid, "idle")
    text = wait_until(lambda: "turn ended" in (t := bridge.log.read_text()) and t,
                      what="the turn's end in the log")
    assert f"INFO agent-bridge.sessions: session {sid}: started in demo with claude by " \
           "local CLI" in text
    assert f"session {sid}: approval {approval['id']} asked for Bash: $ echo hi > out.txt" in text
    assert f"session {sid}: approval {approval['id']} denied (deny) by local CLI" in text
    assert f"session {sid}: turn ended ($0.0003" in text


class MissingAgent(FakeAgent):
    def command(self, record: Path) -> list[str]:
        return [str(record.parent / "no-such-agent")]


def test_an_agent_that_cannot_start_is_logged_as_failed(make_bridge):
    bridge = make_bridge(agents={"gone": MissingAgent()})
    bridge.start()
    refused = bridge.cli("new", "demo", "hello", "--agent", "gone", check=False)
    assert refused.returncode == 1
    (session,) = bridge.json("sessions")
    line = wait_until(lambda: [x for x in bridge.log.read_text().splitlines()
                               if f"session {session['id']}: failed: " in x],
                      what="the failed start in the log")
    assert "no-such-agent" in line[0] and " INFO " in line[0]


def test_secrets_are_filtered_from_json_lines_and_their_fields():
    config = load_config("[telegram]\nchat_id = -100123\n")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        setup_logging(config, {"TELEGRAM_BOT_TOKEN": TOKEN}, "json")
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        sessionlog.event("abc234", "failed", "failed: token %s in a message", TOKEN,
                         reason=f"and {TOKEN} in a field")
        logging.getLogger("httpx").warning("GET https://api.telegram.org/bot%s/getMe", TOKEN)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    (first, second) = json_lines(stream.getvalue())
    assert first["message"] == "session abc234: failed: token [redacted] in a message"
    assert first["reason"] == "and [redacted] in a field"
    assert (first["session"], first["event"]) == ("abc234", "failed")
    assert second["message"] == "GET https://api.telegram.org/bot[redacted]/getMe"
    assert TOKEN not in stream.getvalue()


@pytest.mark.real_agents
def test_the_real_claude_codes_session_events_are_logged(make_bridge):
    """The real Claude Code (against the mock model API): its approval, its decision and its
    turn's end with the cost it reports each make their line."""
    model = ThreadedModelAPI(tool_then_finish(bash("echo logged > out.txt")))
    try:
        bridge = make_bridge()
        use_real_claude(bridge, CLAUDE.require(), model.base_url)
        bridge.start("--log-format", "json")
        sid = bridge.json("new", "demo", "please run a command")["id"]
        (pending,) = wait_approval(bridge, sid)
        bridge.cli("approve", pending["id"])
        bridge.wait_state(sid, "idle", timeout=START)
        lines = wait_until(
            lambda: "turn_ended" in events_of(ls := json_lines(bridge.log.read_text()), sid)
            and ls, what="the real turn's end in the log")
    finally:
        model.close()
    assert events_of(lines, sid) == ["started", "approval_asked", "approval_decided",
                                     "turn_ended"]
    by_event = {line["event"]: line for line in lines if line.get("session") == sid}
    assert by_event["approval_asked"]["message"].endswith(
        "asked for Bash: $ echo logged > out.txt")
    assert by_event["turn_ended"]["cost_usd"] > 0
    assert (bridge.project / "out.txt").read_text() == "logged\n"
