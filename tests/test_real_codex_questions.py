"""Conformance: the REAL Codex's `item/tool/requestUserInput` answered through the daemon (the
mock model API on 127.0.0.1 calls `request_user_input`; see tests/test_real_codex.py for the
setup).

Codex 0.169.0 offers the model `request_user_input` only in plan collaboration mode, or with
the feature `default_mode_request_user_input` (turned on here, so that the test does not
depend on how a session enters plan mode). The answer is `answers[id].answers[]`; the model
receives it in the tool output. A format the real binary rejects fails here; never a skip.
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
    ThreadedModelAPI,
    tool_then_finish,
)
from tests.harness import Bridge, wait_until
from tests.real_binaries import CODEX, START, use_real_codex

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


def test_probe_secret(real, model):
    secret = {"id": "token", "header": "Token", "question": "Your API token?",
              "is_secret": True, "isSecret": True,
              "options": [{"label": "skip", "description": "no token"}]}
    model.script = tool_then_finish(ask(secret))
    sid = real.json("new", "demo", "ask me a secret", "--agent", "codex")["id"]
    (q,) = wait_questions(real, sid, 1)
    print("QQ", q)
