"""The daemon_settings table: the daemon's own switches that outlive a restart (away mode)."""

from __future__ import annotations

from daemon.store.database import Database


class SettingsRepository(Database):
    async def setting(self, key: str) -> str | None:
        row = await self._fetch_one("SELECT value FROM daemon_settings WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set_setting(self, key: str, value: str) -> None:
        await self._write(
            "INSERT INTO daemon_settings (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
