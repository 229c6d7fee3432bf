"""The sessions table: one row per agent session, read back as `SessionView`s."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import aiosqlite

from bridge.model import SessionView
from bridge.session import SessionState
from daemon.errors import NotFound
from daemon.store.database import Database

ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: easy to read and type

SESSION_COLUMNS = (
    "id, project, agent, protocol, host, cwd, state, archived, agent_session_id, title, "
    "branch, last_tool, cost_usd, error, created_at, updated_at, turns, last_event_at, "
    "finished_at, reviewed_at, parked, owner, tokens, mode, model, limit_hit_at, limit_reset_at, "
    "resume_at, verbose"
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
        "mode",
        "model",
        "limit_hit_at",
        "limit_reset_at",
        "resume_at",
        "verbose",
    }
)


def new_id(length: int = 6) -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


class SessionRepository(Database):
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
        async with self._transaction() as db:
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
        row = await self._fetch_one(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,))
        if row is None:
            raise NotFound(f"no session {session_id!r}; `agent-bridge sessions --all` lists them")
        return _session(row)

    async def session_extra(self, session_id: str) -> dict[str, Any]:
        row = await self._fetch_one(
            "SELECT start_commit, pid, last_event_at, repo_root, start_dirty, start_branch, "
            "worktree FROM sessions WHERE id = ?",
            (session_id,),
        )
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        return dict(row)

    async def sessions(self, *, include_archived: bool = False) -> list[SessionView]:
        where = "" if include_archived else "WHERE archived = 0"
        rows = await self._fetch_all(
            f"SELECT {SESSION_COLUMNS} FROM sessions {where} ORDER BY updated_at DESC")
        return [_session(r) for r in rows]

    async def recorded_pids(self) -> dict[str, int]:
        """Session id → the agent process recorded for it (set at launch, cleared at exit)."""
        rows = await self._fetch_all("SELECT id, pid FROM sessions WHERE pid IS NOT NULL")
        return {str(r[0]): int(r[1]) for r in rows}

    async def sessions_in(self, states: Iterable[SessionState]) -> list[SessionView]:
        names = [s.value for s in states]
        marks = ",".join("?" for _ in names)
        rows = await self._fetch_all(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE state IN ({marks})", names)
        return [_session(r) for r in rows]

    async def update_session(self, session_id: str, **changes: Any) -> None:
        async with self._lock:  # one statement: a transaction of its own
            await self._set_session_fields(self._db, session_id, changes)

    @staticmethod
    async def _set_session_fields(
        db: aiosqlite.Connection, session_id: str, changes: Mapping[str, Any]
    ) -> None:
        if not changes:
            return
        unknown = set(changes) - SESSION_FIELDS
        if unknown:
            raise ValueError(f"not session fields: {sorted(unknown)}")
        values = [v.value if isinstance(v, SessionState) else v for v in changes.values()]
        sets = ", ".join(f"{k} = ?" for k in changes)
        await db.execute(f"UPDATE sessions SET {sets} WHERE id = ?", [*values, session_id])

    @staticmethod
    async def _add_to_session_fields(
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
        owner=row["owner"], tokens=row["tokens"], mode=row["mode"], model=row["model"],
        limit_hit_at=row["limit_hit_at"], limit_reset_at=row["limit_reset_at"],
        resume_at=row["resume_at"],
        verbose=None if row["verbose"] is None else bool(row["verbose"]),
    )
