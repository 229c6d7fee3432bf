"""The SQLite store: sessions, their events (the full transcript), approvals, an outbox and
the surfaces' references.

One writer connection behind the writer lock (`daemon/writelock.py`), WAL, `BEGIN
IMMEDIATE` for every write transaction, numbered migrations in `PRAGMA user_version`
(`daemon/migrations.py`); a database written by a newer agent-bridge is refused rather than
damaged. No SQL outside this package: callers get dataclasses back.

    database.py   Database: the connections, `_write`, `_transaction`, `_fetch_*`
    sessions.py   SessionRepository      → bridge.model.SessionView
    events.py     EventRepository        → StoredEvent
    approvals.py  ApprovalRepository     → bridge.approvals.Approval
    questions.py  QuestionRepository     → bridge.questions.Question
    refs.py       RefRepository          (surface references)
    settings.py   SettingsRepository     (the daemon's switches, e.g. away mode)
    outbox.py     OutboxRepository       → OutboxItem, FailedDelivery
    snapshots.py  SnapshotRepository     (each turn's end, as the session's diff then)

`Store` is all of them over one `Database` (the repositories are mixins: one connection
pair and one lock, and each method lives in the module of its table), plus `commit_facts`,
the one batch that writes to several tables at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bridge.facts import Facts
from daemon.store.approvals import ApprovalRepository
from daemon.store.events import EventRepository, StoredEvent
from daemon.store.outbox import FailedDelivery, OutboxItem, OutboxRepository
from daemon.store.questions import QuestionRepository
from daemon.store.sessions import ID_ALPHABET, SESSION_FIELDS, SessionRepository, new_id
from daemon.store.settings import SettingsRepository
from daemon.store.snapshots import SnapshotRepository

__all__ = [
    "ID_ALPHABET",
    "SESSION_FIELDS",
    "FailedDelivery",
    "OutboxItem",
    "Store",
    "StoredEvent",
    "new_id",
]

OutboxRows = Callable[[Facts], Sequence[tuple[str, dict[str, Any]]]]


class Store(SessionRepository, EventRepository, ApprovalRepository, QuestionRepository,
            OutboxRepository, SnapshotRepository, SettingsRepository):
    """Open with `await Store.open(path)`; close with `await store.close()`."""

    async def commit_facts(
        self, session_id: str, facts: Facts, *, now: float, surfaces: Sequence[str],
        outbox: OutboxRows,
    ) -> Facts | None:
        """Commit one step of a session in one transaction: its events, new approvals,
        settled approvals, field changes (and `updated_at = now`), increments, and the
        outbox rows `outbox` makes of the facts as stored, for each of `surfaces`.

        Returns the facts as stored (an approval whose drawn id was taken is stored under a
        new one), or None, with nothing written, when a settled approval had already been
        settled by someone else. Urgent (see `WriterLock`) when the facts say so or when
        they ask for or settle an approval."""
        urgent = facts.urgent or bool(facts.new_approvals or facts.settled
                                      or facts.new_questions or facts.settled_questions)
        try:
            async with self._transaction(urgent=urgent) as db:
                if facts.events:
                    await self._insert_events(db, session_id, list(facts.events))
                stored = [await self._insert_approval(db, a) for a in facts.new_approvals]
                if stored != list(facts.new_approvals):
                    facts = replace(facts, new_approvals=tuple(stored))
                asked = [await self._insert_question(db, q) for q in facts.new_questions]
                if asked != list(facts.new_questions):
                    facts = replace(facts, new_questions=tuple(asked))
                won = [await self._settle(db, approval) for approval in facts.settled]
                won += [await self._settle_question(db, q) for q in facts.settled_questions]
                if not all(won):
                    raise _SettleLost()
                await self._set_session_fields(db, session_id,
                                               {**facts.changes, "updated_at": now})
                await self._add_to_session_fields(db, session_id, facts.increments)
                await self._enqueue_all(db, surfaces, session_id=session_id,
                                        items=outbox(facts), now=now)
        except _SettleLost:
            return None
        return facts


class _SettleLost(Exception):
    """A conditional settle lost the race: the transaction is rolled back."""
