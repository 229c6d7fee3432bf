"""`/sessions local` and `/adopt` through the fake Telegram, over a session the REAL Claude
Code wrote in a "terminal": the list (prompts redacted), the refusal while a terminal
process holds it with an "Adopt anyway" button, the tap that adopts it into its own topic
opening with the recap, and a reply there that reaches the model with the earlier history."""

from __future__ import annotations

import os

import pytest

from tests.fakes.model_api import ANTHROPIC, ThreadedModelAPI
from tests.harness import Bridge
from tests.real_binaries import CLAUDE, START, use_real_claude
from tests.test_real_adopt import REPLY, answer, held_open, in_terminal, repo  # noqa: F401

pytestmark = pytest.mark.real_agents
SECRET = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
PROMPT = f"why does the deploy fail with token {SECRET}? look at the logs"


@pytest.fixture
def model():  # type: ignore[no-untyped-def]
    api = ThreadedModelAPI(answer)
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


def test_sessions_local_and_adopt_from_telegram(make_bridge, tg, model, repo):  # noqa: F811
    bridge: Bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    claude = CLAUDE.require()
    use_real_claude(bridge, claude, model.base_url)
    in_terminal(bridge, [str(claude), "-p", PROMPT, "--setting-sources="], repo, "claude")
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    (found,) = bridge.json("sessions", "--local")["sessions"]
    key = found["key"]

    tg.say("/sessions local")
    listing = tg.message_with("Adopt one with /adopt")
    assert key in listing.text and "feature/flaky" in listing.text
    assert "[redacted]" in listing.text and SECRET not in listing.text
    assert f"ad:{key}" in listing.callback_data

    holder = held_open(bridge, [str(claude), "--resume", found["id"], "--input-format",
                                "stream-json", "--output-format", "stream-json", "--verbose",
                                "--setting-sources="], repo, "claude")
    try:
        bridge_sessions = bridge.json("sessions")
        tg.say(f"/adopt {key} go on from the phone")
        refusal = tg.message_with("still open in a terminal", timeout=START)
        assert f"pid {holder.pid}" in refusal.text and f"/adopt {key} --force" in refusal.text
        assert bridge.json("sessions") == bridge_sessions == []
        assert "Adopted" in tg.answer(tg.tap(refusal, f"af:{key}")).text
    finally:
        os.killpg(holder.pid, 9)
        holder.wait(10)
    topic = tg.wait_for("createForumTopic", timeout=START).result["message_thread_id"]
    recap = tg.message_with("Adopted the claude terminal session", topic, timeout=START)
    assert f"Last answer: {REPLY}" in recap.text
    assert "@feature/flaky" in recap.text and "Changed files: notes.txt" in recap.text
    assert "[redacted]" in recap.text and SECRET not in recap.text
    (session,) = bridge.json("sessions")
    assert session["agent_session_id"] == found["id"]
    bridge.wait_state(session["id"], "idle", timeout=START)
    again = tg.answer(tg.tap(listing, f"ad:{key}")).text  # the list's button, once more
    assert f"already the bridge's session {session['id']}" in again

    tg.say("and now from the phone", thread=topic)
    model.wait_for(lambda r: "and now from the phone" in r.prompts(), timeout=START)
    latest = model.requests(ANTHROPIC)[-1]
    assert latest.prompts()[0] == PROMPT and REPLY in latest.all_text()
    bridge.wait_state(session["id"], "idle", timeout=START)
