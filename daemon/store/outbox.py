"""The outbox table: what each surface still has to show, in order, with its attempts; a
delivery commits the references it made (the messages it posted) with it."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from daemon.store.refs import RefRepository


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    surface: str
    session_id: str | None
    kind: str  # an encoded intent's kind: `bridge/outbox.py` decodes kind and payload
    payload: dict[str, Any]
    created_at: float
    attempts: int
    steps: int = 0  # messages of this row already sent (a retry resumes after them)


@dataclass(frozen=True, slots=True)
class FailedDelivery:
    """An outbox row given up on: what it was, where to, and why."""

    id: int
    surface: str
    kind: str
    attempts: int
    error: str | None
    failed_at: float


class OutboxRepository(RefRepository):
    async def outbox_pending(self, surface: str, *, limit: int = 100,
                             skip_kinds: Collection[str] = ()) -> list[OutboxItem]:
        """The oldest undelivered rows for `surface`, in order, but none of `skip_kinds`."""
        skip = ""
        if skip_kinds:
            skip = f"AND kind NOT IN ({','.join('?' * len(skip_kinds))}) "
        rows = await self._fetch_all(
            "SELECT id, surface, session_id, kind, payload, created_at, attempts, steps "
            f"FROM outbox WHERE surface = ? AND delivered_at IS NULL AND failed_at IS NULL "
            f"{skip}ORDER BY id LIMIT ?",
            (surface, *skip_kinds, limit),
        )
        return [
            OutboxItem(
                r["id"], r["surface"], r["session_id"], r["kind"], json.loads(r["payload"]),
                r["created_at"], r["attempts"], r["steps"],
            )
            for r in rows
        ]

    async def outbox_failed(self, session_id: str) -> list[FailedDelivery]:
        """The session's outbox rows that were given up on, oldest first."""
        rows = await self._fetch_all(
            "SELECT id, surface, kind, attempts, last_error, failed_at FROM outbox "
            "WHERE session_id = ? AND failed_at IS NOT NULL ORDER BY id",
            (session_id,),
        )
        return [FailedDelivery(r["id"], r["surface"], r["kind"], r["attempts"],
                               r["last_error"], r["failed_at"]) for r in rows]

    async def enqueue(
        self, surfaces: Sequence[str], *, session_id: str | None, kind: str,
        payload: dict[str, Any], now: float,
    ) -> None:
        async with self._transaction() as db:
            await self._enqueue_all(db, surfaces, session_id=session_id,
                                    items=[(kind, payload)], now=now)

    async def mark_delivered(self, ids: Sequence[int], *, now: float,
                             urgent: bool = False) -> None:
        for sql, args in _delivered(ids, now):
            await self._write(sql, args, urgent=urgent)

    async def record_delivery(self, surface: str, ids: Sequence[int], *,
                              refs: Mapping[str, str], now: float, urgent: bool = False) -> None:
        """Mark outbox items delivered and store the references their delivery made (the
        messages it posted), in one transaction; `urgent` as for `set_refs`."""
        if not refs:
            await self.mark_delivered(ids, now=now, urgent=urgent)
            return
        async with self._transaction(urgent=urgent) as db:
            await self._put_refs(db, surface, refs)
            for sql, args in _delivered(ids, now):
                await db.execute(sql, args)
        self._refs_changed()

    async def mark_failed(self, item_id: int, error: str, *, give_up_at: float | None = None,
                          urgent: bool = False) -> None:
        """Count a failed attempt and its reason; with `give_up_at`, the row is given up on
        (never tried again; `outbox_failed` lists it)."""
        await self._write(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, failed_at = ? "
            "WHERE id = ?",
            (error[:1000], give_up_at, item_id), urgent=urgent,
        )

    async def record_step(self, surface: str, item_id: int, steps: int, *,
                          refs: Mapping[str, str], urgent: bool = False) -> None:
        """`steps` messages of an outbox row are out: stored with the references they made,
        in one transaction, so that a retry of the row resumes after them."""
        if not refs:
            await self._write("UPDATE outbox SET steps = ? WHERE id = ?", (steps, item_id),
                              urgent=urgent)
            return
        async with self._transaction(urgent=urgent) as db:
            await self._put_refs(db, surface, refs)
            await db.execute("UPDATE outbox SET steps = ? WHERE id = ?", (steps, item_id))
        self._refs_changed()

    @staticmethod
    async def _enqueue_all(
        db: aiosqlite.Connection, surfaces: Sequence[str], *, session_id: str | None,
        items: Sequence[tuple[str, dict[str, Any]]], now: float,
    ) -> None:
        """Outbox rows for each (kind, payload) of `items` and each surface, in that order,
        with one statement of the caller's transaction."""
        if not surfaces or not items:
            return
        rows = []
        for kind, payload in items:
            data = json.dumps(payload, ensure_ascii=False)
            rows += [(s, session_id, kind, data, now) for s in surfaces]
        await db.executemany(
            "INSERT INTO outbox (surface, session_id, kind, payload, created_at) "
            "VALUES (?,?,?,?,?)",
            rows,
        )


def _delivered(ids: Sequence[int], now: float) -> list[tuple[str, list[Any]]]:
    """UPDATEs that mark outbox rows delivered: one per 500 rows (SQLite's limit on
    parameters is 999 in old builds)."""
    statements = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        statements.append(
            (f"UPDATE outbox SET delivered_at = ? WHERE id IN ({marks})", [now, *chunk]))
    return statements
