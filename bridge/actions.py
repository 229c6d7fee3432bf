"""What a button or a command asks for, and its opaque button payload (≤ 64 bytes).

A payload carries a verb and an id and nothing else: everything else is looked up in the
store when the tap arrives, so a forged or stale payload can name, at most, an id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

MAX_PAYLOAD_BYTES = 64
_ID = re.compile(r"^[a-z0-9]{4,16}$")


class Verb(StrEnum):
    # on an approval
    ALLOW_ONCE = "ao"
    ALLOW_SESSION = "as"
    DENY = "dn"
    DENY_REASON = "dr"
    STOP_APPROVAL = "st"
    # on a session
    STOP = "ss"
    DIFF = "sd"
    ARCHIVE = "sa"
    UNARCHIVE = "su"
    RESUME = "sr"
    STATUS = "sx"
    REASK = "rq"  # ask the agent again for what a timer denied


APPROVAL_VERBS = frozenset(
    {Verb.ALLOW_ONCE, Verb.ALLOW_SESSION, Verb.DENY, Verb.DENY_REASON, Verb.STOP_APPROVAL}
)


@dataclass(frozen=True, slots=True)
class ButtonAction:
    verb: Verb
    target: str  # an approval id or a session id

    def encode(self) -> str:
        payload = f"{self.verb.value}:{self.target}"
        assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
        return payload


def decode_button(payload: str) -> ButtonAction | None:
    """The action in a button payload, or None when it is not one of ours."""
    verb, sep, target = payload.partition(":")
    if not sep or not _ID.match(target):
        return None
    try:
        return ButtonAction(Verb(verb), target)
    except ValueError:
        return None
