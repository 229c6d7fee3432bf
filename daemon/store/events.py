"""The events table: each session's full transcript, read back as `StoredEvent`s."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from daemon.store.database import Database


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    session_id: str
    ts: float
    kind: str
    data: dict[str, Any]


class EventRepository(Database):
    async def events(
        self, session_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        sql = "SELECT id, session_id, ts, kind, data FROM events WHERE session_id = ? AND id > ?"
        sql += " ORDER BY id"
        args: list[Any] = [session_id, after]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = await self._fetch_all(sql, args)
        return [
            StoredEvent(r["id"], r["session_id"], r["ts"], r["kind"], json.loads(r["data"]))
            for r in rows
        ]

    async def turn_tools(self, session_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The tool events of the session's latest turn, oldest first."""
        rows = await self._fetch_all(
            "SELECT kind, data FROM events WHERE session_id = ? "
            "AND kind IN ('tool_started', 'tool_finished') AND id > COALESCE(("
            "  SELECT id FROM events WHERE session_id = ? AND kind = 'turn_completed' "
            "  ORDER BY id DESC LIMIT 1 OFFSET 1), 0) ORDER BY id",
            (session_id, session_id),
        )
        return [(r["kind"], json.loads(r["data"])) for r in rows]

    async def turn_progress(self, session_id: str,
                            limit: int = 200) -> list[tuple[str, dict[str, Any]]]:
        """The tool and text events of the session's running turn (since its last turn
        ended), the latest `limit` of them, oldest first."""
        rows = await self._fetch_all(
            "SELECT kind, data FROM events WHERE session_id = ? "
            "AND kind IN ('tool_started', 'tool_finished', 'assistant_text') AND id > COALESCE(("
            "  SELECT id FROM events WHERE session_id = ? AND kind = 'turn_completed' "
            "  ORDER BY id DESC LIMIT 1), 0) ORDER BY id DESC LIMIT ?",
            (session_id, session_id, limit),
        )
        return [(r["kind"], json.loads(r["data"])) for r in reversed(rows)]

    async def count_events(self, session_id: str | None = None) -> int:
        args: tuple[str, ...] = ()
        if session_id is None:
            sql = "SELECT COUNT(*) FROM events"
        else:
            sql, args = "SELECT COUNT(*) FROM events WHERE session_id = ?", (session_id,)
        row = await self._fetch_one(sql, args)
        return int(row[0]) if row else 0

    async def record_event(self, session_id: str, kind: str, data: Mapping[str, Any], *,
                           now: float) -> None:
        """One event in the session's transcript (a command, a note), committed on its own."""
        await self._write(
            "INSERT INTO events (session_id, ts, kind, data) VALUES (?,?,?,?)",
            (session_id, now, kind, json.dumps(data)),
        )

    @staticmethod
    async def _insert_events(
        db: aiosqlite.Connection, session_id: str, rows: Sequence[tuple[float, str, str]]
    ) -> None:
        """Events as (ts, kind, JSON text), in one statement of the caller's transaction."""
        await db.executemany(
            "INSERT INTO events (session_id, ts, kind, data) VALUES (?,?,?,?)",
            [(session_id, ts, kind, data) for ts, kind, data in rows],
        )
