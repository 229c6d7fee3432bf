"""The chat-surface port: what the daemon asks of Telegram, Slack or any other chat.

A surface only translates. Outgoing, it turns neutral `Card`s into platform messages and
returns opaque references (strings the daemon stores and hands back). Incoming, it turns
platform updates into `Incoming` actions and shows the `Reply` the daemon gives back.
Deciding anything is not its job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bridge.approvals import Actor
from bridge.errors import BridgeError
from bridge.model import SessionView
from bridge.render import Button, Card


class SurfaceError(BridgeError):
    """A call the platform refused for good (bad request); retrying will not help."""


class SurfaceRetry(BridgeError):
    """The platform asked us to slow down: try again after `after` seconds."""

    def __init__(self, after: float, message: str = "rate limited") -> None:
        self.after = after
        super().__init__(f"{message}; retry after {after:.1f}s")


class SurfaceUnavailable(BridgeError):
    """The platform cannot be reached right now (network, 5xx): retry with backoff."""


class ThreadGone(BridgeError):
    """The thread or topic we post into no longer exists: make a new one."""


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `calls` in any `per` seconds (a sliding window, the way the platforms count)."""

    calls: int
    per: float


@dataclass(frozen=True, slots=True)
class Limits:
    text: int  # characters in one message
    caption: int
    file_bytes: int  # largest attachment
    inline_diff: int  # a diff up to this size goes inline in a message
    # what every call of the bot counts against, whichever chat it is in (Telegram: 30 a
    # second); each chat's own limits are `ChatSurface.budget_of`'s
    overall: tuple[Rate, ...] = ()
    thread_titles: bool = True  # threads have titles that can change (Telegram's topics)


class FileTooBig(BridgeError):
    """A file someone sent is larger than the bridge takes (`limit` bytes); `size` is its
    size where known."""

    def __init__(self, size: int | None, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"the file is larger than {limit} bytes")


class FileKind(StrEnum):
    IMAGE = "image"  # a photo, or a document that is an image
    DOCUMENT = "document"  # any other file
    VOICE = "voice"  # a voice note (transcribed, when a speech-to-text program is set)


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingFile:
    """A file sent with a message: what the platform says of it. Nothing is downloaded
    until the daemon asks (`ChatSurface.fetch_file`), after its checks."""

    ref: str  # the surface's own reference to it, opaque to the daemon
    kind: FileKind
    name: str = ""  # as the sender named it: not safe as a path
    mime: str = ""  # as the platform declares it ("" where it does not say)
    size: int | None = None  # bytes, as the platform declares it


@dataclass(frozen=True, slots=True, kw_only=True)
class Downloaded:
    """A file's bytes, and what the platform says of it once asked (a Slack event may carry
    only a file's id: its name and type come with the download)."""

    file: IncomingFile
    data: bytes


class IncomingKind(StrEnum):
    COMMAND = "command"  # a /command
    TAP = "tap"  # a button
    TEXT = "text"  # a plain message (in a session's thread, or a reply)
    REASON = "reason"  # a deny reason given in a form opened by the button in `payload`


@dataclass(frozen=True, slots=True, kw_only=True)
class Incoming:
    surface: str
    actor: Actor
    kind: IncomingKind
    text: str = ""
    payload: str = ""  # a button's data
    thread: str | None = None  # the surface's thread reference, when in one
    reply_to: str | None = None  # the message replied to, when it is a reply
    reply_to_ours: bool = False  # that message is one the bot posted
    # where it happened: the chat, or workspace and channel, as `ChatSurface.place_of`
    # names it; only actions in the surface's own chats count
    place: str | None = None
    # photos, documents and voice notes sent with the message (`text` is their caption)
    files: tuple[IncomingFile, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    alert: bool = False  # taps: show as a pop-up rather than a toast
    force_reply: bool = False  # ask for an answer as a reply (e.g. a deny reason)
    in_thread: str | None = None  # post the reply in this thread rather than where asked
    # the person's message held a secret answer: delete it from the chat where the
    # platform lets the bot (Telegram), else ask the person to
    delete_message: bool = False


Inbox = Callable[[Incoming], Awaitable[Reply | None]]


class ChatSurface(Protocol):
    name: str
    limits: Limits
    # the bot's own name, which commands may address (`/new@name`); None where there is none
    bot_username: str | None
    # awaited before each answer to an action that spends the budget of the chat `ref` (a
    # thread or message reference, as `budget_of` takes), so that answers share it with
    # delivery, first in line (set by the daemon); None: answers are not paced
    throttle: Callable[[str], Awaitable[None]] | None

    async def start(self, inbox: Inbox) -> None: ...
    async def stop(self) -> None: ...

    async def open_thread(
        self, session: SessionView, title: str, card: Card, chat: str | None = None
    ) -> tuple[str, str | None]:
        """Make the session's thread in `chat` (a chat or channel id, as the surface's config
        writes it; None: the surface's home chat): (thread ref, status message ref). Where a
        thread is a reply chain, `card` is posted as its head and is the status message;
        where it is a topic, the status ref is None and the caller posts the card into it."""
        ...

    async def set_thread(self, thread: str, *, title: str | None, open: bool | None) -> None:
        """Rename and/or close (archive) or reopen a thread; a no-op where not possible."""
        ...

    async def post(self, thread: str, card: Card, *, notify: bool,
                   mention: str | None = None) -> str:
        """A new message in the thread (`""`: the chat or channel itself, outside any
        session's thread, e.g. for the digest); returns its reference. `mention` is a user
        id on this surface to address by name (the session's owner, on approval cards)."""
        ...

    async def edit(self, message: str, card: Card) -> None:
        """Replace a message's text and buttons (no buttons: they are removed)."""
        ...

    async def send_file(self, thread: str, filename: str, data: bytes, caption: str) -> None: ...

    async def fetch_file(self, file: IncomingFile, *, limit: int) -> Downloaded:
        """Download a file someone sent (`Incoming.files`); raises `FileTooBig` rather than
        read more than `limit` bytes, `SurfaceError` when the platform refuses."""
        ...

    def budget_of(self, ref: str, *, edit: bool = False) -> tuple[str, tuple[Rate, ...]]:
        """The rate budget a call about `ref` (a thread or message reference; "" the home
        chat or channel) spends: its name, and the platform's limits on it. `edit`: the
        call changes a message (or a thread's title) rather than posting one."""
        ...

    def chat_ref(self, chat: str) -> str:
        """The reference of `chat` itself (a chat or channel id, as `open_thread` takes it),
        outside any thread: what `post` and `budget_of` take for that chat."""
        ...

    def place_of(self, chat: str | None = None) -> str | None:
        """How `Incoming.place` names `chat` (as `open_thread` takes it; None: the home
        chat); None while that is not known (not connected yet)."""
        ...

    def thread_of(self, message: str) -> str | None:
        """The thread a message reference belongs to, if the reference says so."""
        ...

    def thread_link(self, thread: str) -> str | None:
        """A link that opens the thread (e.g. for the digest's buttons); None where the
        platform has none."""
        ...
