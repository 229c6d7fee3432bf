"""A fake Telegram Bot API server for end-to-end tests.

Theory of operation
-------------------
`FakeTelegram` is an aiohttp server on 127.0.0.1 with a random port. The real
python-telegram-bot talks to it over HTTP through ``base_url``/``base_file_url``; nothing is
mocked on the client side. Every request to ``/bot<token>/<method>`` goes through one
`_dispatch`, in this order:

1. parse the body (JSON, urlencoded or multipart, plus query args) and coerce the fields PTB
   sends as strings (JSON objects such as ``reply_markup``, ints, bools);
2. unreachable mode → 502 (or a dropped connection); a required token that does not match
   → 401; unknown method → 404; a failure queued by `fail_next` → that failure; a fault
   chosen by the `faults` hook (see `Fault`): 429, 500, a timeout, or a lost response (the
   call is carried out, but its answer never reaches the client);
3. rate limits (rolling windows, see `RateLimit`) → 429 with ``retry_after``, recorded in
   `violations`;
4. the method handler, which validates like Telegram (400 ``Bad Request: …``) and mutates the
   state (`messages`, `topics`, `documents`, …);
5. a successful call is counted in the rate windows; every call, failed or not, is appended
   to `calls` and wakes whoever waits (long polls, `wait_for`, `wait_until`).

Waiting uses a "changed" event that is swapped for a fresh one on every state change: the
sync-callable equivalent of ``asyncio.Condition.notify_all`` (the test API's `inject_*`
methods are synchronous). Every wait has a deadline.

Rate limits, as Telegram's FAQ states them and as this fake enforces them by default:

* ``group_limit``: 20 sends (sendMessage, sendDocument) per rolling 60 s in a chat with a
  negative id (group, supergroup), counted per chat;
* ``edit_limit``: 60 edits (editMessageText, editMessageReplyMarkup) per rolling 60 s per chat,
  any chat type; Telegram's real edit limit is undocumented, this one is deliberately generous;
* ``global_limit``: 30 chat-targeted calls (any call carrying ``chat_id``) per rolling 1 s;
* ``chat_limit``: sends per chat (any type); off by default because Telegram tolerates short
  bursts in private chats ("about one message per second").

A rolling window is stricter than PTB's ``AIORateLimiter`` (a leaky bucket that can admit up
to twice the count within one window under sustained load), on purpose.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from tests.fakes.changes import Changes

JSONDict = dict[str, Any]

BOT_ID = 999
BOT_USERNAME = "fake_bot"
FORUM_CHAT_ID = -100123
USER_ID = 4242
USER_USERNAME = "alice"

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_ANSWER_TEXT_LENGTH = 200
MAX_TOPIC_NAME_LENGTH = 128
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile: "file is too big" above this
TOPIC_ICON_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)
CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice",
        "upload_voice", "upload_document", "choose_sticker", "find_location",
        "record_video_note", "upload_video_note",
    }
)  # fmt: skip

# what an administrator may do, as getChatMember reports it (ChatMemberAdministrator)
_ADMIN_RIGHTS = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories",
    "can_edit_stories", "can_delete_stories", "can_pin_messages", "can_manage_topics",
)

SEND_METHODS = frozenset({"sendMessage", "sendDocument"})
EDIT_METHODS = frozenset({"editMessageText", "editMessageReplyMarkup"})
# each posts a service message in the chat ("… created the topic", "… changed the topic name")
TOPIC_METHODS = frozenset({"createForumTopic", "editForumTopic", "closeForumTopic",
                           "reopenForumTopic"})

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
THREAD_NOT_FOUND = "Bad Request: message thread not found"
BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)

# Fields PTB sends as JSON strings inside form bodies, and fields that are numbers or flags.
_JSON_FIELDS = frozenset(
    {
        "reply_markup", "reply_parameters", "entities", "caption_entities",
        "link_preview_options", "allowed_updates", "commands", "scope",
    }
)  # fmt: skip
_INT_FIELDS = frozenset(
    {
        "chat_id", "message_id", "message_thread_id", "reply_to_message_id", "offset",
        "limit", "timeout", "icon_color", "cache_time", "max_connections", "user_id",
    }
)  # fmt: skip
_BOOL_FIELDS = frozenset(
    {
        "disable_notification", "protect_content", "show_alert", "drop_pending_updates",
        "allow_sending_without_reply", "disable_web_page_preview",
        "disable_content_type_detection",
    }
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` accepted calls per rolling ``window`` seconds."""

    count: int
    window: float


@dataclass(frozen=True, slots=True)
class Upload:
    """A multipart file part as received."""

    filename: str | None
    content_type: str
    data: bytes


class Fault(StrEnum):
    """What the `faults` hook may do to a call (None: nothing)."""

    RATE_LIMITED = "429"  # 429 with ``retry_after`` = `fault_retry_after`; not carried out
    SERVER_ERROR = "500"  # not carried out
    REFUSED = "400"  # "Bad Request" (as for text Telegram cannot parse); not carried out
    TIMEOUT = "timeout"  # held past the client's timeout, not carried out
    LOST = "lost"  # carried out; the connection is closed before the answer is sent
    LATE = "late"  # carried out; the answer is held past the client's timeout, then dropped


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received, with its outcome (``status`` 200 means ok; ``lost``:
    carried out, but the client never got the answer)."""

    method: str
    params: JSONDict
    time: float
    token: str = ""
    status: int = 200
    result: Any = None
    description: str | None = None
    index: int = 0
    lost: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True, slots=True)
class RateLimitViolation:
    """A 429 the fake's own limits produced (never an injected one)."""

    method: str
    chat_id: int | None
    scope: str  # "global" | "group" | "edit" | "chat"
    retry_after: int
    time: float


@dataclass(frozen=True, slots=True)
class MessageVersion:
    """A former state of an edited message."""

    text: str | None
    entities: list[JSONDict]
    reply_markup: JSONDict | None
    time: float


