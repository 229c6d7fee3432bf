"""The rules of one agent session, with no process: events in, facts to commit out.

Theory of operation: the supervisor pumps bytes between the agent's process and its codec
and hands every event the codec decodes to a `SessionMachine`, with the time. The machine
folds them into the session's state (through the `bridge.session` table), the approvals it
opens and settles, and the session's fields, and returns one `Facts`: everything the
supervisor must commit in one transaction before anyone is told, plus the commands the
codec must send. People's commands (a prompt, a decision, a stop) and the process's end
(`exited`) are folded the same way. The machine never awaits and never reads the clock, so
a recorded transcript replays through codec and machine in a plain function (see
tests/test_session_machine_replay.py).

An illegal move raised by what the agent said is the agent's protocol error
(`ProtocolError`); one raised by what we asked is a bug (`IllegalTransition` propagates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from bridge import questions as q
from bridge.approvals import Actor, Approval, Decision, abandon, stop_all, withdraw
from bridge.errors import IllegalTransition, ProtocolError
from bridge.events import (
    AgentEvent,
    AnswerApproval,
    AnswerQuestions,
    ApprovalRequested,
    ApprovalWithdrawn,
    ControlAnswered,
    Interrupt,
    Notice,
    PlanUpdated,
    QuestionsAsked,
    SessionStarted,
    SettingsChanged,
    ToolStarted,
    TurnCompleted,
    TurnStarted,
    UsageLimit,
    UsageUpdated,
    event_kind,
)
from bridge.facts import Draft, Facts, event_data
from bridge.limits import LimitWatch, ShownNotice
from bridge.plans import PlanTracker
from bridge.redact import Redactor
from bridge.render import shorten, tool_preview
from bridge.session import SessionState, Trigger, apply, closed_under

#: states in which a live process waits for a person; the supervisor closes it when idle
RESTING_STATES = frozenset({SessionState.IDLE, SessionState.FAILED})


class SessionMachine:
    """The state of one session's process as the bridge sees it.

    `state` is the session's state; `pending` maps the agent's open request ids to the
    approvals shown for them; `stopping` is why we are closing the process, if we are."""

    def __init__(
        self,
        *,
        session_id: str,
        state: SessionState,
        cwd: str,
        new_id: Callable[[], str],
        protocol: str = "agent's",
        redactor: Redactor | None = None,
        turns: int = 0,
    ) -> None:
        self.session_id = session_id
        self.turns = turns  # how many turns the session has completed (its stored `turns`)
        self.state = state
        self.cwd = cwd
        self.protocol = protocol  # its name, for the reason when the agent never spoke it
        self.redactor = redactor or Redactor()
        self._new_id = new_id
        self.pending: dict[str, Approval] = {}
        # the agent's open question requests: request id → its questions (one card each)
        self.questions: dict[str, tuple[q.Question, ...]] = {}
        self.turn_active = False
        self.stopping: str | None = None
        # why `close()` closed the process, and the session's state when it began
        self.closed: tuple[str, SessionState] | None = None
        self.stopped_by: str | None = None  # who asked for it, when a person did
        self.interrupted_by: str | None = None  # who ended the running turn, keeping it
        self.settings: dict[str, str] = {}  # the mode and model the agent last announced
        self.plan = PlanTracker()  # the plan the running turn showed
        self.limit = LimitWatch()  # what the agent said about its usage limit
        self.failure: str | None = None
        # until the agent says something in its protocol, what it printed
        self.spoke = False
        self._unspoken: list[str] = []
        # what the last `decided()` changed, for `undo()`
        self._undo: tuple[SessionState, dict[str, Approval],
                          dict[str, tuple[q.Question, ...]]] = (state, {}, {})

    @property
    def resting(self) -> bool:
        """A live process waits for a person, and we are not closing it."""
        return self.state in RESTING_STATES and not self.stopping

    # -- what the agent says ---------------------------------------------------------

    def launched(self, *, with_prompt: bool) -> None:
        """The process was started, given its first prompt or not."""
        if with_prompt:
            self.turn_active = True

    def received(self, events: Sequence[AgentEvent], now: float) -> Facts:
        """Fold what one read of the agent's output decoded into; raises `ProtocolError`
        when the agent's events make a move the rules do not allow."""
        draft = Draft()
        for event in events:
            self._heard(event)
            draft.events.append((now, event_kind(event), event_data(event)))
            self._fold(draft, event, now)
        draft.changes["last_event_at"] = now
        return draft.facts()

    def _heard(self, event: AgentEvent) -> None:
        """Note whether the agent has spoken its protocol: anything but a stray line."""
        if self.spoke:
            return
        if isinstance(event, Notice):
            if sum(map(len, self._unspoken)) < 500:
                self._unspoken.append(event.text)
        else:
            self.spoke = True

    def _fold(self, draft: Draft, event: AgentEvent, now: float) -> None:
        match event:
            case SessionStarted(agent_session_id=agent_session_id):
                draft.changes["agent_session_id"] = agent_session_id
                self._settings(draft, event.mode, event.model)
                self._agent_moved(draft, Trigger.AGENT_READY, event)
            case TurnStarted():
                self.turn_active = True
                self._agent_moved(draft, Trigger.TURN_STARTED, event)
            case ToolStarted(tool=tool, input=tool_input):
                draft.urgent = True
                draft.changes["last_tool"] = shorten(
                    f"{tool} {tool_preview(tool, tool_input, 160, redactor=self.redactor)}",
                    200, self.redactor,
                )
            case ApprovalRequested():
                if event.request_id in self.pending or event.request_id in self.questions:
                    # the codecs refuse this already; an overwrite would let a decision on
                    # the first request's card answer the second request
                    raise ProtocolError(
                        f"request id {event.request_id!r} reused while that request is "
                        "still pending")
                approval = Approval(
                    id=self._new_id(),
                    session_id=self.session_id,
                    request_id=event.request_id,
                    tool=event.tool,
                    input=event.input,
                    offered=event.offered,
                    requested_at=now,
                    description=event.description,
                    cwd=event.cwd or self.cwd,
                    choices=event.choices,
                    on_disk=event.on_disk,
                )
                draft.new_approvals.append(approval)
                self.pending[event.request_id] = approval
                self._agent_moved(draft, Trigger.APPROVAL_PENDING, event)
            case QuestionsAsked():
                if event.request_id in self.pending or event.request_id in self.questions:
                    raise ProtocolError(
                        f"request id {event.request_id!r} reused while that request is "
                        "still pending")
                asked = tuple(
                    q.from_asked(one, id=self._new_id(), session_id=self.session_id,
                                 request_id=event.request_id, now=now)
                    for one in event.questions)
                draft.new_questions.extend(asked)
                self.questions[event.request_id] = asked
                self._agent_moved(draft, Trigger.APPROVAL_PENDING, event)
            case ApprovalWithdrawn(request_id=request_id):
                withdrawn = self.pending.pop(request_id, None)
                if withdrawn is not None:
                    draft.settled.append(withdraw(withdrawn, now=now))
                for question in self.questions.pop(request_id, ()):
                    if question.state is q.QuestionState.PENDING:
                        draft.settled_questions.append(q.withdraw(question, now=now))
                if not self.waiting:
                    self._agent_moved(draft, Trigger.APPROVALS_SETTLED, event)
            case SettingsChanged(mode=mode, model=model):
                self._settings(draft, mode, model)
            case PlanUpdated():
                news = self.plan.news(event, new_key=self._new_id())
                if news is not None and self.plan.key is not None:
                    draft.plans.append((self.plan.key, news))
            case UsageUpdated(total_tokens=tokens):
                draft.changes["tokens"] = tokens
            case UsageLimit():
                changes, notice = self.limit.fold(event, now)
                draft.changes.update(changes)
                if notice is not None:
                    draft.notices.append(notice)
            case Notice(shown=True, text=text):
                draft.notices.append(ShownNotice(text=text))
            case TurnCompleted():
                self._turn_completed(draft, event, now)
            case ControlAnswered(of="initialize", ok=True):
                if not self.turn_active:  # up, and waiting for a prompt
                    self._agent_moved(draft, Trigger.TURN_ENDED, event)
            case _:
                pass

    def _settings(self, draft: Draft, mode: str | None, model: str | None) -> None:
        """Keep the mode and model the agent says it runs in; only a change is a change
        (Claude repeats them with every turn: the status card is not edited for that)."""
        for key, value in (("mode", mode), ("model", model)):
            if value and self.settings.get(key) != value:
                self.settings[key] = value
                draft.changes[key] = value

    def _turn_completed(self, draft: Draft, event: TurnCompleted, now: float) -> None:
        self.turn_active = False
        self.plan.next_turn()  # the next turn's plan is a new message
        draft.turns_completed.append(event)
        self.turns += 1
        draft.turn = self.turns
        if event.interrupted:
            draft.stopped_by = self.stopped_by or self.interrupted_by
        self.interrupted_by = None
        draft.changes["finished_at"] = now
        draft.increments["turns"] = draft.increments.get("turns", 0) + 1
        if event.cost_usd is not None:
            # Claude reports the session's running total, not the turn's cost
            draft.changes["cost_usd"] = event.cost_usd
        if event.agent_session_id:
            draft.changes["agent_session_id"] = event.agent_session_id
        if event.is_error and not event.interrupted:
            draft.changes["error"] = shorten(event.error or "the turn failed", 2000,
                                             self.redactor)
            self._agent_moved(draft, Trigger.TURN_FAILED, event)
        else:
            draft.changes["error"] = None
            self._agent_moved(draft, Trigger.TURN_ENDED, event)

    # -- what people ask ---------------------------------------------------------------

    def prompt(self, text: str, actor: Actor, now: float) -> Facts:
        """A person's prompt starts a turn; `to_agent` carries nothing (the supervisor
        sends the prompt itself, so the codec can hold it until the agent is ready)."""
        draft = Draft()
        draft.record(now, "prompt", {"text": text, "by": actor.label})
        self._move(draft, Trigger.TURN_STARTED)
        self.turn_active = True
        return draft.facts()

    def decided(self, decision: Decision, now: float) -> Facts | None:
        """Fold a person's (or a rule's, or a timer's) decision; None when the agent's
        open request under that id is not the approval decided. Call `undo()` with the
        result if committing it loses the race to settle the approval."""
        approval = decision.approval
        mine = self.pending.get(approval.request_id)
        if mine is None or mine.id != approval.id:
            return None
        draft = Draft()
        draft.record(now, "decision", {
            "approval_id": approval.id,
            "decision": decision.kind.value,
            "by": approval.decided_by,
            "message": decision.message,
        })
        draft.settled.append(approval)
        self._undo = (self.state, dict(self.pending), dict(self.questions))
        del self.pending[approval.request_id]
        if not self.waiting:
            self._move(draft, Trigger.APPROVALS_SETTLED)
        draft.to_agent.append(AnswerApproval(
            request_id=approval.request_id,
            decision=decision.kind,
            message=decision.message,
            input=dict(approval.input),  # what the person was shown
            choice=approval.choice,
        ))
        return draft.facts()

    def question_settled(self, settled: q.Question, now: float) -> Facts | None:
        """Fold a question answered by a person or expired by the timer; None when the
        agent's open request has no such pending question. The agent is answered once none
        of the request's questions waits (an expired one is left out of the answers). Call
        `undo()` if committing it loses the race to settle the question."""
        asked = self.questions.get(settled.request_id, ())
        if not any(one.id == settled.id and one.state is q.QuestionState.PENDING
                   for one in asked):
            return None
        draft = Draft()
        draft.record(now, "question_settled", {
            "question_id": settled.id, "state": settled.state.value, "by": settled.answered_by,
        })
        draft.settled_questions.append(settled)
        self._undo = (self.state, dict(self.pending), dict(self.questions))
        now_asked = tuple(settled if one.id == settled.id else one for one in asked)
        answers = q.request_answers(now_asked)
        if answers is None:
            self.questions[settled.request_id] = now_asked
            return draft.facts()
        del self.questions[settled.request_id]
        draft.to_agent.append(AnswerQuestions(request_id=settled.request_id, answers=answers))
        if not self.waiting:
            self._move(draft, Trigger.APPROVALS_SETTLED)
        return draft.facts()

    @property
    def waiting(self) -> bool:
        """The agent waits for a person: an approval or a question is open."""
        return bool(self.pending or self.questions)

    def undo(self) -> None:
        """Forget the last `decided()` or `question_settled()`: someone settled it first."""
        self.state, self.pending, self.questions = self._undo

    def stop(self, actor: Actor, reason: str | None, now: float) -> Facts:
        """A person stops the session: what waits is denied, a running turn interrupted;
        the supervisor closes the process after committing."""
        self.stopping = reason or f"stopped by {actor.label}"
        self.stopped_by = actor.label
        draft = Draft()
        draft.record(now, "stop", {"by": actor.label})
        for stopped in stop_all(self.pending.values(), actor, now=now):
            draft.settled.append(stopped.approval)
            draft.to_agent.append(AnswerApproval(
                request_id=stopped.approval.request_id, decision=stopped.kind,
                message=stopped.message,
            ))
        self.pending.clear()
        self._give_up_questions(draft, f"stopped by {actor.label}; {q.NOT_ANSWERED}", now,
                                tell_agent=True)
        self._move(draft, Trigger.STOPPED)
        draft.changes["error"] = None
        if self.turn_active:
            draft.to_agent.append(Interrupt())
        return draft.facts()

    def interrupt(self, actor: Actor, now: float) -> Facts:
        """A person ends the running turn and keeps the session: the agent is interrupted
        and, once it says the turn ended, waits idle for a reply. Nothing pending is
        answered here: the agent withdraws what it asked (never an approval by accident)."""
        draft = Draft()
        draft.record(now, "interrupt", {"by": actor.label})
        self.interrupted_by = actor.label
        draft.to_agent.append(Interrupt())
        return draft.facts()

    def close(self, reason: str) -> None:
        """We close the process without a person asking (the daemon stops, idle). `reason`
        completes "… while this session was running"; the session ends as `closed_under`
        says for the state it is in now, whatever the agent does once it is refused."""
        if self.stopping is None:
            self.stopping = reason
            self.closed = (reason, self.state)

    def broke(self, failure: str) -> None:
        """The agent broke its protocol, or the supervisor failed: the end is a crash."""
        self.failure = failure

    # -- how the process ended ---------------------------------------------------------

    def exited(
        self, code: int, stderr_tail: str, now: float, *, disconnected_from: str | None = None
    ) -> Facts:
        """Classify how the process ended: its exit `code`, the end of its stderr, and the
        host whose connection dropped, if it did. What waits expires; the state is final."""
        draft = Draft()
        tail = stderr_tail
        draft.record(now, "exited", {"code": code, "stderr": tail[-4000:]})
        disconnected = disconnected_from is not None and not self.stopping
        why = (f"the connection to {disconnected_from} dropped" if disconnected
               else self.closed[0] if self.closed is not None
               else "the agent exited")
        for approval in self.pending.values():
            draft.settled.append(abandon(approval, now=now, reason=f"{why}; nothing was approved"))
        self.pending.clear()
        self._give_up_questions(draft, f"{why}; {q.NOT_ANSWERED}", now, tell_agent=False)
        if disconnected:
            self._move(draft, Trigger.DISCONNECTED)
            draft.changes["error"] = (f"the connection to {disconnected_from} dropped; resume "
                                      "the session when the host is back")
        elif self.failure:
            self._move(draft, Trigger.CRASHED)
            draft.changes["error"] = self.failure
        elif self.closed is not None and self.state is not SessionState.STOPPED:
            trigger, reason = closed_under(self.closed[1], self.closed[0])
            if reason is not None:
                draft.changes["error"] = reason
            self._move(draft, trigger)
        elif code == 0 and not self.spoke and not self.stopping:
            # `/bin/echo hi` as the agent: exiting 0 is no success if it never spoke
            reason = (f"the agent exited (status {code}) without speaking the "
                      f"{self.protocol} protocol; check the agent's `command`")
            said = " ".join(self._unspoken).strip()
            if said:
                reason += f"; stdout: {shorten(said, 300, self.redactor)}"
            if tail:
                reason += f"; stderr: {shorten(tail.splitlines()[-1], 300, self.redactor)}"
            draft.changes["error"] = reason
            self._move(draft, Trigger.CRASHED)
        elif self.stopping or (code == 0 and self.state is not SessionState.WAITING_APPROVAL):
            self._move(draft, Trigger.EXITED)
        else:
            reason = f"the agent exited with code {code}"
            if self.state is SessionState.WAITING_APPROVAL:
                reason += " while waiting for an approval"
            if tail:
                reason += f": {shorten(tail.splitlines()[-1], 500, self.redactor)}"
            draft.changes["error"] = reason
            self._move(draft, Trigger.CRASHED)
        draft.changes["pid"] = None
        return draft.facts()

    # -- moves -------------------------------------------------------------------------

    def _give_up_questions(self, draft: Draft, reason: str, now: float, *,
                           tell_agent: bool) -> None:
        """Nobody will answer what is asked: every pending question expires (never a
        made-up answer); the agent, when it still listens, hears that nobody answered."""
        for request_id, asked in self.questions.items():
            for question in asked:
                if question.state is q.QuestionState.PENDING:
                    draft.settled_questions.append(q.abandon(question, now=now, reason=reason))
            if tell_agent:
                draft.to_agent.append(AnswerQuestions(request_id=request_id))
        self.questions.clear()

    def stored_questions(self, questions: Iterable[q.Question]) -> None:
        """The store kept these questions (under a new id when the drawn one was taken)."""
        for question in questions:
            asked = self.questions.get(question.request_id)
            if asked is not None:
                self.questions[question.request_id] = tuple(
                    question if one.key == question.key else one for one in asked)

    def stored(self, approvals: Iterable[Approval]) -> None:
        """The store kept these approvals (under a new id when the drawn one was taken)."""
        for approval in approvals:
            if approval.request_id in self.pending:
                self.pending[approval.request_id] = approval

    def _agent_moved(self, draft: Draft, trigger: Trigger, event: AgentEvent) -> None:
        try:
            self._move(draft, trigger)
        except IllegalTransition as e:
            raise ProtocolError(
                f"the agent's {event_kind(event)} is not allowed while the session is "
                f"{self.state.value}", event_data(event)) from e

    def _move(self, draft: Draft, trigger: Trigger) -> None:
        new = apply(self.state, trigger)
        if new is not self.state:
            self.state = new
            draft.changes["state"] = new
            draft.state_changed = True
