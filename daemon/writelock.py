"""The store's writer lock: FIFO, except that urgent writers go first (within a bound)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["WriterLock"]


class WriterLock:
    """The writer's lock: FIFO like asyncio.Lock, except that an urgent writer (one whose
    commit a person or an agent waits on: an approval request or its decision) goes before
    those still waiting for routine work (transcript batches, bookkeeping).

    Ownership passes straight to the next waiter on release, so a newcomer cannot slip in
    between. Created without a running loop, so a Store can be built outside one."""

    # urgent writers in a row while routine ones wait, before one routine writer goes: many
    # busy sessions can keep the urgent queue full, and routine work must not starve
    URGENT_RUN = 8

    def __init__(self) -> None:
        self._locked = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._routine: deque[asyncio.Future[None]] = deque()
        self._urgent_run = 0

    async def acquire(self, *, urgent: bool = False) -> None:
        if not self._locked:
            self._locked = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._routine
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # it was handed to us as we were cancelled: pass it on
            elif waiter in queue:  # (a release may have dropped it already)
                queue.remove(waiter)
            raise

    def release(self) -> None:
        order = (self._urgent, self._routine)
        if self._urgent_run >= self.URGENT_RUN:
            order = (self._routine, self._urgent)
        for queue in order:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # still locked: now theirs
                    self._urgent_run = self._urgent_run + 1 if queue is self._urgent else 0
                    return
        self._locked = False
        self._urgent_run = 0

    @asynccontextmanager
    async def held(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self.acquire(urgent=urgent)
        try:
            yield
        finally:
            self.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()
