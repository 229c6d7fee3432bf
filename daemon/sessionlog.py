"""The daemon's log of what happens to sessions: one INFO line per notable event.

Started, approval asked, approval decided or expired, question asked and settled, turn
ended (with its cost), failed, stopped, completed: each line names the session, and carries
`session` and `event` (and what else matters) as record attributes, which the JSON log
format (`agent-bridge run --log-format json`) writes out as fields. What an agent asks is
shown through the configured redactor, like everything else leaving the daemon; a typed
answer is never logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from bridge.approvals import Approval, ApprovalState
from bridge.events import TurnCompleted
from bridge.facts import Facts
from bridge.questions import Question
from bridge.redact import Redactor
from bridge.render import shorten, tool_preview
from bridge.session import SessionState

log = logging.getLogger("agent-bridge.sessions")
PREVIEW = 120  # characters of a command or file shown in a log line

# the session states worth a line of their own, and how that line reads
_ENDINGS = {
    SessionState.FAILED: "failed",
    SessionState.STOPPED: "stopped",
    SessionState.COMPLETED: "completed",
    SessionState.DISCONNECTED: "disconnected",
}


def event(session_id: str, name: str, message: str, *args: Any, **fields: Any) -> None:
    """Log one session event: `message % args`, prefixed with the session id."""
    log.info("session %s: " + message, session_id, *args,
             extra={"session": session_id, "event": name, **fields})


def started(session_id: str, *, project: str, agent: str, host: str, by: str,
            resumed: bool = False) -> None:
    where = project if host == "local" else f"{host}:{project}"
    event(session_id, "resumed" if resumed else "started", "%s in %s with %s by %s",
          "resumed" if resumed else "started", where, agent, by,
          project=project, agent=agent, host=host, by=by)


def committed(session_id: str, facts: Facts, redactor: Redactor) -> None:
    """The lines for what a runner just committed for `session_id`."""
    for approval in facts.new_approvals:
        preview = tool_preview(approval.tool, approval.input, PREVIEW, redactor=redactor)
        event(session_id, "approval_asked", "approval %s asked for %s: %s", approval.id,
              approval.tool, preview, approval=approval.id, tool=approval.tool)
    for approval in facts.settled:
        approval_settled(approval)
    for question in facts.new_questions:
        event(session_id, "question_asked", "question %s asked: %s", question.id,
              shorten(question.text, PREVIEW, redactor), question=question.id)
    for question in facts.settled_questions:
        question_settled(question)
    for turn in facts.turns_completed:
        turn_ended(session_id, turn)
    state = facts.changes.get("state")
    if state in _ENDINGS:
        reason = facts.changes.get("error")
        name = _ENDINGS[SessionState(state)]
        by = _stopped_by(facts) if state == SessionState.STOPPED else None
        if by:
            event(session_id, name, "stopped by %s", by, by=by)
        elif reason:
            event(session_id, name, "%s: %s", name, shorten(str(reason), 300, redactor),
                  reason=shorten(str(reason), 300, redactor))
        else:
            event(session_id, name, "%s", name)


def _stopped_by(facts: Facts) -> str | None:
    """Who stopped the session, from the `stop` record of the same step."""
    for _, kind, data in facts.events:
        if kind == "stop":
            by = json.loads(data).get("by")
            return str(by) if by else None
    return facts.stopped_by


def approval_settled(approval: Approval) -> None:
    """An approval left `pending`: decided by a person, a rule or the timer, or expired."""
    match approval.state:
        case ApprovalState.EXPIRED | ApprovalState.WITHDRAWN:
            event(approval.session_id, f"approval_{approval.state.value}",
                  "approval %s %s: %s", approval.id, approval.state.value,
                  approval.reason or "nobody waits for it any more",
                  approval=approval.id, state=approval.state.value)
        case _:
            decision = approval.decision.value if approval.decision else approval.state.value
            event(approval.session_id, "approval_decided", "approval %s %s (%s) by %s",
                  approval.id, approval.state.value, decision, approval.decided_by or "?",
                  approval=approval.id, state=approval.state.value, decision=decision,
                  by=approval.decided_by)


def question_settled(question: Question) -> None:
    """A question left `pending`; its answer is not logged (it may be a secret)."""
    if question.answered_by:
        event(question.session_id, "question_answered", "question %s answered by %s",
              question.id, question.answered_by, question=question.id,
              by=question.answered_by)
    else:
        event(question.session_id, f"question_{question.state.value}", "question %s %s: %s",
              question.id, question.state.value, question.reason or "nobody answered",
              question=question.id, state=question.state.value)


def turn_ended(session_id: str, turn: TurnCompleted) -> None:
    how = "interrupted" if turn.interrupted else "failed" if turn.is_error else "ended"
    cost = f"${turn.cost_usd:.4f}" if turn.cost_usd is not None else "cost not reported"
    seconds = f", {turn.duration_ms / 1000:.1f}s" if turn.duration_ms is not None else ""
    event(session_id, "turn_ended", "turn %s (%s%s)", how, cost, seconds, outcome=how,
          cost_usd=turn.cost_usd, duration_ms=turn.duration_ms)
