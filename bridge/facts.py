"""What one step of a session changes (`Facts`), drawn up by `SessionMachine` and
committed by the store in one transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from bridge.approvals import Approval
from bridge.events import AgentCommand, AgentEvent, PlanUpdated, TurnCompleted, UnknownEvent
from bridge.limits import ShownNotice
from bridge.questions import Question

#: one transcript row to store: (at, kind, data as JSON)
EventRecord = tuple[float, str, str]



@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What one step of a session changes, to be committed together.

    `changes` are session fields to set, `increments` fields to add to; `to_agent` are the
    commands the codec sends (the supervisor orders them around the commit); `urgent` says
    someone waits on this commit (an approval asked for or decided, or a tool call whose
    approval request comes right after it)."""

    events: tuple[EventRecord, ...] = ()
    new_approvals: tuple[Approval, ...] = ()
    settled: tuple[Approval, ...] = ()
    new_questions: tuple[Question, ...] = ()
    settled_questions: tuple[Question, ...] = ()
    changes: Mapping[str, Any] = field(default_factory=dict)
    increments: Mapping[str, int] = field(default_factory=dict)
    turns_completed: tuple[TurnCompleted, ...] = ()
    plans: tuple[tuple[str, PlanUpdated], ...] = ()  # (the turn's plan message key, plan)
    state_changed: bool = False
    stopped_by: str | None = None  # who stopped the session, for an interrupted turn
    urgent: bool = False
    to_agent: tuple[AgentCommand, ...] = ()
    notices: tuple[ShownNotice, ...] = ()  # to post in the session's thread
    turn: int | None = None  # the session's count of turns after the last one completed here


@dataclass(slots=True)
class Draft:
    events: list[EventRecord] = field(default_factory=list)
    new_approvals: list[Approval] = field(default_factory=list)
    settled: list[Approval] = field(default_factory=list)
    new_questions: list[Question] = field(default_factory=list)
    settled_questions: list[Question] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)
    increments: dict[str, int] = field(default_factory=dict)
    turns_completed: list[TurnCompleted] = field(default_factory=list)
    plans: list[tuple[str, PlanUpdated]] = field(default_factory=list)
    state_changed: bool = False
    stopped_by: str | None = None
    urgent: bool = False
    to_agent: list[AgentCommand] = field(default_factory=list)
    notices: list[ShownNotice] = field(default_factory=list)
    turn: int | None = None

    def record(self, now: float, kind: str, data: Mapping[str, Any]) -> None:
        self.events.append((now, kind, json.dumps(data, ensure_ascii=False)))

    def facts(self) -> Facts:
        return Facts(
            events=tuple(self.events), new_approvals=tuple(self.new_approvals),
            settled=tuple(self.settled), new_questions=tuple(self.new_questions),
            settled_questions=tuple(self.settled_questions), changes=dict(self.changes),
            increments=dict(self.increments), turns_completed=tuple(self.turns_completed),
            plans=tuple(self.plans),
            state_changed=self.state_changed, stopped_by=self.stopped_by, urgent=self.urgent,
            to_agent=tuple(self.to_agent), notices=tuple(self.notices), turn=self.turn,
        )


def event_data(event: AgentEvent) -> str:
    """The stored form of an event: its fields as JSON (raw wire copies only when unknown)."""
    data = {f.name: getattr(event, f.name) for f in fields(event)}
    if not isinstance(event, UnknownEvent):
        data.pop("raw", None)
    if isinstance(event, PlanUpdated):
        data["steps"] = [{"text": s.text, "status": s.status.value} for s in event.steps]
    return json.dumps(data, ensure_ascii=False, default=str)
