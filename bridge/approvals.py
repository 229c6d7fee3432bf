"""Approvals: who may decide, exactly once, and what a timer may do (never approve).

An approval is a request from an agent to use a tool. `decide()` is the pure check that a
person's tap may settle it; the store then commits the decision with a conditional update
(`state = 'pending'`), so two taps racing on two surfaces still settle it once. Timers go
through `expire()`, which can only deny.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from bridge.errors import IllegalTransition
from bridge.events import DecisionKind


class ApprovalState(StrEnum):
    PENDING = "pending"
    ALLOWED = "allowed"
    DENIED = "denied"
    EXPIRED = "expired"  # the agent stopped waiting (crash, daemon restart): nothing was sent
    WITHDRAWN = "withdrawn"  # the agent itself cancelled the request


APPROVAL_TRANSITIONS: dict[ApprovalState, frozenset[ApprovalState]] = {
    ApprovalState.PENDING: frozenset(
        {
            ApprovalState.ALLOWED,
            ApprovalState.DENIED,
            ApprovalState.EXPIRED,
            ApprovalState.WITHDRAWN,
        }
    ),
    ApprovalState.ALLOWED: frozenset(),
    ApprovalState.DENIED: frozenset(),
    ApprovalState.EXPIRED: frozenset(),
    ApprovalState.WITHDRAWN: frozenset(),
}


def settle(current: ApprovalState, target: ApprovalState) -> ApprovalState:
    if target not in APPROVAL_TRANSITIONS[current]:
        raise IllegalTransition("approval", current.value, target.value)
    return target


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who acts: a user on a surface. The local CLI is surface `cli`."""

    surface: str
    user_id: str
    name: str | None = None

    @property
    def label(self) -> str:
        who = self.name or self.user_id
        return who if self.surface in ("cli", "timer", "rule") else f"{who} ({self.surface})"


TIMER = Actor(surface="timer", user_id="timer", name="timeout")


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    id: str
    session_id: str
    request_id: str
    tool: str
    input: Mapping[str, Any]
    offered: tuple[DecisionKind, ...]
    requested_at: float
    state: ApprovalState = ApprovalState.PENDING
    decision: DecisionKind | None = None
    decided_by: str | None = None
    decided_at: float | None = None
    reason: str | None = None
    description: str | None = None
    cwd: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessPolicy:
    """Allowlists per surface. An empty list means nobody, never everybody.

    The local CLI is trusted: reaching the control socket (mode 0600) already takes the
    daemon owner's account.
    """

    allowed: Mapping[str, frozenset[str]]

    def may_act(self, actor: Actor) -> bool:
        if actor.surface in ("cli", "rule"):  # a rule exists only because a person allowed
            return True
        return actor.user_id in self.allowed.get(actor.surface, frozenset())


class RefusalReason(StrEnum):
    NOT_ALLOWED = "not_allowed"
    ALREADY_DECIDED = "already_decided"
    NOT_OFFERED = "not_offered"
    NO_LONGER_PENDING = "no_longer_pending"


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    reason: RefusalReason
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """A decision that may be committed; `approval` is the settled approval to store."""

    approval: Approval
    kind: DecisionKind
    message: str | None


def decide(
    approval: Approval,
    kind: DecisionKind,
    actor: Actor,
    *,
    now: float,
    policy: AccessPolicy,
    reason: str | None = None,
) -> Decision | Refusal:
    """Check that `actor` may settle `approval` with `kind`, and what settling it means."""
    if not policy.may_act(actor):
        return Refusal(
            reason=RefusalReason.NOT_ALLOWED,
            message="You are not allowed to decide for this bridge.",
        )
    if approval.state is not ApprovalState.PENDING:
        return Refusal(
            reason=(
                RefusalReason.ALREADY_DECIDED
                if approval.state in (ApprovalState.ALLOWED, ApprovalState.DENIED)
                else RefusalReason.NO_LONGER_PENDING
            ),
            message=describe_outcome(approval),
        )
    if kind not in approval.offered:
        return Refusal(
            reason=RefusalReason.NOT_OFFERED,
            message=f"The agent does not offer '{kind.value}' for this request.",
        )
    allowed = kind in (DecisionKind.ALLOW_ONCE, DecisionKind.ALLOW_SESSION)
    message = None if allowed else (reason or default_deny_message(kind, actor))
    settled = replace(
        approval,
        state=settle(approval.state, ApprovalState.ALLOWED if allowed else ApprovalState.DENIED),
        decision=kind,
        decided_by=actor.label,
        decided_at=now,
        reason=message,
    )
    return Decision(approval=settled, kind=kind, message=message)


def rule_subject(tool: str, tool_input: Mapping[str, Any]) -> str:
    """What an "allow for the session" covers: this tool with exactly this command, or on
    exactly this file, or (other tools) with exactly this input. Never a whole tool."""
    command = tool_input.get("command")
    if isinstance(command, list):
        command = " ".join(str(c) for c in command)
    if isinstance(command, str):
        return f"{tool}\0command\0{command}"
    path = tool_input.get("file_path") or tool_input.get("path")
    if isinstance(path, str):
        return f"{tool}\0path\0{path}"
    return f"{tool}\0input\0{json.dumps(dict(tool_input), sort_keys=True, default=str)}"


def default_deny_message(kind: DecisionKind, actor: Actor) -> str:
    if kind is DecisionKind.STOP:
        return f"Stopped by {actor.label}."
    return f"Denied by {actor.label}."


def expire(
    approval: Approval,
    *,
    now: float,
    timeout: float | None,
    on_timeout: str,
) -> Decision | None:
    """The timer's decision for `approval` at `now`: a deny when it is due, else None.

    A timer never approves: with `on_timeout = "keep"` (or no timeout) it never acts.
    """
    if approval.state is not ApprovalState.PENDING or timeout is None or on_timeout != "deny":
        return None
    if now - approval.requested_at < timeout:
        return None
    kind = DecisionKind.DENY if DecisionKind.DENY in approval.offered else DecisionKind.STOP
    minutes = max(1, round(timeout / 60))
    message = f"No answer within {minutes} min: denied automatically. Resume to ask again."
    settled = replace(
        approval,
        state=settle(approval.state, ApprovalState.DENIED),
        decision=kind,
        decided_by=TIMER.label,
        decided_at=now,
        reason=message,
    )
    return Decision(approval=settled, kind=kind, message=message)


def describe_outcome(approval: Approval) -> str:
    """One line a person reads about a settled approval."""
    match approval.state:
        case ApprovalState.PENDING:
            return "Waiting for a decision."
        case ApprovalState.ALLOWED:
            how = "for the session" if approval.decision is DecisionKind.ALLOW_SESSION else "once"
            return f"Already allowed {how} by {approval.decided_by}."
        case ApprovalState.DENIED:
            verb = "stopped" if approval.decision is DecisionKind.STOP else "denied"
            return f"Already {verb} by {approval.decided_by}."
        case ApprovalState.EXPIRED:
            return "Expired: the agent is no longer waiting for this. Nothing was approved."
        case ApprovalState.WITHDRAWN:
            return "Withdrawn by the agent. Nothing was approved."
