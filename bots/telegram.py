"""Telegram through python-telegram-bot 22: translation only.

Outgoing: a forum topic per session (or, where the chat has no topics, a reply chain under
the session's status message), plain-text cards with inline keyboards, documents.
Incoming: commands, plain messages and button taps become `Incoming` actions for the
daemon's inbox; its `Reply` is shown (taps are answered with answerCallbackQuery).
Errors become the port's signals: RetryAfter → `SurfaceRetry`, network → `SurfaceUnavailable`,
a vanished topic → `ThreadGone`, other refusals → `SurfaceError`.
"""

from __future__ import annotations

import io
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    ReplyParameters,
    Update,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ContextTypes,
    TypeHandler,
    filters,
)
from telegram.ext import MessageHandler as PtbMessageHandler

from bots.telegram_files import fetch, files_of
from bridge.approvals import Actor
from bridge.commands import COMMAND_HELP
from bridge.config import TelegramConfig
from bridge.errors import ConfigError
from bridge.model import SessionView
from bridge.render import Card
from bridge.surface import (
    Downloaded,
    Inbox,
    Incoming,
    IncomingFile,
    IncomingKind,
    Limits,
    Rate,
    SurfaceError,
    SurfaceRetry,
    SurfaceUnavailable,
    ThreadGone,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Telegram's limits (its FAQ; Telegram's developers add that edits share them, and that making a
# forum topic is sending the message about it): about one message a second in a chat, 20 a
# minute in a group, 30 a second in all. answerCallbackQuery has no chat and spends nothing.
LIMITS = Limits(text=4096, caption=1024, file_bytes=50 * 1024 * 1024, inline_diff=3000,
                overall=(Rate(30, 1.0),))
GROUP_RATES = (Rate(20, 60.0), Rate(1, 1.0))
PRIVATE_RATES = (Rate(1, 1.0),)
SEEN_UPDATES = 10_000  # update ids remembered, to act on each once
_GONE = ("message thread not found", "topic_deleted", "topic_id_invalid", "thread not found")


def thread_ref(chat_id: int, thread_id: int | None = None, reply_to: int | None = None) -> str:
    if thread_id is not None:
        return json.dumps({"c": chat_id, "t": thread_id})
    if reply_to is not None:
        return json.dumps({"c": chat_id, "r": reply_to})
    return json.dumps({"c": chat_id})


def message_ref(chat_id: int, message_id: int) -> str:
    return json.dumps({"c": chat_id, "m": message_id})


def _not_modified(error: Exception) -> bool:
    text = str(error).lower().replace("_", " ")
    return "not modified" in text

def keyboard(card_buttons: tuple[tuple[Any, ...], ...]) -> InlineKeyboardMarkup | None:
    if not card_buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, url=b.url) if b.url
          else InlineKeyboardButton(b.label, callback_data=b.action.encode()) for b in row]
         for row in card_buttons]
    )


async def call(awaitable: Awaitable[T]) -> T:
    """Await a Bot API call, turning PTB's errors into the surface port's."""
    try:
        return await awaitable
    except RetryAfter as e:
        after = e.retry_after
        seconds = after.total_seconds() if hasattr(after, "total_seconds") else float(after)
        raise SurfaceRetry(seconds, "Telegram rate limit") from e
    except BadRequest as e:
        text = e.message.lower()
        if any(g in text for g in _GONE):
            raise ThreadGone(e.message) from e
        raise SurfaceError(f"Telegram refused: {e.message}") from e
    except Forbidden as e:
        raise SurfaceError(f"Telegram forbids it: {e.message}") from e
    except NetworkError as e:  # includes TimedOut
        raise SurfaceUnavailable(f"Telegram unreachable: {e.message}") from e
    except TelegramError as e:
        raise SurfaceError(f"Telegram error: {e.message}") from e


