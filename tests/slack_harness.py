"""The fake Slack on its own event loop in a thread, so that sync tests can drive a daemon
subprocess through the CLI and the chat at the same time (the Slack twin of
tests/telegram_harness.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.fakes.slack_api import (
    ALICE,
    APP_TOKEN,
    BOT_TOKEN,
    CHANNEL,
    MALLORY,
    SIGNING_SECRET,
    Call,
    Ephemeral,
    FakeSlack,
    OpenedView,
    StoredMessage,
)
from tests.threaded import Threaded

STRANGER = MALLORY
__all__ = ["ALICE", "CHANNEL", "STRANGER", "ThreadedSlack"]


class ThreadedSlack(Threaded[FakeSlack]):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(lambda: FakeSlack(**kwargs))

    # -- configuration ----------------------------------------------------------------------

    def config(self, *, allowed: tuple[str, ...] = (ALICE,), mode: str = "socket",
               http_port: int | None = None) -> str:
        users = ", ".join(f'"{u}"' for u in allowed)
        text = (
            "[slack]\n"
            f'channel = "{CHANNEL}"\n'
            f"allowed_user_ids = [{users}]\n"
            f'base_url = "{self.fake.base_url}"\n'
            f'mode = "{mode}"\n'
        )
        if http_port is not None:
            text += f'http_listen = "127.0.0.1"\nhttp_port = {http_port}\n'
        return text

    @staticmethod
    def env() -> dict[str, str]:
        return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET}

    # -- people acting ----------------------------------------------------------------------

    def command(self, text: str, *, command: str = "/agent", user: str = ALICE) -> str:
        return self._run(self.fake.inject_command(command, text, user=user))

    def say(self, text: str, *, thread_ts: str | None = None, user: str = ALICE) -> str:
        return self._run(self.fake.inject_message(text, user=user, thread_ts=thread_ts))

    def tap(self, message: StoredMessage | Ephemeral, value: str, *, user: str = ALICE,
            require_button: bool = True) -> str:
        return self._run(self.fake.inject_tap(message, value, user=user,
                                              require_button=require_button))

    def submit(self, view: OpenedView, text: str) -> str:
        return self._run(self.fake.inject_view_submission(view, text))

    # -- observing --------------------------------------------------------------------------

    def wait_for(self, method: str, predicate: Callable[[Call], bool] | None = None,
                 timeout: float = 15.0, **kwargs: Any) -> Call:
        return self._run(self.fake.wait_for(method, predicate, timeout, **kwargs), timeout + 5)

    def wait_until(self, condition: Callable[[], Any], timeout: float = 15.0) -> Any:
        return self._run(self.fake.wait_until(condition, timeout), timeout + 5)

    def connected(self, timeout: float = 20.0) -> None:
        self.wait_until(lambda: self.fake.sockets, timeout)

    def new_thread(self, since: int = 0, timeout: float = 15.0) -> StoredMessage:
        """The first top-level bot message in the channel after the first `since` ones."""
        return self.wait_until(
            lambda: next(iter([m for m in self.fake.top_level(CHANNEL) if m.bot_id][since:]),
                         None), timeout)

    def thread_messages(self, thread_ts: str) -> list[StoredMessage]:
        return self.on(self.fake.thread, CHANNEL, thread_ts)

    def message_with(self, text: str, thread_ts: str, timeout: float = 15.0) -> StoredMessage:
        return self.wait_until(
            lambda: next((m for m in reversed(self.fake.thread(CHANNEL, thread_ts))
                          if text in m.shown), None), timeout)

    def ephemeral_after(self, count: int, user: str = ALICE,
                        timeout: float = 15.0) -> Ephemeral:
        """The first ephemeral message to `user` after the first `count` ones."""
        return self.wait_until(
            lambda: next(iter(self.fake.ephemerals_for(user)[count:]), None), timeout)

    def ephemeral_count(self, user: str = ALICE) -> int:
        return self.on(lambda: len(self.fake.ephemerals_for(user)))
