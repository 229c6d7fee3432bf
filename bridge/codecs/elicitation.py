"""MCP elicitations (a form an MCP server asks the user to fill) → the neutral questions.

Claude Code's `elicitation` control request and Codex's `mcpServer/elicitation/request` both
carry the MCP form: a `message` and a `requestedSchema` (`type: "object"`, `properties`,
`required`). Each property is one question keyed by its name: a string enum (`enum`, titled
`oneOf` of `const`/`title`, legacy `enumNames`) is a button per value, an array of such
values is toggles plus Submit, and a plain string (with or without a `format`) is answered
by reply. Anything else (numbers, booleans, a URL elicitation, a malformed schema) cannot be
answered from a chat: `form_of` says why, and the codec declines it with a notice the user
sees. The answer is `{"action": "accept", "content": {name: value}}`; when the user did
not answer a required field the MCP server hears `cancel` (never a made-up answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.events import JSON, AskedQuestion, QuestionOption

ONE, MANY, TEXT = "one", "many", "text"


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str  # ONE, MANY or TEXT
    title: str | None
    description: str | None
    values: tuple[tuple[str, str], ...] = ()  # (label shown, value sent) per option
    required: bool = False
    other: str | None = None  # the companion text field a typed answer goes in ("Other…")


@dataclass(frozen=True, slots=True)
class Form:
    server: str
    message: str
    fields: tuple[Field, ...]


def form_of(server: str, message: str, mode: Any, schema: Any, *,
            companions: bool = False) -> Form | str:
    """The form to ask, or why it cannot be answered from a chat. `companions`: an optional
    text field `<name>_custom` beside a choice `<name>` is that choice's "Other…" (how
    claude-agent-acp asks AskUserQuestion as an ACP form), not a question of its own."""
    if mode not in (None, "form"):
        return f"a {mode} elicitation"
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return "an elicitation without a form"
    required = schema.get("required") or []
    fields: list[Field] = []
    for name, prop in schema["properties"].items():
        field = _field(str(name), prop, name in required)
        if isinstance(field, str):
            return field
        fields.append(field)
    if companions:
        fields = _with_companions(fields)
    if not fields:
        return "an elicitation with an empty form"
    return Form(server=server, message=message, fields=tuple(fields))


def _with_companions(fields: list[Field]) -> list[Field]:
    texts = {f.name: f for f in fields if f.kind == TEXT and not f.required}
    merged: list[Field] = []
    used: set[str] = set()
    for f in fields:
        companion = texts.get(f"{f.name}_custom") if f.kind in (ONE, MANY) else None
        if companion is not None:
            used.add(companion.name)
            f = Field(f.name, f.kind, f.title, f.description, f.values, f.required,
                      other=companion.name)
        merged.append(f)
    return [f for f in merged if f.name not in used]


def _field(name: str, prop: Any, required: bool) -> Field | str:
    if not isinstance(prop, dict):
        return f"the field {name!r} has no schema"
    title = prop.get("title") if isinstance(prop.get("title"), str) else None
    about = prop.get("description") if isinstance(prop.get("description"), str) else None
    kind = prop.get("type")
    if kind == "string":
        values = _values(prop)
        if values:
            return Field(name, ONE, title, about, values, required)
        return Field(name, TEXT, title, about, (), required)
    if kind == "array" and isinstance(prop.get("items"), dict):
        values = _values(prop["items"])
        if values:
            return Field(name, MANY, title, about, values, required)
    return f"the field {title or name!r} ({kind or 'no type'}) cannot be answered from a chat"


def _values(prop: JSON) -> tuple[tuple[str, str], ...]:
    """(label, value) of a string enum: `oneOf`/`anyOf` of const+title, or `enum`
    (labelled by `enumNames` when given)."""
    titled = prop.get("oneOf") or prop.get("anyOf")
    if isinstance(titled, list) and titled:
        pairs = [(str(o.get("title") or o["const"]), str(o["const"]))
                 for o in titled if isinstance(o, dict) and "const" in o]
        return tuple(pairs) if len(pairs) == len(titled) else ()
    enum = prop.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        names = prop.get("enumNames")
        if isinstance(names, list) and len(names) == len(enum):
            return tuple((str(n), v) for n, v in zip(names, enum, strict=True))
        return tuple((v, v) for v in enum)
    return ()


def form_questions(form: Form) -> tuple[AskedQuestion, ...]:
    """One question per field; the server's message heads each one."""
    return tuple(
        AskedQuestion(
            key=field.name,
            text="\n".join(x for x in (form.message, _about(field)) if x),
            header=f"{form.server}: {field.title or field.name}",
            options=tuple(QuestionOption(label=label) for label, _ in field.values),
            multi_select=field.kind == MANY,
            is_other=field.other is not None,
        )
        for field in form.fields
    )


def _about(field: Field) -> str:
    if field.description:
        return f"{field.title or field.name}: {field.description}"
    return f"{field.title or field.name}?" if len(field.values) == 0 else ""


def form_response(form: Form, answers: dict[str, tuple[str, ...]]) -> JSON:
    """`accept` with the content for the answers; `cancel` when a required field (or every
    field) went unanswered: the user did not answer."""
    content: JSON = {}
    for field in form.fields:
        chosen = answers.get(field.name)
        if chosen is None:
            if field.required:
                return {"action": "cancel"}
            continue
        value_of = dict(field.values)
        if field.other is not None and chosen and chosen[0] not in value_of:
            content[field.other] = chosen[0]  # typed with "Other…"
            continue
        match field.kind:
            case "one":
                content[field.name] = value_of.get(chosen[0], chosen[0])
            case "many":
                content[field.name] = [value_of.get(label, label) for label in chosen]
            case _:
                content[field.name] = chosen[0] if chosen else ""
    if not content:
        return {"action": "cancel"}
    return {"action": "accept", "content": content}
