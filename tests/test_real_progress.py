"""Conformance: the progress message from the REAL Claude Code's events (a private Telegram
chat, where it is on by default): the tool call waiting for its approval, then how it ended."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.model_api import ThreadedModelAPI, bash, tool_then_finish
from tests.harness import Bridge
from tests.real_binaries import CLAUDE, use_real_claude
from tests.telegram_harness import ALICE

pytestmark = pytest.mark.real_agents


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI(tool_then_finish(bash("echo allowed > out.txt")))
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


def test_progress_of_a_real_claude_turn(make_bridge, tg, model):
    bridge: Bridge = make_bridge(extra=tg.config(chat=ALICE))
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    use_real_claude(bridge, CLAUDE.require(), model.base_url)
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    tg.say("/new demo please run a command", chat=ALICE)
    card = tg.message_with_in(ALICE, "Approval needed", timeout=60)

    def progress() -> list:
        return [m for m in tg.messages(chat=ALICE) if (m.text or "").startswith("🛠")]

    tg.wait_until(lambda: bool(progress()), timeout=30)
    (shown,) = progress()
    assert "▶️ Bash" in shown.text and "echo allowed > out.txt · running" in shown.text
    assert shown.message_id > card.message_id
    tg.answer(tg.tap(card, card.callback_data[0]))
    tg.message_with_in(ALICE, "Turn finished", timeout=60)
    assert (bridge.project / "out.txt").read_text() == "allowed\n"
    assert len(progress()) == 1
