"""Approvals: who may decide, exactly once, and what a timer may do (never approve).

An approval is a request from an agent to use a tool. Every change of its state is made
here, through the `APPROVAL_TRANSITIONS` table (`settle()` raises on any other move):

    pending ──decide()──▶ allowed | denied     a person's (or a rule's) tap
    pending ──expire()──▶ denied               the timer: never an allow
    pending ──stop_all()──▶ denied (stop)      a person stops the session
    pending ──withdraw()──▶ withdrawn          the agent cancelled the request
    pending ──abandon()──▶ expired             the agent no longer waits (exit, restart)

The store commits a settled approval with one conditional update (`state = 'pending'`),
so two taps racing on two surfaces still settle it once. `describe_outcome()` is the one
text a person reads about how an approval was settled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from bridge.errors import IllegalTransition
from bridge.events import AgentChoice, DecisionKind
from bridge.plans import KEEP_PLANNING, is_plan


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
    """`target`, when the table allows the move from `current`; else IllegalTransition."""
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


# the decisions that allow what was asked (a plan approved with its edits accepted too)
ALLOWING = frozenset({DecisionKind.ALLOW_ONCE, DecisionKind.ALLOW_SESSION,
                      DecisionKind.ACCEPT_EDITS})

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
    choices: tuple[AgentChoice, ...] = ()  # the agent's own ways to allow it
    choice: str | None = None  # the id of the one chosen
    # what the daemon found on disk when the request arrived: each file the request writes
    # → its size, or None when there is no such file (None: not looked up)
    on_disk: Mapping[str, int | None] | None = None


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
    choice: int | None = None,
) -> Decision | Refusal:
    """Check that `actor` may settle `approval` with `kind` (with the agent's own option
    `choice`, by its index: an allow once that names it), and what settling it means."""
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
    chosen = None
    if choice is not None:
        if kind is not DecisionKind.ALLOW_ONCE or not 0 <= choice < len(approval.choices):
            return Refusal(reason=RefusalReason.NOT_OFFERED,
                           message="This button is no longer valid.")
        chosen = approval.choices[choice].id
    allowed = kind in ALLOWING
    given = None if allowed else (reason or "").strip() or None
    # the agent always hears why; the card keeps only a reason the person gave (a plain
    # deny would otherwise read "Denied by X: Denied by X")
    message = None if allowed else (given or default_deny_message(kind, actor))
    if message and not given and kind is DecisionKind.DENY and is_plan(approval.tool):
        message = KEEP_PLANNING
    settled = _settled(approval, ApprovalState.ALLOWED if allowed else ApprovalState.DENIED,
                       decision=kind, decided_by=actor.label, now=now, reason=given)
    return Decision(approval=replace(settled, choice=chosen), kind=kind, message=message)


def stop_all(
    approvals: Iterable[Approval], actor: Actor, *, now: float
) -> list[Decision]:
    """A person stops the session: everything that waits is denied with `stop`. The card
    says who stopped it (no reason kept); the agent hears "Stopped by …"."""
    return [
        Decision(
            approval=_settled(approval, ApprovalState.DENIED, decision=DecisionKind.STOP,
                              decided_by=actor.label, now=now, reason=None),
            kind=DecisionKind.STOP,
            message=default_deny_message(DecisionKind.STOP, actor),
        )
        for approval in approvals
    ]


def withdraw(approval: Approval, *, now: float) -> Approval:
    """The agent itself cancelled the request: nothing is answered, nothing approved."""
    return _settled(approval, ApprovalState.WITHDRAWN, decided_by="the agent", now=now,
                    reason="withdrawn by the agent")


def abandon(approval: Approval, *, now: float, reason: str) -> Approval:
    """The agent no longer waits for the request (it exited, the daemon restarted, its
    request was answered on the wire already): expired, and nothing was approved."""
    return _settled(approval, ApprovalState.EXPIRED, now=now, reason=reason)


def _settled(
    approval: Approval, target: ApprovalState, *, now: float,
    decision: DecisionKind | None = None, decided_by: str | None = None,
    reason: str | None = None,
) -> Approval:
    """`approval` settled in `target`: the one place a state changes (through the table)."""
    return replace(approval, state=settle(approval.state, target), decision=decision,
                   decided_by=decided_by, decided_at=now, reason=reason)


# what a tool input says about a call without being the call: left out of exact matching
_COMMENTARY = frozenset({"description", "reason"})


@dataclass(frozen=True, slots=True)
class RuleSubject:
    """What an "allow for the session" covers: exactly what the card showed, never more.

    A call that names files and runs no command (an edit, a patch, a read) is covered on
    those files: a later call of the same tool is covered only when every file it names
    was named by the allowed call. Any other call (a command, an MCP tool) is covered
    only by a call with exactly the same input, the whole command included, but for
    the agent's own commentary on it (`description`, `reason`). Never a whole tool."""

    tool: str
    paths: frozenset[str] = frozenset()
    exact: str | None = None

    def covers(self, request: RuleSubject) -> bool:
        if self.tool != request.tool:
            return False
        if self.exact is not None or request.exact is not None:
            return self.exact == request.exact
        return bool(request.paths) and request.paths <= self.paths


