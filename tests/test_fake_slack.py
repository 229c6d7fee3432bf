"""The fake Slack Web API, driven by the real slack_sdk and slack-bolt over loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import (
    ALICE,
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER_ID,
    CHANNEL,
    MALLORY,
    SIGNING_SECRET,
    FakeSlack,
    RateLimit,
    message_event,
    sign,
)

BUTTONS = [
    {"type": "section", "text": {"type": "plain_text", "text": "Run `ls`?"}},
    {"type": "actions", "block_id": "row0", "elements": [
        {"type": "button", "action_id": "btn0", "value": "ao:abc123",
         "text": {"type": "plain_text", "text": "Allow once"}},
        {"type": "button", "action_id": "btn1", "value": "dn:abc123",
         "text": {"type": "plain_text", "text": "Deny"}},
    ]},
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=fake.base_url)


async def test_auth_test_names_the_bot(client: AsyncWebClient, fake: FakeSlack) -> None:
    auth = await client.auth_test()
    assert auth["user_id"] == BOT_USER_ID and auth["bot_id"] and auth["team_id"]
    assert fake.calls[0].token == BOT_TOKEN


async def test_a_thread_with_blocks_edits_and_ephemerals(client: AsyncWebClient,
                                                         fake: FakeSlack) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="status", blocks=BUTTONS)
    reply = await client.chat_postMessage(channel=CHANNEL, text="in thread",
                                          thread_ts=parent["ts"])
    assert [m.ts for m in fake.thread(CHANNEL, parent["ts"])] == [parent["ts"], reply["ts"]]
    stored = fake.message(CHANNEL, parent["ts"])
    assert stored is not None and stored.values == ["ao:abc123", "dn:abc123"]
    assert stored.shown == "Run `ls`?"
    # no blocks given: Slack keeps the old ones; an empty list removes them
    await client.chat_update(channel=CHANNEL, ts=parent["ts"], text="edited")
    assert stored.values and stored.edited
    await client.chat_update(channel=CHANNEL, ts=parent["ts"], text="decided", blocks=[])
    assert stored.values == [] and stored.shown == "decided"
    await client.chat_postEphemeral(channel=CHANNEL, user=ALICE, text="only you",
                                    thread_ts=parent["ts"])
    assert fake.ephemerals_for(ALICE)[0].text == "only you"
    assert fake.ephemerals_for(MALLORY) == []


async def test_refusals_look_like_slack(client: AsyncWebClient, fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as e:
        await client.chat_postMessage(channel=CHANNEL, text="x", thread_ts="1.000001")
    assert e.value.response["error"] == "thread_not_found"
    with pytest.raises(SlackApiError) as e:
        await client.chat_update(channel=CHANNEL, ts="1.000001", text="x")
    assert e.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as e:
        await client.chat_postMessage(channel="C0NOPE", text="x")
    assert e.value.response["error"] == "channel_not_found"
    twice = [BUTTONS[0], {"type": "actions", "elements": [BUTTONS[1]["elements"][0]] * 2}]
    with pytest.raises(SlackApiError) as e:
        await client.chat_postMessage(channel=CHANNEL, text="x", blocks=twice)
    assert e.value.response["error"] == "invalid_blocks"
    long = [{"type": "section", "text": {"type": "plain_text", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel=CHANNEL, text="x", blocks=long)
    with pytest.raises(SlackApiError) as e:
        await AsyncWebClient(token="xoxp-user", base_url=fake.base_url).auth_test()
    assert e.value.response["error"] == "not_allowed_token_type"


async def test_rate_limit_is_429_with_retry_after(fake: FakeSlack,
                                                  client: AsyncWebClient) -> None:
    fake.limits["chat.postMessage"] = RateLimit(2, 60.0)
    for _ in range(2):
        await client.chat_postMessage(channel=CHANNEL, text="x")
    with pytest.raises(SlackApiError) as e:
        await client.chat_postMessage(channel=CHANNEL, text="x")
    assert e.value.response.status_code == 429
    assert int(e.value.response.headers["Retry-After"]) >= 1
    assert fake.rate_limited
    # the limit is per channel
    await client.chat_postMessage(channel="C0OTHER", text="elsewhere")


async def test_injected_429_is_retried_by_the_sdk_handler(fake: FakeSlack) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.base_url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    fake.fail_next("chat.postMessage", "ratelimited", retry_after=1)
    started = time.monotonic()
    await client.chat_postMessage(channel=CHANNEL, text="after a wait")
    assert time.monotonic() - started >= 0.9
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]
    assert not fake.rate_limited  # injected, not earned


async def test_unreachable_and_injected_errors(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.set_unreachable(True)
    with pytest.raises(SlackApiError) as e:
        await client.chat_postMessage(channel=CHANNEL, text="x")
    assert e.value.response.status_code == 502
    fake.set_unreachable(False)
    fake.fail_next("chat.update", "cant_update_message")
    with pytest.raises(SlackApiError) as e:
        await client.chat_update(channel=CHANNEL, ts="1.1", text="x")
    assert e.value.response["error"] == "cant_update_message"


async def test_files_upload_v2_lands_in_the_thread(client: AsyncWebClient,
                                                   fake: FakeSlack) -> None:
    parent = await client.chat_postMessage(channel=CHANNEL, text="status")
    data = b"diff --git a/x b/x\n" * 100
    await client.files_upload_v2(channel=CHANNEL, thread_ts=parent["ts"], file=data,
                                 filename="s1.diff", title="s1.diff", initial_comment="the diff")
    [stored] = fake.files.values()
    assert stored.data == data and stored.completed
    assert (stored.channel, stored.thread_ts) == (CHANNEL, parent["ts"])
    assert stored.initial_comment == "the diff" and stored.filename == "s1.diff"
    methods = [c.method for c in fake.calls]
    assert methods[-2:] == ["files.getUploadURLExternal", "files.completeUploadExternal"]


async def test_views_open_needs_a_fresh_trigger(client: AsyncWebClient, fake: FakeSlack) -> None:
    view = {"type": "modal", "callback_id": "x", "title": {"type": "plain_text", "text": "T"},
            "blocks": [{"type": "input", "block_id": "b", "label": {"type": "plain_text",
                        "text": "L"}, "element": {"type": "plain_text_input",
                                                  "action_id": "a"}}]}
    with pytest.raises(SlackApiError) as e:
        await client.views_open(trigger_id="nope", view=view)
    assert e.value.response["error"] == "invalid_trigger_id"
    trigger = fake._trigger(ALICE, CHANNEL)
    await client.views_open(trigger_id=trigger, view=view)
    assert fake.views[0].user == ALICE


async def test_socket_mode_with_the_real_bolt_app(fake: FakeSlack) -> None:
    app = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=fake.base_url),
                   signing_secret="unused", request_verification_enabled=False)
    seen: list[tuple[str, Any]] = []

    @app.command("/agent")
    async def on_agent(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        seen.append(("command", command["text"]))
        await respond(text="on it", response_type="ephemeral")

    @app.action("btn0")
    async def on_tap(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        seen.append(("tap", (body["user"]["id"], action["value"],
                             body["container"].get("thread_ts"))))

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        seen.append(("message", (event["text"], event.get("thread_ts"))))

    handler = AsyncSocketModeHandler(app, APP_TOKEN)
    try:
        await handler.connect_async()
        await fake.wait_until(lambda: fake.sockets)
        envelope = await fake.inject_command("/agent", "new demo hi")
        await fake.wait_until(lambda: envelope in fake.acks)
        await fake.wait_until(lambda: fake.ephemerals_for(ALICE))
        assert fake.ephemerals_for(ALICE)[0].via == "response_url"
        parent = await app.client.chat_postMessage(channel=CHANNEL, text="p")
        card = await app.client.chat_postMessage(channel=CHANNEL, text="c", blocks=BUTTONS,
                                                 thread_ts=parent["ts"])
        message = fake.message(CHANNEL, card["ts"])
        assert message is not None
        await fake.inject_tap(message, "ao:abc123", user=MALLORY)
        await fake.inject_message("a reply", thread_ts=parent["ts"])
        await fake.wait_until(lambda: len(seen) == 3)
    finally:
        await handler.close_async()
    assert seen[0] == ("command", "new demo hi")
    assert ("tap", (MALLORY, "ao:abc123", parent["ts"])) in seen
    assert ("message", ("a reply", parent["ts"])) in seen
    assert fake.calls_to("apps.connections.open")[0].token == APP_TOKEN
    assert fake.calls_to("auth.test")  # bolt authorizes lazily through the same base_url


async def test_signed_http_requests_through_bolt(fake: FakeSlack) -> None:
    app = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=fake.base_url),
                   signing_secret=SIGNING_SECRET)
    taps: list[str] = []

    @app.action("btn0")
    async def on_tap(ack: Any, action: dict[str, Any]) -> None:
        await ack()
        taps.append(action["value"])

    async def route(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", route)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        parent = await app.client.chat_postMessage(channel=CHANNEL, text="c", blocks=BUTTONS)
        message = fake.message(CHANNEL, parent["ts"])
        assert message is not None
        fake.deliver_to = url
        assert await fake.inject_tap(message, "ao:abc123") == "200"
        await fake.wait_until(lambda: taps)
        body = json.dumps({"type": "url_verification", "challenge": "abc"})
        assert (await fake.send_signed(url, body, "application/json"))[0] == 200
        assert (await fake.send_signed(url, body, "application/json", secret="wrong"))[0] == 401
        stale = int(time.time()) - 6 * 60
        assert (await fake.send_signed(url, body, "application/json",
                                       timestamp=stale))[0] == 401
    finally:
        await runner.cleanup()
    assert taps == ["ao:abc123"]


def test_the_signature_is_slacks_v0_scheme() -> None:
    # the example from Slack's "Verifying requests" page
    body = ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
            "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
            "command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
            "commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
            "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    assert sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body) == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")


async def test_socket_envelopes_wait_for_a_connection(fake: FakeSlack) -> None:
    event = message_event(user=ALICE, channel=CHANNEL, text="early", ts="1.000001")
    envelope = await fake.push("events_api", event)
    assert envelope not in fake.acks
    app = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=fake.base_url),
                   signing_secret="unused", request_verification_enabled=False)
    texts: list[str] = []

    @app.event("message")
    async def on_message(event: dict[str, Any]) -> None:
        texts.append(event["text"])

    handler = AsyncSocketModeHandler(app, APP_TOKEN)
    try:
        await handler.connect_async()
        await fake.wait_until(lambda: envelope in fake.acks and texts)
    finally:
        await handler.close_async()
    assert texts == ["early"]
    await asyncio.wait_for(fake.wait_until(lambda: not fake.sockets), 5)
