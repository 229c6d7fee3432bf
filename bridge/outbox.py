"""Outbox intents: what the daemon asks every chat surface to show, as typed values.

The daemon writes an intent to the outbox in the same transaction as the event behind it;
delivery reads it back and shows it. On disk an intent is a `kind` (an `OutboxKind`) and
a JSON payload; `encode()` and `decode()` are the only places that know that form.

Decoding is strict about what an intent needs and tolerant of the rest: a missing
required field raises `MalformedIntent`, a field of the wrong form raises `ValueError`
(e.g. a file's bytes that are not hex), an unknown kind raises `UnknownIntent`; fields
rows of an older version lack take their defaults, and fields it does not know are
ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from bridge.errors import BridgeError


class OutboxKind(StrEnum):
    """The `kind` column of an outbox row."""

    SESSION_OPENED = "session_opened"
    STATUS = "status"
    APPROVAL = "approval"
    APPROVAL_SETTLED = "approval_settled"
    APPROVAL_REMINDER = "approval_reminder"
    QUESTION = "question"
    QUESTION_SETTLED = "question_settled"
    PLAN = "plan"
    SUMMARY = "summary"
    DIFF = "diff"
    ARCHIVED = "archived"
    UNARCHIVED = "unarchived"
    TEXT = "text"
    FILE = "file"
    DIGEST = "digest"
    NOTICE = "notice"


class Priority(IntEnum):
    """Who waits for an item (or a call to a chat platform), the most urgent first: the
    order in which a chat's rate budget is spent (daemon/pacing.py)."""

    ANSWER = 0  # a person asked for it: the answer to a command or a tap
    CARD = 1  # a new approval card: an agent and a person wait for it
    STORY = 2  # what tells the story: decided cards, summaries, texts, files, new threads
    STATUS = 3  # status cards and thread titles, coalesced to the latest state


def priority_of(kind: str, payload: Mapping[str, Any]) -> Priority:
    """How urgent an outbox row is: a diff is only ever asked for by a person, and so is
    a digest marked `requested` (by /digest); a new approval card is a card."""
    if kind == OutboxKind.DIFF or (kind == OutboxKind.DIGEST and payload.get("requested")):
        return Priority.ANSWER
    if kind == OutboxKind.QUESTION_SETTLED and payload.get("toggled"):
        return Priority.ANSWER  # the card shows what a person's tap toggled
    if kind in (OutboxKind.APPROVAL, OutboxKind.QUESTION):
        return Priority.CARD
    if kind == OutboxKind.STATUS:
        return Priority.STATUS
    return Priority.STORY


class UnknownIntent(BridgeError):
    """An outbox row of a kind this version does not know (written by a newer one)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        super().__init__(f"unknown outbox kind {kind!r}")


class MalformedIntent(BridgeError):
    """An outbox row that lacks a field its kind requires."""

    def __init__(self, kind: str, field: str) -> None:
        self.kind = kind
        self.field = field
        super().__init__(f"outbox {kind!r} item without {field!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenThread:
    """Make the session's thread with its status card (a new session)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshStatus:
    """The session's status changed: its card is edited when the budget allows."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PostApproval:
    """Post the approval card of a new request."""

    approval_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateApproval:
    """An approval was settled: its card is edited to show how."""

    approval_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PostQuestion:
    """Post the card of a question an agent asked."""

    question_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateQuestion:
    """A question's card changes: options toggled (`toggled`: the answer to a person's
    tap, as urgent as one), or answered, expired, withdrawn."""

    question_id: str
    toggled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ShowPlan:
    """The agent's plan as it stands: posted once per turn (`key`), then edited in place
    when its steps change. Steps are (text, status) pairs."""

    key: str
    steps: tuple[tuple[str, str], ...] = ()
    text: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RemindApproval:
    """An approval has waited long: remind the person, unless it is no longer pending."""

    approval_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PostSummary:
    """A turn ended: its summary, then its diff. The rest of the summary (changes, last
    check, resume command) is read when it is delivered."""

    final_text: str | None = None
    is_error: bool = False
    interrupted: bool = False
    stopped_by: str | None = None
    error: str | None = None
    cost_usd: float | None = None
    duration_ms: int | None = None
    num_turns: int | None = None
    turn: int | None = None  # which of the session's turns (its diff is that turn's own)


@dataclass(frozen=True, slots=True, kw_only=True)
class PostDiff:
    """Someone asked for the session's diff: the whole of it, or turn `turn`'s own."""

    turn: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetArchived:
    """The session was archived (its thread closed) or unarchived (reopened)."""

    archived: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PostText:
    """A plain message in the session's thread."""

    text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendFile:
    """A file in the session's thread."""

    filename: str
    data: bytes
    caption: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PostNotice:
    """Something people must see in the session's thread: a request the bridge refused, a
    deny reason that could not travel, the agent's usage limit (`limit`: shown with the
    session's reset time and the "Resume at reset" button, read when it is delivered)."""

    text: str = ""
    limit: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class PostDigest:
    """The digest, in the chat itself; `requested` (by /digest) says so even when empty."""

    requested: bool = False


Intent = (OpenThread | RefreshStatus | PostApproval | UpdateApproval | RemindApproval
          | PostQuestion | UpdateQuestion | ShowPlan | PostSummary | PostDiff | SetArchived
          | PostText | SendFile | PostDigest | PostNotice)


