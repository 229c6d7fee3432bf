"""The fake Telegram Bot API for the benches: on its own event loop in a thread, and tapping
"Allow once" on every approval card it receives."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from _common import Key, cards_in

from tests.fakes.telegram_api import USER_ID, FakeTelegram

T = TypeVar("T")


class FakeThread:
    """A FakeTelegram (or subclass) on its own event loop in a thread."""

    def __init__(self, factory: Callable[[], FakeTelegram]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

        async def make() -> FakeTelegram:
            fake = factory()
            await fake.start()
            return fake

        self.fake = self.run(make())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def on(self, fn: Callable[..., T], *args: Any) -> T:
        async def call() -> T:
            return fn(*args)

        return self.run(call())

    def wait_for(self, method: str, since: int = 0, timeout: float = 30.0,
                 predicate: Callable[[Any], bool] | None = None) -> Any:
        return self.run(self.fake.wait_for(method, predicate, timeout, ok=None, since=since),
                        timeout + 5)

    def calls_count(self) -> int:
        return self.on(lambda: len(self.fake.calls))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self.fake.stop(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def config(self, chat: int = USER_ID, poll_timeout: int = 1) -> str:
        return (
            "[telegram]\n"
            f"chat_id = {chat}\n"
            f"allowed_user_ids = [{USER_ID}]\n"
            f'base_url = "{self.fake.base_url}"\n'
            f'base_file_url = "{self.fake.base_file_url}"\n'
            f"poll_timeout = {poll_timeout}\n"
        )




class TappingFake(FakeTelegram):
    """The fake Bot API, tapping "Allow once" on every approval card it receives and noting
    when each tap leaves in a getUpdates answer."""

    def __init__(self, tap_delay: float = 0.05, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tap_delay = tap_delay
        self.reset()

    def reset(self) -> None:
        # keys are (session id, the agent's step number), from the card's text
        self.cards: dict[Key, float] = {}  # when the card's sendMessage was recorded
        self.injected: dict[Key, float] = {}  # when the tap was queued
        self.delivered: dict[Key, float] = {}  # when a getUpdates answer carried the tap
        self.answered: dict[Key, float] = {}  # when the bot answered the callback query
        self.queries: dict[str, Key] = {}  # callback query id → key

    def _record(self, method: str, params: dict[str, Any], token: str, status: int,
                result: Any, description: str | None, *, lost: bool = False) -> None:
        super()._record(method, params, token, status, result, description, lost=lost)
        now = self.calls[-1].time
        if method == "answerCallbackQuery":
            step = self.queries.get(str(params.get("callback_query_id")))
            if step is not None:
                self.answered.setdefault(step, now)
            return
        if method != "sendMessage" or status != 200:
            return
        for step, data in cards_in(str(params.get("text", ""))):
            self.cards[step] = now
            asyncio.get_running_loop().call_later(
                self.tap_delay, self._tap, step, result["message_id"], result["chat"]["id"],
                data)

    def _tap(self, step: Key, message_id: int, chat_id: int, data: str) -> None:
        query = self.inject_callback(message_id, chat_id, USER_ID, data)
        self.injected[step] = self._clock()
        self.queries[query] = step

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        batch = await super()._get_updates(params)
        now = self._clock()
        for update in batch:
            query = update.get("callback_query")
            if query is not None and query["id"] in self.queries:
                self.delivered.setdefault(self.queries[query["id"]], now)
        return batch
