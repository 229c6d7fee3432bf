"""The fake Telegram Bot API, driven by the real python-telegram-bot over loopback HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import io
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, TypeAlias

import aiohttp
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from tests.fakes.telegram_api import FORUM_CHAT_ID, USER_ID, FakeTelegram, RateLimit

# PTB warns on its own RetryAfter construction that retry_after becomes a timedelta in v23.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

App: TypeAlias = "Application[Any, Any, Any, Any, Any, Any]"
TOKEN = "123456:TEST-token"
APPROVE = InlineKeyboardMarkup([[InlineKeyboardButton("Approve", callback_data="approve:s1:42")]])


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=fake.base_url, base_file_url=fake.base_file_url) as client:
        yield client


def build_application(fake: FakeTelegram) -> App:
    return (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .build()
    )


@contextlib.asynccontextmanager
async def polling(app: App) -> AsyncIterator[App]:
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            yield app
        finally:
            await app.updater.stop()
            await app.stop()


def retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def test_command_reaches_handler_by_polling_and_reply_carries_keyboard(
    fake: FakeTelegram,
) -> None:
    async def start(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text("Run `ls`?", reply_markup=APPROVE)

    app = build_application(fake)
    app.add_handler(CommandHandler("start", start))
    async with polling(app):
        update = fake.inject_message(fake.private_chat_id, USER_ID, "/start")
        call = await fake.wait_for("sendMessage")

    assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert call.params["chat_id"] == USER_ID
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == (
        "approve:s1:42"
    )
    stored = fake.messages[(USER_ID, call.result["message_id"])]
    assert stored.text == "Run `ls`?"
    assert stored.callback_data == ["approve:s1:42"]
    assert call.result["from"]["username"] == "fake_bot"
    assert TOKEN in fake.tokens
    assert not fake.rate_limited


async def test_callback_query_is_answered_and_message_edited(fake: FakeTelegram) -> None:
    async def on_tap(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer("Approved")
        await query.edit_message_text(f"Approved by {query.from_user.username}")

    app = build_application(fake)
    app.add_handler(CallbackQueryHandler(on_tap))
    async with polling(app):
        sent = await app.bot.send_message(FORUM_CHAT_ID, "Run `ls`?", reply_markup=APPROVE)
        query_id = fake.inject_callback(sent.message_id, FORUM_CHAT_ID, USER_ID, "approve:s1:42")
        await fake.wait_for("editMessageText")

        assert fake.callback_answers[query_id].text == "Approved"
        stored = fake.messages[(FORUM_CHAT_ID, sent.message_id)]
        assert stored.text == "Approved by alice"
        assert stored.reply_markup is None  # an edit without reply_markup drops the keyboard
        assert [v.text for v in stored.history] == ["Run `ls`?"]

        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await app.bot.answer_callback_query(query_id, text="again")
        with pytest.raises(BadRequest, match=r"(?i)not modified"):
            await app.bot.edit_message_text(
                "Approved by alice", chat_id=FORUM_CHAT_ID, message_id=sent.message_id
            )
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await app.bot.edit_message_text("x", chat_id=FORUM_CHAT_ID, message_id=99_999)


async def test_forum_topic_then_messages_in_it(fake: FakeTelegram, bot: Bot) -> None:
    topic = await bot.create_forum_topic(FORUM_CHAT_ID, "session s1")
    thread_id = topic.message_thread_id
    message = await bot.send_message(FORUM_CHAT_ID, "hello", message_thread_id=thread_id)

    assert message.message_thread_id == thread_id
    assert message.is_topic_message
    assert fake.topics[thread_id].name == "session s1"
    assert [m.text for m in fake.messages_in(FORUM_CHAT_ID, thread_id)] == ["hello"]

    await bot.close_forum_topic(FORUM_CHAT_ID, thread_id)
    assert fake.topics[thread_id].closed
    with pytest.raises(BadRequest, match=r"(?i)message thread not found"):
        await bot.send_message(FORUM_CHAT_ID, "x", message_thread_id=thread_id + 1000)
    with pytest.raises(BadRequest, match=r"(?i)the chat is not a forum"):
        await bot.create_forum_topic(USER_ID, "nope")


async def test_reply_to_a_topic_message_stays_in_the_topic(fake: FakeTelegram) -> None:
    async def status(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text("all good")

    app = build_application(fake)
    app.add_handler(CommandHandler("status", status))
    async with polling(app):
        topic = await app.bot.create_forum_topic(FORUM_CHAT_ID, "session s2")
        thread_id = topic.message_thread_id
        fake.inject_message(FORUM_CHAT_ID, USER_ID, "/status@fake_bot", thread_id=thread_id)
        call = await fake.wait_for("sendMessage")

    assert call.params["message_thread_id"] == thread_id
    assert call.result["is_topic_message"] is True


async def test_text_over_4096_characters_is_rejected(bot: Bot) -> None:
    await bot.send_message(USER_ID, "x" * 4096)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER_ID, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(USER_ID, "")


async def test_callback_data_over_64_bytes_is_rejected(bot: Bot) -> None:
    def keyboard(data: str) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data=data)]])

    await bot.send_message(USER_ID, "ok", reply_markup=keyboard("a" * 64))
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(USER_ID, "no", reply_markup=keyboard("a" * 65))
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(USER_ID, "no", reply_markup=keyboard("é" * 33))  # 66 bytes


async def test_injected_429_raises_retry_after(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(USER_ID, "hello")
    assert retry_seconds(caught.value) == 7
    await bot.send_message(USER_ID, "hello")  # only the next call fails
    assert not fake.rate_limited  # injected failures are not violations


async def test_send_document_keeps_filename_and_bytes(fake: FakeTelegram, bot: Bot) -> None:
    diff = b"--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n"
    message = await bot.send_document(
        FORUM_CHAT_ID, document=io.BytesIO(diff), filename="s1.diff", caption="the diff"
    )
    assert message.document is not None
    stored = fake.documents[message.document.file_id]
    assert (stored.file_name, stored.data) == ("s1.diff", diff)
    assert message.caption == "the diff"

    file = await bot.get_file(message.document.file_id)
    assert bytes(await file.download_as_bytearray()) == diff


async def test_group_rate_limit_answers_429_after_20_messages_a_minute(
    fake: FakeTelegram, bot: Bot
) -> None:
    for n in range(20):
        await bot.send_message(FORUM_CHAT_ID, f"message {n}")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(FORUM_CHAT_ID, "one too many")

    assert 0 < retry_seconds(caught.value) <= 60
    assert [(v.scope, v.chat_id) for v in fake.violations] == [("group", FORUM_CHAT_ID)]
    assert fake.rate_limited
    await bot.send_message(USER_ID, "private chats have no group budget")


async def test_global_limit_is_configurable() -> None:
    async with FakeTelegram(global_limit=RateLimit(3, 60.0)) as strict:
        async with Bot(
            TOKEN, base_url=strict.base_url, base_file_url=strict.base_file_url
        ) as client:
            for _ in range(3):
                await client.send_message(USER_ID, "hi")
            with pytest.raises(RetryAfter):
                await client.send_message(USER_ID, "hi")
        assert strict.violations[0].scope == "global"


async def test_html_is_parsed_like_telegram(fake: FakeTelegram, bot: Bot) -> None:
    message = await bot.send_message(USER_ID, "<b>run</b> a &lt; b", parse_mode="HTML")
    assert message.text == "run a < b"
    assert fake.messages[(USER_ID, message.message_id)].entities == [
        {"type": "bold", "offset": 0, "length": 3}
    ]
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(USER_ID, "if a <b then", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)can't find end tag"):
        await bot.send_message(USER_ID, "<b>open", parse_mode="HTML")


async def test_unreachable_then_back(fake: FakeTelegram, bot: Bot) -> None:
    fake.set_unreachable(True)
    with pytest.raises(NetworkError):
        await bot.send_message(USER_ID, "lost")
    fake.set_unreachable(False)
    await bot.send_message(USER_ID, "back")
    assert [m.text for m in fake.messages_in(USER_ID)] == ["back"]


async def test_dropped_connections_while_unreachable(fake: FakeTelegram, bot: Bot) -> None:
    fake.set_unreachable(True, close_connection=True)
    with pytest.raises(NetworkError):
        await bot.send_message(USER_ID, "lost")
    fake.set_unreachable(False)
    await bot.send_message(USER_ID, "back")


async def test_wait_for_times_out_with_the_recent_calls(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(USER_ID, "only this")
    with pytest.raises(AssertionError, match=r"sendMessage.*only this"):
        await fake.wait_for("sendMessage", lambda c: c.params["text"] == "never", timeout=0.2)


async def test_stop_wakes_a_waiting_long_poll() -> None:
    fake = FakeTelegram()
    await fake.start()
    async with aiohttp.ClientSession() as session:

        async def long_poll() -> object:
            url = f"{fake.base_url}{TOKEN}/getUpdates"
            async with session.post(url, data={"timeout": "30"}) as response:
                return await response.json()

        poll = asyncio.create_task(long_poll())
        await fake.wait_until(lambda: fake.waiting_polls == 1, timeout=2)
        async with asyncio.timeout(3):
            await fake.stop()
            assert await poll == {"ok": True, "result": []}


async def test_polls_see_updates_after_offset(fake: FakeTelegram, bot: Bot) -> None:
    first = fake.inject_message(USER_ID, USER_ID, "one")
    second = fake.inject_message(USER_ID, USER_ID, "two")
    updates = await bot.get_updates(timeout=1)
    assert [u.update_id for u in updates] == [first["update_id"], second["update_id"]]
    updates = await bot.get_updates(offset=second["update_id"], timeout=0)
    assert [u.message.text for u in updates if u.message] == ["two"]
    assert [u["update_id"] for u in fake.pending_updates] == [second["update_id"]]


async def test_unknown_method_is_404_and_json_bodies_work(fake: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fake.base_url}{TOKEN}/noSuchMethod") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        body = {"chat_id": USER_ID, "text": "via json", "reply_markup": APPROVE.to_dict()}
        async with session.post(f"{fake.base_url}{TOKEN}/sendMessage", json=body) as response:
            assert (await response.json())["result"]["reply_markup"] == APPROVE.to_dict()
