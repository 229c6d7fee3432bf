"""The store's connections: one writer behind the writer lock, one reader that sees only
what is committed.

`Database` is the base every repository of `daemon/store/` builds on; nothing outside the
store touches a connection. Writes are one statement in autocommit (`_write`) or a
`BEGIN IMMEDIATE` … `COMMIT` batch (`_transaction`); reads go through `_fetch_one` and
`_fetch_all`, one at a time on the reader.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

import aiosqlite

from daemon.errors import StoreError
from daemon.migrations import migrate
from daemon.paths import open_private, tighten_private
from daemon.writelock import WriterLock


class Database:
    """Open with `await <Store>.open(path)`; close with `await store.close()`."""

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

    @classmethod
    async def open(cls, path: Path) -> Self:
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
    async def _transaction(self, *, urgent: bool = False) -> AsyncIterator[aiosqlite.Connection]:
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

    async def _fetch_all(self, sql: str, args: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        """Every row `sql` selects, from what is committed."""
        async with self._reading, self._read.execute(sql, args) as cur:
            return list(await cur.fetchall())

    async def _fetch_one(self, sql: str, args: Sequence[Any] = ()) -> aiosqlite.Row | None:
        """The first row `sql` selects (None when there is none), from what is committed."""
        async with self._reading, self._read.execute(sql, args) as cur:
            row: aiosqlite.Row | None = await cur.fetchone()
            return row


async def _connect(path: Path) -> aiosqlite.Connection:
    db = await aiosqlite.connect(str(path), isolation_level=None)
    db.row_factory = aiosqlite.Row
    await db.execute("PRAGMA busy_timeout=5000")
    return db