@dataclass(slots=True)
class StoredMessage:
    """A message the bot sent, in its current state; ``history`` holds earlier versions."""

    chat_id: int
    message_id: int
    date: int
    thread_id: int | None = None
    text: str | None = None  # as Telegram shows it (HTML parsed away)
    entities: list[JSONDict] = field(default_factory=list)
    raw_text: str | None = None  # as the bot sent it
    parse_mode: str | None = None
    caption: str | None = None
    reply_markup: JSONDict | None = None  # inline keyboards only, as Telegram echoes them
    document_file_id: str | None = None
    reply_to_message_id: int | None = None
    edit_date: int | None = None
    history: list[MessageVersion] = field(default_factory=list)

    @property
    def buttons(self) -> list[JSONDict]:
        """The inline keyboard's buttons, row by row, flattened."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]


@dataclass(slots=True)
class StoredDocument:
    file_id: str
    file_unique_id: str
    file_name: str | None
    mime_type: str
    data: bytes
    file_path: str
    chat_id: int
    message_id: int


@dataclass(slots=True)
class Topic:
    chat_id: int
    thread_id: int
    name: str
    icon_color: int
    icon_custom_emoji_id: str | None = None
    closed: bool = False


@dataclass(slots=True)
class CallbackAnswer:
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    time: float


@dataclass(slots=True)
class FakeChat:
    id: int
    type: str  # "private" | "group" | "supergroup"
    title: str | None = None
    is_forum: bool = False
    username: str | None = None
    first_name: str | None = None

    def to_json(self) -> JSONDict:
        chat: JSONDict = {"id": self.id, "type": self.type}
        if self.type == "private":
            chat["first_name"] = self.first_name or f"User{self.id}"
        else:
            chat["title"] = self.title or f"Chat {self.id}"
        if self.username:
            chat["username"] = self.username
        if self.is_forum:
            chat["is_forum"] = True
        return chat


@dataclass(slots=True)
class _PendingQuery:
    chat_id: int
    message_id: int
    user_id: int
    data: str
    time: float
    answered: bool = False


class _ApiError(Exception):
    """A Bot API error response: ``{"ok": false, "error_code": status, ...}``."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------------------------
# parse_mode="HTML", strictly enough to reject what Telegram rejects (modelled on tdlib).

_HTML_ENTITY_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
    "del": "strikethrough", "tg-spoiler": "spoiler", "span": "spoiler", "a": "text_link",
    "code": "code", "pre": "pre", "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}  # fmt: skip
_HTML_ESCAPE = re.compile(
    r"&(?:#x([0-9a-fA-F]{1,6})|#([0-9]{1,7})|(lt|gt|amp|quot|apos)(?![A-Za-z]));?"
)
_HTML_ATTR = re.compile(r"""([^\s=>]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]*)""")


def parse_html(text: str) -> tuple[str, list[JSONDict]]:
    """Return Telegram's plain text and entities for ``text``, or raise a 400 like Telegram's."""

    def fail(what: str) -> _ApiError:
        return _bad(f"can't parse entities: {what}")

    def offset(i: int) -> int:
        return len(text[:i].encode())

    plain: list[str] = []
    utf16 = 0
    entities: list[JSONDict] = []
    stack: list[tuple[str, JSONDict, int]] = []  # (tag, attributes, utf16 start)
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "&" and (m := _HTML_ESCAPE.match(text, i)) and (decoded := _decode_escape(m)):
            plain.append(decoded)
            utf16 += _utf16_len(decoded)
            i = m.end()
            continue
        if char != "<":
            plain.append(char)
            utf16 += _utf16_len(char)
            i += 1
            continue
        begin = i
        if text.startswith("</", i):
            if not stack:
                raise fail(f"Unexpected end tag at byte offset {offset(begin)}")
            j = i + 2
            while j < n and not text[j].isspace() and text[j] != ">":
                j += 1
            name = text[i + 2 : j].lower()
            while j < n and text[j].isspace():
                j += 1
            if j >= n or text[j] != ">":
                raise fail(f"Unclosed end tag at byte offset {offset(begin)}")
            tag, attrs, start = stack.pop()
            if name and name != tag:
                raise fail(
                    f'Unmatched end tag at byte offset {offset(begin)}, expected "</{tag}>", '
                    f'found "</{name}>"'
                )
            if utf16 > start:
                entity = _html_entity(tag, attrs, start, utf16 - start, plain)
                inner = entities[-1] if entities else {}
                if tag == "pre" and inner.get("type") == "code" and _same_span(inner, entity):
                    # <pre><code class="language-x"> is one pre entity with a language.
                    entities.pop()
                    if "_language" in inner:
                        entity.setdefault("language", inner["_language"])
                entities.append(entity)
            i = j + 1
            continue
        j = i + 1
        while j < n and not text[j].isspace() and text[j] != ">":
            j += 1
        if j >= n:
            raise fail(f"Unclosed start tag at byte offset {offset(begin)}")
        name = text[i + 1 : j].lower()
        if name not in _HTML_ENTITY_TYPES:
            raise fail(f'Unsupported start tag "{name}" at byte offset {offset(begin)}')
        close = text.find(">", j)
        if close < 0:
            raise fail(f"Unclosed start tag at byte offset {offset(begin)}")
        declaration = text[j:close]
        attrs = {word.lower(): "" for word in _HTML_ATTR.sub(" ", declaration).split()}
        attrs.update(
            (key.lower(), html.unescape(value.strip("\"'")))
            for key, value in _HTML_ATTR.findall(declaration)
        )
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise fail(f'Tag "span" must have class "tg-spoiler" at byte offset {offset(begin)}')
        stack.append((name, attrs, utf16))
        i = close + 1
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    for entity in entities:
        entity.pop("_language", None)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(plain), entities


def _decode_escape(m: re.Match[str]) -> str | None:
    hex_code, dec_code, name = m.groups()
    if name:
        return {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}[name]
    code = int(hex_code, 16) if hex_code else int(dec_code)
    return chr(code) if 0 < code < 0x10FFFF and not 0xD800 <= code <= 0xDFFF else None


def _same_span(a: JSONDict, b: JSONDict) -> bool:
    return (a["offset"], a["length"]) == (b["offset"], b["length"])


def _html_entity(tag: str, attrs: JSONDict, start: int, length: int, plain: list[str]) -> JSONDict:
    entity: JSONDict = {"type": _HTML_ENTITY_TYPES[tag], "offset": start, "length": length}
    if tag == "a":
        entity["url"] = attrs.get("href") or "".join(plain)[-length:]
    elif tag == "code" and attrs.get("class", "").startswith("language-"):
        entity["_language"] = attrs["class"].removeprefix("language-")
    elif tag == "tg-emoji":
        entity["custom_emoji_id"] = attrs.get("emoji-id", "")
    elif tag == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    return entity


