"""Conformance: a photo sent in a session's Telegram topic reaches the mock model API as an
image, through the REAL Claude Code (a base64 image block of the stream-json user message)
and the REAL Codex (a `localImage` input on turn/start, which Codex reads from the saved
file). The daemon, python-telegram-bot and the fake Bot API are real too."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.model_api import ANTHROPIC, OPENAI, ModelRequest, ThreadedModelAPI, text_only
from tests.harness import Bridge
from tests.real_binaries import CLAUDE, CODEX, START, use_real_claude, use_real_codex
from tests.telegram_harness import ALICE, CHAT

pytestmark = pytest.mark.real_agents

# an 8×8 red PNG: small, and a valid image for any decoder the agents use
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP4z8CAFWEXHbQSACj/P8Fu7N9hAAAA"
    "AElFTkSuQmCC")


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI(text_only("I see a red square."))
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


def start(bridge: Bridge, tg: Any, agent: str) -> int:
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=bridge.project, check=True)
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    tg.say(f"/new demo say hello --agent {agent}")
    thread: int = tg.wait_for("createForumTopic", timeout=START).result["message_thread_id"]
    tg.message_with("Turn finished", thread, timeout=START)
    return thread


def send_photo(tg: Any, thread: int, caption: str) -> None:
    tg.on(tg.fake.inject_file, CHAT, ALICE, "document", PNG, file_name="red.png",
          mime_type="image/png", caption=caption, thread_id=thread)


def anthropic_images(request: ModelRequest) -> list[dict[str, Any]]:
    return [block for message in request.body.get("messages", [])
            if message.get("role") == "user" and isinstance(message.get("content"), list)
            for block in message["content"] if block.get("type") == "image"]


def test_real_claude_gets_a_photo_as_an_image_block(make_bridge, tg, model):
    bridge = make_bridge(extra=tg.config())
    use_real_claude(bridge, CLAUDE.require(), model.base_url)
    thread = start(bridge, tg, "claude")
    send_photo(tg, thread, "what colour is this?")
    request = model.wait_for(lambda r: r.api == ANTHROPIC and bool(anthropic_images(r)),
                             timeout=START, what="an image block in a Messages request")
    (image,) = anthropic_images(request)
    assert image["source"]["type"] == "base64"
    assert image["source"]["media_type"] == "image/png"
    assert base64.b64decode(image["source"]["data"]) == PNG
    assert "what colour is this?" in request.all_text()
    assert ".agent-bridge/uploads/red.png" in request.all_text()  # the path, in the text
    tg.message_with("I see a red square.", thread, timeout=START)


def openai_images(request: ModelRequest) -> list[dict[str, Any]]:
    return [part for item in request.body.get("input", []) if isinstance(item, dict)
            for part in (item.get("content") if isinstance(item.get("content"), list) else [])
            if isinstance(part, dict) and part.get("type") == "input_image"]


def test_real_codex_reads_the_local_image_and_sends_it_to_the_model(make_bridge, tg, model):
    bridge = make_bridge(extra=tg.config())
    use_real_codex(bridge, CODEX.require(), model.base_url)
    thread = start(bridge, tg, "codex")
    send_photo(tg, thread, "what colour is this?")
    request = model.wait_for(lambda r: r.api == OPENAI and bool(openai_images(r)),
                             timeout=START, what="an input_image in a Responses request")
    images = openai_images(request)
    assert len(images) == 1, json.dumps(images)[:500]
    url = images[0]["image_url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == PNG
    assert "what colour is this?" in request.all_text()
    tg.message_with("I see a red square.", thread, timeout=START)
