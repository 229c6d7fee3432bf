"""Resuming a session when its usage limit resets ("Resume at reset").

A person schedules it from the limit notice's button, the digest or `/atreset ID`; the time
is kept in the session's `resume_at` before the job is added to the daemon's scheduler
(APScheduler, `daemon/scheduler.py`), so a restart schedules it again (`restore`), and a
time that passed while the daemon was down fires at once. `/atreset ID cancel` or the
notice's button cancels it. When it fires, the limit is taken to have reset (the agent
says so again if it has not) and the session is continued with `RESUME_PROMPT`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bridge.approvals import Actor
from bridge.limits import RESUME_PROMPT, resume_time
from bridge.outbox import Intent, PostNotice, PostText, RefreshStatus
from bridge.render import clock
from daemon.errors import Conflict
from daemon.store import Store

log = logging.getLogger(__name__)

#: who a scheduled resume acts as
RESUME_ACTOR = Actor(surface="timer", user_id="resume-at-reset", name="the scheduled resume")

Send = Callable[[str, str, Actor], Awaitable[Any]]
Enqueue = Callable[[str | None, Intent], Awaitable[None]]


class ScheduledResumes:
    def __init__(self, *, store: Store, enqueue: Enqueue, send: Send,
                 clock: Callable[[], float]) -> None:
        self.store = store
        self.enqueue = enqueue
        self.send = send
        self.clock = clock
        self.scheduler: AsyncIOScheduler | None = None
        self.fired = 0

    async def attach(self, scheduler: AsyncIOScheduler) -> None:
        """Run the resumes on `scheduler` from now on, those kept in the store included."""
        self.scheduler = scheduler
        for session in await self.store.sessions(include_archived=True):
            if session.resume_at is not None:
                self._add(session.id, session.resume_at)

    async def schedule(self, session_id: str, *, actor: Actor) -> float:
        """Resume `session_id` when its limit resets; returns when. Raises `Conflict` when
        its limit is not hit or its reset time is not known."""
        session = await self.store.session(session_id)
        when = resume_time(session, self.clock())
        if when is None:
            why = ("its usage limit is not hit" if session.limit_hit_at is None
                   else "the agent did not say when its limit resets")
            raise Conflict(f"cannot resume {session_id} at the reset: {why}; /resume "
                           f"{session_id} continues it now")
        await self.store.update_session(session_id, resume_at=when)
        self._add(session_id, when)
        log.info("%s: resume at %s, asked by %s", session_id, clock(when), actor.label)
        await self.enqueue(session_id, PostNotice(
            text=f"{actor.label} scheduled the resume at the reset.", limit=True))
        await self.enqueue(session_id, RefreshStatus())
        return when

    async def cancel(self, session_id: str, *, actor: Actor) -> bool:
        """Cancel the scheduled resume of `session_id`; False when there was none."""
        session = await self.store.session(session_id)
        self._remove(session_id)
        if session.resume_at is None:
            return False
        await self.store.update_session(session_id, resume_at=None)
        await self.enqueue(session_id, PostText(
            text=f"⏹ {session_id}: {actor.label} cancelled the resume scheduled for "
                 f"{clock(session.resume_at)}."))
        await self.enqueue(session_id, RefreshStatus())
        return True

    async def fire(self, session_id: str) -> None:
        """The reset time came: continue the session (unless it was cancelled meanwhile)."""
        session = await self.store.session(session_id)
        if session.resume_at is None:
            return
        self.fired += 1
        await self.store.update_session(session_id, resume_at=None, limit_hit_at=None,
                                        limit_reset_at=None)
        await self.enqueue(session_id, PostText(
            text=f"▶️ {session_id}: the usage limit has reset; resuming as scheduled."))
        await self.enqueue(session_id, RefreshStatus())
        try:
            await self.send(session_id, RESUME_PROMPT, RESUME_ACTOR)
        except Exception as e:  # the session moved on meanwhile (archived, running, gone)
            log.warning("%s: the scheduled resume failed: %s", session_id, e)
            await self.enqueue(session_id, PostNotice(
                text=f"The scheduled resume of {session_id} failed: {e}"))

    def _add(self, session_id: str, when: float) -> None:
        if self.scheduler is None:
            return  # kept in the store: `attach` adds it
        run_at = datetime.fromtimestamp(max(when, self.clock()), UTC)
        self.scheduler.add_job(self.fire, "date", run_date=run_at, args=[session_id],
                               id=_job_id(session_id), replace_existing=True,
                               misfire_grace_time=None)

    def _remove(self, session_id: str) -> None:
        if self.scheduler is not None:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(_job_id(session_id))


def _job_id(session_id: str) -> str:
    return f"resume-{session_id}"
