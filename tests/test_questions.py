"""The question model (bridge/questions.py), the Claude codec's AskUserQuestion and the
session machine's question rules: synchronous, no fakes."""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import count

import pytest

from bridge import questions as q
from bridge.actions import ButtonAction, Verb, decode_button
from bridge.approvals import AccessPolicy, Actor, Refusal, RefusalReason
from bridge.codecs.claude import ClaudeCodec
from bridge.errors import IllegalTransition, ProtocolError
from bridge.events import AnswerQuestions, Interrupt, QuestionOption, QuestionsAsked
from bridge.machine import SessionMachine
from bridge.session import SessionState

ALICE = Actor(surface="telegram", user_id="1", name="alice")
MALLORY = Actor(surface="telegram", user_id="2", name="mallory")
POLICY = AccessPolicy(allowed={"telegram": frozenset({"1"})})
ASK = {"questions": [
    {"question": "Which database?", "header": "Database", "multiSelect": False,
     "options": [{"label": "SQLite", "description": "one file"}, {"label": "Postgres"}]},
    {"question": "Which colours?", "header": "Colours", "multiSelect": True,
     "options": [{"label": "Red"}, {"label": "Blue"}, {"label": "Green"}]},
]}


def question(**kw: object) -> q.Question:
    base = q.Question(id="q1", session_id="s1", request_id="r1", key="Which?", text="Which?",
                      asked_at=0.0,
                      options=(QuestionOption(label="A"), QuestionOption(label="B")))
    return replace(base, **kw)


def can_use_tool(request_id: str, tool_input: dict[str, object]) -> bytes:
    return (json.dumps({"type": "control_request", "request_id": request_id, "request": {
        "subtype": "can_use_tool", "tool_name": "AskUserQuestion", "input": tool_input,
        "tool_use_id": "toolu_1"}}) + "\n").encode()


# -- the model ------------------------------------------------------------------------------


def test_a_question_is_answered_once_with_one_of_its_options():
    answered = q.answer(question(), ALICE, now=5, policy=POLICY, labels=["B"])
    assert not isinstance(answered, Refusal)
    settled = answered.question
    assert (settled.state, settled.answer, settled.answered_by) == (
        q.QuestionState.ANSWERED, ("B",), "alice (telegram)")
    again = q.answer(settled, ALICE, now=6, policy=POLICY, labels=["A"])
    assert isinstance(again, Refusal) and again.reason is RefusalReason.ALREADY_DECIDED
    assert "Already answered by alice (telegram): B" in again.message
    with pytest.raises(IllegalTransition):
        q.settle(settled.state, q.QuestionState.EXPIRED)


@pytest.mark.parametrize(("kw", "labels", "text", "says"), [
    ({}, ["C"], None, "Not an option: C"),
    ({}, ["A", "B"], None, "takes one option"),
    ({}, [], None, "Choose an option first"),
    ({}, [], "free", "not a text"),
    ({"is_other": True}, ["A"], "free", "either labels or a text"),
])
def test_what_a_question_does_not_take_is_refused(kw, labels, text, says):
    refused = q.answer(question(**kw), ALICE, now=1, policy=POLICY, labels=labels, text=text)
    assert isinstance(refused, Refusal) and says in refused.message


def test_strangers_cannot_answer_or_toggle():
    assert isinstance(q.answer(question(), MALLORY, now=1, policy=POLICY, labels=["A"]), Refusal)
    assert isinstance(q.toggle(question(multi_select=True), 0, MALLORY, policy=POLICY), Refusal)


def test_multi_select_toggles_keep_the_options_order():
    one = question(multi_select=True)
    for index in (1, 0, 1, 1):
        toggled = q.toggle(one, index, ALICE, policy=POLICY)
        assert isinstance(toggled, q.Question)
        one = toggled
    assert one.selected == ("A", "B")
    assert isinstance(q.toggle(question(), 0, ALICE, policy=POLICY), Refusal)  # single select


def test_the_timer_never_answers():
    assert q.expire(question(), now=10, timeout=None) is None
    assert q.expire(question(), now=10, timeout=60) is None
    expired = q.expire(question(), now=61, timeout=60)
    assert expired is not None and expired.state is q.QuestionState.EXPIRED
    assert expired.answer == () and "the user did not answer" in (expired.reason or "")
    assert q.request_answers([expired]) == {}


