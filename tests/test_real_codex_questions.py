"""Conformance: the REAL Codex's `item/tool/requestUserInput` answered through the daemon (the
mock model API on 127.0.0.1 calls `request_user_input`; see tests/test_real_codex.py for the
setup).

In its default collaboration mode Codex 0.169.0 answers the model's `request_user_input`
itself ("request_user_input is unavailable in Default mode") and never asks the client; it
asks in plan mode, or with the feature `default_mode_request_user_input` (turned on here, so
that the test does not depend on how a session enters plan mode). The answer is
`answers[id].answers[]`; the model receives it in the tool output. A format the real binary
rejects fails here; never a skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.model_api import (
    OPENAI,
    FunctionCall,
    Text,
    ThreadedModelAPI,
    tool_then_finish,
)
from tests.harness import Bridge, wait_until
from tests.real_binaries import CODEX, START, use_real_codex
from tests.telegram_harness import ALICE, CHAT

pytestmark = pytest.mark.real_agents

DB = {"id": "database", "header": "Database", "question": "Which database?",
      "options": [{"label": "SQLite", "description": "one file"},
                  {"label": "Postgres", "description": "a server"}]}
NAME = {"id": "project_name", "header": "Name", "question": "What should the project be called?",
        "options": [{"label": "atlas", "description": "short"},
                    {"label": "compass", "description": "longer"}]}


def ask(*questions: dict[str, Any]) -> FunctionCall:
    return FunctionCall(name="request_user_input", arguments={"questions": list(questions)})


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI(tool_then_finish(ask(DB, NAME)))
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


def start_codex(make_bridge: Any, model: ThreadedModelAPI, extra: str = "") -> Bridge:
    binary: Path = CODEX.require()
    bridge = make_bridge(extra=extra) if extra else make_bridge()
    use_real_codex(bridge, binary, model.base_url,
                   features=("default_mode_request_user_input",))
    return bridge


@pytest.fixture
def real(make_bridge, model) -> Bridge:
    bridge = start_codex(make_bridge, model)
    bridge.start()
    return bridge


def wait_questions(bridge: Bridge, sid: str, count: int = 1) -> list[dict[str, Any]]:
    try:
        return wait_until(lambda: (len(q := bridge.session(sid)["pending_questions"]) == count
                                   and q), timeout=START, what=f"{count} question(s) in {sid}")
    except AssertionError as e:
        session = bridge.session(sid)
        raise AssertionError(f"{e}\nsession: {session['state']} {session['error']}\n"
                             f"events: {session['events'][-6:]}\n"
                             f"daemon log: {bridge.log_text()[-3000:]}") from None


def tool_output(model: ThreadedModelAPI) -> Any:
    (output,) = model.requests(OPENAI)[-1].tool_results()
    return json.loads(output)


def test_request_user_input_answered_with_a_label_and_a_typed_answer(real, model):
    sid = real.json("new", "demo", "ask me two things", "--agent", "codex")["id"]
    db, name = wait_questions(real, sid, 2)
    assert db["kind"] == "question"
    assert (db["header"], db["text"]) == ("Database", "Which database?")
    assert [o["label"] for o in db["options"]] == ["SQLite", "Postgres"]
    assert db["options"][0]["description"] == "one file"
    assert real.session(sid)["pending_approvals"] == []  # not an approval

    real.cli("answer", db["id"], "Postgres")
    assert real.session(sid)["pending_questions"][0]["id"] == name["id"]  # one still waits
    real.cli("answer", name["id"], "--text", "lighthouse")
    real.wait_state(sid, "idle", timeout=START)
    assert tool_output(model) == {"answers": {"database": {"answers": ["Postgres"]},
                                              "project_name": {"answers": ["lighthouse"]}}}

    assert db["is_other"] is True  # Codex itself offers "Other" on every question


SECRET = {"id": "token", "header": "Token", "question": "Your deploy token?", "isSecret": True,
          "options": [{"label": "none", "description": "deploy without one"}]}
TOKEN = "tok-7f3a9c-deploy"


def test_a_secret_answered_from_telegram_is_deleted_and_never_stored(make_bridge, tg, model):
    """Codex asks a secret question: the card offers no option buttons but a reply; the reply
    reaches the model, is deleted from the chat, and is neither echoed nor stored."""
    model.script = lambda request: (Text(text="Thanks, deploying.") if request.tool_results()
                                    else ask(SECRET))  # the model does not repeat it
    bridge = start_codex(make_bridge, model, extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    tg.say("/new demo ask me a secret --agent codex")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    card = tg.message_with("Your deploy token?", thread, timeout=START)
    labels = [b["text"] for b in card.buttons]
    assert labels == ["Other…"], labels  # a secret is never a tap
    other = next(b["callback_data"] for b in card.buttons if b["text"] == "Other…")
    tg.answer(tg.tap(card, other))
    prompt = tg.message_with("Send your answer", thread)
    sent = tg.on(tg.fake.inject_message, CHAT, ALICE, TOKEN, thread_id=thread,
                 reply_to_message_id=prompt.message_id)["message"]
    tg.wait_for("deleteMessage", lambda c: c.params.get("message_id") == sent["message_id"])
    tg.message_with("Answered: (hidden)", thread)
    tg.message_with("Turn finished", thread, timeout=START)
    assert tool_output(model) == {"answers": {"token": {"answers": [TOKEN]}}}
    assert tg.on(lambda: (CHAT, sent["message_id"]) not in tg.fake.user_messages)
    assert all(TOKEN not in m.text for m in tg.messages(thread))  # never echoed
    settled = tg.message_with("Answered by", thread)
    assert "(hidden)" in settled.text and TOKEN not in settled.text
    stored = [f for f in (bridge.tmp / "state").rglob("*") if f.is_file()]
    assert any(f.name == "agent-bridge.db" for f in stored)
    assert not [f for f in stored if TOKEN.encode() in f.read_bytes()]
    assert TOKEN not in bridge.log.read_text()
