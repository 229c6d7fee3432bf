"""Conformance: the REAL Codex binary (`codex app-server`, the version pinned in
tests/real_agents/package.json) driven through the daemon, against the mock OpenAI Responses
API on 127.0.0.1.

The same scenarios as tests/test_real_claude.py. Codex asks for every command under
`approvalPolicy: "untrusted"`; the mock model calls `exec_command`. Install the binaries with
scripts/install-real-agents; without them these tests skip (and fail under CI). They also skip,
CI or not, while the daemon has no Codex codec (bridge/codecs/codex.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.model_api import (
    OPENAI,
    ExecCommand,
    ModelRequest,
    Reply,
    ThreadedModelAPI,
    text_only,
    tool_then_finish,
)
from tests.harness import Bridge, wait_until
from tests.real_binaries import CODEX, START, events, use_real_codex, wait_approval

pytestmark = pytest.mark.real_agents


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI(tool_then_finish(ExecCommand(cmd="echo allowed > out.txt")))
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


@pytest.fixture
def codex_binary() -> Path:
    return CODEX.require()


@pytest.fixture
def real(make_bridge, model, codex_binary) -> Bridge:
    bridge = make_bridge()
    use_real_codex(bridge, codex_binary, model.base_url)
    bridge.start()
    return bridge


def new(bridge: Bridge, prompt: str = "please run a command") -> str:
    return bridge.json("new", "demo", prompt, "--agent", "codex")["id"]


def main_requests(model: ThreadedModelAPI) -> list[ModelRequest]:
    return model.requests(OPENAI)


def rollouts(bridge: Bridge, thread_id: str) -> list[Path]:
    """Codex's own record of the thread: $CODEX_HOME/sessions/YYYY/MM/DD/rollout-…-<id>.jsonl."""
    return sorted((bridge.tmp / "codex-home" / "sessions").rglob(f"rollout-*{thread_id}.jsonl"))


# -- the scenarios ---------------------------------------------------------------------------


def test_an_allowed_command_really_runs(real, model):
    sid = new(real)
    (pending,) = wait_approval(real, sid)
    assert pending["tool"] == "Bash"
    assert "echo allowed > out.txt" in pending["input"]["command"]
    assert real.session(sid)["state"] == "waiting_approval"
    assert not (real.project / "out.txt").exists()

    real.cli("approve", pending["id"])
    session = real.wait_state(sid, "idle", timeout=START)
    assert (real.project / "out.txt").read_text() == "allowed\n"
    (turn,) = events(session, "turn_completed")
    assert turn["result_text"].startswith("All done.")
    assert turn["is_error"] is False
    assert session["turns"] == 1
    (started,) = events(session, "session_started")
    assert started["version"] == CODEX.pinned
    assert session["agent_session_id"] == started["agent_session_id"]
    assert rollouts(real, session["agent_session_id"])
    first, second = main_requests(model)
    assert first.prompts() == ["please run a command"]
    (output,) = second.tool_results()
    assert "Process exited with code 0" in output


def test_on_request_asks_only_for_commands_the_model_escalates(make_bridge, model,
                                                                codex_binary):
    def script(request: ModelRequest) -> Reply:
        if "now escalate" in request.prompts():
            return ExecCommand(cmd="echo escalated > esc.txt", escalated=True,
                               justification="writes a marker the test checks")
        return ExecCommand(cmd="echo sandboxed > plain.txt")

    model.script = tool_then_finish(script)
    bridge = make_bridge()
    use_real_codex(bridge, codex_binary, model.base_url, approval_policy="on-request")
    bridge.start()
    sid = new(bridge)
    session = wait_until(lambda: (s := bridge.session(sid))["turns"] == 1
                         and s["state"] == "idle" and s, timeout=START, what="the first turn")
    assert session["approvals"] == []  # ran in the sandbox without asking
    assert (bridge.project / "plain.txt").read_text() == "sandboxed\n"

    bridge.cli("send", sid, "now escalate")
    (pending,) = wait_approval(bridge, sid)
    assert pending["description"] == "writes a marker the test checks"
    assert "echo escalated > esc.txt" in pending["input"]["command"]
    bridge.cli("approve", pending["id"])
    wait_until(lambda: (s := bridge.session(sid))["turns"] == 2 and s["state"] == "idle",
               timeout=START, what="the escalated turn to finish")
    assert (bridge.project / "esc.txt").read_text() == "escalated\n"