class TelegramSurface:
    name = "telegram"

    def __init__(self, config: TelegramConfig, token: str, *,
                 webhook_secret: str | None = None) -> None:
        if config.mode == "webhook" and not webhook_secret:
            # without it anyone who finds the URL could post updates: taps, /new
            raise ConfigError("telegram.webhook_secret_env",
                              "webhook mode needs the secret token Telegram sends with "
                              "each update")
        self.config = config
        self.chat_id = config.chat_id  # the home chat (projects may be routed to others)
        self._webhook_secret = webhook_secret
        self.limits = LIMITS
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder()
            .token(token)
            .base_url(config.base_url)
            .base_file_url(config.base_file_url)
            .concurrent_updates(True)
            .connection_pool_size(16)
            .pool_timeout(10.0)
            .get_updates_read_timeout(config.poll_timeout + 10)
            .build()
        )
        self.bot_username: str | None = None
        self._inbox: Inbox | None = None
        self._topics: dict[int, bool] = {}  # chat → whether it has topics, once known
        # set by the daemon: waits for a slot in the chat's rate budget (shared with delivery)
        self.throttle: Callable[[str], Awaitable[None]] | None = None
        # Telegram re-sends an update it thinks was not received (a webhook answered late, a
        # poll whose offset was lost): each update_id acts once
        self._seen_updates: OrderedDict[int, None] = OrderedDict()
        # "send the reason" prompts: (chat, message) → the Deny-with-reason button tapped
        self._reason_prompts: OrderedDict[tuple[int, int], str] = OrderedDict()
        self.app.add_handler(TypeHandler(Update, self._once), group=-1)
        self.app.add_handler(CallbackQueryHandler(self._on_tap))
        self.app.add_handler(PtbMessageHandler(
            filters.TEXT | filters.PHOTO | filters.Document.ALL | filters.VOICE,
            self._on_message))
        self.app.add_error_handler(self._on_error)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        await call(self.app.initialize())
        self.bot_username = self.app.bot.username
        await call(self.app.bot.set_my_commands(
            [BotCommand(name.value, f"{args} — {what}".strip(" —")[:256])
             for name, args, what in COMMAND_HELP]
        ))
        await self.app.start()
        updater = self.app.updater
        assert updater is not None
        if self.config.mode == "webhook":
            await updater.start_webhook(
                listen=self.config.webhook_listen, port=self.config.webhook_port,
                url_path="telegram", webhook_url=self.config.webhook_url,
                secret_token=self._webhook_secret,
                allowed_updates=["message", "callback_query"],
            )
        else:
            await updater.start_polling(
                poll_interval=0.0, timeout=self.config.poll_timeout,
                allowed_updates=["message", "callback_query"],
            )

    async def stop(self) -> None:
        updater = self.app.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    # -- outgoing ---------------------------------------------------------------------

    async def open_thread(
        self, session: SessionView, title: str, card: Card, chat: str | None = None
    ) -> tuple[str, str | None]:
        bot = self.app.bot
        chat_id = int(chat) if chat is not None else self.chat_id
        topics = self._topics.get(chat_id)
        if topics is not False:
            try:
                topic = await call(bot.create_forum_topic(chat_id, name=title[:128]))
                self._topics[chat_id] = True
                return thread_ref(chat_id, thread_id=topic.message_thread_id), None
            except SurfaceError as e:
                if topics:
                    raise
                log.info("chat %s has no topics (%s): using reply chains", chat_id, e)
                self._topics[chat_id] = False
        message = await call(bot.send_message(
            chat_id, card.text, reply_markup=keyboard(card.buttons),
            disable_notification=True,
        ))
        return thread_ref(chat_id, reply_to=message.message_id), message_ref(
            chat_id, message.message_id)

    async def set_thread(self, thread: str, *, title: str | None, open: bool | None) -> None:
        ref = json.loads(thread)
        topic = ref.get("t")
        if topic is None:
            return
        bot = self.app.bot
        try:
            if title is not None:
                await call(bot.edit_forum_topic(ref["c"], topic, name=title[:128]))
            if open is False:
                await call(bot.close_forum_topic(ref["c"], topic))
            elif open is True:
                await call(bot.reopen_forum_topic(ref["c"], topic))
        except SurfaceError as e:
            if not _not_modified(e):
                raise

    def thread_link(self, thread: str) -> str | None:
        """A t.me link that opens the thread (supergroups only; private chats have none)."""
        ref = json.loads(thread)
        chat = str(ref["c"])
        if not chat.startswith("-100"):
            return None
        target = ref.get("t") or ref.get("r")
        return f"https://t.me/c/{chat[4:]}/{target}" if target else None

    async def post(self, thread: str, card: Card, *, notify: bool,
                   mention: str | None = None) -> str:
        # `mention` is not needed here: a new message with notification reaches every
        # member of the chat, and the bot's chat is the owner's
        ref = json.loads(thread) if thread else {"c": self.chat_id}
        kwargs: dict[str, Any] = {}
        if "t" in ref:
            kwargs["message_thread_id"] = ref["t"]
        elif "r" in ref:
            kwargs["reply_parameters"] = ReplyParameters(ref["r"], allow_sending_without_reply=True)
        message = await call(self.app.bot.send_message(
            ref["c"], card.text, reply_markup=keyboard(card.buttons),
            disable_notification=not notify, **kwargs,
        ))
        return message_ref(ref["c"], message.message_id)

    async def edit(self, message: str, card: Card) -> None:
        ref = json.loads(message)
        try:
            await call(self.app.bot.edit_message_text(
                card.text, chat_id=ref["c"], message_id=ref["m"],
                reply_markup=keyboard(card.buttons),
            ))
        except SurfaceError as e:
            if not _not_modified(e):
                raise

    async def send_file(self, thread: str, filename: str, data: bytes, caption: str) -> None:
        ref = json.loads(thread)
        kwargs: dict[str, Any] = {}
        if "t" in ref:
            kwargs["message_thread_id"] = ref["t"]
        elif "r" in ref:
            kwargs["reply_parameters"] = ReplyParameters(ref["r"], allow_sending_without_reply=True)
        await call(self.app.bot.send_document(
            ref["c"], InputFile(io.BytesIO(data), filename=filename),
            caption=caption[: self.limits.caption] or None, disable_notification=True, **kwargs,
        ))

    async def fetch_file(self, file: IncomingFile, *, limit: int) -> Downloaded:
        """getFile, then the download through `base_file_url` (Bot API: up to 20 MB)."""
        return await fetch(self.app.bot, file, limit=limit, call=call)

    def thread_of(self, message: str) -> str | None:
        return None

    def chat_ref(self, chat: str) -> str:
        return thread_ref(int(chat))

    def place_of(self, chat: str | None = None) -> str | None:
        return str(int(chat)) if chat is not None else str(self.chat_id)

    def budget_of(self, ref: str, *, edit: bool = False) -> tuple[str, tuple[Rate, ...]]:
        """Each chat has its budget, sends, edits and topic changes together."""
        chat = int(json.loads(ref)["c"]) if ref else self.chat_id
        return f"chat {chat}", GROUP_RATES if chat < 0 else PRIVATE_RATES

    # -- incoming ---------------------------------------------------------------------

    def _actor(self, user: Any) -> Actor:
        name = f"@{user.username}" if user.username else user.full_name
        return Actor(surface=self.name, user_id=str(user.id), name=name)

    def _thread_of(self, message: Message) -> str | None:
        if message.is_topic_message and message.message_thread_id is not None:
            return thread_ref(message.chat.id, thread_id=message.message_thread_id)
        return None

    async def _once(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.update_id in self._seen_updates:
            log.info("telegram update %s arrived again: ignored", update.update_id)
            raise ApplicationHandlerStop
        self._seen_updates[update.update_id] = None
        while len(self._seen_updates) > SEEN_UPDATES:
            self._seen_updates.popitem(last=False)

    async def _on_tap(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or self._inbox is None:
            return
        message = query.message if isinstance(query.message, Message) else None
        thread = self._thread_of(message) if message else None
        # the chat the tapped message is in (a forwarded card: where it was forwarded to);
        # a tap on an inline-mode message has none
        place = str(query.message.chat.id) if query.message is not None else None
        incoming = Incoming(surface=self.name, actor=self._actor(query.from_user),
                            kind=IncomingKind.TAP, payload=query.data or "", thread=thread,
                            place=place)
        reply = await self._inbox(incoming)
        text = reply.text if reply else ""
        try:
            await query.answer(text=text[:200] or None, show_alert=bool(reply and reply.alert))
        except TelegramError as e:
            log.info("answerCallbackQuery failed: %s", e)
        if reply is not None and reply.force_reply and message is not None:
            prompt = await self._say(message, f"{query.from_user.mention_html()}: {reply.text}",
                                     force_reply=True, html=True)
            if prompt is not None:  # a reply to it is the reason for this button, no other
                self._reason_prompts[(prompt.chat.id, prompt.message_id)] = query.data or ""
                while len(self._reason_prompts) > SEEN_UPDATES:
                    self._reason_prompts.popitem(last=False)

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        user = update.effective_user
        if message is None or user is None or self._inbox is None or user.is_bot:
            return
        files = files_of(message)
        text = message.text if message.text is not None else message.caption or ""
        if message.text is None and not files:
            return
        reply_to = None
        ours = False
        button = ""
        if message.reply_to_message is not None:
            reply_to = message_ref(message.chat.id, message.reply_to_message.message_id)
            author = message.reply_to_message.from_user
            ours = author is not None and author.id == context.bot.id
            button = self._reason_prompts.get(
                (message.chat.id, message.reply_to_message.message_id), "")
        kind = IncomingKind.COMMAND if text.startswith("/") else IncomingKind.TEXT
        if files:
            kind = IncomingKind.TEXT  # a caption is the prompt for the files, never a command
        elif button and kind is IncomingKind.TEXT:
            kind = IncomingKind.REASON  # the answer to "send the reason": it denies or is refused
        incoming = Incoming(surface=self.name, actor=self._actor(user), kind=kind,
                            text=text, thread=self._thread_of(message),
                            reply_to=reply_to, reply_to_ours=ours, place=str(message.chat.id),
                            payload="" if files else button, files=files)
        reply = await self._inbox(incoming)
        if reply is not None and reply.delete_message:
            try:  # it held a secret answer: it leaves the chat
                await self.app.bot.delete_message(message.chat.id, message.message_id)
            except TelegramError as e:
                log.warning("could not delete a secret answer in chat %s: %s", message.chat.id, e)
                reply = replace(reply, text=f"{reply.text} Delete your message: it holds a "
                                            f"secret and the bot could not delete it.")
        if reply is not None:
            await self._say(message, reply.text, buttons=reply.buttons)

    async def _say(self, to: Message, text: str, *, buttons: tuple[tuple[Any, ...], ...] = (),
                   force_reply: bool = False, html: bool = False) -> Message | None:
        kwargs: dict[str, Any] = {}
        if to.is_topic_message and to.message_thread_id is not None:
            kwargs["message_thread_id"] = to.message_thread_id
        markup: Any = keyboard(buttons)
        if force_reply:
            markup = ForceReply(selective=True)
        try:
            if self.throttle is not None:
                await self.throttle(thread_ref(to.chat.id))
            sent: Message = await self.app.bot.send_message(
                to.chat.id, text[: self.limits.text], reply_markup=markup,
                reply_parameters=ReplyParameters(to.message_id, allow_sending_without_reply=True),
                parse_mode="HTML" if html else None, **kwargs,
            )
            return sent
        except (TelegramError, SurfaceUnavailable) as e:
            log.warning("could not answer in chat %s: %s", to.chat.id, e)
            return None

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.warning("telegram update failed: %s", context.error)

