"""Codex's `item/tool/requestUserInput` → the neutral `AskedQuestion`s, and its answer.

The request (checked with the real 0.169.0): `{threadId, turnId, itemId, isBlocking,
questions[]}`, each question `{id, header, question, isOther, isSecret, options[] | null}`
with options `{label, description}`. The answer is `{"answers": {id: {"answers": [...]}}}`:
the chosen labels, or the one typed answer. A question nobody answered is left out, and the
model hears no answer for it (never a made-up one).
"""

from __future__ import annotations

from typing import Any

from bridge.errors import ProtocolError
from bridge.events import JSON, AskedQuestion, QuestionOption

REQUEST_USER_INPUT = "item/tool/requestUserInput"


def asked_inputs(params: JSON, line: str) -> tuple[AskedQuestion, ...]:
    raw = params.get("questions")
    if not isinstance(raw, list) or not raw:
        raise ProtocolError("requestUserInput without questions", line)
    asked = tuple(_question(q, line) for q in raw)
    if len({q.key for q in asked}) != len(asked):
        raise ProtocolError("requestUserInput asks two questions under one id", line)
    return asked


def _question(q: Any, line: str) -> AskedQuestion:
    if not isinstance(q, dict) or not all(isinstance(q.get(k), str) and q[k]
                                          for k in ("id", "question")):
        raise ProtocolError("a requestUserInput question without its id or text", line)
    options = q.get("options") or []
    if not isinstance(options, list):
        raise ProtocolError("requestUserInput options are not a list", line)
    return AskedQuestion(
        key=q["id"],
        text=q["question"],
        header=q["header"] if isinstance(q.get("header"), str) and q["header"] else None,
        options=tuple(_option(o, line) for o in options),
        is_other=q.get("isOther") is True,
        is_secret=q.get("isSecret") is True,
    )


def _option(o: Any, line: str) -> QuestionOption:
    if not isinstance(o, dict) or not isinstance(o.get("label"), str) or not o["label"]:
        raise ProtocolError("a requestUserInput option without its label", line)
    description = o.get("description")
    return QuestionOption(label=o["label"],
                          description=description if isinstance(description, str) else None)


def input_answers(answers: dict[str, tuple[str, ...]]) -> JSON:
    return {"answers": {key: {"answers": list(chosen)} for key, chosen in answers.items()}}
