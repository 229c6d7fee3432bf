from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.ssh_server import ThreadedSshHosts
from tests.harness import Bridge
from tests.telegram_harness import ThreadedTelegram


@pytest.fixture
def make_bridge(tmp_path: Path) -> Iterator[object]:
    bridges: list[Bridge] = []

    def make(**kwargs: object) -> Bridge:
        bridge = Bridge(tmp_path, **kwargs)  # type: ignore[arg-type]
        bridges.append(bridge)
        return bridge

    yield make
    leftovers = [pid for b in bridges for pid in b.cleanup()]
    assert not leftovers, f"processes outlived the test: {leftovers}"


@pytest.fixture
def bridge(make_bridge) -> Bridge:  # type: ignore[no-untyped-def]
    b = make_bridge()
    b.start()
    return b


@pytest.fixture
def tg() -> Iterator[ThreadedTelegram]:
    """The fake Telegram Bot API, served from its own thread."""
    fake = ThreadedTelegram()
    yield fake
    fake.close()


@pytest.fixture
def ssh() -> Iterator[ThreadedSshHosts]:
    """In-process SSH hosts (asyncssh servers on 127.0.0.1) served from their own thread."""
    hosts = ThreadedSshHosts()
    yield hosts
    hosts.close()
