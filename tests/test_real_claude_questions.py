"""Conformance: the REAL Claude Code's AskUserQuestion answered through the daemon (the mock
model API on 127.0.0.1 asks the question; see tests/test_real_claude.py for the setup).

A question is not an approval: it is listed as `kind: "question"` with its options, answered
with labels (`agent-bridge answer ID LABEL…`), and the model receives the chosen labels in
the tool result. A format the real binary rejects fails here; it is never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.model_api import ANTHROPIC, ThreadedModelAPI, ToolUse, tool_then_finish
from tests.harness import Bridge, wait_until
from tests.real_binaries import CLAUDE, START, events, use_real_claude

pytestmark = pytest.mark.real_agents

COLOURS = {"question": "Which colours should the chart use?", "header": "Colours",
           "multiSelect": True,
           "options": [{"label": "Red", "description": "warm"},
                       {"label": "Blue", "description": "cool"},
                       {"label": "Green", "description": "calm"}]}
DB = {"question": "Which database?", "header": "Database", "multiSelect": False,
      "options": [{"label": "SQLite", "description": "one file"},
                  {"label": "Postgres", "description": "a server"}]}


def ask(*questions: dict[str, Any]) -> ToolUse:
    return ToolUse(name="AskUserQuestion", input={"questions": list(questions)})


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI(tool_then_finish(ask(DB)))
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


@pytest.fixture
def real(make_bridge, model) -> Bridge:
    binary: Path = CLAUDE.require()
    bridge = make_bridge()
    use_real_claude(bridge, binary, model.base_url)
    bridge.start()
    return bridge


def wait_questions(bridge: Bridge, sid: str, count: int = 1) -> list[dict[str, Any]]:
    return wait_until(lambda: (len(q := bridge.session(sid)["pending_questions"]) == count
                               and q), timeout=START, what=f"{count} question(s) in {sid}")


def last_tool_result(model: ThreadedModelAPI) -> str:
    (result,) = model.requests(ANTHROPIC)[-1].tool_results()
    return result


def test_a_single_select_question_answered_by_label(real, model):
    sid = real.json("new", "demo", "ask me about the database")["id"]
    (question,) = wait_questions(real, sid)
    assert question["kind"] == "question"
    assert question["text"] == "Which database?" and question["header"] == "Database"
    assert [o["label"] for o in question["options"]] == ["SQLite", "Postgres"]
    assert question["multi_select"] is False
    assert real.session(sid)["pending_approvals"] == []  # not an approval

    real.cli("answer", question["id"], "Postgres")
    session = real.wait_state(sid, "idle", timeout=START)
    assert '"Which database?"="Postgres"' in last_tool_result(model)
    (finished,) = events(session, "tool_finished")
    assert finished["is_error"] is False
    assert session["pending_questions"] == []


def test_a_multi_select_question_and_a_second_one_in_one_call(real, model):
    model.script = tool_then_finish(ask(COLOURS, DB))
    sid = real.json("new", "demo", "ask me two things")["id"]
    colours, db = wait_questions(real, sid, 2)
    assert colours["multi_select"] is True
    real.cli("answer", colours["id"], "Red", "Green")
    assert real.session(sid)["state"] == "waiting_approval"  # the other one still waits
    real.cli("answer", db["id"], "SQLite")
    real.wait_state(sid, "idle", timeout=START)
    result = last_tool_result(model)
    assert '"Which colours should the chart use?"="Red, Green"' in result
    assert '"Which database?"="SQLite"' in result


def test_a_typed_answer_goes_to_the_model(real, model):
    sid = real.json("new", "demo", "ask me about the database")["id"]
    (question,) = wait_questions(real, sid)
    real.cli("answer", question["id"], "--text", "DuckDB, in memory")
    real.wait_state(sid, "idle", timeout=START)
    assert '"Which database?"="DuckDB, in memory"' in last_tool_result(model)


def test_answered_from_telegram_the_model_receives_the_chosen_labels(make_bridge, tg, model):
    """A single-select tap and multi-select toggles + Submit on the question cards in a
    Telegram topic: the real Claude Code takes the answers and the model sees the labels."""
    model.script = tool_then_finish(ask(DB, COLOURS))
    bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    use_real_claude(bridge, CLAUDE.require(), model.base_url)
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    tg.say("/new demo ask me two things")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    db = tg.message_with("Which database?", thread, timeout=START)
    colours = tg.message_with("Which colours should the chart use?", thread, timeout=START)
    assert "Approval needed" not in db.text

    def payload(card: Any, label: str) -> str:
        return next(b["callback_data"] for b in card.buttons if b["text"] == label)

    assert "Answered: SQLite" in tg.answer(tg.tap(db, payload(db, "SQLite"))).text
    tg.answer(tg.tap(colours, payload(colours, "Red")))
    tg.answer(tg.tap(colours, payload(colours, "Blue")))
    assert "Answered: Red, Blue" in tg.answer(tg.tap(colours, payload(colours, "Submit"))).text
    summary = tg.message_with("Turn finished", thread, timeout=START)
    assert "All done." in summary.text
    result = last_tool_result(model)
    assert '"Which database?"="SQLite"' in result
    assert '"Which colours should the chart use?"="Red, Blue"' in result
