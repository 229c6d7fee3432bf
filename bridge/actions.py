"""What a button or a command asks for, and its opaque button payload (≤ 64 bytes).

A payload carries a verb and an id and nothing else: everything else is looked up in the
store when the tap arrives, so a forged or stale payload can name, at most, an id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bridge.events import DecisionKind

MAX_PAYLOAD_BYTES = 64
_ID = re.compile(r"^[a-z0-9]{4,16}$")
_INDEX = re.compile(r"^(0|[1-9][0-9]?)$")


class Verb(StrEnum):
    # on an approval
    ALLOW_ONCE = "ao"
    ALLOW_SESSION = "as"
    DENY = "dn"
    DENY_REASON = "dr"
    STOP_APPROVAL = "st"
    ACCEPT_EDITS = "ae"  # on a plan: approve it and accept the session's edits
    PLAN_CHOICE = "pc"  # on a plan: approve it with the agent's own option (`pc:ID.1`)
    # on a session
    STOP = "ss"
    INTERRUPT = "si"  # end the running turn, keep the session
    DIFF = "sd"
    ARCHIVE = "sa"
    UNARCHIVE = "su"
    RESUME = "sr"
    STATUS = "sx"
    REASK = "rq"  # ask the agent again for what a timer denied
    RESUME_AT_RESET = "rr"  # resume the session when its usage limit resets
    CANCEL_RESUME = "rc"  # cancel that
    # on a terminal session (its target: the session's `key`, bridge.terminal)
    ADOPT = "ad"  # adopt it; refused while a terminal holds it
    ADOPT_FORCE = "af"  # adopt it although a terminal holds it (the confirm button)
    # on a question (an option's button carries its index: `qo:ID.2`)
    QUESTION_OPTION = "qo"  # choose it (single select) or toggle it (multi-select)
    QUESTION_SUBMIT = "qs"  # send the toggled options
    QUESTION_OTHER = "qt"  # the next message in the thread is the answer


@dataclass(frozen=True, slots=True)
class DecisionButton:
    """A button of an approval card: its verb, the decision it makes, its label."""

    verb: Verb
    decision: DecisionKind
    label: str


# the one verb ↔ decision table, in the order a card shows its buttons
DECISION_BUTTONS: tuple[DecisionButton, ...] = (
    DecisionButton(Verb.ALLOW_ONCE, DecisionKind.ALLOW_ONCE, "Allow once"),
    DecisionButton(Verb.ALLOW_SESSION, DecisionKind.ALLOW_SESSION, "Allow for session"),
    DecisionButton(Verb.DENY, DecisionKind.DENY, "Deny"),
    DecisionButton(Verb.DENY_REASON, DecisionKind.DENY, "Deny with reason…"),
    DecisionButton(Verb.STOP_APPROVAL, DecisionKind.STOP, "Stop"),
)
VERB_DECISIONS: Mapping[Verb, DecisionKind] = {
    **{b.verb: b.decision for b in DECISION_BUTTONS},
    Verb.ACCEPT_EDITS: DecisionKind.ACCEPT_EDITS,  # a plan card's (bridge.plans)
    Verb.PLAN_CHOICE: DecisionKind.ALLOW_ONCE,  # an allow once naming the agent's option
}
APPROVAL_VERBS = frozenset(VERB_DECISIONS)
QUESTION_VERBS = frozenset({Verb.QUESTION_OPTION, Verb.QUESTION_SUBMIT, Verb.QUESTION_OTHER})


@dataclass(frozen=True, slots=True)
class ButtonAction:
    verb: Verb
    target: str  # an approval, question or session id
    index: int | None = None  # which option of a question, or of an agent's plan

    def encode(self) -> str:
        payload = f"{self.verb.value}:{self.target}"
        if self.index is not None:
            payload += f".{self.index}"
        assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
        return payload


def decode_button(payload: str) -> ButtonAction | None:
    """The action in a button payload, or None when it is not one of ours."""
    verb, sep, target = payload.partition(":")
    target, dot, index = target.partition(".")
    if not sep or not _ID.match(target):
        return None
    try:
        action = Verb(verb)
    except ValueError:
        return None
    if action in (Verb.QUESTION_OPTION, Verb.PLAN_CHOICE):
        if not _INDEX.match(index):
            return None
        return ButtonAction(action, target, int(index))
    return None if dot else ButtonAction(action, target)
