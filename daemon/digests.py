"""The digest (what waits on a person, what stalled, what finished unreviewed) and
auto-archive of finished sessions nobody waits on."""

from __future__ import annotations

import time
from collections.abc import Callable

from bridge.approvals import Actor, ApprovalState
from bridge.config import Config
from bridge.digest import DigestLine, select_digest
from bridge.outbox import PostDigest
from bridge.redact import Redactor
from bridge.refs import DIGEST_LAST
from bridge.session import SessionState
from daemon.fanout import Fanout
from daemon.sessions import Sessions
from daemon.store import Store

AUTO_ARCHIVE = Actor(surface="timer", user_id="auto-archive", name="auto-archive")


class Digests:
    def __init__(self, *, config: Config, store: Store, fanout: Fanout, sessions: Sessions,
                 redactor: Redactor, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.fanout = fanout
        self.sessions = sessions
        self.redactor = redactor
        self.clock = clock

    async def digest_lines(self) -> list[DigestLine]:
        cfg = self.config.digest
        sessions = await self.store.sessions()
        pending = await self.store.approvals(state=ApprovalState.PENDING)
        return select_digest(sessions, pending, now=self.clock(),
                             stalled_after=cfg.stalled_after,
                             unreviewed_after=cfg.unreviewed_after, redactor=self.redactor)

    async def send_digest(self, *, surface: str | None = None, requested: bool = False) -> int:
        """Queue a digest for one surface (`/digest`) or all; returns how many lines it has.
        A scheduled digest with nothing in it is not sent."""
        lines = await self.digest_lines()
        if lines or requested:
            await self.fanout.enqueue(None, PostDigest(requested=requested), only=surface)
        if not requested:
            await self.store.set_ref("daemon", DIGEST_LAST.key, str(self.clock()))
        return len(lines)

    async def auto_archive(self) -> list[str]:
        """Archive finished sessions idle longer than `[archive] auto_after` — never one that
        waits on a person (pending approval or parked)."""
        after = self.config.archive.auto_after
        if after is None:
            return []
        waiting = {a.session_id for a in await self.store.approvals(state=ApprovalState.PENDING)}
        archived = []
        for session in await self.store.sessions():
            if (session.state in (SessionState.IDLE, SessionState.COMPLETED)
                    and session.id not in waiting and not session.parked
                    and self.clock() - session.updated_at >= after):
                await self.sessions.set_archived(session.id, True, actor=AUTO_ARCHIVE)
                archived.append(session.id)
        return archived
