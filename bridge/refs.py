"""Surface references: the keys under which the daemon remembers what it made on a chat.

A surface returns opaque references (a topic id, a message ts); the store keeps them per
surface under a key that says what they are. The keys are built and read only here:

    thread:<session>            the session's thread (topic, or head of a reply chain)
    status:<session>            the session's status card
    msg:<session>/<message>     a message posted in the session's thread (replies find it)
    approval:<approval>         an approval's card
    plan:<session>/<key>        the message showing a turn's plan (edited as it changes)
    batch:<message>             the approvals a grouped card holds, in order (space-separated)
    digest:last                 when the last scheduled digest went out (surface "daemon")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadRef:
    session_id: str
    PREFIX: ClassVar[str] = "thread:"

    @property
    def key(self) -> str:
        return f"{self.PREFIX}{self.session_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRef:
    session_id: str
    PREFIX: ClassVar[str] = "status:"

    @property
    def key(self) -> str:
        return f"{self.PREFIX}{self.session_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRef:
    session_id: str
    message: str
    PREFIX: ClassVar[str] = "msg:"

    @property
    def key(self) -> str:
        return f"{self.PREFIX}{self.session_id}/{self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalCardRef:
    approval_id: str
    PREFIX: ClassVar[str] = "approval:"

    @property
    def key(self) -> str:
        return f"{self.PREFIX}{self.approval_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchCardRef:
    """The approvals a grouped card (`bridge.render_batch`) holds, by its message."""

    message: str
    PREFIX: ClassVar[str] = "batch:"

    @property
    def key(self) -> str:
        return f"{self.PREFIX}{self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class QuestionCardRef:
    question_id: str
    PREFIX: ClassVar[str] = "question:"

    @property
    def key(self) -> str:
        return f"{self.PREFIX}{self.question_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRef:
    session_id: str
    plan_key: str
    PREFIX: ClassVar[str] = "plan:"

    @property
    def key(self) -> str:
        return f"{self.PREFIX}{self.session_id}/{self.plan_key}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestLastRef:
    """When the last scheduled digest went out (stored under the surface "daemon")."""

    PREFIX: ClassVar[str] = "digest:last"

    @property
    def key(self) -> str:
        return self.PREFIX


DIGEST_LAST = DigestLastRef()

SurfaceRef = ThreadRef | StatusRef | MessageRef | ApprovalCardRef | DigestLastRef


def parse_ref(key: str) -> SurfaceRef | None:
    """The reference a stored key names; None for a key this version does not know."""
    head, sep, rest = key.partition(":")
    if not sep:
        return None
    match head + sep:
        case ThreadRef.PREFIX:
            return ThreadRef(session_id=rest)
        case StatusRef.PREFIX:
            return StatusRef(session_id=rest)
        case MessageRef.PREFIX:
            session_id, slash, message = rest.partition("/")
            return MessageRef(session_id=session_id, message=message) if slash else None
        case ApprovalCardRef.PREFIX:
            return ApprovalCardRef(approval_id=rest)
    return DIGEST_LAST if key == DigestLastRef.PREFIX else None


def session_of(key: str) -> str | None:
    """The session a thread, status or message key belongs to."""
    match parse_ref(key):
        case ThreadRef(session_id=sid) | StatusRef(session_id=sid) | MessageRef(session_id=sid):
            return sid
    return None
