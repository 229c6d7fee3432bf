"""The turn_snapshots table: the session's whole diff as it was when each turn ended, so
that a turn's own change is the difference between its snapshot and the one before."""

from __future__ import annotations

from daemon.store.database import Database


class SnapshotRepository(Database):
    async def save_snapshot(self, session_id: str, turn: int, patch: bytes, *,
                            now: float) -> None:
        """Keep the diff at the end of `turn` (a later snapshot of that turn replaces it)."""
        await self._write(
            "INSERT OR REPLACE INTO turn_snapshots (session_id, turn, patch, taken_at) "
            "VALUES (?,?,?,?)", (session_id, turn, patch, now))

    async def snapshot(self, session_id: str, turn: int) -> bytes | None:
        """The diff at the end of `turn`; None when none was taken."""
        row = await self._fetch_one(
            "SELECT patch FROM turn_snapshots WHERE session_id = ? AND turn = ?",
            (session_id, turn))
        return bytes(row["patch"]) if row is not None else None

    async def snapshot_turns(self, session_id: str) -> list[int]:
        """The turns whose end was snapshotted, in order."""
        rows = await self._fetch_all(
            "SELECT turn FROM turn_snapshots WHERE session_id = ? ORDER BY turn", (session_id,))
        return [int(r["turn"]) for r in rows]