def test_a_declined_command_does_not_run_and_the_model_hears_the_reason(real, model):
    sid = new(real)
    (pending,) = wait_approval(real, sid)
    real.cli("deny", pending["id"], "--reason", "not in this repo")
    session = real.wait_state(sid, "idle", timeout=START)
    assert not (real.project / "out.txt").exists()
    # Codex's decline carries no reason: the model first only hears that the user rejected it
    (output,) = main_requests(model)[-1].tool_results()
    assert "rejected by user" in output
    assert real.session(sid)["approvals"][0]["state"] == "denied"
    # … and the reason reaches it with the next prompt
    model.script = text_only("ok then")
    real.cli("send", sid, "what now?")
    wait_until(lambda: real.session(sid)["turns"] == 2 and real.session(sid)["state"] == "idle",
               timeout=START, what="the second turn")
    latest = main_requests(model)[-1]
    assert "not in this repo" in latest.all_text()
    assert latest.prompts()[-1] == "what now?"
    assert session["turns"] == 1


def test_stop_while_an_approval_waits_ends_the_turn_and_the_process(real, model):
    sid = new(real)
    wait_approval(real, sid)
    stopped = real.json("stop", sid)
    assert stopped["state"] == "stopped"
    wait_until(lambda: real.leftovers() == [real.process.pid], timeout=START,
               what="the real codex (and everything it started) to exit")
    session = real.session(sid)
    assert session["state"] == "stopped"
    assert session["approvals"][0]["state"] == "denied"
    assert not (real.project / "out.txt").exists()
    assert len(main_requests(model)) == 1  # the turn ended: the model was not asked again


def test_resume_after_a_daemon_restart_continues_the_same_codex_thread(make_bridge, model,
                                                                         codex_binary):
    def script(request: ModelRequest) -> Reply:
        second = "and once more" in request.prompts()
        return ExecCommand(cmd="echo again > again.txt" if second else "echo first > first.txt")

    model.script = tool_then_finish(script)
    bridge = make_bridge()
    use_real_codex(bridge, codex_binary, model.base_url)
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
    assert "echo again > again.txt" in again["input"]["command"]
    bridge.cli("approve", again["id"])
    resumed = bridge.wait_state(sid, "idle", timeout=START)
    assert resumed["agent_session_id"] == first["agent_session_id"]
    assert (bridge.project / "first.txt").exists() and (bridge.project / "again.txt").exists()
    latest = main_requests(model)[-1]
    assert latest.prompts() == ["please run a command", "and once more"]
    assert "echo first > first.txt" in latest.all_text()  # the earlier turn's history
    assert len(rollouts(bridge, first["agent_session_id"])) == 1


def test_a_session_started_from_telegram_runs_the_allowed_command(make_bridge, tg, model,
                                                                  codex_binary):
    bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    use_real_codex(bridge, codex_binary, model.base_url)
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    tg.say("/new demo please run a command --agent codex")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    card = tg.message_with("Approval needed", thread, timeout=START)
    assert "echo allowed" in card.text
    # under "untrusted" Codex offers accept, an execpolicy amendment and cancel: no
    # acceptForSession, so no "Allow for session" button
    assert [b["text"] for b in card.buttons] == [
        "Allow once", "Deny", "Deny with reason…", "Stop"]
    approval = card.callback_data[0].split(":")[1]
    assert "Allowed once" in tg.answer(tg.tap(card, f"ao:{approval}")).text
    summary = tg.message_with("Turn finished", thread, timeout=START)
    assert "All done." in summary.text
    assert (bridge.project / "out.txt").read_text() == "allowed\n"
