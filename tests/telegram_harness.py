"""The fake Bot API on its own event loop in a thread, so that sync tests can drive a daemon
subprocess through the CLI and the chat at the same time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.fakes.telegram_api import FORUM_CHAT_ID, USER_ID, Call, FakeTelegram, StoredMessage
from tests.threaded import Threaded

ALICE = USER_ID
STRANGER = 777
CHAT = FORUM_CHAT_ID


class ThreadedTelegram(Threaded[FakeTelegram]):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(lambda: FakeTelegram(**kwargs))
        self.on(self.fake.add_user, STRANGER, username="mallory", first_name="Mallory")

    # -- conveniences ---------------------------------------------------------------------

    def config(self, *, allowed: tuple[int, ...] = (ALICE,), chat: int = CHAT) -> str:
        users = ", ".join(str(u) for u in allowed)
        return (
            "[telegram]\n"
            f"chat_id = {chat}\n"
            f"allowed_user_ids = [{users}]\n"
            f'base_url = "{self.fake.base_url}"\n'
            f'base_file_url = "{self.fake.base_file_url}"\n'
            "poll_timeout = 1\n"
        )

    def say(self, text: str, *, user: int = ALICE, thread: int | None = None,
            chat: int = CHAT) -> None:
        self.on(self.fake.inject_message, chat, user, text, thread_id=thread)

    def tap(self, message: StoredMessage, data: str, *, user: int = ALICE) -> str:
        return self.on(self.fake.inject_callback, message.message_id, message.chat_id, user, data)

    def wait_for(self, method: str, predicate: Callable[[Call], bool] | None = None,
                 timeout: float = 15.0, **kwargs: Any) -> Call:
        return self._run(self.fake.wait_for(method, predicate, timeout, **kwargs), timeout + 5)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        self._run(self.fake.wait_until(condition, timeout), timeout + 5)

    def messages(self, thread: int | None = None, chat: int = CHAT) -> list[StoredMessage]:
        return self.on(self.fake.messages_in, chat, thread)

    def message_with(self, text: str, thread: int | None = None,
                     timeout: float = 15.0) -> StoredMessage:
        found: list[StoredMessage] = []

        def check() -> bool:
            found[:] = [m for m in self.fake.messages_in(CHAT, thread) if text in (m.text or "")]
            return bool(found)

        self.wait_until(check, timeout)
        return found[-1]

    def message_with_in(self, chat: int, text: str, timeout: float = 15.0) -> StoredMessage:
        found: list[StoredMessage] = []

        def check() -> bool:
            found[:] = [m for m in self.fake.messages_in(chat) if text in (m.text or "")]
            return bool(found)

        self.wait_until(check, timeout)
        return found[-1]

    def answer(self, query_id: str, timeout: float = 15.0) -> Any:
        self.wait_until(lambda: query_id in self.fake.callback_answers, timeout)
        return self.on(lambda: self.fake.callback_answers[query_id])
