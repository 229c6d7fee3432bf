"""The SQLite store: sessions, their events (the full transcript), approvals, an outbox.

One writer connection behind an asyncio lock, WAL, `BEGIN IMMEDIATE` for every write
transaction, numbered migrations in `PRAGMA user_version` (`daemon/migrations.py`); a
database written by a newer agent-bridge is refused rather than damaged. Repositories
return `bridge` dataclasses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiosqlite

from bridge.approvals import Approval, ApprovalState
from bridge.events import DecisionKind
from bridge.model import SessionView
from bridge.session import SessionState
from daemon.errors import NotFound, StoreError
from daemon.migrations import migrate
from daemon.paths import open_private, tighten_private
from daemon.writelock import WriterLock

ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: easy to read and type

_SESSION_COLUMNS = (
    "id, project, agent, protocol, host, cwd, state, archived, agent_session_id, title, "
    "branch, last_tool, cost_usd, error, created_at, updated_at, turns, last_event_at, "
    "finished_at, reviewed_at, parked, owner, tokens"
)
_APPROVAL_COLUMNS = (
    "id, session_id, request_id, tool, input, offered, description, cwd, state, decision, "
    "decided_by, decided_at, reason, requested_at"
)
SESSION_FIELDS = frozenset(
    {
        "state",
        "archived",
        "agent_session_id",
        "title",
        "branch",
        "start_commit",
        "last_tool",
        "tokens",
        "cost_usd",
        "error",
        "turns",
        "pid",
        "updated_at",
        "last_event_at",
        "repo_root",
        "start_dirty",
        "start_branch",
        "worktree",
        "cwd",
        "finished_at",
        "reviewed_at",
        "parked",
    }
)


def new_id(length: int = 6) -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    session_id: str
    ts: float
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    surface: str
    session_id: str | None
    kind: str
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


class Store:
    """Open with `await Store.open(path)`; close with `await store.close()`."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db  # the one writer
        # Reads go through a connection of their own, so that they see only what is
        # committed: on the writer's they would see a transaction half done (a session
        # already idle whose turn is not counted yet). WAL lets both work at once.
        self._read = db
        # one read at a time from execute to close: a statement left open across an await
        # would hold its snapshot, and the next read (another coroutine's) would see it
        # instead of what was committed since
        self._reading = asyncio.Lock()
        self.path = path
        self._lock = WriterLock()
        # set (and replaced) each time surface references are committed: a person may
        # answer a message the moment it appears, before its reference is stored
        self._refs_written = asyncio.Event()

    @classmethod
    async def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 before SQLite opens it: SQLite gives the -wal and -shm files the database's
        # mode. Files left by an older version are tightened; a symlink is refused.
        os.close(open_private(path))
        for suffix in ("-wal", "-shm", "-journal"):
            tighten_private(path.with_name(path.name + suffix))
        try:
            db = await _connect(path)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open the database {path}: {e}") from e
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            store = cls(db, path)
            await migrate(db, path)
            store._read = await _connect(path)
            await store._read.execute("PRAGMA query_only=ON")
        except sqlite3.DatabaseError as e:
            await db.close()
            raise StoreError(f"cannot open the database {path}: {e}") from e
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        if self._read is not self._db:
            await self._read.close()
        await self._db.close()

    async def _write(self, sql: str, args: Sequence[Any], *, urgent: bool = False) -> None:
        """One statement, a transaction of its own (autocommit): one trip to the database
        thread instead of three (BEGIN, the statement, COMMIT), so the lock is held for as
        short a time as possible; everything else waits on it."""
        async with self._lock.held(urgent=urgent):
            await self._db.execute(sql, args)

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """`BEGIN IMMEDIATE` … `COMMIT` (or `ROLLBACK` on an exception) under the writer's
        lock; `urgent` goes before routine writers still waiting (see `WriterLock`)."""
        async with self._lock.held(urgent=urgent):
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    # -- sessions -------------------------------------------------------------------

    async def create_session(
        self,
        *,
        project: str,
        agent: str,
        protocol: str,
        cwd: str,
        host: str,
        title: str,
        now: float,
        owner: str | None = None,
    ) -> SessionView:
        async with self.transaction() as db:
            for _ in range(20):
                sid = new_id()
                async with db.execute("SELECT 1 FROM sessions WHERE id = ?", (sid,)) as cur:
                    if await cur.fetchone() is None:
                        break
            await db.execute(
                "INSERT INTO sessions (id, project, agent, protocol, host, cwd, state, title, "
                "created_at, updated_at, last_event_at, owner) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (sid, project, agent, protocol, host, cwd, SessionState.STARTING.value, title,
                 now, now, now, owner),
            )
        return await self.session(sid)

    async def session(self, session_id: str) -> SessionView:
        async with self._reading, self._read.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no session {session_id!r}; `agent-bridge sessions --all` lists them")
        return _session(row)

    async def session_extra(self, session_id: str) -> dict[str, Any]:
        async with self._reading, self._read.execute(
            "SELECT start_commit, pid, last_event_at, repo_root, start_dirty, start_branch, "
            "worktree FROM sessions WHERE id = ?",
            (session_id,),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        return dict(row)

    async def sessions(self, *, include_archived: bool = False) -> list[SessionView]:
        where = "" if include_archived else "WHERE archived = 0"
        async with self._reading, self._read.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions {where} ORDER BY updated_at DESC"
        ) as cur:
            rows = await cur.fetchall()
        return [_session(r) for r in rows]

    async def recorded_pids(self) -> dict[str, int]:
        """Session id → the agent process recorded for it (set at launch, cleared at exit)."""
        async with self._reading, self._read.execute(
            "SELECT id, pid FROM sessions WHERE pid IS NOT NULL"
        ) as cur:
            rows = await cur.fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    async def sessions_in(self, states: Iterable[SessionState]) -> list[SessionView]:
        names = [s.value for s in states]
        marks = ",".join("?" for _ in names)
        async with self._reading, self._read.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE state IN ({marks})", names
        ) as cur:
            rows = await cur.fetchall()
        return [_session(r) for r in rows]

    async def update_session(self, session_id: str, **changes: Any) -> None:
        async with self._lock:  # one statement: a transaction of its own
            await _update_session(self._db, session_id, changes)

    # -- events ---------------------------------------------------------------------

    async def events(
        self, session_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[StoredEvent]:
        sql = "SELECT id, session_id, ts, kind, data FROM events WHERE session_id = ? AND id > ?"
        sql += " ORDER BY id"
        args: list[Any] = [session_id, after]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        async with self._reading, self._read.execute(sql, args) as cur:
            rows = await cur.fetchall()
        return [
            StoredEvent(r["id"], r["session_id"], r["ts"], r["kind"], json.loads(r["data"]))
            for r in rows
        ]

    async def turn_tools(self, session_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The tool events of the session's latest turn, oldest first."""
        async with self._reading, self._read.execute(
            "SELECT kind, data FROM events WHERE session_id = ? "
            "AND kind IN ('tool_started', 'tool_finished') AND id > COALESCE(("
            "  SELECT id FROM events WHERE session_id = ? AND kind = 'turn_completed' "
            "  ORDER BY id DESC LIMIT 1 OFFSET 1), 0) ORDER BY id",
            (session_id, session_id),
        ) as cur:
            rows = await cur.fetchall()
        return [(r["kind"], json.loads(r["data"])) for r in rows]

    async def count_events(self, session_id: str | None = None) -> int:
        args: tuple[str, ...] = ()
        if session_id is None:
            sql = "SELECT COUNT(*) FROM events"
        else:
            sql, args = "SELECT COUNT(*) FROM events WHERE session_id = ?", (session_id,)
        async with self._reading, self._read.execute(sql, args) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def record_event(self, session_id: str, kind: str, data: Mapping[str, Any], *,
                           now: float) -> None:
        """One event in the session's transcript (a command, a note), committed on its own."""
        await self._write(
            "INSERT INTO events (session_id, ts, kind, data) VALUES (?,?,?,?)",
            (session_id, now, kind, json.dumps(data)),
        )

    # -- approvals ------------------------------------------------------------------

    async def approval(self, approval_id: str) -> Approval:
        async with self._reading, self._read.execute(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise NotFound(
                f"no approval {approval_id!r}; `agent-bridge sessions` lists the pending ones"
            )
        return _approval(row)

    async def approvals(
        self, *, session_id: str | None = None, state: ApprovalState | None = None,
        decision: DecisionKind | None = None,
    ) -> list[Approval]:
        clauses, args = [], []
        if decision is not None:
            clauses.append("decision = ?")
            args.append(decision.value)
        if session_id is not None:
            clauses.append("session_id = ?")
            args.append(session_id)
        if state is not None:
            clauses.append("state = ?")
            args.append(state.value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        async with self._reading, self._read.execute(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals {where} ORDER BY requested_at, rowid", args
        ) as cur:
            rows = await cur.fetchall()
        return [_approval(r) for r in rows]

    async def mark_reminded(self, approval_id: str, now: float) -> None:
        await self._write("UPDATE approvals SET reminded_at = ? WHERE id = ?",
                          (now, approval_id))

    async def unreminded(self, older_than: float) -> list[Approval]:
        """Pending approvals requested before `older_than` whose reminder has not gone out."""
        async with self._reading, self._read.execute(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE state = 'pending' "
            "AND reminded_at IS NULL AND requested_at <= ? ORDER BY requested_at",
            (older_than,),
        ) as cur:
            rows = await cur.fetchall()
        return [_approval(r) for r in rows]

    async def add_approval(self, approval: Approval) -> Approval:
        """Store a new approval, under a new id if its id is taken; returned as stored."""
        async with self.transaction() as db:
            return await insert_approval(db, approval)

    async def settle_approval(self, settled: Approval) -> bool:
        """Commit a decision exactly once: False when someone else settled it first."""
        async with self.transaction() as db:
            return await settle_in(db, settled)

    # -- outbox and surface references ------------------------------------------------

    async def outbox_pending(self, surface: str, *, limit: int = 100,
                             skip_kinds: Collection[str] = ()) -> list[OutboxItem]:
        """The oldest undelivered rows for `surface`, in order, but none of `skip_kinds`."""
        skip = ""
        if skip_kinds:
            skip = f"AND kind NOT IN ({','.join('?' * len(skip_kinds))}) "
        async with self._reading, self._read.execute(
            "SELECT id, surface, session_id, kind, payload, created_at, attempts, steps "
            f"FROM outbox WHERE surface = ? AND delivered_at IS NULL AND failed_at IS NULL "
            f"{skip}ORDER BY id LIMIT ?",
            (surface, *skip_kinds, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [
            OutboxItem(
                r["id"], r["surface"], r["session_id"], r["kind"], json.loads(r["payload"]),
                r["created_at"], r["attempts"], r["steps"],
            )
            for r in rows
        ]

    async def outbox_failed(self, session_id: str) -> list[FailedDelivery]:
        """The session's outbox rows that were given up on, oldest first."""
        async with self._reading, self._read.execute(
            "SELECT id, surface, kind, attempts, last_error, failed_at FROM outbox "
            "WHERE session_id = ? AND failed_at IS NOT NULL ORDER BY id",
            (session_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [FailedDelivery(r["id"], r["surface"], r["kind"], r["attempts"],
                               r["last_error"], r["failed_at"]) for r in rows]

    async def enqueue(
        self, surfaces: Sequence[str], *, session_id: str | None, kind: str,
        payload: dict[str, Any], now: float,
    ) -> None:
        async with self.transaction() as db:
            await enqueue_in(db, surfaces, session_id=session_id, kind=kind, payload=payload,
                             now=now)

    async def mark_delivered(self, ids: Sequence[int], *, now: float,
                             urgent: bool = False) -> None:
        for sql, args in _delivered(ids, now):
            await self._write(sql, args, urgent=urgent)

    async def record_delivery(self, surface: str, ids: Sequence[int], *,
                              refs: Mapping[str, str], now: float, urgent: bool = False) -> None:
        """Mark outbox items delivered and store the references their delivery made (the
        messages it posted), in one transaction; `urgent` as for `transaction()`."""
        if not refs:
            await self.mark_delivered(ids, now=now, urgent=urgent)
            return
        async with self.transaction(urgent=urgent) as db:
            await db.executemany(_SET_REF, [(surface, key, value) for key, value in refs.items()])
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
        async with self.transaction(urgent=urgent) as db:
            await db.executemany(_SET_REF, [(surface, key, value) for key, value in refs.items()])
            await db.execute("UPDATE outbox SET steps = ? WHERE id = ?", (steps, item_id))
        self._refs_changed()

    async def get_ref(self, surface: str, key: str) -> str | None:
        async with self._reading, self._read.execute(
            "SELECT value FROM surface_refs WHERE surface = ? AND key = ?", (surface, key)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def set_ref(self, surface: str, key: str, value: str) -> None:
        await self._write(_SET_REF, (surface, key, value))
        self._refs_changed()

    async def set_refs(self, surface: str, refs: Mapping[str, str], *,
                       urgent: bool = False) -> None:
        """Several references, in one transaction; `urgent` as for `transaction()`."""
        async with self.transaction(urgent=urgent) as db:
            await db.executemany(_SET_REF, [(surface, key, value) for key, value in refs.items()])
        self._refs_changed()

    def _refs_changed(self) -> None:
        self._refs_written.set()
        self._refs_written = asyncio.Event()

    async def find_ref_soon(self, surface: str, value: str, prefix: str, *,
                            timeout: float) -> str | None:
        """`find_ref`, waiting up to `timeout` seconds for the reference to be stored: a
        message the daemon has just posted is on the platform before its reference is
        committed, and a person may answer it at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            written = self._refs_written
            found = await self.find_ref(surface, value, prefix)
            left = deadline - loop.time()
            if found is not None or left <= 0:
                return found
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(written.wait(), left)

    async def find_ref(self, surface: str, value: str, prefix: str) -> str | None:
        """The key under `prefix` whose value is `value` (e.g. which session owns a topic)."""
        async with self._reading, self._read.execute(
            "SELECT key FROM surface_refs WHERE surface = ? AND value = ? AND key LIKE ?",
            (surface, value, prefix + "%"),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else str(row[0])


async def _connect(path: Path) -> aiosqlite.Connection:
    db = await aiosqlite.connect(str(path), isolation_level=None)
    db.row_factory = aiosqlite.Row
    await db.execute("PRAGMA busy_timeout=5000")
    return db


# ------------------------------------------------------------- in-transaction helpers

_SET_REF = (
    "INSERT INTO surface_refs (surface, key, value) VALUES (?,?,?) "
    "ON CONFLICT(surface, key) DO UPDATE SET value = excluded.value"
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



async def insert_events(
    db: aiosqlite.Connection, session_id: str, rows: Sequence[tuple[float, str, str]]
) -> None:
    await db.executemany(
        "INSERT INTO events (session_id, ts, kind, data) VALUES (?,?,?,?)",
        [(session_id, ts, kind, data) for ts, kind, data in rows],
    )


async def insert_approval(db: aiosqlite.Connection, approval: Approval) -> Approval:
    """Insert `approval`, under a new id if its id is taken (returned as stored)."""
    for _ in range(20):
        try:
            await db.execute(
                f"INSERT INTO approvals ({_APPROVAL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    approval.id, approval.session_id, approval.request_id, approval.tool,
                    json.dumps(dict(approval.input), ensure_ascii=False),
                    json.dumps([k.value for k in approval.offered]), approval.description,
                    approval.cwd, approval.state.value, None, None, None, None,
                    approval.requested_at,
                ),
            )
            return approval
        except sqlite3.IntegrityError:
            # the id is taken (one chance in 10^9 — so the common case is one statement);
            # anything else (an unknown session) is raised as it is
            async with db.execute("SELECT 1 FROM approvals WHERE id = ?", (approval.id,)) as cur:
                if await cur.fetchone() is None:
                    raise
        approval = replace(approval, id=new_id())
    raise StoreError("could not find a free approval id")


async def settle_in(db: aiosqlite.Connection, settled: Approval) -> bool:
    cur = await db.execute(
        "UPDATE approvals SET state = ?, decision = ?, decided_by = ?, decided_at = ?, "
        "reason = ? WHERE id = ? AND state = 'pending'",
        (
            settled.state.value,
            settled.decision.value if settled.decision else None,
            settled.decided_by, settled.decided_at, settled.reason, settled.id,
        ),
    )
    return cur.rowcount == 1


async def enqueue_in(
    db: aiosqlite.Connection, surfaces: Sequence[str], *, session_id: str | None, kind: str,
    payload: dict[str, Any], now: float,
) -> None:
    await enqueue_all_in(db, surfaces, session_id=session_id, items=[(kind, payload)], now=now)


async def enqueue_all_in(
    db: aiosqlite.Connection, surfaces: Sequence[str], *, session_id: str | None,
    items: Sequence[tuple[str, dict[str, Any]]], now: float,
) -> None:
    """Outbox rows for each (kind, payload) of `items` and each surface, in that order, with
    one statement."""
    if not surfaces or not items:
        return
    rows = []
    for kind, payload in items:
        data = json.dumps(payload, ensure_ascii=False)
        rows += [(s, session_id, kind, data, now) for s in surfaces]
    await db.executemany(
        "INSERT INTO outbox (surface, session_id, kind, payload, created_at) VALUES (?,?,?,?,?)",
        rows,
    )


async def _update_session(
    db: aiosqlite.Connection, session_id: str, changes: dict[str, Any]
) -> None:
    if not changes:
        return
    unknown = set(changes) - SESSION_FIELDS
    if unknown:
        raise ValueError(f"not session fields: {sorted(unknown)}")
    values = [v.value if isinstance(v, SessionState) else v for v in changes.values()]
    sets = ", ".join(f"{k} = ?" for k in changes)
    await db.execute(f"UPDATE sessions SET {sets} WHERE id = ?", [*values, session_id])


update_session_in = _update_session


async def add_to_session_in(
    db: aiosqlite.Connection, session_id: str, increments: Mapping[str, int]
) -> None:
    """Add each amount of `increments` to its session field (NULL counts as 0)."""
    unknown = set(increments) - SESSION_FIELDS
    if unknown:
        raise ValueError(f"not session fields: {sorted(unknown)}")
    for key, amount in increments.items():
        await db.execute(
            f"UPDATE sessions SET {key} = COALESCE({key}, 0) + ? WHERE id = ?",
            (amount, session_id),
        )


def _session(row: Any) -> SessionView:
    return SessionView(
        id=row["id"], project=row["project"], agent=row["agent"], protocol=row["protocol"],
        host=row["host"], cwd=row["cwd"], state=SessionState(row["state"]),
        archived=bool(row["archived"]), agent_session_id=row["agent_session_id"],
        title=row["title"], branch=row["branch"], last_tool=row["last_tool"],
        cost_usd=row["cost_usd"], error=row["error"], created_at=row["created_at"],
        updated_at=row["updated_at"], turns=row["turns"], last_event_at=row["last_event_at"],
        finished_at=row["finished_at"], reviewed_at=row["reviewed_at"], parked=row["parked"],
        owner=row["owner"], tokens=row["tokens"],
    )


def _approval(row: Any) -> Approval:
    return Approval(
        id=row["id"], session_id=row["session_id"], request_id=row["request_id"],
        tool=row["tool"], input=json.loads(row["input"]),
        offered=tuple(DecisionKind(k) for k in json.loads(row["offered"])),
        description=row["description"], cwd=row["cwd"], state=ApprovalState(row["state"]),
        decision=DecisionKind(row["decision"]) if row["decision"] else None,
        decided_by=row["decided_by"], decided_at=row["decided_at"], reason=row["reason"],
        requested_at=row["requested_at"],
    )
