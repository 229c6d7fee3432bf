"""The surface_refs table: per surface, key → what the platform calls a thing we posted
(a topic, a message); keys are built by `bridge/refs.py`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path

import aiosqlite

from daemon.store.database import Database

_SET_REF = (
    "INSERT INTO surface_refs (surface, key, value) VALUES (?,?,?) "
    "ON CONFLICT(surface, key) DO UPDATE SET value = excluded.value"
)


class RefRepository(Database):
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        super().__init__(db, path)
        # set (and replaced) each time surface references are committed: a person may
        # answer a message the moment it appears, before its reference is stored
        self._refs_written = asyncio.Event()

    async def get_ref(self, surface: str, key: str) -> str | None:
        row = await self._fetch_one(
            "SELECT value FROM surface_refs WHERE surface = ? AND key = ?", (surface, key))
        return None if row is None else str(row[0])

    async def set_ref(self, surface: str, key: str, value: str) -> None:
        await self._write(_SET_REF, (surface, key, value))
        self._refs_changed()

    async def set_refs(self, surface: str, refs: Mapping[str, str], *,
                       urgent: bool = False) -> None:
        """Several references, in one transaction; `urgent` as for a transaction (see
        `WriterLock`)."""
        async with self._transaction(urgent=urgent) as db:
            await self._put_refs(db, surface, refs)
        self._refs_changed()

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
        row = await self._fetch_one(
            "SELECT key FROM surface_refs WHERE surface = ? AND value = ? AND key LIKE ?",
            (surface, value, prefix + "%"),
        )
        return None if row is None else str(row[0])

    @staticmethod
    async def _put_refs(db: aiosqlite.Connection, surface: str,
                        refs: Mapping[str, str]) -> None:
        """Store `refs` in the caller's transaction; it calls `_refs_changed` once committed."""
        await db.executemany(_SET_REF, [(surface, key, value) for key, value in refs.items()])

    def _refs_changed(self) -> None:
        self._refs_written.set()
        self._refs_written = asyncio.Event()
