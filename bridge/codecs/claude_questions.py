"""Claude Code's AskUserQuestion input → the neutral `AskedQuestion`s.

The input (checked with the real 2.1.331): `questions[]` of `question`, `header`,
`multiSelect`, `options[]` of `label` and `description`. The CLI's own dialog always offers
a free-text "Other", so every question accepts a typed answer. The answer is keyed by the
question's text (see `ClaudeCodec._answer_questions`).
"""

from __future__ import annotations

from typing import Any

from bridge.errors import ProtocolError
from bridge.events import JSON, AskedQuestion, QuestionOption

ASK_USER_QUESTION = "AskUserQuestion"


def asked_questions(tool_input: JSON, line: str) -> tuple[AskedQuestion, ...]:
    """The questions of an AskUserQuestion input; a protocol error (with `line`) when it
    has none or one lacks its text, or two share a text (the answer could not tell them
    apart)."""
    raw = tool_input.get("questions")
    if not isinstance(raw, list) or not raw:
        raise ProtocolError("AskUserQuestion without questions", line)
    asked = tuple(_question(q, line) for q in raw)
    if len({q.key for q in asked}) != len(asked):
        raise ProtocolError("AskUserQuestion asks the same question twice", line)
    return asked


def _question(q: Any, line: str) -> AskedQuestion:
    if not isinstance(q, dict) or not isinstance(q.get("question"), str) or not q["question"]:
        raise ProtocolError("an AskUserQuestion question without its text", line)
    options = q.get("options") or []
    if not isinstance(options, list):
        raise ProtocolError("AskUserQuestion options are not a list", line)
    return AskedQuestion(
        key=q["question"],
        text=q["question"],
        header=q["header"] if isinstance(q.get("header"), str) else None,
        options=tuple(_option(o, line) for o in options),
        multi_select=q.get("multiSelect") is True,
        is_other=True,
    )


def _option(o: Any, line: str) -> QuestionOption:
    if not isinstance(o, dict) or not isinstance(o.get("label"), str) or not o["label"]:
        raise ProtocolError("an AskUserQuestion option without its label", line)
    description = o.get("description")
    return QuestionOption(label=o["label"],
                          description=description if isinstance(description, str) else None)