def encode(intent: Intent) -> tuple[OutboxKind, dict[str, Any]]:
    """The outbox row's kind and JSON payload for `intent`."""
    match intent:
        case OpenThread():
            return OutboxKind.SESSION_OPENED, {}
        case RefreshStatus():
            return OutboxKind.STATUS, {}
        case PostApproval(approval_id=approval_id):
            return OutboxKind.APPROVAL, {"approval_id": approval_id}
        case UpdateApproval(approval_id=approval_id):
            return OutboxKind.APPROVAL_SETTLED, {"approval_id": approval_id}
        case RemindApproval(approval_id=approval_id):
            return OutboxKind.APPROVAL_REMINDER, {"approval_id": approval_id}
        case PostQuestion(question_id=question_id):
            return OutboxKind.QUESTION, {"question_id": question_id}
        case UpdateQuestion(question_id=question_id, toggled=toggled):
            payload: dict[str, Any] = {"question_id": question_id}
            if toggled:
                payload["toggled"] = True
            return OutboxKind.QUESTION_SETTLED, payload
        case ShowPlan(key=key, steps=steps, text=text):
            return OutboxKind.PLAN, {"key": key, "steps": [list(s) for s in steps],
                                     "text": text}
        case PostSummary():
            return OutboxKind.SUMMARY, {
                "final_text": intent.final_text,
                "is_error": intent.is_error,
                "interrupted": intent.interrupted,
                "stopped_by": intent.stopped_by,
                "error": intent.error,
                "cost_usd": intent.cost_usd,
                "duration_ms": intent.duration_ms,
                "num_turns": intent.num_turns,
                "turn": intent.turn,
            }
        case PostDiff(turn=turn):
            return OutboxKind.DIFF, {} if turn is None else {"turn": turn}
        case SetArchived(archived=archived):
            return (OutboxKind.ARCHIVED if archived else OutboxKind.UNARCHIVED), {}
        case PostText(text=text):
            return OutboxKind.TEXT, {"text": text}
        case SendFile():
            return OutboxKind.FILE, {"filename": intent.filename, "hex": intent.data.hex(),
                                     "caption": intent.caption}
        case PostDigest(requested=requested):
            return OutboxKind.DIGEST, {"requested": requested}
        case PostNotice(text=text, limit=limit):
            return OutboxKind.NOTICE, {"text": text, "limit": limit}


def decode(kind: str, payload: Mapping[str, Any]) -> Intent:
    """The intent an outbox row holds (see the module's docstring for what raises)."""
    try:
        known = OutboxKind(kind)
    except ValueError:
        raise UnknownIntent(kind) from None
    return _DECODERS[known](known, payload)


def _required(kind: str, payload: Mapping[str, Any], field: str) -> Any:
    try:
        return payload[field]
    except KeyError:
        raise MalformedIntent(kind, field) from None


def _summary(kind: str, p: Mapping[str, Any]) -> PostSummary:
    return PostSummary(
        final_text=p.get("final_text"),
        is_error=bool(p.get("is_error")),
        interrupted=bool(p.get("interrupted")),
        stopped_by=p.get("stopped_by"),
        error=p.get("error"),
        cost_usd=p.get("cost_usd"),
        duration_ms=p.get("duration_ms"),
        num_turns=p.get("num_turns"),
        turn=p.get("turn"),
    )


def _plan(kind: str, p: Mapping[str, Any]) -> ShowPlan:
    steps = p.get("steps") or []
    text = p.get("text")
    return ShowPlan(key=str(_required(kind, p, "key")),
                    steps=tuple((str(s[0]), str(s[1])) for s in steps),
                    text=text if isinstance(text, str) else None)


def _file(kind: str, p: Mapping[str, Any]) -> SendFile:
    return SendFile(filename=str(_required(kind, p, "filename")),
                    data=bytes.fromhex(str(_required(kind, p, "hex"))),
                    caption=str(p.get("caption", "")))


_DECODERS: dict[OutboxKind, Callable[[str, Mapping[str, Any]], Intent]] = {
    OutboxKind.SESSION_OPENED: lambda k, p: OpenThread(),
    OutboxKind.STATUS: lambda k, p: RefreshStatus(),
    OutboxKind.APPROVAL: lambda k, p: PostApproval(
        approval_id=str(_required(k, p, "approval_id"))),
    OutboxKind.APPROVAL_SETTLED: lambda k, p: UpdateApproval(
        approval_id=str(_required(k, p, "approval_id"))),
    OutboxKind.APPROVAL_REMINDER: lambda k, p: RemindApproval(
        approval_id=str(_required(k, p, "approval_id"))),
    OutboxKind.QUESTION: lambda k, p: PostQuestion(
        question_id=str(_required(k, p, "question_id"))),
    OutboxKind.QUESTION_SETTLED: lambda k, p: UpdateQuestion(
        question_id=str(_required(k, p, "question_id")), toggled=bool(p.get("toggled"))),
    OutboxKind.PLAN: _plan,
    OutboxKind.SUMMARY: _summary,
    OutboxKind.DIFF: lambda k, p: PostDiff(turn=p.get("turn")),
    OutboxKind.ARCHIVED: lambda k, p: SetArchived(archived=True),
    OutboxKind.UNARCHIVED: lambda k, p: SetArchived(archived=False),
    OutboxKind.TEXT: lambda k, p: PostText(text=str(p.get("text", ""))),
    OutboxKind.FILE: _file,
    OutboxKind.DIGEST: lambda k, p: PostDigest(requested=bool(p.get("requested"))),
    OutboxKind.NOTICE: lambda k, p: PostNotice(text=str(p.get("text", "")),
                                               limit=bool(p.get("limit"))),
}
