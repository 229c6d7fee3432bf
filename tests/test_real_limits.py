"""Conformance: the REAL Claude Code and Codex report a usage limit and it reaches the chat.

Claude Code 2.1.331 reads the `anthropic-ratelimit-unified-*` headers of the model API's
answers, and emits `rate_limit_event` when their status changes, only when it is signed in to
a subscription or authenticated through an LLM gateway (a token whose audience is
`claude-gateway`); with a plain API key it ignores them. The mock model API sends the headers
and the binary is given an unsigned gateway token (tests/real_binaries.py). The notice goes to
the fake Telegram with the reset time the headers said, and "Resume at reset" resumes the
real session once that time has come.

Codex 0.169.0 reads `x-codex-primary-*` / `x-codex-secondary-*` headers (used percent, window,
reset) of the Responses API's answers and sends them as `account/rateLimits/updated`; a window
used up is the limit hit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.limits import RESUME_PROMPT
from tests.fakes.model_api import ANTHROPIC, ThreadedModelAPI, text_only
from tests.harness import Bridge, wait_until
from tests.real_binaries import CLAUDE, CODEX, use_real_claude, use_real_codex

pytestmark = pytest.mark.real_agents


def limit_headers(status: str, reset: int) -> dict[str, str]:
    return {"anthropic-ratelimit-unified-status": status,
            "anthropic-ratelimit-unified-reset": str(reset),
            "anthropic-ratelimit-unified-representative-claim": "five_hour"}


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI(text_only("Working on it."))
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


def test_a_real_rate_limit_event_reaches_the_chat_and_the_resume_fires(make_bridge, tg, model):
    binary = CLAUDE.require()
    reset = int(time.time()) + 20
    model.api.anthropic_headers = limit_headers("rejected", reset)
    bridge: Bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    use_real_claude(bridge, binary, model.base_url, gateway=True)
    bridge.start()
    tg.wait_for("getUpdates", ok=None)

    tg.say("/new demo do the long task")
    thread = tg.wait_for("createForumTopic", timeout=60).result["message_thread_id"]
    notice = tg.message_with("hit its usage limit", thread, timeout=60)
    session: dict[str, Any] = bridge.json("sessions")[0]
    sid = session["id"]
    assert session["limit_hit"] and session["limit_reset_at"] == reset  # the header's time
    assert time.strftime("%H:%M UTC", time.gmtime(reset)) in notice.text
    (first, *_) = [e["data"] for e in bridge.session(sid)["events"] if e["kind"] == "usage_limit"]
    assert (first["hit"], first["limit"], first["resets_at"]) == (True, "five_hour", reset)

    answer = tg.answer(tg.tap(notice, f"rr:{sid}"))
    assert f"{sid} resumes" in answer.text
    model.api.anthropic_headers = limit_headers("allowed", reset)  # the limit resets
    tg.message_with("resuming as scheduled", thread, timeout=60)
    request = model.wait_for(lambda r: r.api == ANTHROPIC and r.offers_tools
                             and RESUME_PROMPT in r.all_text(), timeout=60,
                             what="the resume prompt at the model")
    assert request.at >= reset - 1  # not before the reset
    wait_until(lambda: not bridge.json("sessions")[0]["limit_hit"], timeout=30,
               what="the limit cleared")


def test_a_real_codex_rate_limit_update_reaches_the_chat(make_bridge, tg, model):
    binary = CODEX.require()
    reset = int(time.time()) + 3600
    model.api.openai_headers = {
        "x-codex-primary-used-percent": "100", "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": str(reset), "x-codex-secondary-used-percent": "20",
        "x-codex-secondary-window-minutes": "10080",
        "x-codex-secondary-reset-at": str(reset + 86400)}
    bridge: Bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    use_real_codex(bridge, binary, model.base_url)
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    tg.say("/new demo do the long task --agent codex")
    thread = tg.wait_for("createForumTopic", timeout=60).result["message_thread_id"]
    notice = tg.message_with("hit its usage limit", thread, timeout=60)
    assert time.strftime("%H:%M UTC", time.gmtime(reset)) in notice.text
    assert [b["text"] for b in notice.buttons] == ["Resume at reset"]
    session = bridge.json("sessions")[0]
    assert session["limit_hit"] and session["limit_reset_at"] == reset