# ---------------------------------------------------------------------------------------------
# The server


class FakeTelegram:
    """A Telegram Bot API on 127.0.0.1 that records every call and enforces the real limits.

    Defaults: a forum supergroup `FORUM_CHAT_ID` (-100123) and a private chat with the user
    `USER_ID` (4242, @alice); the bot is `BOT_ID` (999, @fake_bot). Any token is accepted
    (and recorded in `tokens`) unless ``token`` is given, then others get 401.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        enforce_limits: bool = True,
        group_limit: RateLimit | None = RateLimit(20, 60.0),
        edit_limit: RateLimit | None = RateLimit(60, 60.0),
        global_limit: RateLimit | None = RateLimit(30, 1.0),
        chat_limit: RateLimit | None = None,
        shared_budget: bool = False,
        callback_query_ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enforce_limits = enforce_limits
        self.limits: dict[str, RateLimit | None] = {
            "global": global_limit,
            "group": group_limit,
            "edit": edit_limit,
            "chat": chat_limit,
        }
        # True: edits and topic changes count against the chat and group limits together with
        # sends (as Telegram's developers describe it; tdlib/td#2592, #3034), not apart
        self.shared_budget = shared_budget
        self.callback_query_ttl = callback_query_ttl
        self._required_token = token
        self._clock = clock

        self.bot_user: JSONDict = {
            "id": BOT_ID, "is_bot": True, "first_name": "Fake Bot", "username": BOT_USERNAME,
            "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False, "can_connect_to_business": False,
            "has_main_web_app": False,
        }  # fmt: skip
        self.user_id = USER_ID
        self.private_chat_id = USER_ID
        self.forum_chat_id = FORUM_CHAT_ID

        self.calls: list[Call] = []
        self.tokens: set[str] = set()
        self.violations: list[RateLimitViolation] = []
        self.chats: dict[int, FakeChat] = {}
        self.users: dict[int, JSONDict] = {}
        self.messages: dict[tuple[int, int], StoredMessage] = {}
        self.user_messages: dict[tuple[int, int], JSONDict] = {}
        self.documents: dict[str, StoredDocument] = {}
        self.topics: dict[int, Topic] = {}
        self.callback_answers: dict[str, CallbackAnswer] = {}
        self.commands_by_scope: dict[tuple[str, str], list[JSONDict]] = {}
        self.chat_actions: list[tuple[int, str, int | None]] = []
        self.pinned: dict[int, list[int]] = {}
        self.webhook: JSONDict | None = None
        # (chat id, user id) → ChatMember JSON without "user" (see `set_member`)
        self.members: dict[tuple[int, int], JSONDict] = {}

        self._updates: list[JSONDict] = []
        self._allowed_updates: list[str] | None = None
        self._update_ids = itertools.count(1)
        # Ids start above 1: thread id 1 is the General topic, which bots must not name.
        self._message_ids = itertools.count(2)
        self._file_ids = itertools.count(1)
        self._query_ids = itertools.count(7_000_000_001)
        self._queries: dict[str, _PendingQuery] = {}
        self._windows: dict[tuple[str, int | None], deque[float]] = {}
        self._injected: dict[str, deque[_ApiError]] = {}
        self._unreachable: str | None = None  # None | "502" | "close"
        # called for every call but getUpdates: which fault to inject, if any
        self.faults: Callable[[str, JSONDict], Fault | None] | None = None
        self.fault_retry_after = 1
        self.fault_hold = 6.0  # seconds a TIMEOUT or LATE call is held (PTB waits 5)
        self._poll_generation = 0
        self.waiting_polls = 0  # getUpdates requests currently held open
        self._closing = False
        self.changes = Changes()
        self._runner: web.AppRunner | None = None
        self.port = 0

        self.add_user(USER_ID, username=USER_USERNAME, first_name="Alice")
        self.add_chat(FORUM_CHAT_ID, "supergroup", is_forum=True, title="Agent Bridge")
        self.add_chat(USER_ID, "private", username=USER_USERNAME, first_name="Alice")
        # the bridge's forum: Alice made it, the bot is an admin that may do what it needs
        self.set_member(FORUM_CHAT_ID, USER_ID, "creator")
        self.set_member(FORUM_CHAT_ID, BOT_ID, "administrator")

        self._handlers: dict[str, Callable[[JSONDict], Any]] = {
            "getMe": lambda _p: self.bot_user,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendDocument": self._send_document,
            "getFile": self._get_file,
            "createForumTopic": self._create_forum_topic,
            "editForumTopic": self._edit_forum_topic,
            "closeForumTopic": lambda p: self._set_topic_closed(p, closed=True),
            "reopenForumTopic": lambda p: self._set_topic_closed(p, closed=False),
            "deleteForumTopic": self._delete_forum_topic,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendChatAction": self._send_chat_action,
            "pinChatMessage": self._pin_chat_message,
        }
        # Telegram matches method names case-insensitively.
        self._canonical = {name.lower(): name for name in [*self._handlers, "getUpdates"]}

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Wake every waiting long poll (it returns no updates) and shut the server down."""
        self._closing = True
        self.changes.wake()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- test API: world ------------------------------------------------------------------------

    def add_chat(
        self,
        chat_id: int,
        type: str = "supergroup",
        *,
        is_forum: bool = False,
        title: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
    ) -> FakeChat:
        if type not in ("private", "group", "supergroup"):
            raise ValueError(f"unsupported chat type {type!r}")
        chat = FakeChat(chat_id, type, title, is_forum, username, first_name)
        self.chats[chat_id] = chat
        return chat

    def add_user(
        self, user_id: int, *, username: str | None = None, first_name: str | None = None
    ) -> JSONDict:
        user: JSONDict = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name or f"User{user_id}",
            "language_code": "en",
        }
        if username:
            user["username"] = username
        self.users[user_id] = user
        return user

    def set_member(self, chat_id: int, user_id: int, status: str, **rights: bool) -> JSONDict:
        """`user_id`'s membership of `chat_id`, as getChatMember reports it. An
        ``administrator`` has every right unless `rights` turns some off
        (``can_manage_topics=False``); anyone not set is a plain ``member`` of a group (the bot
        added without admin rights), ``left`` elsewhere."""
        if status not in ("creator", "administrator", "member", "restricted", "left", "kicked"):
            raise ValueError(f"unsupported status {status!r}")
        member: JSONDict = {"status": status}
        if status == "creator":
            member["is_anonymous"] = False
        if status == "administrator":
            member.update({"can_be_edited": False, "is_anonymous": False,
                           **dict.fromkeys(_ADMIN_RIGHTS, True)})
            unknown = set(rights) - set(_ADMIN_RIGHTS)
            if unknown:
                raise ValueError(f"unknown rights {sorted(unknown)}")
            member.update(rights)
        self.members[(chat_id, user_id)] = member
        return member

    def set_unreachable(self, unreachable: bool = True, *, close_connection: bool = False) -> None:
        """While set, every request fails: 502 from a "proxy", or the connection is dropped."""
        self._unreachable = ("close" if close_connection else "502") if unreachable else None
        self.changes.wake()

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int = 1,
        description: str | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``status``."""
        if description is None:
            description = {
                429: f"Too Many Requests: retry after {retry_after}",
                400: "Bad Request: injected failure",
                403: "Forbidden: bot was blocked by the user",
                409: "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            }.get(status, "Internal Server Error")
        parameters = {"retry_after": retry_after} if status == 429 else None
        queue = self._injected.setdefault(self._canonical.get(method.lower(), method), deque())
        queue.extend(_ApiError(status, description, parameters) for _ in range(times))

    # -- test API: users acting -----------------------------------------------------------------

    def inject_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        username: str | None = None,
    ) -> JSONDict:
        """Queue an Update with a user's text message and return it."""
        message = self._user_message(chat_id, user_id, thread_id, reply_to_message_id, username)
        message["text"] = text
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
            ]
        self.user_messages[(chat_id, message["message_id"])] = message
        return self._queue_update({"message": message})

    def inject_file(
        self,
        chat_id: int,
        user_id: int,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        caption: str | None = None,
        thread_id: int | None = None,
        username: str | None = None,
    ) -> JSONDict:
        """Queue an Update with a user's photo, document or voice note (`kind`), whose bytes
        getFile and the download route then serve, as Telegram does: a photo comes as
        several sizes (a thumbnail first, the original last), without name or type; a
        document with its name and type; a voice note as OGG/Opus with a duration."""
        if kind not in ("photo", "document", "voice"):
            raise ValueError(f"no such kind of file: {kind}")
        if caption is not None and len(caption) > MAX_CAPTION_LENGTH:
            raise ValueError("caption too long")
        message = self._user_message(chat_id, user_id, thread_id, None, username)
        if kind == "photo":
            thumb = self._keep_file(chat_id, message, data[:64] or b"\x00", "image/jpeg",
                                    None, "photos", ".jpg")
            full = self._keep_file(chat_id, message, data, "image/jpeg", None, "photos", ".jpg")
            message["photo"] = [
                {**_file_json(thumb), "width": 90, "height": 51},
                {**_file_json(full), "width": 1280, "height": 720},
            ]
        elif kind == "document":
            document = self._keep_file(chat_id, message, data,
                                       mime_type or "application/octet-stream", file_name,
                                       "documents", "")
            message["document"] = _document_json(document)
        else:
            voice = self._keep_file(chat_id, message, data, mime_type or "audio/ogg", None,
                                    "voice", ".oga")
            message["voice"] = {**_file_json(voice), "duration": 3,
                                "mime_type": voice.mime_type}
        if caption:
            message["caption"] = caption
        self.user_messages[(chat_id, message["message_id"])] = message
        return self._queue_update({"message": message})

    def _keep_file(self, chat_id: int, message: JSONDict, data: bytes, mime_type: str,
                   file_name: str | None, folder: str, suffix: str) -> StoredDocument:
        number = next(self._file_ids)
        file_id = f"AgACAgFake{number:06d}"
        stored = StoredDocument(
            file_id=file_id, file_unique_id=f"AQAD{file_id[-6:]}", file_name=file_name,
            mime_type=mime_type, data=data, file_path=f"{folder}/file_{number}{suffix}",
            chat_id=chat_id, message_id=message["message_id"])
        self.documents[file_id] = stored
        return stored

    def _user_message(self, chat_id: int, user_id: int, thread_id: int | None,
                      reply_to_message_id: int | None, username: str | None) -> JSONDict:
        chat = self._known_chat(chat_id)
        user = dict(self.users.get(user_id) or self.add_user(user_id, username=username))
        if username:
            user["username"] = username
        message: JSONDict = {
            "message_id": next(self._message_ids),
            "from": user,
            "chat": chat.to_json(),
            "date": int(time.time()),
        }
        if thread_id is not None:
            if self._topic(chat_id, thread_id) is None:
                raise ValueError(f"no topic {thread_id} in chat {chat_id}")
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if reply_to_message_id is not None:
            replied = self._message_json_by_id(chat_id, reply_to_message_id)
            if replied is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat_id}")
            message["reply_to_message"] = replied
        return message

    def forward_message(self, chat_id: int, message_id: int, to_chat_id: int) -> StoredMessage:
        """A person forwards a bot message to another chat: the copy keeps its inline
        keyboard, and a tap on it arrives with the chat it was forwarded to."""
        stored = self.messages.get((chat_id, message_id))
        if stored is None:
            raise ValueError(f"no bot message {message_id} in chat {chat_id}")
        self._known_chat(to_chat_id)
        copy = StoredMessage(chat_id=to_chat_id, message_id=next(self._message_ids),
                             date=int(time.time()), text=stored.text,
                             entities=list(stored.entities), reply_markup=stored.reply_markup)
        self.messages[(to_chat_id, copy.message_id)] = copy
        self.changes.wake()
        return copy

    def inject_callback(
        self,
        message_id: int,
        chat_id: int,
        user_id: int,
        data: str,
        *,
        require_button: bool = True,
    ) -> str:
        """Queue a tap on a button of a bot message; return the callback query id.

        With ``require_button=False`` the data need not be on the message's keyboard: that is
        a stale keyboard or a forged query (clients other than the official ones can do it).
        """
        stored = self.messages.get((chat_id, message_id))
        if stored is None:
            raise ValueError(f"no bot message {message_id} in chat {chat_id}")
        if require_button and data not in stored.callback_data:
            raise ValueError(f"{data!r} is not on message {message_id}: {stored.callback_data}")
        user = self.users.get(user_id) or self.add_user(user_id)
        query_id = str(next(self._query_ids))
        self._queries[query_id] = _PendingQuery(chat_id, message_id, user_id, data, self._clock())
        self._queue_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "message": self._message_json(stored),
                    "chat_instance": str(abs(chat_id) * 7 + 3),
                    "data": data,
                }
            }
        )
        return query_id

    # -- test API: observing --------------------------------------------------------------------

    @property
    def rate_limited(self) -> bool:
        """Whether the fake's own limits ever answered 429 (injected 429s do not count)."""
        return bool(self.violations)

    @property
    def commands(self) -> list[JSONDict]:
        """The commands set for the default scope and no language."""
        return self.commands_by_scope.get(("default", ""), [])

    @property
    def pending_updates(self) -> list[JSONDict]:
        return list(self._updates)

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def messages_in(self, chat_id: int, thread_id: int | None = None) -> list[StoredMessage]:
        """Bot messages in a chat (in one topic if ``thread_id``), oldest first."""
        return [
            m
            for (cid, _), m in sorted(self.messages.items())
            if cid == chat_id and (thread_id is None or m.thread_id == thread_id)
        ]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
        *,
        ok: bool | None = True,
        since: int = 0,
    ) -> Call:
        """The first recorded call (from index ``since``) of ``method`` matching ``predicate``.

        By default only successful calls match (``ok=None``: any, ``ok=False``: failed ones).
        Raises AssertionError, listing the recent calls, when none arrives in ``timeout`` s.
        """

        def find() -> Call | None:
            for call in self.calls[since:]:
                if call.method != method or (ok is not None and call.ok != ok):
                    continue
                if predicate is None or predicate(call):
                    return call
            return None

        found = await self.changes.wait(find, timeout)
        if found is None:
            raise AssertionError(
                f"no {'successful ' if ok else ''}{method} call matching the predicate within "
                f"{timeout} s; recent calls:\n{self.describe_calls()}"
            )
        return found

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``condition()`` holds (re-checked after every call and injection)."""
        if await self.changes.wait(lambda: True if condition() else None, timeout) is None:
            raise AssertionError(
                f"condition not met within {timeout} s; recent calls:\n{self.describe_calls()}"
            )

    def describe_calls(self, last: int = 20) -> str:
        lines = []
        for call in self.calls[-last:]:
            params = {k: v for k, v in call.params.items() if k != "document"}
            summary = json.dumps(params, default=str, ensure_ascii=False)
            outcome = "ok" if call.ok else f"{call.status} {call.description}"
            lines.append(f"  #{call.index} {call.method} {summary[:200]} -> {outcome}")
        return "\n".join(lines) or "  (none)"

    # -- HTTP -----------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        raw_method = request.match_info["method"]
        method = self._canonical.get(raw_method.lower(), raw_method)
        self.tokens.add(token)
        params: JSONDict = {}
        fault: Fault | None = None
        try:
            params = await self._read_params(request)
            if self.faults is not None and method != "getUpdates":
                fault = self.faults(method, params)
            if fault is Fault.RATE_LIMITED:
                raise _ApiError(429, f"Too Many Requests: retry after {self.fault_retry_after}",
                                {"retry_after": self.fault_retry_after})
            if fault is Fault.SERVER_ERROR:
                raise _ApiError(500, "Internal Server Error")
            if fault is Fault.REFUSED:
                raise _ApiError(400, "Bad Request: can't parse entities (injected)")
            if fault is Fault.TIMEOUT:
                self._record(method, params, token, 504, None, "timed out (injected)")
                return await self._drop(request)
            result = await self._dispatch(token, method, params)
        except _ApiError as error:
            self._record(method, params, token, error.status, None, error.description)
            if error.status == 502 and self._unreachable == "close" and request.transport:
                request.transport.close()
            if error.status == 502:
                return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")
            body: JSONDict = {
                "ok": False,
                "error_code": error.status,
                "description": error.description,
            }
            if error.parameters:
                body["parameters"] = error.parameters
            return web.json_response(body, status=error.status)
        lost = fault in (Fault.LOST, Fault.LATE)
        self._record(method, params, token, 200, result, None, lost=lost)
        if lost:
            return await self._drop(request, hold=fault is Fault.LATE)
        return web.json_response({"ok": True, "result": result})

    async def _drop(self, request: web.Request, *, hold: bool = True) -> web.StreamResponse:
        """Close the connection without an answer (after `fault_hold` seconds)."""
        if hold:
            await asyncio.sleep(self.fault_hold)
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=504)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if self._unreachable:
            return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")
        path = request.match_info["path"]
        for document in self.documents.values():
            if document.file_path == path:
                return web.Response(body=document.data, content_type=document.mime_type)
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    async def _read_params(self, request: web.Request) -> JSONDict:
        raw: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.text()
            if body:
                try:
                    decoded = json.loads(body)
                except ValueError as e:
                    raise _bad("can't parse JSON encoded request body") from e
                if not isinstance(decoded, dict):
                    raise _bad("request body must be a JSON object")
                raw.update(decoded)
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    raw[key] = Upload(value.filename, value.content_type, value.file.read())
                else:
                    raw[key] = value
        return {key: _coerce(key, value) for key, value in raw.items()}

    def _record(
        self,
        method: str,
        params: JSONDict,
        token: str,
        status: int,
        result: Any,
        description: str | None,
        *,
        lost: bool = False,
    ) -> None:
        index = len(self.calls)
        self.calls.append(
            Call(method, params, self._clock(), token, status, result, description, index, lost)
        )
        self.changes.wake()

    async def _dispatch(self, token: str, method: str, params: JSONDict) -> Any:
        if self._unreachable:
            raise _ApiError(502, "Bad Gateway")
        if self._required_token is not None and token != self._required_token:
            raise _ApiError(401, "Unauthorized")
        if method != "getUpdates" and method not in self._handlers:
            raise _ApiError(404, "Not Found")
        if queue := self._injected.get(method):
            raise queue.popleft()
        keys = self._rate_keys(method, params) if self.enforce_limits else []
        self._check_rate_limits(method, params, keys)
        if method == "getUpdates":
            return await self._get_updates(params)
        result = self._handlers[method](params)
        now = self._clock()
        for key in keys:
            self._windows.setdefault(key, deque()).append(now)
        return result

    # -- rate limits ----------------------------------------------------------------------------

    def _rate_keys(self, method: str, params: JSONDict) -> list[tuple[str, int | None]]:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            return []
        keys: list[tuple[str, int | None]] = [("global", None)]
        shared = self.shared_budget and (method in EDIT_METHODS or method in TOPIC_METHODS)
        if method in SEND_METHODS or shared:
            keys.append(("chat", chat_id))
            if chat_id < 0:
                keys.append(("group", chat_id))
        elif method in EDIT_METHODS:
            keys.append(("edit", chat_id))
        return [key for key in keys if self.limits[key[0]] is not None]

    def _check_rate_limits(
        self, method: str, params: JSONDict, keys: list[tuple[str, int | None]]
    ) -> None:
        now = self._clock()
        for scope, chat_id in keys:
            limit = self.limits[scope]
            assert limit is not None
            window = self._windows.setdefault((scope, chat_id), deque())
            while window and window[0] <= now - limit.window:
                window.popleft()
            if len(window) >= limit.count:
                retry_after = max(1, math.ceil(window[0] + limit.window - now))
                self.violations.append(
                    RateLimitViolation(method, params.get("chat_id"), scope, retry_after, now)
                )
                raise _ApiError(
                    429,
                    f"Too Many Requests: retry after {retry_after}",
                    {"retry_after": retry_after},
                )

    # -- updates --------------------------------------------------------------------------------

    def _queue_update(self, payload: JSONDict) -> JSONDict:
        update = {"update_id": next(self._update_ids), **payload}
        self._updates.append(update)
        self.changes.wake()
        return update

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        if self.webhook is not None:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset")
        if isinstance(offset, int) and offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif isinstance(offset, int) and offset < 0:
            self._updates = self._updates[offset:]
        if "allowed_updates" in params:
            self._allowed_updates = params["allowed_updates"] or None
        limit = min(max(int(params.get("limit", 100)), 1), 100)
        timeout = max(int(params.get("timeout", 0)), 0)
        self._poll_generation += 1
        generation = self._poll_generation
        self.waiting_polls += 1
        self.changes.wake()

        def ready() -> list[JSONDict] | None:
            if generation != self._poll_generation:
                raise _ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            if self._unreachable:
                raise _ApiError(502, "Bad Gateway")
            batch = [u for u in self._updates if self._allowed(u)][:limit]
            return batch if batch or self._closing else None

        try:
            return await self.changes.wait(ready, timeout) or []
        finally:
            self.waiting_polls -= 1
            self.changes.wake()

    def _allowed(self, update: JSONDict) -> bool:
        if self._allowed_updates is None:
            return True
        return any(kind in update for kind in self._allowed_updates)

    # -- waiting --------------------------------------------------------------------------------

    # -- chats, topics, messages ----------------------------------------------------------------

    def _known_chat(self, chat_id: Any) -> FakeChat:
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise ValueError(f"unknown chat {chat_id!r}; add_chat() it first")
        return chat

    def _chat(self, params: JSONDict) -> FakeChat:
        if "chat_id" not in params:
            raise _bad("chat_id is empty")
        chat_id = params["chat_id"]
        chat = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _topic(self, chat_id: int, thread_id: int) -> Topic | None:
        topic = self.topics.get(thread_id)
        return topic if topic is not None and topic.chat_id == chat_id else None

    def _thread(self, chat: FakeChat, params: JSONDict) -> int | None:
        thread_id = params.get("message_thread_id")
        if thread_id is None:
            return None
        if not chat.is_forum or self._topic(chat.id, thread_id) is None:
            raise _ApiError(400, THREAD_NOT_FOUND)
        return int(thread_id)

    def _message_json_by_id(self, chat_id: int, message_id: int) -> JSONDict | None:
        if (stored := self.messages.get((chat_id, message_id))) is not None:
            return self._message_json(stored, nested=False)
        return self.user_messages.get((chat_id, message_id))

    def _message_json(self, stored: StoredMessage, *, nested: bool = True) -> JSONDict:
        message: JSONDict = {
            "message_id": stored.message_id,
            "from": {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")},
            "chat": self.chats[stored.chat_id].to_json(),
            "date": stored.date,
        }
        if stored.thread_id is not None:
            message["message_thread_id"] = stored.thread_id
            message["is_topic_message"] = True
        if stored.text is not None:
            message["text"] = stored.text
            if stored.entities:
                message["entities"] = stored.entities
        if stored.document_file_id is not None:
            document = self.documents[stored.document_file_id]
            message["document"] = _document_json(document)
            if stored.caption is not None:
                message["caption"] = stored.caption
        if stored.reply_markup is not None:
            message["reply_markup"] = stored.reply_markup
        if stored.edit_date is not None:
            message["edit_date"] = stored.edit_date
        if nested and stored.reply_to_message_id is not None:
            replied = self._message_json_by_id(stored.chat_id, stored.reply_to_message_id)
            if replied is not None:
                message["reply_to_message"] = replied
        return message

    def _reply_to(self, chat: FakeChat, params: JSONDict) -> int | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            message_id, allow = reply.get("message_id"), reply.get("allow_sending_without_reply")
        else:
            message_id = params.get("reply_to_message_id")
            allow = params.get("allow_sending_without_reply")
        if message_id is None:
            return None
        if self._message_json_by_id(chat.id, int(message_id)) is None:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return int(message_id)

    def _store(self, chat: FakeChat, params: JSONDict, **fields: Any) -> StoredMessage:
        stored = StoredMessage(
            chat_id=chat.id,
            message_id=next(self._message_ids),
            date=int(time.time()),
            thread_id=self._thread(chat, params),
            reply_to_message_id=self._reply_to(chat, params),
            reply_markup=_inline_markup(params.get("reply_markup")),
            **fields,
        )
        self.messages[(chat.id, stored.message_id)] = stored
        return stored

    def _message_key(self, params: JSONDict) -> tuple[int, int]:
        chat = self._chat(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise _bad("message identifier is not specified")
        return chat.id, message_id

    def _editable(self, params: JSONDict) -> StoredMessage:
        if "inline_message_id" in params:
            raise _bad("inline messages are not supported by this fake")
        key = self._message_key(params)
        if key in self.user_messages:
            raise _bad("message can't be edited")
        stored = self.messages.get(key)
        if stored is None:
            raise _bad("message to edit not found")
        return stored

    def _apply_edit(
        self, stored: StoredMessage, text: str | None, entities: list[JSONDict], markup: Any
    ) -> JSONDict:
        if text == stored.text and entities == stored.entities and markup == stored.reply_markup:
            raise _ApiError(400, NOT_MODIFIED)
        stored.history.append(
            MessageVersion(stored.text, stored.entities, stored.reply_markup, self._clock())
        )
        stored.text, stored.entities, stored.reply_markup = text, entities, markup
        stored.edit_date = int(time.time())
        return self._message_json(stored)

    # -- methods --------------------------------------------------------------------------------

    def _delete_webhook(self, params: JSONDict) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _set_webhook(self, params: JSONDict) -> bool:
        url = params.get("url") or ""
        if not url:
            self.webhook = None
            return True
        if not str(url).startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = dict(params)
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _get_chat(self, params: JSONDict) -> JSONDict:
        """A ChatFullInfo, with the fields Bot API 9 always sends."""
        chat = self._chat(params)
        return {**chat.to_json(), "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                        "unique_gifts": False,
                                        "premium_subscription": False,
                                        "gifts_from_channels": False}}

    def _get_chat_member(self, params: JSONDict) -> JSONDict:
        chat = self._chat(params)
        user_id = params.get("user_id")
        if not isinstance(user_id, int):
            raise _bad("user_id is empty" if user_id is None else "invalid user_id specified")
        if user_id == BOT_ID:
            user = {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
        elif user_id in self.users:
            user = self.users[user_id]
        else:
            raise _bad("user not found")
        member = self.members.get((chat.id, user_id))
        if member is None:
            if chat.type == "private":
                member = {"status": "member"} if user_id in (chat.id, BOT_ID) else None
            else:
                member = {"status": "member"}
            if member is None:
                raise _bad("member not found")
        return {**member, "user": user}

    def _get_webhook_info(self, _params: JSONDict) -> JSONDict:
        url = (self.webhook or {}).get("url", "")
        return {"url": url, "has_custom_certificate": False, "pending_update_count": 0}

    def _send_message(self, params: JSONDict) -> JSONDict:
        chat = self._chat(params)
        text, entities = _message_text(params, "text", MAX_TEXT_LENGTH, "message is too long")
        stored = self._store(
            chat,
            params,
            text=text,
            entities=entities,
            raw_text=params.get("text"),
            parse_mode=params.get("parse_mode"),
        )
        return self._message_json(stored)

    def _edit_message_text(self, params: JSONDict) -> JSONDict:
        stored = self._editable(params)
        if stored.text is None:
            raise _bad("there is no text in the message to edit")
        text, entities = _message_text(params, "text", MAX_TEXT_LENGTH, "MESSAGE_TOO_LONG")
        markup = _inline_markup(params.get("reply_markup"))
        result = self._apply_edit(stored, text, entities, markup)
        stored.raw_text, stored.parse_mode = params.get("text"), params.get("parse_mode")
        return result

    def _edit_message_reply_markup(self, params: JSONDict) -> JSONDict:
        stored = self._editable(params)
        markup = _inline_markup(params.get("reply_markup"))
        return self._apply_edit(stored, stored.text, stored.entities, markup)

    def _delete_message(self, params: JSONDict) -> bool:
        key = self._message_key(params)
        if self.messages.pop(key, None) is None and self.user_messages.pop(key, None) is None:
            raise _bad("message to delete not found")
        return True

    def _answer_callback_query(self, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        query = self._queries.get(query_id)
        too_old = (
            query is not None
            and self.callback_query_ttl is not None
            and self._clock() - query.time > self.callback_query_ttl
        )
        if query is None or query.answered or too_old:
            raise _ApiError(400, QUERY_TOO_OLD)
        text = params.get("text")
        if text is not None and len(str(text)) > MAX_ANSWER_TEXT_LENGTH:
            raise _bad("MESSAGE_TOO_LONG")
        query.answered = True
        self.callback_answers[query_id] = CallbackAnswer(
            text=text,
            show_alert=bool(params.get("show_alert", False)),
            url=params.get("url"),
            cache_time=params.get("cache_time"),
            time=self._clock(),
        )
        return True

    def _send_document(self, params: JSONDict) -> JSONDict:
        chat = self._chat(params)
        document = params.get("document")
        if isinstance(document, str) and document in self.documents:
            file_id = document
        elif isinstance(document, Upload):
            if not document.data:
                raise _bad("file must be non-empty")
            if len(document.data) > MAX_UPLOAD_BYTES:
                raise _ApiError(413, "Request Entity Too Large")
            number = next(self._file_ids)
            file_id = f"BQACAgFake{number:06d}"
            _, dot, suffix = (document.filename or "").rpartition(".")
            self.documents[file_id] = StoredDocument(
                file_id=file_id,
                file_unique_id=f"AgAD{file_id[-6:]}",
                file_name=document.filename,
                mime_type=document.content_type or "application/octet-stream",
                data=document.data,
                file_path=f"documents/file_{number}{dot}{suffix if dot else ''}",
                chat_id=chat.id,
                message_id=0,
            )
        elif document is None:
            raise _bad("there is no document in the request")
        else:
            raise _bad("wrong file identifier/HTTP URL specified")
        caption: str | None = None
        if params.get("caption"):
            caption, _ = _message_text(
                params, "caption", MAX_CAPTION_LENGTH, "message caption is too long"
            )
        stored = self._store(chat, params, caption=caption, document_file_id=file_id)
        if not self.documents[file_id].message_id:
            self.documents[file_id].message_id = stored.message_id
        return self._message_json(stored)

    def _get_file(self, params: JSONDict) -> JSONDict:
        document = self.documents.get(str(params.get("file_id", "")))
        if document is None:
            raise _bad("invalid file_id")
        if len(document.data) > MAX_DOWNLOAD_BYTES:  # the Bot API serves bots up to 20 MB
            raise _bad("file is too big")
        return {**_file_json(document), "file_path": document.file_path}

    def _create_forum_topic(self, params: JSONDict) -> JSONDict:
        chat = self._chat(params)
        if not chat.is_forum:
            raise _bad("the chat is not a forum")
        name = str(params.get("name", ""))
        if not 1 <= len(name) <= MAX_TOPIC_NAME_LENGTH:
            raise _bad("TOPIC_NAME_INVALID")
        icon_color = int(params.get("icon_color", TOPIC_ICON_COLORS[0]))
        if icon_color not in TOPIC_ICON_COLORS:
            raise _bad("TOPIC_ICON_COLOR_INVALID")
        # As in Telegram, a topic's id is the id of its "topic created" service message.
        thread_id = next(self._message_ids)
        topic = Topic(chat.id, thread_id, name, icon_color, params.get("icon_custom_emoji_id"))
        self.topics[thread_id] = topic
        return _topic_json(topic)

    def _existing_topic(self, params: JSONDict) -> Topic:
        chat = self._chat(params)
        if not chat.is_forum:
            raise _bad("the chat is not a forum")
        topic = self._topic(chat.id, params.get("message_thread_id", 0))
        if topic is None:
            raise _ApiError(400, THREAD_NOT_FOUND)
        return topic

    def _edit_forum_topic(self, params: JSONDict) -> bool:
        topic = self._existing_topic(params)
        name = params.get("name", topic.name)
        emoji = params.get("icon_custom_emoji_id", topic.icon_custom_emoji_id)
        if not 1 <= len(str(name)) <= MAX_TOPIC_NAME_LENGTH:
            raise _bad("TOPIC_NAME_INVALID")
        if (name, emoji) == (topic.name, topic.icon_custom_emoji_id):
            raise _bad("TOPIC_NOT_MODIFIED")
        topic.name, topic.icon_custom_emoji_id = str(name), emoji
        return True

    def _set_topic_closed(self, params: JSONDict, *, closed: bool) -> bool:
        topic = self._existing_topic(params)
        if topic.closed == closed:
            raise _bad("TOPIC_NOT_MODIFIED")
        topic.closed = closed
        return True

    def _delete_forum_topic(self, params: JSONDict) -> bool:
        topic = self._existing_topic(params)
        del self.topics[topic.thread_id]
        for key in [k for k, m in self.messages.items() if m.thread_id == topic.thread_id]:
            del self.messages[key]
        return True

    def _commands_key(self, params: JSONDict) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        scope_key = json.dumps(scope, sort_keys=True) if len(scope) > 1 else scope["type"]
        return scope_key, str(params.get("language_code") or "")

    def _set_my_commands(self, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("command description must be non-empty")
        self.commands_by_scope[self._commands_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    def _get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        return self.commands_by_scope.get(self._commands_key(params), [])

    def _delete_my_commands(self, params: JSONDict) -> bool:
        self.commands_by_scope.pop(self._commands_key(params), None)
        return True

    def _send_chat_action(self, params: JSONDict) -> bool:
        chat = self._chat(params)
        action = params.get("action")
        if action not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self.chat_actions.append((chat.id, str(action), self._thread(chat, params)))
        return True

    def _pin_chat_message(self, params: JSONDict) -> bool:
        chat = self._chat(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int) or self._message_json_by_id(chat.id, message_id) is None:
            raise _bad("message to pin not found")
        self.pinned.setdefault(chat.id, []).append(message_id)
        return True


# ---------------------------------------------------------------------------------------------
# Helpers


def _coerce(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError as e:
            if key == "reply_markup":
                raise _bad("can't parse reply keyboard markup JSON object") from e
            raise _bad(f"can't parse {key} JSON object") from e
    if key in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value  # e.g. "@channelusername"; the method decides
    if key in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


def _message_text(
    params: JSONDict, key: str, limit: int, too_long: str
) -> tuple[str, list[JSONDict]]:
    raw = params.get(key)
    if raw is None or raw == "":
        raise _bad("message text is empty")
    raw = str(raw)
    if str(params.get("parse_mode") or "").upper() == "HTML":
        text, entities = parse_html(raw)
    else:  # Markdown modes are passed through unparsed; explicit entities are kept as sent
        text = raw
        entities = list(params.get("entities" if key == "text" else "caption_entities") or [])
    if not text.strip():
        raise _bad("message text is empty")
    if len(text) > limit:
        raise _bad(too_long)
    return text, entities


def _inline_markup(markup: Any) -> JSONDict | None:
    """Validate a reply_markup; return it if it is an inline keyboard (Telegram echoes those)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('can\'t parse inline keyboard button: field "inline_keyboard" must be an Array')
    actions = ("callback_data", "url", "switch_inline_query", "switch_inline_query_current_chat",
               "login_url", "web_app", "pay", "copy_text", "callback_game")  # fmt: skip
    for button in _flatten(rows):
        if not isinstance(button, dict) or not str(button.get("text", "")):
            raise _bad("can't parse inline keyboard button: Text must be non-empty")
        if not any(action in button for action in actions):
            raise _bad(
                "can't parse inline keyboard button: Text buttons are unallowed in the inline "
                "keyboard"
            )
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise _bad("BUTTON_DATA_INVALID")
    return {"inline_keyboard": rows}


def _flatten(rows: Iterable[list[Any]]) -> list[Any]:
    return [button for row in rows for button in row]


def _file_json(document: StoredDocument) -> JSONDict:
    """A PhotoSize's, a Voice's or a File's own fields."""
    return {"file_id": document.file_id, "file_unique_id": document.file_unique_id,
            "file_size": len(document.data)}


def _document_json(document: StoredDocument) -> JSONDict:
    result: JSONDict = {
        "file_id": document.file_id,
        "file_unique_id": document.file_unique_id,
        "mime_type": document.mime_type,
        "file_size": len(document.data),
    }
    if document.file_name:
        result["file_name"] = document.file_name
    return result


def _topic_json(topic: Topic) -> JSONDict:
    result: JSONDict = {
        "message_thread_id": topic.thread_id,
        "name": topic.name,
        "icon_color": topic.icon_color,
    }
    if topic.icon_custom_emoji_id:
        result["icon_custom_emoji_id"] = topic.icon_custom_emoji_id
    return result
