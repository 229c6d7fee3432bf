"""Conformance: the REAL Codex in plan mode, driven from a Telegram topic (the mock model API on
127.0.0.1 calls `request_user_input`, then proposes a plan; see tests/test_real_codex.py for
the setup).

In plan mode (`/new … --plan`, no feature switch) Codex asks the model's `request_user_input`
with `item/tool/requestUserInput`; a tap in the chat answers it and the model receives the
chosen label. The plan the model then proposes (`<proposed_plan>`) arrives as a `plan` item
and reads as text in the thread. (Codex 0.169.0 offers this mock model no `update_plan` tool,
so `turn/plan/updated` is proven against the fake Codex: tests/test_plan_progress.py.) A
format the real binary rejects fails here; it is never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.fakes.model_api import OPENAI, FunctionCall, Text, ThreadedModelAPI
from tests.harness import Bridge
from tests.real_binaries import CODEX, START, use_real_codex

pytestmark = pytest.mark.real_agents


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI()
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


@pytest.fixture
def chat(make_bridge, tg, model) -> Bridge:
    bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    use_real_codex(bridge, CODEX.require(), model.base_url)
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    return bridge


PROPOSED = ("Here is the plan.\n<proposed_plan>\n# Greeting plan\n\n1. Write the greeting\n"
            "2. Check that it reads well\n</proposed_plan>")
QUESTION = {"id": "tone", "header": "Tone", "question": "Which tone should the greeting have?",
            "options": [{"label": "Warm", "description": "friendly"},
                        {"label": "Formal", "description": "for work"}]}


def test_plan_mode_request_user_input_is_answered_from_the_chat(chat, tg, model):
    """No `default_mode_request_user_input` switch: plan mode alone makes Codex ask."""
    model.script = lambda request: (
        Text(text=PROPOSED) if request.tool_results()
        else FunctionCall(name="request_user_input", arguments={"questions": [QUESTION]}))
    tg.say("/new demo plan a greeting --agent codex --plan")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    card = tg.message_with("Which tone should the greeting have?", thread, timeout=START)
    assert "Plan Mode" in str(model.requests(OPENAI)[0].body)  # Codex's plan mode asked it
    formal = next(b["callback_data"] for b in card.buttons if b["text"] == "Formal")
    assert "Formal" in tg.answer(tg.tap(card, formal)).text
    tg.message_with("Turn finished", thread, timeout=START)
    (output,) = model.requests(OPENAI)[-1].tool_results()
    assert json.loads(output) == {"answers": {"tone": {"answers": ["Formal"]}}}
    tg.message_with("Answered by", thread)
    # the plan Codex's plan mode proposes (a `plan` item) reads as text in the thread
    shown = tg.message_with("🗒 Plan", thread)
    assert "# Greeting plan" in shown.text and "2. Check that it reads well" in shown.text
    assert "<proposed_plan>" not in shown.text
