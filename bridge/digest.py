"""The digest: which runs are idle and need a person, chosen by rules, never by a model.

`select_digest()` is a pure function of the sessions, their pending approvals and the time:
the same inputs always give the same lines in the same order. `render_digest()` turns the
selection into a card with buttons for each line (Open, Diff, Resume or Re-ask, Archive,
Stop); an empty selection renders as None, and an empty digest is not sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bridge.actions import ButtonAction, Verb
from bridge.approvals import Approval
from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render import Button, Card, elapsed, limit_line, shorten, tool_preview
from bridge.session import SessionState


class DigestGroup(StrEnum):
    WAITING = "waiting on you"
    LIMITED = "usage limit hit"
    UNREVIEWED = "finished, not reviewed"
    STALLED = "stalled"
    FAILED = "failed or disconnected"


_ORDER = list(DigestGroup)
_RUNNING = frozenset({SessionState.RUNNING, SessionState.STARTING})
_FINISHED = frozenset({SessionState.IDLE, SessionState.COMPLETED})
_BROKEN = frozenset({SessionState.FAILED, SessionState.DISCONNECTED})
MAX_LINES = 15


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestLine:
    session: SessionView
    group: DigestGroup
    since: float  # when the condition began
    detail: str


def select_digest(
    sessions: Sequence[SessionView],
    pending: Sequence[Approval],
    *,
    now: float,
    stalled_after: float,
    unreviewed_after: float,
    redactor: Redactor,
) -> list[DigestLine]:
    by_session: dict[str, list[Approval]] = {}
    for approval in pending:
        by_session.setdefault(approval.session_id, []).append(approval)
    lines: list[DigestLine] = []
    for s in sessions:
        if s.archived:
            continue
        waiting = sorted(by_session.get(s.id, []), key=lambda a: (a.requested_at, a.id))
        if waiting:
            first = waiting[0]
            more = f" (+{len(waiting) - 1} more)" if len(waiting) > 1 else ""
            preview = tool_preview(first.tool, first.input, 80, redactor=redactor)
            detail = f"{first.tool}: {preview}{more}"
            lines.append(DigestLine(session=s, group=DigestGroup.WAITING,
                                    since=first.requested_at, detail=detail))
        elif s.parked:
            lines.append(DigestLine(session=s, group=DigestGroup.WAITING,
                                    since=s.updated_at, detail=s.parked))
        elif s.limit_hit_at is not None:
            lines.append(DigestLine(session=s, group=DigestGroup.LIMITED, since=s.limit_hit_at,
                                    detail=limit_line(s, now) or "limit hit"))
        elif s.state in _RUNNING:
            quiet_since = s.last_event_at or s.updated_at
            if now - quiet_since >= stalled_after:
                lines.append(DigestLine(session=s, group=DigestGroup.STALLED, since=quiet_since,
                                        detail=s.last_tool or "no output"))
        elif s.state in _FINISHED and s.finished_at is not None:
            looked = s.reviewed_at is not None and s.reviewed_at >= s.finished_at
            if not looked and now - s.finished_at >= unreviewed_after:
                lines.append(DigestLine(session=s, group=DigestGroup.UNREVIEWED,
                                        since=s.finished_at, detail=s.title))
        elif s.state in _BROKEN:
            looked = s.reviewed_at is not None and s.reviewed_at >= s.updated_at
            if not looked:
                lines.append(DigestLine(session=s, group=DigestGroup.FAILED, since=s.updated_at,
                                        detail=s.error or s.state.value))
    lines.sort(key=lambda d: (_ORDER.index(d.group), d.since, d.session.id))
    return lines


def render_digest(
    lines: Sequence[DigestLine], *, now: float, redactor: Redactor,
    links: Mapping[str, str] | None = None,
) -> Card | None:
    if not lines:
        return None
    links = links or {}
    text = [f"📋 Digest: {len(lines)} run{' needs' if len(lines) == 1 else 's need'} you"]
    rows: list[tuple[Button, ...]] = []
    group: DigestGroup | None = None
    for line in lines[:MAX_LINES]:
        if line.group is not group:
            group = line.group
            text.append(f"\n{group.value.capitalize()}:")
        s = line.session
        text.append(f"• {s.id} {s.place} · {elapsed(now - line.since)} · "
                    f"{shorten(line.detail, 120, redactor)}")
        rows.append(_buttons(line, links.get(s.id)))
    if len(lines) > MAX_LINES:
        text.append(f"\n… and {len(lines) - MAX_LINES} more: /sessions")
    return Card("\n".join(text), tuple(rows))


def _buttons(line: DigestLine, link: str | None) -> tuple[Button, ...]:
    sid = line.session.id
    row = [Button(f"Open {sid}", ButtonAction(Verb.STATUS, sid), url=link),
           Button("Diff", ButtonAction(Verb.DIFF, sid))]
    if line.session.parked:
        row.append(Button("Re-ask", ButtonAction(Verb.REASK, sid)))
    elif line.group is DigestGroup.LIMITED and line.session.resume_at is None \
            and line.session.limit_reset_at is not None:
        row.append(Button("Resume at reset", ButtonAction(Verb.RESUME_AT_RESET, sid)))
    elif line.group is not DigestGroup.WAITING and line.session.state not in _RUNNING:
        row.append(Button("Resume", ButtonAction(Verb.RESUME, sid)))
    row.append(Button("Archive", ButtonAction(Verb.ARCHIVE, sid)))
    if line.session.state not in (_BROKEN | {SessionState.COMPLETED, SessionState.STOPPED}):
        row.append(Button("Stop", ButtonAction(Verb.STOP, sid)))
    return tuple(row)