def test_a_request_is_answered_when_none_of_its_questions_waits():
    first = q.answer(question(), ALICE, now=1, policy=POLICY, labels=["A"])
    assert not isinstance(first, Refusal)
    other = question(id="q2", key="Other?")
    assert q.request_answers([first.question, other]) is None
    assert q.request_answers([first.question, q.withdraw(other, now=2)]) == {"Which?": ("A",)}


def test_a_secret_answer_is_never_echoed():
    answered = q.answer(question(is_secret=True, options=()), ALICE, now=1, policy=POLICY,
                        text="hunter2")
    assert not isinstance(answered, Refusal)
    assert "hunter2" not in q.describe_answer(answered.question)
    assert "hunter2" not in q.describe_answer(answered.question, mine=True)


def test_option_buttons_carry_their_index_within_64_bytes():
    payload = ButtonAction(Verb.QUESTION_OPTION, "abcdefgh", 12).encode()
    assert payload == "qo:abcdefgh.12" and decode_button(payload) == ButtonAction(
        Verb.QUESTION_OPTION, "abcdefgh", 12)
    assert decode_button("qo:abcdefgh") is None and decode_button("ao:abcdefgh.1") is None
    assert decode_button("qo:abcdefgh.01") is None


# -- the Claude codec -------------------------------------------------------------------------


def test_ask_user_question_is_a_question_and_is_answered_with_answers():
    codec = ClaudeCodec()
    (asked,) = codec.receive(can_use_tool("r1", ASK))
    assert isinstance(asked, QuestionsAsked)
    db, colours = asked.questions
    assert (db.key, db.header, db.multi_select, db.is_other) == (
        "Which database?", "Database", False, True)
    assert db.options[0] == QuestionOption(label="SQLite", description="one file")
    assert colours.multi_select is True
    codec.send(AnswerQuestions(request_id="r1", answers={
        "Which database?": ("Postgres",), "Which colours?": ("Red", "Green")}))
    response = json.loads(codec.data_to_send())["response"]["response"]
    assert response == {"behavior": "allow", "updatedInput": {**ASK, "answers": {
        "Which database?": "Postgres", "Which colours?": "Red, Green"}}}


def test_no_answers_is_the_input_as_asked_never_a_made_up_answer():
    codec = ClaudeCodec()
    codec.receive(can_use_tool("r1", ASK))
    codec.send(AnswerQuestions(request_id="r1"))
    response = json.loads(codec.data_to_send())["response"]["response"]
    assert response == {"behavior": "allow", "updatedInput": ASK}


@pytest.mark.parametrize("bad", [{}, {"questions": []}, {"questions": [{"header": "x"}]},
                                 {"questions": [{"question": "a"}, {"question": "a"}]},
                                 {"questions": [{"question": "a", "options": [{}]}]}])
def test_a_malformed_ask_is_a_protocol_error(bad):
    with pytest.raises(ProtocolError):
        ClaudeCodec().receive(can_use_tool("r1", bad))


# -- the machine ------------------------------------------------------------------------------


def machine_with_questions() -> tuple[SessionMachine, tuple[q.Question, ...]]:
    ids = count(1)
    machine = SessionMachine(session_id="s1", state=SessionState.RUNNING, cwd="/p",
                             new_id=lambda: f"id{next(ids)}")
    (asked,) = ClaudeCodec().receive(can_use_tool("r1", ASK))
    facts = machine.received([asked], now=1)
    assert machine.state is SessionState.WAITING_APPROVAL and not facts.new_approvals
    return machine, facts.new_questions


def test_the_machine_answers_the_agent_once_every_question_is_settled():
    machine, (db, colours) = machine_with_questions()
    first = q.answer(db, ALICE, now=2, policy=POLICY, labels=["SQLite"])
    assert not isinstance(first, Refusal)
    facts = machine.question_settled(first.question, now=2)
    assert facts is not None and facts.to_agent == () and machine.waiting
    assert machine.question_settled(first.question, now=2) is None  # settled already
    expired = q.expire(colours, now=100, timeout=60)
    assert expired is not None
    facts = machine.question_settled(expired, now=100)
    assert facts is not None
    assert facts.to_agent == (AnswerQuestions(request_id="r1",
                                              answers={"Which database?": ("SQLite",)}),)
    assert machine.state is SessionState.RUNNING and not machine.waiting


def test_stop_expires_the_questions_and_tells_the_agent_nobody_answered():
    machine, _ = machine_with_questions()
    machine.turn_active = True
    facts = machine.stop(ALICE, None, now=3)
    assert {x.state for x in facts.settled_questions} == {q.QuestionState.EXPIRED}
    assert facts.to_agent == (AnswerQuestions(request_id="r1"), Interrupt())
