"""Questions: an agent asks a person to choose (or type) an answer. Not an approval.

One neutral model for every protocol that asks (Claude AskUserQuestion today; Codex
`requestUserInput` and MCP elicitations reuse it). A question is answered with labels (or,
when it accepts one, a free text), exactly once; a timer never answers: it expires the
question, and the agent hears that the user did not answer. Every change of state is made
here, through the `QUESTION_TRANSITIONS` table (`settle()` raises on any other move):

    pending ──answer()──▶ answered        a person chose labels or typed an answer
    pending ──expire()──▶ expired         nobody answered in time: "the user did not answer"
    pending ──abandon()──▶ expired        the agent no longer waits (exit, restart, stop)
    pending ──withdraw()──▶ withdrawn     the agent cancelled the request

Several questions may share one agent request (`request_id`, one card each); the request
is answered when none of them is pending (`request_answers()`). The store commits a settled
question with one conditional update (`state = 'pending'`), so two taps racing on two
surfaces settle it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from bridge.approvals import AccessPolicy, Actor, Refusal, RefusalReason
from bridge.errors import IllegalTransition
from bridge.events import AskedQuestion, QuestionOption

__all__ = [
    "NOT_ANSWERED",
    "QUESTION_TRANSITIONS",
    "Answered",
    "Question",
    "QuestionOption",
    "QuestionState",
    "abandon",
    "answer",
    "describe_answer",
    "expire",
    "from_asked",
    "request_answers",
    "settle",
    "toggle",
    "withdraw",
]

NOT_ANSWERED = "the user did not answer"


class QuestionState(StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    EXPIRED = "expired"  # nobody answered in time, or the agent stopped waiting
    WITHDRAWN = "withdrawn"  # the agent itself cancelled the request


QUESTION_TRANSITIONS: dict[QuestionState, frozenset[QuestionState]] = {
    QuestionState.PENDING: frozenset(
        {QuestionState.ANSWERED, QuestionState.EXPIRED, QuestionState.WITHDRAWN}
    ),
    QuestionState.ANSWERED: frozenset(),
    QuestionState.EXPIRED: frozenset(),
    QuestionState.WITHDRAWN: frozenset(),
}


def settle(current: QuestionState, target: QuestionState) -> QuestionState:
    """`target`, when the table allows the move from `current`; else IllegalTransition."""
    if target not in QUESTION_TRANSITIONS[current]:
        raise IllegalTransition("question", current.value, target.value)
    return target


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    """One question on one card. `key` is what the agent's answer is keyed by; `answer`
    holds the chosen labels (or the one typed answer) once answered."""

    id: str
    session_id: str
    request_id: str
    key: str
    text: str
    asked_at: float
    header: str | None = None
    options: tuple[QuestionOption, ...] = ()
    multi_select: bool = False
    is_other: bool = False
    is_secret: bool = False
    state: QuestionState = QuestionState.PENDING
    answer: tuple[str, ...] = ()
    selected: tuple[str, ...] = ()  # a multi-select question's options toggled on so far
    answered_by: str | None = None
    answered_at: float | None = None
    reason: str | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(option.label for option in self.options)


def from_asked(asked: AskedQuestion, *, id: str, session_id: str, request_id: str,
               now: float) -> Question:
    """The pending question drawn for one question an agent asked."""
    return Question(id=id, session_id=session_id, request_id=request_id, key=asked.key,
                    text=asked.text, header=asked.header, options=asked.options,
                    multi_select=asked.multi_select, is_other=asked.is_other,
                    is_secret=asked.is_secret, asked_at=now)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answered:
    """An answer that may be committed: `question` is the settled question to store."""

    question: Question


def answer(
    question: Question,
    actor: Actor,
    *,
    now: float,
    policy: AccessPolicy,
    labels: Sequence[str] = (),
    text: str | None = None,
) -> Answered | Refusal:
    """Check that `actor` may answer `question` with `labels` (or a free `text`), and the
    answered question. A single-select question takes exactly one label; a text only where
    the question accepts one (or has no options)."""
    if not policy.may_act(actor):
        return Refusal(reason=RefusalReason.NOT_ALLOWED,
                       message="You are not allowed to answer for this bridge.")
    if question.state is not QuestionState.PENDING:
        return Refusal(
            reason=(RefusalReason.ALREADY_DECIDED if question.state is QuestionState.ANSWERED
                    else RefusalReason.NO_LONGER_PENDING),
            message=describe_answer(question))
    typed = (text or "").strip()
    if typed:
        if labels:
            return _not_offered("Give either labels or a text, not both.")
        if question.options and not question.is_other:
            return _not_offered("This question takes one of its options, not a text.")
        chosen: tuple[str, ...] = (typed,)
    else:
        chosen = tuple(dict.fromkeys(labels))  # a label twice counts once
        unknown = [label for label in chosen if label not in question.labels]
        if unknown:
            offered = ", ".join(question.labels) or "none"
            return _not_offered(f"Not an option: {', '.join(unknown)} (options: {offered}).")
        if not chosen:
            return _not_offered("Choose an option first.")
        if len(chosen) > 1 and not question.multi_select:
            return _not_offered("This question takes one option.")
    return Answered(question=_settled(question, QuestionState.ANSWERED, now=now,
                                      answer=chosen, answered_by=actor.label))


def toggle(question: Question, index: int, actor: Actor, *,
           policy: AccessPolicy) -> Question | Refusal:
    """A multi-select question with its option `index` toggled (on when it was off)."""
    if not policy.may_act(actor):
        return Refusal(reason=RefusalReason.NOT_ALLOWED,
                       message="You are not allowed to answer for this bridge.")
    if question.state is not QuestionState.PENDING:
        return Refusal(reason=RefusalReason.NO_LONGER_PENDING, message=describe_answer(question))
    if not question.multi_select or not 0 <= index < len(question.options):
        return _not_offered("This button is no longer valid.")
    label = question.options[index].label
    on = [x for x in question.labels
          if (x in question.selected) != (x == label)]  # in the options' order
    return replace(question, selected=tuple(on))


def _not_offered(message: str) -> Refusal:
    return Refusal(reason=RefusalReason.NOT_OFFERED, message=message)


def expire(question: Question, *, now: float, timeout: float | None) -> Question | None:
    """The timer's move for `question` at `now`: expired when it is due, else None. A timer
    never answers: the agent hears that the user did not answer."""
    if question.state is not QuestionState.PENDING or timeout is None:
        return None
    if now - question.asked_at < timeout:
        return None
    minutes = max(1, round(timeout / 60))
    return _settled(question, QuestionState.EXPIRED, now=now, answered_by="timeout",
                    reason=f"no answer within {minutes} min; {NOT_ANSWERED}")


def abandon(question: Question, *, now: float, reason: str) -> Question:
    """The agent no longer waits (it exited, the daemon restarted, a person stopped it)."""
    return _settled(question, QuestionState.EXPIRED, now=now, reason=reason)


def withdraw(question: Question, *, now: float) -> Question:
    """The agent itself cancelled the request: nothing is answered."""
    return _settled(question, QuestionState.WITHDRAWN, now=now, answered_by="the agent",
                    reason="withdrawn by the agent")


def _settled(question: Question, target: QuestionState, *, now: float,
             answer: tuple[str, ...] = (), answered_by: str | None = None,
             reason: str | None = None) -> Question:
    """`question` settled in `target`: the one place a state changes (through the table)."""
    return replace(question, state=settle(question.state, target), answer=answer,
                   answered_by=answered_by, answered_at=now, reason=reason)


def request_answers(questions: Iterable[Question]) -> dict[str, tuple[str, ...]] | None:
    """What the agent is answered for one request's questions: key → the answer of each
    answered one (an expired one is left out: not answered, never made up); None while
    any of them is still pending."""
    answers: dict[str, tuple[str, ...]] = {}
    for question in questions:
        if question.state is QuestionState.PENDING:
            return None
        if question.state is QuestionState.ANSWERED:
            answers[question.key] = question.answer
    return answers


def describe_answer(question: Question, *, mine: bool = False) -> str:
    """One line a person reads about a question's state. A secret answer is never echoed."""
    given = "(hidden)" if question.is_secret else ", ".join(question.answer)
    match question.state:
        case QuestionState.PENDING:
            return "Waiting for an answer."
        case QuestionState.ANSWERED:
            if mine:
                return f"Answered: {given}."
            return f"Already answered by {question.answered_by}: {given}."
        case QuestionState.EXPIRED:
            return f"Expired: {question.reason or NOT_ANSWERED}."
        case QuestionState.WITHDRAWN:
            return "Withdrawn by the agent."
