"""Scheduled work (APScheduler 3.x): the digest on its cron, and auto-archive.

Schedules come from the config and state from the store, so they survive restarts: the
time of the last scheduled digest is kept in the store, and a digest whose time passed while
the daemon was down is sent once at start (coalesced, not once per missed day).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bridge.config import Config
from bridge.errors import ConfigError
from bridge.refs import DIGEST_LAST
from daemon.resumes import ScheduledResumes
from daemon.store import Store

log = logging.getLogger(__name__)
AUTO_ARCHIVE_EVERY = 600.0


def digest_trigger(cron: str, timezone: str) -> CronTrigger:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError("digest.timezone", f"unknown time zone {timezone!r}") from e
    try:
        return CronTrigger.from_crontab(cron, timezone=zone)
    except ValueError as e:
        raise ConfigError("digest.cron", f"not a valid crontab line: {e}") from e


def missed_since(trigger: CronTrigger, last: datetime | None, now: datetime) -> bool:
    """Whether a scheduled time fell between the last digest sent and now."""
    if last is None:
        return False
    fire = trigger.get_next_fire_time(None, last + timedelta(seconds=1))
    return fire is not None and fire <= now


class ScheduledWork(Protocol):
    """What the schedules run and read: the digest, auto-archive, the config, the store
    (when the last digest went out) and the clock."""

    @property
    def config(self) -> Config: ...
    @property
    def store(self) -> Store: ...
    @property
    def resumes(self) -> ScheduledResumes: ...
    def clock(self) -> float: ...
    async def send_digest(self, *, surface: str | None = None, requested: bool = False) -> int: ...
    async def auto_archive(self) -> list[str]: ...


class Scheduler:
    def __init__(self, hub: ScheduledWork) -> None:
        self.hub = hub
        cfg = hub.config
        self.trigger = digest_trigger(cfg.digest.cron, cfg.digest.timezone) if cfg.digest.cron \
            else None
        self.scheduler = AsyncIOScheduler(
            timezone=ZoneInfo("UTC"),
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        )

    async def start(self) -> None:
        if self.trigger is not None:
            self.scheduler.add_job(self.digest, self.trigger, id="digest", replace_existing=True)
            await self.catch_up()
        if self.hub.config.archive.auto_after is not None:
            self.scheduler.add_job(self.hub.auto_archive, "interval", seconds=AUTO_ARCHIVE_EVERY,
                                   id="auto-archive", replace_existing=True,
                                   next_run_time=datetime.now(ZoneInfo("UTC")))
        self.scheduler.start()
        await self.hub.resumes.attach(self.scheduler)  # "Resume at reset", kept in the store

    def reschedule(self) -> None:
        """The config was reloaded: the digest and auto-archive follow its schedules."""
        cfg = self.hub.config
        self.trigger = digest_trigger(cfg.digest.cron, cfg.digest.timezone) if cfg.digest.cron \
            else None
        if self.trigger is not None:
            self.scheduler.add_job(self.digest, self.trigger, id="digest", replace_existing=True)
        elif self.scheduler.get_job("digest") is not None:
            self.scheduler.remove_job("digest")
        if cfg.archive.auto_after is None:
            if self.scheduler.get_job("auto-archive") is not None:
                self.scheduler.remove_job("auto-archive")
        elif self.scheduler.get_job("auto-archive") is None:
            self.scheduler.add_job(self.hub.auto_archive, "interval", seconds=AUTO_ARCHIVE_EVERY,
                                   id="auto-archive", replace_existing=True,
                                   next_run_time=datetime.now(ZoneInfo("UTC")))

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def digest(self) -> None:
        count = await self.hub.send_digest()
        log.info("digest: %d run(s) need attention", count)

    async def catch_up(self) -> None:
        assert self.trigger is not None
        raw = await self.hub.store.get_ref("daemon", DIGEST_LAST.key)
        zone = ZoneInfo("UTC")
        now = datetime.fromtimestamp(self.hub.clock(), zone)
        if raw is None:
            # first run: remember now, so a digest missed from here on is caught up later
            await self.hub.store.set_ref("daemon", DIGEST_LAST.key, str(self.hub.clock()))
            return
        last = datetime.fromtimestamp(float(raw), zone)
        if missed_since(self.trigger, last, now):
            log.info("a digest was due while the daemon was down: sending it now")
            await self.digest()
