"""Conformance: modes, models, interrupt and steering with the REAL Claude Code and Codex
(against the mock model API on 127.0.0.1; see tests/test_real_claude.py for the setup).

Every wire format here is the daemon's, checked by what the real binary does with it: Claude
answers `set_permission_mode` with `{"mode": …}` and `set_model` with the model it resolved
(the mock then receives requests for that model); Codex takes `approvalPolicy`, `model` and
`collaborationMode` on `turn/start` and `turn/steer` into a running turn. An interrupt ends
the turn, keeps the process and the session, and a reply continues it. A format the real
binary rejects fails here; it is never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.model_api import (
    ANTHROPIC,
    OPENAI,
    ExecCommand,
    Text,
    ThreadedModelAPI,
    bash,
    text_only,
    tool_then_finish,
)
from tests.harness import Bridge, wait_until
from tests.real_binaries import (
    CLAUDE,
    CODEX,
    START,
    events,
    use_real_claude,
    use_real_codex,
    wait_approval,
)
from tests.telegram_harness import CHAT

pytestmark = pytest.mark.real_agents


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI(text_only("Planned."))
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


@pytest.fixture
def claude(make_bridge, model) -> Bridge:
    bridge = make_bridge()
    use_real_claude(bridge, CLAUDE.require(), model.base_url)
    bridge.start()
    return bridge


@pytest.fixture
def codex(make_bridge, model) -> Bridge:
    bridge = make_bridge()
    use_real_codex(bridge, CODEX.require(), model.base_url)
    bridge.start()
    return bridge


def settings(session: dict[str, Any]) -> list[dict[str, Any]]:
    return events(session, "settings_changed")


def test_claude_plan_mode_and_back_and_a_model_switch(claude, model):
    session = claude.json("new", "demo", "think first", "--plan")
    sid = session["id"]
    assert session["mode"] == "plan"
    session = claude.wait_state(sid, "idle", timeout=START)
    # the CLI answered set_permission_mode with {"mode": "plan"} and started the turn in it
    assert {"mode": "plan", "model": None} in settings(session)
    (started,) = events(session, "session_started")
    assert started["mode"] == "plan"

    claude.cli("mode", sid, "default")
    wait_until(lambda: {"mode": "default", "model": None} in settings(claude.session(sid)),
               timeout=START, what="Claude's answer to set_permission_mode default")
    claude.cli("model", sid, "sonnet")
    wait_until(lambda: any(s["model"] and s["model"] != "sonnet"
                           for s in settings(claude.session(sid))),
               timeout=START, what="Claude's answer to set_model (the resolved name)")
    resolved = claude.session(sid)["model"]
    assert resolved.startswith("claude-sonnet")
    claude.cli("send", sid, "go on")
    wait_until(lambda: claude.session(sid)["turns"] == 2, timeout=START, what="second turn")
    assert model.requests(ANTHROPIC)[-1].body["model"] == resolved
    assert claude.session(sid)["mode"] == "default"


def test_an_unknown_mode_is_refused_saying_which_there_are(claude):
    sid = claude.json("new", "demo", "hello")["id"]
    claude.wait_state(sid, "idle", timeout=START)
    refused = claude.cli("mode", sid, "nonsense", check=False)
    assert refused.returncode == 1 and "unknown mode" in refused.stderr
    assert "default, plan, acceptEdits" in refused.stderr


def test_from_telegram_plan_interrupt_queue_and_no_bypass(make_bridge, tg, model):
    """From a phone: start planning, see mode and model on the status card, be refused a
    mode that never asks (the error names the config key), queue a message mid-turn, and
    interrupt with the status card's button; the session waits for a reply, which the real
    Claude Code continues in the same process."""
    bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    use_real_claude(bridge, CLAUDE.require(), model.base_url)
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    tg.say("/new demo think about it --plan")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    tg.message_with("in plan mode", None, timeout=START)
    tg.wait_until(lambda: any("mode plan · model claude" in (m.text or "")
                              for m in tg.fake.messages_in(CHAT, thread)), START)

    tg.say("/mode bypassPermissions", thread=thread)
    refused = tg.message_with("allow_bypass_from_chat", thread, timeout=START)
    assert "[approvals] allow_bypass_from_chat = true" in refused.text
    tg.say("/mode acceptEdits", thread=thread)
    tg.message_with("mode acceptEdits.", thread, timeout=START)
    tg.say("/mode default", thread=thread)
    tg.message_with("mode default.", thread, timeout=START)

    model.script = tool_then_finish(bash("touch phone.txt"))
    tg.say("now do it", thread=thread)
    tg.message_with("Approval needed", thread, timeout=START)
    tg.say("and also this", thread=thread)
    tg.message_with("Queued: the agent reads it when the running turn ends", thread,
                    timeout=START)
    card = tg.message_with("waiting for approval", thread, timeout=START)
    interrupt = next(b["callback_data"] for row in card.reply_markup["inline_keyboard"]
                     for b in row if b["text"] == "Interrupt")
    assert "the session stays" in tg.answer(tg.tap(card, interrupt)).text
    tg.message_with("Turn interrupted by", thread, timeout=START)
    assert not (bridge.project / "phone.txt").exists()


def test_claude_interrupt_keeps_the_session_and_a_reply_continues_it(claude, model):
    model.script = tool_then_finish(bash("touch interrupted.txt"))
    sid = claude.json("new", "demo", "do something")["id"]
    wait_approval(claude, sid)
    claude.cli("interrupt", sid)
    session = claude.wait_state(sid, "idle", timeout=START)
    assert session["pending_approvals"] == []
    (approval,) = session["approvals"]
    assert approval["state"] != "allowed"  # withdrawn by the agent, never approved
    assert not (claude.project / "interrupted.txt").exists()
    (done,) = events(session, "turn_completed")
    assert done["interrupted"] is True
    assert not events(session, "exited")  # the process lives on

    model.script = text_only("Continued after the interrupt.")
    claude.cli("send", sid, "never mind, just say hi")
    wait_until(lambda: claude.session(sid)["turns"] == 2, timeout=START, what="the reply")
    session = claude.wait_state(sid, "idle", timeout=START)
    assert events(session, "turn_completed")[-1]["result_text"] == (
        "Continued after the interrupt.")
    assert not events(session, "resume") and not events(session, "exited")


def test_codex_plan_mode_model_and_policy_ride_on_the_turn(codex, model):
    session = codex.json("new", "demo", "plan it", "--agent", "codex", "--plan")
    sid = session["id"]
    codex.wait_state(sid, "idle", timeout=START)
    first = model.requests(OPENAI)[-1].body
    assert "Plan Mode" in str(first)  # Codex's plan collaboration mode instructions

    codex.cli("mode", sid, "default")
    codex.cli("model", sid, "gpt-mock-2")
    codex.cli("send", sid, "now do it")
    wait_until(lambda: codex.session(sid)["turns"] == 2, timeout=START, what="second turn")
    second = model.requests(OPENAI)[-1].body
    assert second["model"] == "gpt-mock-2"
    session = codex.session(sid)
    assert (session["mode"], session["model"]) == ("default", "gpt-mock-2")


def test_codex_steers_a_running_turn_and_interrupt_keeps_the_session(codex, model):
    model.script = tool_then_finish(ExecCommand(cmd="echo one > one.txt"))
    sid = codex.json("new", "demo", "run it", "--agent", "codex")["id"]
    (pending,) = wait_approval(codex, sid)
    codex.cli("send", sid, "ALSO STEERED IN")
    # the steer went into the running turn: no second turn/start, the turn still waits
    session = codex.session(sid)
    assert session["state"] == "waiting_approval" and session["turns"] == 0
    model.script = lambda request: Text(text="Stopped as asked.")
    codex.cli("deny", pending["id"])
    session = codex.wait_state(sid, "idle", timeout=START)
    assert session["turns"] == 1
    assert any("ALSO STEERED IN" in str(r.body) for r in model.requests(OPENAI))

    model.script = tool_then_finish(ExecCommand(cmd="echo two > two.txt"))
    codex.cli("send", sid, "run another")
    wait_approval(codex, sid)
    codex.cli("interrupt", sid)
    session = codex.wait_state(sid, "idle", timeout=START)
    assert events(session, "turn_completed")[-1]["interrupted"] is True
    assert not (codex.project / "two.txt").exists()
    model.script = text_only("Back again.")
    codex.cli("send", sid, "continue")
    wait_until(lambda: codex.session(sid)["turns"] == 3, timeout=START, what="the reply")
    assert not events(codex.json("show", sid), "resume")