# Tools whose whole effect is on the files they name (Claude's, Codex's file changes, ACP's
# kinds): a rule for the session made on one covers those files. Any other tool that has a
# `path` (an MCP tool writing to another repository, querying a database file) does more
# than its path says, so its rule is the exact call.
FILE_TOOLS = frozenset({"Edit", "Write", "MultiEdit", "NotebookEdit", "Delete", "Move"})


def rule_subject(tool: str, tool_input: Mapping[str, Any]) -> RuleSubject:
    """The subject of an "allow for the session" made on (or asked by) this call."""
    if tool in FILE_TOOLS and "command" not in tool_input:
        return RuleSubject(tool=tool, paths=_paths(tool_input))  # no files: covers nothing
    kept = {k: v for k, v in tool_input.items() if k not in _COMMENTARY}
    return RuleSubject(tool=tool, exact=json.dumps(kept, sort_keys=True, default=str,
                                                   ensure_ascii=False))


def covering_rule(rules: Mapping[RuleSubject, str], request: RuleSubject) -> str | None:
    """Who made a rule in `rules` (subject → who) that covers `request`, or None."""
    for subject, who in rules.items():
        if subject.covers(request):
            return who
    return None


def _paths(tool_input: Mapping[str, Any]) -> frozenset[str]:
    """Every file the call names: its own path and each file of its `changes` (the
    destination of a move too)."""
    paths: set[str] = set()
    for key in ("file_path", "path", "notebook_path"):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            paths.add(value)
    changes = tool_input.get("changes")
    if isinstance(changes, list):
        for change in changes:
            if not isinstance(change, Mapping):
                return frozenset()  # not a list of files this can vouch for: no path rule
            for key in ("path", "move_path"):
                value = change.get(key)
                if isinstance(value, str) and value:
                    paths.add(value)
    elif changes is not None:
        return frozenset()
    return frozenset(paths)


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
    settled = _settled(approval, ApprovalState.DENIED, decision=kind,
                       decided_by=TIMER.label, now=now, reason=message)
    return Decision(approval=settled, kind=kind, message=message)


def decided_how(approval: Approval, *, first_upper: bool = False) -> str:
    """How a decided approval was settled, in words: "allowed once", "allowed for the
    session", "denied" or "stopped" (every outcome text is built from these); `first_upper`
    to begin a sentence (the agent's own option label is kept as it wrote it)."""
    how = _how(approval)
    return how[:1].upper() + how[1:] if first_upper else how


def _how(approval: Approval) -> str:
    if approval.state is ApprovalState.ALLOWED:
        label = next((c.label for c in approval.choices if c.id == approval.choice), None)
        if label is not None:
            return f"approved: {label}"
        if approval.decision is DecisionKind.ACCEPT_EDITS:
            return "approved, accepting edits"
        if is_plan(approval.tool):
            return "approved"
        how = "for the session" if approval.decision is DecisionKind.ALLOW_SESSION else "once"
        return f"allowed {how}"
    if approval.decision is DecisionKind.STOP:
        return "stopped"
    return "sent back to planning" if is_plan(approval.tool) else "denied"


def describe_outcome(approval: Approval, *, mine: bool = False) -> str:
    """One line a person reads about a settled approval: `mine` for the one who settled it
    ("Allowed once."), else for anyone else who asks ("Already allowed once by ana.")."""
    if mine and approval.state in (ApprovalState.ALLOWED, ApprovalState.DENIED):
        return f"{decided_how(approval, first_upper=True)}."
    match approval.state:
        case ApprovalState.PENDING:
            return "Waiting for a decision."
        case ApprovalState.ALLOWED:
            return f"Already {decided_how(approval)} by {approval.decided_by}."
        case ApprovalState.DENIED:
            if approval.decided_by == TIMER.label:
                return "Already denied automatically: nobody answered in time."
            return f"Already {decided_how(approval)} by {approval.decided_by}."
        case ApprovalState.EXPIRED:
            return "Expired: the agent is no longer waiting for this. Nothing was approved."
        case ApprovalState.WITHDRAWN:
            return "Withdrawn by the agent. Nothing was approved."
