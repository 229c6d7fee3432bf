"""Conformance: the REAL Claude Code binary (the version pinned in tests/real_agents/package.json)
driven through the daemon, against the mock Anthropic Messages API on 127.0.0.1.

Nothing here is faked on the agent's side: the daemon spawns the native `claude`, answers its
`can_use_tool` requests, and the command really runs (or not) in the project directory. The
mock model decides what "Claude" does (tests/fakes/model_api.py). Install the binaries with
scripts/install-real-agents; without them these tests skip (and fail under CI).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.model_api import (
    ANTHROPIC,
    ModelRequest,
    Reply,
    ThreadedModelAPI,
    bash,
    tool_then_finish,
    write,
)
from tests.harness import Bridge, wait_until
from tests.real_binaries import CLAUDE, START, events, use_real_claude, wait_approval

pytestmark = pytest.mark.real_agents


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI(tool_then_finish(bash("echo allowed > out.txt")))
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


@pytest.fixture
def claude_binary() -> Path:
    return CLAUDE.require()


@pytest.fixture
def real(make_bridge, model, claude_binary) -> Bridge:
    bridge = make_bridge()
    use_real_claude(bridge, claude_binary, model.base_url)
    bridge.start()
    return bridge


def new(bridge: Bridge, prompt: str = "please run a command") -> str:
    return bridge.json("new", "demo", prompt)["id"]


def main_requests(model: ThreadedModelAPI) -> list[ModelRequest]:
    return model.requests(ANTHROPIC)


def claude_transcript(bridge: Bridge, agent_session_id: str) -> Path:
    """Where Claude Code keeps the session: $CLAUDE_CONFIG_DIR/projects/<cwd>/<id>.jsonl, with
    every character of the cwd but letters and digits made a `-` (not only the slashes)."""
    folder = re.sub(r"[^A-Za-z0-9]", "-", str(bridge.project.resolve()))
    return bridge.tmp / "claude-config" / "projects" / folder / f"{agent_session_id}.jsonl"


# -- the scenarios ---------------------------------------------------------------------------


def test_an_allowed_command_really_runs(real, model):
    sid = new(real)
    (pending,) = wait_approval(real, sid)
    assert pending["tool"] == "Bash"
    assert pending["input"]["command"] == "echo allowed > out.txt"
    assert real.session(sid)["state"] == "waiting_approval"
    assert not (real.project / "out.txt").exists()

    real.cli("approve", pending["id"])
    session = real.wait_state(sid, "idle", timeout=START)
    assert (real.project / "out.txt").read_text() == "allowed\n"
    (turn,) = events(session, "turn_completed")
    assert turn["result_text"].startswith("All done.")
    assert session["turns"] == 1
    started = events(session, "session_started")
    assert started and started[0]["version"] == CLAUDE.pinned
    agent_session_id = session["agent_session_id"]
    assert agent_session_id == started[0]["agent_session_id"]
    assert claude_transcript(real, agent_session_id).exists()
    first, second = main_requests(model)
    assert first.prompts() == ["please run a command"]
    assert second.tool_results() == ["(Bash completed with no output)"]
    finished = events(session, "tool_finished")
    assert [f["is_error"] for f in finished] == [False]


def test_an_allowed_write_creates_the_file(real, model):
    target = real.project / "note.txt"
    model.script = tool_then_finish(write(str(target), "written by the real Write tool\n"))
    sid = new(real, "please write a note")
    (pending,) = wait_approval(real, sid)
    assert pending["tool"] == "Write"
    assert pending["input"] == {"file_path": str(target),
                                "content": "written by the real Write tool\n"}
    real.cli("approve", pending["id"])
    session = real.wait_state(sid, "idle", timeout=START)
    assert target.read_text() == "written by the real Write tool\n"
    (finished,) = events(session, "tool_finished")
    assert finished["is_error"] is False and str(target) in finished["output"]


def test_allow_for_session_is_remembered_by_the_real_cli(real, model):
    # `touch`, not `echo … > file`: 2.1.331 asks again for an output redirect even when the
    # session holds the rule it suggested itself (`Bash(echo allowed *)`)
    model.script = tool_then_finish(bash("touch marker.txt"))
    sid = new(real)
    (pending,) = wait_approval(real, sid)
    real.cli("approve", pending["id"], "--for-session")
    real.wait_state(sid, "idle", timeout=START)
    real.cli("send", sid, "and again")
    wait_until(lambda: ((s := real.session(sid))["turns"] == 2 and s["state"] == "idle")
               or s["pending_approvals"], timeout=START, what="the second turn")
    session = real.session(sid)
    assert session["pending_approvals"] == [] and session["turns"] == 2
    assert [f["is_error"] for f in events(session, "tool_finished")] == [False, False]
    assert len(session["approvals"]) == 1


def test_a_denied_command_does_not_run_and_the_model_sees_the_reason(real, model):
    sid = new(real)
    (pending,) = wait_approval(real, sid)
    real.cli("deny", pending["id"], "--reason", "not in this repo")
    session = real.wait_state(sid, "idle", timeout=START)
    assert not (real.project / "out.txt").exists()
    after = main_requests(model)[-1]
    (result,) = after.tool_results()
    assert "not in this repo" in result
    (finished,) = events(session, "tool_finished")
    assert finished["is_error"] is True and "not in this repo" in finished["output"]
    assert real.session(sid)["approvals"][0]["state"] == "denied"


def test_stop_while_an_approval_waits_ends_the_turn_and_the_process(real, model):
    sid = new(real)
    wait_approval(real, sid)
    stopped = real.json("stop", sid)
    assert stopped["state"] == "stopped"
    wait_until(lambda: real.leftovers() == [real.process.pid], timeout=START,
               what="the real claude (and everything it started) to exit")
    session = real.session(sid)
    assert session["state"] == "stopped"
    assert session["approvals"][0]["state"] == "denied"
    assert not (real.project / "out.txt").exists()
    assert len(main_requests(model)) == 1  # the turn ended: the model was not asked again
    (finished,) = events(session, "tool_finished")
    # with `interrupt: true` the real CLI puts its own rejection text in the tool_result,
    # not the deny message the daemon sent
    assert finished["is_error"] is True
    assert finished["output"].startswith("The user doesn't want to proceed with this tool use")
    (turn,) = events(session, "turn_completed")
    assert turn["interrupted"] is True
    assert [e["code"] for e in events(session, "exited")] == [1]


def test_resume_after_a_daemon_restart_continues_the_same_claude_session(make_bridge, model,
                                                                           claude_binary):
    def script(request: ModelRequest) -> Reply:
        second = "and once more" in request.prompts()
        return bash("echo again > again.txt" if second else "echo first > first.txt")

    model.script = tool_then_finish(script)
    bridge = make_bridge()
    use_real_claude(bridge, claude_binary, model.base_url)
    bridge.start()
    sid = new(bridge)
    (pending,) = wait_approval(bridge, sid)
    bridge.cli("approve", pending["id"])
    first = bridge.wait_state(sid, "idle", timeout=START)
    bridge.stop()
    bridge.start()
    assert bridge.session(sid)["state"] == "completed"

    bridge.cli("resume", sid, "and once more")
    (again,) = wait_approval(bridge, sid)
    assert again["input"]["command"] == "echo again > again.txt"
    bridge.cli("approve", again["id"])
    resumed = bridge.wait_state(sid, "idle", timeout=START)
    assert resumed["agent_session_id"] == first["agent_session_id"]
    assert (bridge.project / "first.txt").exists() and (bridge.project / "again.txt").exists()
    latest = main_requests(model)[-1]
    assert latest.prompts() == ["please run a command", "and once more"]
    assert "echo first > first.txt" in latest.all_text()  # the earlier turn's history
    started = events(resumed, "session_started")
    assert {s["agent_session_id"] for s in started} == {first["agent_session_id"]}


def test_a_session_started_from_telegram_runs_the_allowed_command(make_bridge, tg, model,
                                                                  claude_binary):
    bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    use_real_claude(bridge, claude_binary, model.base_url)
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    tg.say("/new demo please run a command")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    card = tg.message_with("Approval needed", thread, timeout=START)
    assert "echo allowed &gt; out.txt" in card.text or "echo allowed > out.txt" in card.text
    approval = card.callback_data[0].split(":")[1]
    assert "Allowed once" in tg.answer(tg.tap(card, f"ao:{approval}")).text
    summary = tg.message_with("Turn finished", thread, timeout=START)
    assert "All done." in summary.text
    assert (bridge.project / "out.txt").read_text() == "allowed\n"

