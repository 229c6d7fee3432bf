"""Pacing: which call to a chat platform goes next, within the platform's limits.

Every chat (or channel, or Slack's workspace-wide budget for edits) has a `Pacer`: sliding
windows as the platform counts them (Telegram in a group: 20 a minute and one a second), a
hard stop while the platform asked us to wait, and a queue in order of `Priority` — what a
person waits for first:

1. ANSWER: the answer to a person's command or tap;
2. CARD: a new approval card (it opens its thread if it has none);
3. STORY: what tells the story — decided cards, summaries, texts, files, new threads;
4. STATUS: status cards and thread titles, coalesced to the latest state by their owner
   (`daemon/threads.py`), spending only what is left.

A call waits while any call of a higher (or the same, earlier) priority waits, and each
priority below ANSWER leaves a share of each window free (`RESERVE`) so that what comes
before it finds a slot at once: an answer never waits for the window that cards filled, and
status edits never take the slot the next card needs. `Budgets` holds a surface's pacers by
name (`ChatSurface.budget_of`), all of them also counting against the surface's overall limits.
The priority of a call is its task's (`PRIORITY`, set by the delivery lanes).

`backoff()` is how long to wait after failures in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from bridge.outbox import Priority
from bridge.surface import Rate, SurfaceUnavailable

__all__ = ["BACKOFF_CAP", "BACKOFF_FIRST", "PRIORITY", "Budgets", "Pacer", "Priority", "Window",
           "backoff"]

BACKOFF_FIRST = 0.25  # seconds after the first failure in a row; doubled for each next one
BACKOFF_CAP = 30.0
# a call is counted when it is sent, the platform counts it when it arrives: the next one
# waits this much longer than the window, so that a slower trip of the first cannot bring
# the two closer together than the platform allows
MARGIN = 0.1


# the share of each window a call of this priority leaves free for those before it
# (a slot taken now is gone for a whole window: what is less urgent must leave room for what
# may come; in a Telegram group cards take at most 15 of 20 a minute, the story 10, status
# cards 5)
RESERVE = {Priority.ANSWER: 0.0, Priority.CARD: 0.25, Priority.STORY: 0.5,
           Priority.STATUS: 0.75}
# Below answers a call also waits while an eighth of a long window's calls (and one more)
# went out in the last eighth of it: a window filled in a burst would free its slots in a
# burst a whole window later, and an answer arriving in between would wait for them.
SMOOTH_PARTS = 8
SMOOTH_FROM = 8  # windows of fewer calls (one a second) are not smoothed
# the priority of the calls this task makes (set by the lane, or around a call)
PRIORITY: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "priority", default=Priority.STORY)


def backoff(failures: int) -> float:
    """Seconds to wait after the `failures`-th failure in a row: 0.25, 0.5, 1, … 30."""
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2.0 ** max(0, failures - 1))


class Window:
    """At most `rate.calls` calls in any `rate.per` seconds; may be shared by pacers (a
    surface's overall limit)."""

    def __init__(self, rate: Rate) -> None:
        self.calls = rate.calls
        self.per = rate.per
        self.times: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.per - MARGIN:
            self.times.popleft()

    def reserve(self, priority: Priority) -> int:
        return min(self.calls - 1, int(self.calls * RESERVE[priority]))

    def wait(self, priority: Priority, now: float) -> float:
        """Seconds until a call of `priority` fits (0: now)."""
        self._expire(now)
        waits = [0.0]
        over = len(self.times) + 1 + self.reserve(priority) - self.calls
        if over > 0:
            waits.append(self.times[over - 1] + self.per + MARGIN - now)
        if priority > Priority.ANSWER and self.calls >= SMOOTH_FROM:
            span = self.per / SMOOTH_PARTS
            most = -(-self.calls // SMOOTH_PARTS) + 1
            if len(self.times) >= most and self.times[-most] > now - span:
                waits.append(self.times[-most] + span - now)
        return max(waits)

    def record(self, now: float) -> None:
        self.times.append(now)


@dataclass(slots=True, order=True)
class _Waiting:
    """A call waiting for its slot, in the order it goes."""

    priority: Priority
    order: int
    granted: asyncio.Future[float] = field(compare=False)


@dataclass(slots=True)
class Ticket:
    """A call that others may come to wait for (a thread being made): set as `TICKET`
    around it, it records where the call waits, so that `boost` can move it up."""

    pacer: Pacer | None = None
    waiting: _Waiting | None = None

    def boost(self, priority: Priority) -> None:
        if self.pacer is not None and self.waiting is not None:
            self.pacer.boost(self.waiting, priority)


# the ticket of the call this task is about to make, if others may wait for it
TICKET: contextvars.ContextVar[Ticket | None] = contextvars.ContextVar("ticket", default=None)


class Pacer:
    """One budget's windows and queue (see the module's docstring)."""

    def __init__(self, windows: Iterable[Window],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.windows = list(windows)
        self.clock = clock
        self.blocked_until = 0.0
        self._queue: list[_Waiting] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    def close(self) -> None:
        """The daemon is stopping: every call waiting, and every later one, is refused
        (`SurfaceUnavailable`) instead of holding up the shutdown."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for waiting in self._queue:
            if not waiting.granted.done():
                waiting.granted.set_exception(SurfaceUnavailable("the daemon is stopping"))
        self._queue.clear()

    def _first_waiting(self) -> Priority | None:
        while self._queue and self._queue[0].granted.done():  # cancelled: no longer waiting
            heapq.heappop(self._queue)
        return self._queue[0].priority if self._queue else None

    def wait_time(self, priority: Priority) -> float:
        """Seconds until the windows (and the platform's pause) let a call of `priority`
        go, not counting the calls waiting before it."""
        now = self.clock()
        waits = [w.wait(priority, now) for w in self.windows]
        return max([self.blocked_until - now, 0.0, *waits])

    def room(self, priority: Priority) -> bool:
        """Whether a call of `priority` could go at once."""
        first = self._first_waiting()
        return (first is None or first > priority) and self.wait_time(priority) <= 0.0

    def try_take(self, priority: Priority) -> bool:
        """Take a slot if one is free for `priority` now, else nothing."""
        if not self.room(priority):
            return False
        self._record()
        return True

    async def take(self, priority: Priority | None = None) -> float:
        """Wait for a slot: after every call of a higher priority, and the earlier ones of
        the same, that are waiting (`priority` defaults to the task's `PRIORITY`). Returns
        when the slot was taken (for `give_back`)."""
        priority = PRIORITY.get() if priority is None else priority
        if self.closed:
            raise SurfaceUnavailable("the daemon is stopping")
        if self.room(priority):
            return self._record()
        granted: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(priority, next(self._order), granted)
        heapq.heappush(self._queue, waiting)
        ticket = TICKET.get()
        if ticket is not None:
            ticket.waiting, ticket.pacer = waiting, self
        self._grant()
        try:
            return await granted
        finally:
            if not granted.done():
                granted.cancel()
            if not self.closed:
                self._grant()  # the next in line may go (or wait for a new time)

    def boost(self, waiting: _Waiting, priority: Priority) -> None:
        """A call waiting in line is now wanted at `priority` (someone waits for it)."""
        if priority < waiting.priority and not waiting.granted.done():
            waiting.priority = priority
            heapq.heapify(self._queue)
            self._grant()

    def give_back(self, taken: float) -> None:
        """The slot taken at `taken` (what `take` returned) is not used after all: free
        for the next in line."""
        for w in self.windows:
            with contextlib.suppress(ValueError):
                w.times.remove(taken)
        self._grant()

    def block(self, seconds: float) -> None:
        """The platform asked us to wait: nothing goes for `seconds`."""
        self.blocked_until = max(self.blocked_until, self.clock() + seconds)
        self._grant()

    def _record(self) -> float:
        now = self.clock()
        for w in self.windows:
            w.record(now)
        return now

    def _grant(self) -> None:
        """Let the first in line go while they fit; else wake up when the first will."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while (first := self._first_waiting()) is not None:
            if self.wait_time(first) > 0.0:
                delay = self.wait_time(first)
                self._timer = asyncio.get_running_loop().call_later(
                    max(delay, 0.001) if math.isfinite(delay) else 1.0, self._grant)
                return
            heapq.heappop(self._queue).granted.set_result(self._record())


class Budgets:
    """A surface's pacers by name (`ChatSurface.budget_of`), made when first needed; each
    counts also against the surface's overall limits (`Limits.overall`)."""

    def __init__(self, overall: Iterable[Rate] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.overall = [Window(rate) for rate in overall]
        self.clock = clock
        self.pacers: dict[str, Pacer] = {}
        self.closed = False

    def pacer(self, name: str, rates: Iterable[Rate]) -> Pacer:
        pacer = self.pacers.get(name)
        if pacer is None:
            pacer = Pacer([*(Window(rate) for rate in rates), *self.overall], self.clock)
            pacer.closed = self.closed
            self.pacers[name] = pacer
        return pacer

    def close(self) -> None:
        """The daemon is stopping: nothing waits for a slot any more (`Pacer.close`)."""
        self.closed = True
        for pacer in self.pacers.values():
            pacer.close()

    def block_all(self, seconds: float) -> None:
        """Nothing goes anywhere for `seconds` (the platform is unreachable)."""
        for pacer in self.pacers.values():
            pacer.block(seconds)

    def wait_time(self, priority: Priority) -> float:
        """Until some known budget has room for `priority` (0 when one has now)."""
        if not self.pacers:
            return 0.0
        return min(p.wait_time(priority) for p in self.pacers.values())
