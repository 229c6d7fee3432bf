"""A question's card: header and text, each option's description, one button per option
(its label), multi-select as toggles plus Submit, and "Other…" where a typed answer is
accepted. Once settled, the card says the answer (never a secret one) and who gave it."""

from __future__ import annotations

from bridge.actions import ButtonAction, Verb
from bridge.model import SessionView
from bridge.questions import Question, QuestionState
from bridge.redact import Redactor
from bridge.render import CARD_LIMIT, Button, Card, clock, shorten

# a button's label on a chat platform: longer ones are cut (the text has them whole)
BUTTON_LABEL = 60


def render_question_card(question: Question, session: SessionView, *,
                         redactor: Redactor) -> Card:
    title = f"❓ {question.header}" if question.header else "❓ Question"
    lines = [f"{title} · {session.id} · {session.place}", question.text]
    for option in question.options:
        mark = ""
        if question.multi_select and question.state is QuestionState.PENDING:
            mark = "☑ " if option.label in question.selected else "☐ "
        about = f": {option.description}" if option.description else ""
        lines.append(f"• {mark}{option.label}{about}")
    if question.state is not QuestionState.PENDING:
        lines.append(render_question_outcome(question))
        return Card(shorten("\n".join(lines), CARD_LIMIT, redactor))
    if question.multi_select:
        lines.append("(choose any, then Submit)")
    if question.is_secret:
        lines.append("(secret: answer by reply)")
    return Card(shorten("\n".join(lines), CARD_LIMIT, redactor), _buttons(question, redactor))


def _buttons(question: Question, redactor: Redactor) -> tuple[tuple[Button, ...], ...]:
    rows: list[tuple[Button, ...]] = []
    if not question.is_secret:
        for index, option in enumerate(question.options):
            on = question.multi_select and option.label in question.selected
            label = shorten(("✓ " if on else "") + option.label, BUTTON_LABEL, redactor)
            rows.append((Button(label, ButtonAction(Verb.QUESTION_OPTION, question.id,
                                                    index)),))
    last: list[Button] = []
    if question.multi_select and not question.is_secret:
        last.append(Button("Submit", ButtonAction(Verb.QUESTION_SUBMIT, question.id)))
    if question.is_other or question.is_secret or not question.options:
        last.append(Button("Other…" if question.options else "Answer…",
                           ButtonAction(Verb.QUESTION_OTHER, question.id)))
    if last:
        rows.append(tuple(last))
    return tuple(rows)


def render_question_outcome(question: Question) -> str:
    """How a settled question's card ends: the answer and who gave it, or why not."""
    when = f" at {clock(question.answered_at)}" if question.answered_at else ""
    match question.state:
        case QuestionState.ANSWERED:
            given = "(hidden)" if question.is_secret else ", ".join(question.answer)
            return f"✅ Answered by {question.answered_by}{when}: {given}"
        case QuestionState.EXPIRED:
            return f"⌛ Not answered{when}: {question.reason or 'the user did not answer'}"
        case QuestionState.WITHDRAWN:
            return f"↩ Withdrawn by the agent{when}"
        case QuestionState.PENDING:
            return "Waiting for an answer."
