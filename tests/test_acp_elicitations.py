"""ACP form elicitations (`session/create_elicitation`, earlier `elicitation/create`; the
bridge advertises `clientCapabilities.elicitation.form`): enum fields are option buttons,
a `<name>_custom` companion text field is that question's "Other…", anything a chat cannot
answer is declined with a notice, and nothing is made up when nobody answers. End to end on
both surfaces with the fake ACP agent asking the way claude-agent-acp asks AskUserQuestion."""

from __future__ import annotations

import json
from typing import Any

from bridge.codecs.acp import AcpCodec
from bridge.events import AnswerQuestions, ApprovalWithdrawn, Notice, QuestionsAsked
from tests.harness import Bridge, FakeAgent, wait_until
from tests.test_surface_contract import Driver, driver, start_bridge  # noqa: F401

FORM = {"type": "object", "properties": {
    "question_0": {"type": "string", "title": "Database", "oneOf": [
        {"const": "SQLite", "title": "SQLite"}, {"const": "Postgres", "title": "Postgres"}]},
    "question_0_custom": {"type": "string", "title": "Other"}}}


def lines(*messages: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def opened() -> AcpCodec:
    codec = AcpCodec(cwd="/repo")
    codec.start("ask me")
    codec.receive(lines(
        {"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": 1, "agentCapabilities": {}}},
        {"jsonrpc": "2.0", "id": 1, "result": {"sessionId": "s1"}}))
    codec.data_to_send()
    return codec


def ask(codec: AcpCodec, schema: Any = FORM, method: str = "session/create_elicitation",
        wire_id: int = 7) -> list[Any]:
    return codec.receive(lines({"jsonrpc": "2.0", "id": wire_id, "method": method, "params": {
        "sessionId": "s1", "mode": "form", "message": "Which database?",
        "requestedSchema": schema}}))


def replied(codec: AcpCodec) -> Any:
    return json.loads(codec.data_to_send().splitlines()[-1])["result"]


def test_a_form_is_one_question_with_other_for_its_companion_text_field():
    codec = opened()
    (asked,) = ask(codec)
    assert isinstance(asked, QuestionsAsked)
    (question,) = asked.questions  # the companion is not a card of its own
    assert [o.label for o in question.options] == ["SQLite", "Postgres"]
    assert question.is_other and question.key == "question_0"
    assert codec.pending_requests() == ["7"]
    codec.send(AnswerQuestions(request_id="7", answers={"question_0": ("Postgres",)}))
    assert replied(codec) == {"action": "accept", "content": {"question_0": "Postgres"}}


def test_a_typed_answer_goes_in_the_companion_field_and_no_answer_cancels():
    codec = opened()
    ask(codec, method="elicitation/create")
    codec.send(AnswerQuestions(request_id="7", answers={"question_0": ("DuckDB",)}))
    assert replied(codec) == {"action": "accept", "content": {"question_0_custom": "DuckDB"}}
    ask(codec, wire_id=8)
    codec.send(AnswerQuestions(request_id="8", answers={}))  # expired: not answered
    assert replied(codec) == {"action": "cancel"}


def test_what_a_chat_cannot_answer_is_declined_and_a_turn_end_withdraws_the_rest():
    codec = opened()
    (notice,) = ask(codec, schema={"type": "object", "properties": {"n": {"type": "number"}}})
    assert isinstance(notice, Notice) and "Declined" in notice.text
    assert replied(codec) == {"action": "decline"}
    ask(codec, wire_id=9)
    events = codec.receive(lines({"jsonrpc": "2.0", "id": 2, "result": {"stopReason": "end_turn"}}))
    assert ApprovalWithdrawn(request_id="9") in events
    assert replied(codec) == {"action": "cancel"}


def answers(bridge: Bridge) -> list[Any]:
    return [m["result"] for m in bridge.recorded()
            if isinstance(m.get("result"), dict) and "action" in m["result"]]


def test_an_acp_form_is_answered_from_the_chat(make_bridge: Any,
                                               driver: Driver) -> None:  # noqa: F811
    bridge = start_bridge(make_bridge, driver, agents={
        "acp": FakeAgent(protocol="acp", scenario="elicitation")})
    thread = driver.start_session("demo ask me --agent acp")
    card = driver.card_with(thread, "Which database?")
    assert [label for label, _ in card.buttons] == ["SQLite", "Postgres", "Other…"]
    driver.tap(card, card.payload("Postgres"))
    wait_until(lambda: answers(bridge), what="the form's answer to reach the agent")
    assert answers(bridge) == [{"action": "accept", "content": {"question_0": "Postgres"}}]
    assert "Form answered" in driver.card_with(thread, "Turn finished").text
