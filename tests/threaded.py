"""A fake server on its own event loop in a thread, so that sync tests can drive a daemon
subprocess through the CLI and the chat at the same time."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class Server(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


S = TypeVar("S", bound=Server)


class Threaded(Generic[S]):
    def __init__(self, make: Callable[[], S]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def started() -> S:
            server = make()  # made on its loop: its events and locks belong there
            await server.start()
            return server

        self.fake: S = self._run(started())

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def on(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` on the fake's loop (its state is only touched there)."""
        if threading.current_thread() is self.thread:
            return fn(*args, **kwargs)

        async def call() -> T:
            return fn(*args, **kwargs)

        return self._run(call())

    def close(self) -> None:
        self._run(self.fake.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
