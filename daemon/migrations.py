"""The database schema as numbered migrations, and bringing a database up to date.

`MIGRATIONS[n - 1]` takes a database from schema `n - 1` to `n`; the schema a database is at
lives in `PRAGMA user_version`. `migrate()` runs each missing step in a transaction of its
own (`BEGIN IMMEDIATE` … `user_version = n` … `COMMIT`), so a crash leaves the database at
a whole step; a database written by a newer agent-bridge (a version past the last step) is
refused untouched rather than damaged. A new step is appended, never edited in place.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from daemon.errors import StoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        agent TEXT NOT NULL,
        protocol TEXT NOT NULL,
        host TEXT NOT NULL DEFAULT 'local',
        cwd TEXT NOT NULL,
        state TEXT NOT NULL,
        archived INTEGER NOT NULL DEFAULT 0,
        agent_session_id TEXT,
        title TEXT NOT NULL DEFAULT '',
        branch TEXT,
        start_commit TEXT,
        last_tool TEXT,
        cost_usd REAL,
        error TEXT,
        turns INTEGER NOT NULL DEFAULT 0,
        pid INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        last_event_at REAL
    );
    CREATE INDEX sessions_updated ON sessions(archived, updated_at);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_session ON events(session_id, id);
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        request_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        input TEXT NOT NULL,
        offered TEXT NOT NULL,
        description TEXT,
        cwd TEXT,
        state TEXT NOT NULL,
        decision TEXT,
        decided_by TEXT,
        decided_at REAL,
        reason TEXT,
        requested_at REAL NOT NULL
    );
    CREATE INDEX approvals_session ON approvals(session_id, state);
    CREATE INDEX approvals_pending ON approvals(state, requested_at);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        surface TEXT NOT NULL,
        session_id TEXT,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        delivered_at REAL,
        last_error TEXT
    );
    CREATE INDEX outbox_pending ON outbox(surface, delivered_at, id);
    CREATE TABLE surface_refs (
        surface TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (surface, key)
    );
    """,
    # 2: git state at session start, and the session's worktree
    """
    ALTER TABLE sessions ADD COLUMN repo_root TEXT;
    ALTER TABLE sessions ADD COLUMN start_dirty INTEGER;
    ALTER TABLE sessions ADD COLUMN start_branch TEXT;
    ALTER TABLE sessions ADD COLUMN worktree TEXT;
    """,
    # 3: what the digest needs: when a turn finished, when a person last looked, why a
    # session is parked; when an approval's reminder went out
    """
    ALTER TABLE sessions ADD COLUMN finished_at REAL;
    ALTER TABLE sessions ADD COLUMN reviewed_at REAL;
    ALTER TABLE sessions ADD COLUMN parked TEXT;
    ALTER TABLE approvals ADD COLUMN reminded_at REAL;
    """,
    # 4: who started a session ("surface:user id"), so that its approval cards can call them;
    # the tokens it used, for agents that report tokens rather than a cost (Codex)
    """
    ALTER TABLE sessions ADD COLUMN owner TEXT;
    ALTER TABLE sessions ADD COLUMN tokens INTEGER;
    """,
    # 5: an outbox row given up on (with its reason in last_error), and how many of its
    # messages were already sent, so that a retry resumes after them instead of re-sending
    """
    ALTER TABLE outbox ADD COLUMN failed_at REAL;
    ALTER TABLE outbox ADD COLUMN steps INTEGER NOT NULL DEFAULT 0;
    """,
    # 6: an agent's questions (bridge/questions.py), one row per card; several rows share
    # the agent's request. `answer` is a JSON list of the chosen labels (or the typed text);
    # a secret question's answer is never stored (`answer` stays NULL)
    """
    CREATE TABLE questions (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        request_id TEXT NOT NULL,
        key TEXT NOT NULL,
        text TEXT NOT NULL,
        header TEXT,
        options TEXT NOT NULL,
        multi_select INTEGER NOT NULL DEFAULT 0,
        is_other INTEGER NOT NULL DEFAULT 0,
        is_secret INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        answer TEXT,
        answered_by TEXT,
        answered_at REAL,
        reason TEXT,
        selected TEXT NOT NULL DEFAULT '[]',
        asked_at REAL NOT NULL
    );
    CREATE INDEX questions_session ON questions(session_id, state);
    CREATE INDEX questions_pending ON questions(state, asked_at);
    """,
    # 7: the permission mode and model a session runs in (chosen with /mode and /model, or
    # announced by the agent), shown on the status card and kept for a resume
    """
    ALTER TABLE sessions ADD COLUMN mode TEXT;
    ALTER TABLE sessions ADD COLUMN model TEXT;
    """,
    # 8: an agent's own ways to allow a request (ACP plan options: id and label, as JSON),
    # and the id of the one a person chose
    """
    ALTER TABLE approvals ADD COLUMN choices TEXT;
    ALTER TABLE approvals ADD COLUMN choice TEXT;
    """,
    # 9: usage limits: when the agent said its limit was hit and when it resets, and when
    # a person scheduled the session to be resumed (at the reset; kept across restarts)
    """
    ALTER TABLE sessions ADD COLUMN limit_hit_at REAL;
    ALTER TABLE sessions ADD COLUMN limit_reset_at REAL;
    ALTER TABLE sessions ADD COLUMN resume_at REAL;
    -- /verbose ID on|off: the session's progress message, whatever the surface's default
    ALTER TABLE sessions ADD COLUMN verbose INTEGER;
    """,
    # 10: evidence on approval cards: what a Write would overwrite (file → size, JSON); and
    # each turn's end as a snapshot of the session's whole diff, so that a turn's own change
    # is the difference between its snapshot and the one before (`patch`: the git patch
    # against the start commit, as `daemon/gitdiff.diff_since` writes it)
    """
    ALTER TABLE approvals ADD COLUMN on_disk TEXT;
    CREATE TABLE turn_snapshots (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        turn INTEGER NOT NULL,
        patch BLOB NOT NULL,
        taken_at REAL NOT NULL,
        PRIMARY KEY (session_id, turn)
    );
    """,
    # 11: the daemon's own switches that outlive a restart (away mode: terminal sessions'
    # permission requests come to chat)
    """
    CREATE TABLE daemon_settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(db: aiosqlite.Connection, path: Path) -> None:
    """Bring the database on `db` (the writer, in autocommit) to `SCHEMA_VERSION`; raises
    `StoreError` when it is newer than that. `path` only names the database in the error."""
    async with db.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the database {path} was written by a newer agent-bridge (schema "
            f"{version}, this one knows {SCHEMA_VERSION}); upgrade agent-bridge"
        )
    for number in range(version + 1, SCHEMA_VERSION + 1):
        script = MIGRATIONS[number - 1]
        await db.executescript(
            f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
        )
