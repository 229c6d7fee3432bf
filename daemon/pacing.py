"""Pacing: how fast delivery may call a chat platform.

A `Pacer` is a chat's rate budget (a sliding window, and a hard stop while the platform
asked us to wait); the card lane takes its slots before anyone else (`CARD_LANE`, set in
its task). `backoff()` is how long to wait after failures in a row.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import Callable

BACKOFF_FIRST = 0.25  # seconds after the first failure in a row; doubled for each next one
BACKOFF_CAP = 30.0
# set in the card lane's task: the rate budget it takes is taken before anyone else's
CARD_LANE: contextvars.ContextVar[bool] = contextvars.ContextVar("card_lane", default=False)


def backoff(failures: int) -> float:
    """Seconds to wait after the `failures`-th failure in a row: 0.25, 0.5, 1, … 30."""
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** max(0, failures - 1))


class Pacer:
    """A sliding window: at most `max_calls` in any `window` seconds (the way Telegram
    counts "20 messages per minute in a group"), and a hard stop while the platform asked
    us to wait. `reserve` keeps slots free for what matters more (approval cards)."""

    def __init__(self, max_calls: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_calls = max_calls
        self.window = window
        self.clock = clock
        self.recent: deque[float] = deque()
        self.blocked_until = 0.0
        self.urgent_waiting = 0

    def _expire(self, now: float) -> None:
        while self.recent and self.recent[0] <= now - self.window:
            self.recent.popleft()

    def try_take(self, reserve: float = 0.0) -> bool:
        now = self.clock()
        self._expire(now)
        if now < self.blocked_until or len(self.recent) + 1 + reserve > self.max_calls:
            return False
        self.recent.append(now)
        return True

    def wait_time(self, reserve: float = 0.0) -> float:
        now = self.clock()
        self._expire(now)
        blocked = max(0.0, self.blocked_until - now)
        over = len(self.recent) + 1 + int(reserve) - self.max_calls
        if over <= 0:
            return blocked
        index = min(over - 1, len(self.recent) - 1)
        return max(blocked, self.recent[index] + self.window - now + 0.01)

    async def take(self, *, urgent: bool = False) -> None:
        """Wait for a slot; an urgent taker gets the next one before the others waiting."""
        if urgent:
            self.urgent_waiting += 1
        try:
            while (self.urgent_waiting and not urgent) or not self.try_take():  # noqa: ASYNC110
                # (waiting on time, not on an event)
                await asyncio.sleep(max(self.wait_time(), 0.0 if urgent else 0.005))
        finally:
            if urgent:
                self.urgent_waiting -= 1

    def block(self, seconds: float) -> None:
        self.blocked_until = max(self.blocked_until, self.clock() + seconds)

    async def take_in_lane(self) -> None:
        """A slot for the lane this task is in: urgent in the card lane."""
        await self.take(urgent=CARD_LANE.get())
