"""The outbox fan-out: what the daemon has to show goes to every surface, and they are woken.

Every intent (bridge/outbox.py) is queued once per registered surface in the store's outbox;
each surface's delivery is woken to send it. A runner's committed batch of agent events is
turned into intents here too (`outbox_kinds`), so the runner queues them in the same
transaction as the events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from bridge.facts import Facts
from bridge.outbox import (
    Intent,
    PostApproval,
    PostNotice,
    PostQuestion,
    PostSummary,
    Priority,
    RefreshStatus,
    ShowPlan,
    UpdateApproval,
    UpdateQuestion,
    encode,
    priority_of,
)
from daemon.store import Store

# the session fields the status card shows besides its state
_SHOWN_FIELDS = frozenset({"last_tool", "mode", "model", "limit_hit_at", "limit_reset_at",
                           "resume_at"})

_PROGRESS_KINDS = frozenset({"tool_finished", "assistant_text"})


class Fanout:
    """The registered surfaces and their wake-up calls, and the one way to queue to them."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._surfaces: list[str] = []
        self._wakers: list[Callable[[], Any]] = []
        # how many answers to a person (a diff, a digest asked for) were queued: deliveries
        # compare it to what they last saw and send those at once, beside the rest
        self.answers_queued = 0

    def add_surface(self, name: str, wake: Callable[[], Any] | None = None) -> None:
        """Send outbox items to surface `name`; `wake()` is called whenever there are new ones."""
        self._surfaces.append(name)
        if wake is not None:
            self._wakers.append(wake)

    def surfaces(self) -> Sequence[str]:
        return self._surfaces

    def wake_surfaces(self) -> None:
        for wake in self._wakers:
            wake()

    async def enqueue(self, session_id: str | None, intent: Intent, *,
                      only: str | None = None) -> None:
        """Queue `intent` for every surface (or only for surface `only`, if registered)."""
        targets = [s for s in self._surfaces if only is None or s == only]
        if targets:
            kind, payload = encode(intent)
            await self.store.enqueue(targets, session_id=session_id, kind=kind,
                                     payload=payload, now=self.clock())
            if priority_of(kind, payload) <= Priority.CARD:
                self.answers_queued += 1
            self.wake_surfaces()

    def outbox_kinds(self, batch: Facts) -> list[tuple[str, dict[str, Any]]]:
        """The outbox rows a committed batch of agent events makes (encoded intents)."""
        if not self._surfaces:
            return []
        intents: list[Intent] = []
        for approval in batch.new_approvals:
            intents.append(PostApproval(approval_id=approval.id))
        for approval in batch.settled:
            intents.append(UpdateApproval(approval_id=approval.id))
        for question in batch.new_questions:
            intents.append(PostQuestion(question_id=question.id))
        for question in batch.settled_questions:
            intents.append(UpdateQuestion(question_id=question.id))
        for key, plan in batch.plans:
            intents.append(ShowPlan(key=key, text=plan.text, steps=tuple(
                (step.text, step.status.value) for step in plan.steps)))
        last = len(batch.turns_completed) - 1
        for n, turn in enumerate(batch.turns_completed):
            intents.append(PostSummary(
                turn=None if batch.turn is None else batch.turn - (last - n),
                final_text=turn.result_text,
                is_error=turn.is_error and not turn.interrupted,
                interrupted=turn.interrupted,
                stopped_by=batch.stopped_by if turn.interrupted else None,
                error=turn.error,
                cost_usd=turn.cost_usd,
                duration_ms=turn.duration_ms,
                num_turns=turn.num_turns,
            ))
        # the progress message shows a turn's tool results and latest text
        progressed = any(kind in _PROGRESS_KINDS for _, kind, _ in batch.events)
        for notice in batch.notices:
            intents.append(PostNotice(text=notice.text, limit=notice.limit))
        if (batch.state_changed or intents or progressed
                or not _SHOWN_FIELDS.isdisjoint(batch.changes)):
            intents.append(RefreshStatus())
        return [encode(intent) for intent in intents]
