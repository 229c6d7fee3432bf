"""A fake Slack Web API (and Socket Mode, and signed HTTP delivery) for end-to-end tests.

Theory of operation
-------------------
`FakeSlack` is an aiohttp server on 127.0.0.1 with a random port. The real slack_sdk
`AsyncWebClient` (and slack-bolt's `AsyncApp` on top of it) talks to it through
``base_url``; nothing is mocked on the client side. Routes:

* ``/api/<method>``: the Web API. Arguments are merged from the query string, an urlencoded
  or multipart form and a JSON body (slack_sdk sends chat.* as JSON and files.*,
  auth.test and apps.connections.open as a query string on a POST). Every call goes through
  one `_dispatch`: unreachable → 502 (or a dropped connection); a failure queued by
  `fail_next` → that failure; the token check (``invalid_auth``); the rate limits (429 with
  ``Retry-After``, recorded in `violations`); the method handler, which validates like
  Slack (``{"ok": false, "error": …}`` with HTTP 200) and mutates the state. Every call,
  failed or not, is appended to `calls` and wakes whoever waits.
* ``/upload/<file_id>``: step 2 of files_upload_v2 (raw bytes, no auth).
* ``/respond/<n>``: the ``response_url`` of slash commands and interactions.
* ``/link``: the Socket Mode websocket that apps.connections.open hands out. It sends
  ``hello``, then the envelopes pushed with `push`, and records each ack in `acks`.

People act through `inject_command`, `inject_tap`, `inject_message` and
`inject_view_submission`: each builds the payload Slack would send and delivers it over
Socket Mode (the default) or, once `deliver_to` names a URL, as a signed HTTP request (v0
HMAC-SHA256 of ``v0:{ts}:{body}`` with `signing_secret`).

Rate limits, as Slack documents them and this fake enforces them by default (rolling
windows, like the Telegram fake, see `RateLimit`):

* ``post_limit``: chat.postMessage, "about one message per second per channel, short bursts
  allowed": 10 per rolling 10 s per channel;
* ``update_limit``: chat.update, Tier 3 ("50+ per minute"): 50 per rolling 60 s;
* ``ephemeral_limit``: chat.postEphemeral, Tier 4 ("100+ per minute"): 100 per rolling 60 s.

Waiting uses a "changed" event swapped for a fresh one on every state change; every wait
has a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import itertools
import json
import math
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web

from tests.fakes.changes import Changes

JSONDict = dict[str, Any]

TEAM_ID = "T0FAKE"
TEAM_URL = "https://fake-team.slack.com/"
APP_ID = "A0BRIDGE"
BOT_ID = "B0BRIDGE"
BOT_USER_ID = "U0BRIDGE"
CHANNEL = "C0BRIDGE"
OTHER_CHANNEL = "C0OTHER"
ALICE = "U0ALICE"
MALLORY = "U0MALLORY"
BOT_TOKEN = "xoxb-1-fake-bot-token"
APP_TOKEN = "xapp-1-fake-app-token"
SIGNING_SECRET = "fake-signing-secret-0123456789"

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_TEXT = 40_000
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ELEMENTS = 25
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024
TRIGGER_TTL = 3.0
BAD_GATEWAY_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
_JSON_FIELDS = frozenset({"blocks", "attachments", "files", "view", "metadata"})


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` accepted calls per rolling ``window`` seconds."""

    count: int
    window: float


@dataclass(frozen=True, slots=True)
class Call:
    """One Web API request the fake received, with its outcome."""

    method: str
    params: JSONDict
    time: float
    token: str = ""
    status: int = 200
    response: JSONDict | None = None
    error: str | None = None
    index: int = 0

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass(frozen=True, slots=True)
class RateLimitViolation:
    """A 429 the fake's own limits produced (never an injected one)."""

    method: str
    channel: str | None
    retry_after: int
    time: float


class _Shown:
    """What a person sees of a message: its text and its buttons."""

    __slots__ = ()
    text: str
    blocks: list[JSONDict]

    @property
    def shown(self) -> str:
        """The section blocks' text, else the (unescaped) fallback."""
        parts = [b["text"]["text"] for b in self.blocks
                 if b.get("type") == "section" and isinstance(b.get("text"), dict)]
        return "\n".join(parts) if parts else html.unescape(self.text)

    @property
    def buttons(self) -> list[JSONDict]:
        return [e for b in self.blocks if b.get("type") == "actions"
                for e in b.get("elements", []) if e.get("type") == "button"]

    @property
    def values(self) -> list[str]:
        return [b["value"] for b in self.buttons if "value" in b]

    @property
    def labels(self) -> list[str]:
        return [b["text"]["text"] for b in self.buttons]


@dataclass(slots=True)
class StoredMessage(_Shown):
    """A message in a channel (the bot's or a person's), in its current state."""

    channel: str
    ts: str
    text: str
    blocks: list[JSONDict] = field(default_factory=list)
    thread_ts: str | None = None  # set on replies (never on a thread's parent)
    user: str = BOT_USER_ID
    bot_id: str | None = BOT_ID
    reply_broadcast: bool = False
    edited: bool = False
    history: list[tuple[str, list[JSONDict]]] = field(default_factory=list)



@dataclass(slots=True)
class Ephemeral(_Shown):
    """A message only `user` sees (chat.postEphemeral, or an ephemeral response_url post)."""

    channel: str
    user: str
    text: str
    blocks: list[JSONDict]
    thread_ts: str | None
    ts: str
    via: str  # "chat.postEphemeral" | "response_url"


@dataclass(slots=True)
class StoredFile:
    id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False
    mimetype: str = "application/octet-stream"
    user: str = BOT_USER_ID  # who uploaded it


_SIGN_IN_PAGE = ("<!DOCTYPE html><html><head><title>Slack</title></head>"
                 "<body>Sign in to fake-team</body></html>")


@dataclass(slots=True)
class OpenedView:
    id: str
    trigger_id: str
    user: str
    view: JSONDict


@dataclass(slots=True)
class Envelope:
    id: str
    type: str
    payload: JSONDict


@dataclass(slots=True)
class _Trigger:
    user: str
    channel: str | None
    time: float


@dataclass(slots=True)
class _ResponseUrl:
    user: str
    channel: str
    thread_ts: str | None


class _ApiError(Exception):
    """A Web API error: ``{"ok": false, "error": error}`` with HTTP `status`."""

    def __init__(self, error: str, status: int = 200, retry_after: int | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.retry_after = retry_after


# ---------------------------------------------------------------------------------------------
# Payload builders and signatures (pure; usable without a server)


def sign(secret: str, timestamp: int | str, body: str) -> str:
    """Slack's v0 request signature of `body` sent at `timestamp`."""
    base = f"v0:{timestamp}:{body}"
    return "v0=" + hmac.new(secret.encode(), base.encode(), hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: str, content_type: str,
                   timestamp: int | str | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sign(secret, ts, body),
        "Content-Type": content_type,
    }


def slash_command_form(command: str, text: str, *, user: JSONDict, channel: str,
                       response_url: str, trigger_id: str) -> dict[str, str]:
    """The urlencoded fields of a slash command request."""
    return {
        "token": "deprecated-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "fake-team",
        "channel_id": channel,
        "channel_name": "bridge" if channel == CHANNEL else "other",
        "user_id": user["id"],
        "user_name": user["username"],
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def block_actions_payload(*, user: JSONDict, channel: str, message: JSONDict | None,
                          container: JSONDict, action: JSONDict, response_url: str,
                          trigger_id: str) -> JSONDict:
    """The JSON of a ``block_actions`` interaction (a button tap)."""
    payload: JSONDict = {
        "type": "block_actions",
        "user": {"id": user["id"], "username": user["username"], "name": user["username"],
                 "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "deprecated-verification-token",
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": "fake-team"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "bridge" if channel == CHANNEL else "other"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [{**action, "action_ts": f"{time.time():.6f}"}],
    }
    if message is not None:
        payload["message"] = message
    return payload


def message_event(*, user: str, channel: str, text: str, ts: str,
                  thread_ts: str | None = None, event_id: str | None = None) -> JSONDict:
    """An Events API ``event_callback`` carrying a ``message`` event."""
    event: JSONDict = {
        "type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
        "event_ts": ts, "channel_type": "channel", "team": TEAM_ID,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return {
        "token": "deprecated-verification-token", "team_id": TEAM_ID, "api_app_id": APP_ID,
        "event": event, "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
    }


def view_submission_payload(*, user: JSONDict, view: JSONDict,
                            values: JSONDict) -> JSONDict:
    """A ``view_submission`` interaction: the modal `view` submitted with `values`."""
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "fake-team"},
        "user": {"id": user["id"], "username": user["username"], "name": user["username"],
                 "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "deprecated-verification-token",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.fake",
        "view": {**view, "state": {"values": values}},
        "response_urls": [],
        "is_enterprise_install": False,
    }


# ---------------------------------------------------------------------------------------------
# The server


class FakeSlack:
    """A Slack workspace on 127.0.0.1 that records every call and enforces the real limits.

    Defaults: channel `CHANNEL` (the bridge's) and `OTHER_CHANNEL`; people `ALICE` (@alice)
    and `MALLORY` (@mallory); the bot user `BOT_USER_ID`. Web API calls need a bot token
    (``xoxb-…``, exactly `bot_token` when given); apps.connections.open needs an app token
    (``xapp-…``, exactly `app_token` when given).
    """

    def __init__(
        self,
        *,
        bot_token: str | None = None,
        app_token: str | None = None,
        signing_secret: str = SIGNING_SECRET,
        enforce_limits: bool = True,
        post_limit: RateLimit | None = RateLimit(10, 10.0),
        update_limit: RateLimit | None = RateLimit(50, 60.0),
        ephemeral_limit: RateLimit | None = RateLimit(100, 60.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.enforce_limits = enforce_limits
        self.limits: dict[str, RateLimit | None] = {
            "chat.postMessage": post_limit,
            "chat.update": update_limit,
            "chat.postEphemeral": ephemeral_limit,
        }
        self._clock = clock

        self.calls: list[Call] = []
        self.tokens: set[str] = set()
        self.violations: list[RateLimitViolation] = []
        self.channels: set[str] = set()
        self.channel_info: dict[str, JSONDict] = {}  # id → conversations.list's entry
        self.users: dict[str, JSONDict] = {}
        self.messages: dict[str, list[StoredMessage]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.files: dict[str, StoredFile] = {}
        self.downloads: list[tuple[str, str | None]] = []  # (file id, bearer token) per GET
        self.views: list[OpenedView] = []
        self.responses: list[tuple[str, JSONDict]] = []
        self.envelopes: list[Envelope] = []
        self.acks: dict[str, JSONDict | None] = {}
        self.http_results: list[tuple[str, int, str]] = []  # (kind, status, body)
        self.deliver_to: str | None = None  # a URL: deliver as signed HTTP, not Socket Mode
        self.sockets: list[web.WebSocketResponse] = []
        self.connections = 0  # websockets ever opened

        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._pending: deque[Envelope] = deque()
        self._windows: dict[tuple[str, str | None], deque[float]] = {}
        self._injected: dict[str, deque[_ApiError]] = {}
        self._unreachable: str | None = None  # None | "502" | "close"
        self.changes = Changes()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

        self.add_user(ALICE, "alice")
        self.add_user(MALLORY, "mallory")
        self.add_channel(CHANNEL, "agent-bridge")
        self.add_channel(OTHER_CHANNEL, "general")

        self._handlers: dict[str, Callable[[JSONDict], JSONDict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "views.open": self._views_open,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "files.info": self._files_info,
            "apps.connections.open": self._connections_open,
            "conversations.list": self._conversations_list,
        }

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_get("/files-pri/{team_file}/{name}", self._handle_download)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._handle_download)
        app.router.add_post("/respond/{rid}", self._handle_respond)
        app.router.add_get("/link", self._handle_link)
        app.router.add_get("/link/", self._handle_link)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # -- test API: world ------------------------------------------------------------------------

    def add_user(self, user_id: str, username: str) -> JSONDict:
        user = {"id": user_id, "username": username, "name": username, "team_id": TEAM_ID}
        self.users[user_id] = user
        return user

    def add_channel(self, channel_id: str, name: str, *, private: bool = False,
                    member: bool = True, archived: bool = False) -> JSONDict:
        """A channel of the workspace; `member`: the bot is in it (invited)."""
        info = {"id": channel_id, "name": name, "is_channel": not private,
                "is_group": private, "is_im": False, "is_private": private,
                "is_archived": archived, "is_member": member, "is_general": name == "general",
                "created": 1_700_000_000, "creator": ALICE, "name_normalized": name,
                "num_members": 2}
        self.channels.add(channel_id)
        self.channel_info[channel_id] = info
        return info

    def set_unreachable(self, unreachable: bool = True, *, close_connection: bool = False) -> None:
        """While set, every Web API call and upload fails: 502, or a dropped connection."""
        self._unreachable = ("close" if close_connection else "502") if unreachable else None
        self.changes.wake()

    def fail_next(self, method: str, error: str = "ratelimited", *, status: int | None = None,
                  retry_after: int = 1, times: int = 1) -> None:
        """Make the next `times` calls of `method` fail with `error` (``ratelimited``: HTTP
        429 with ``Retry-After``; `status` ≥ 500: an error page)."""
        if status is None:
            status = 429 if error == "ratelimited" else 200
        queue = self._injected.setdefault(method, deque())
        queue.extend(_ApiError(error, status, retry_after if status == 429 else None)
                     for _ in range(times))

    async def close_sockets(self) -> None:
        """Drop every Socket Mode connection, the way Slack refreshes them."""
        for ws in list(self.sockets):
            await ws.close()

    # -- test API: people acting ---------------------------------------------------------------

    async def inject_command(self, command: str, text: str = "", *, user: str = ALICE,
                             channel: str = CHANNEL) -> str:
        """A person runs a slash command; returns the envelope id (Socket Mode) or the HTTP
        status (signed HTTP delivery)."""
        trigger = self._trigger(user, channel)
        form = slash_command_form(command, text, user=self.users[user], channel=channel,
                                  response_url=self._response_url(user, channel, None),
                                  trigger_id=trigger)
        return await self._deliver("slash_commands", form, form=True)

    async def inject_tap(self, message: StoredMessage | Ephemeral, value: str, *,
                         user: str = ALICE, require_button: bool = True) -> str:
        """A person taps the button carrying `value` on `message`."""
        blocks = message.blocks
        buttons = [(b.get("block_id", ""), e) for b in blocks if b.get("type") == "actions"
                   for e in b.get("elements", [])]
        found = next(((bid, e) for bid, e in buttons if e.get("value") == value), None)
        if found is None:
            if require_button:
                raise ValueError(f"no button with value {value!r} on the message")
            found = ("stale", {"type": "button", "action_id": "btn0", "value": value,
                               "text": {"type": "plain_text", "text": "?"}})
        block_id, element = found
        action = {"type": "button", "block_id": block_id, "action_id": element["action_id"],
                  "text": element["text"], "value": element.get("value", "")}
        channel = message.channel
        if isinstance(message, Ephemeral):
            container: JSONDict = {"type": "message", "message_ts": message.ts,
                                   "channel_id": channel, "is_ephemeral": True}
            if message.thread_ts:
                container["thread_ts"] = message.thread_ts
            payload_message = None
            thread_ts = message.thread_ts
        else:
            thread_ts = message.thread_ts or (message.ts if self.replies(channel, message.ts)
                                              else None)
            container = {"type": "message", "message_ts": message.ts, "channel_id": channel,
                         "is_ephemeral": False}
            payload_message = {"type": "message", "user": message.user, "ts": message.ts,
                               "bot_id": message.bot_id, "app_id": APP_ID,
                               "text": message.text, "blocks": message.blocks,
                               "team": TEAM_ID}
            if thread_ts:
                container["thread_ts"] = thread_ts
                payload_message["thread_ts"] = thread_ts
        payload = block_actions_payload(
            user=self.users[user], channel=channel, message=payload_message,
            container=container, action=action,
            response_url=self._response_url(user, channel, thread_ts),
            trigger_id=self._trigger(user, channel),
        )
        return await self._deliver("interactive", payload, interactive=True)

    async def inject_message(self, text: str, *, user: str = ALICE, channel: str = CHANNEL,
                             thread_ts: str | None = None) -> str:
        """A person writes in the channel (in a thread when `thread_ts`)."""
        if thread_ts is not None and self.message(channel, thread_ts) is None:
            raise ValueError(f"no message {thread_ts} in {channel}")
        stored = StoredMessage(channel, self._next_ts(), text, thread_ts=thread_ts, user=user,
                               bot_id=None)
        self.messages.setdefault(channel, []).append(stored)
        self.changes.wake()
        body = message_event(user=user, channel=channel, text=text, ts=stored.ts,
                             thread_ts=thread_ts)
        return await self._deliver("events_api", body)

    async def inject_file_share(self, files: list[tuple[str, str, bytes]], text: str = "", *,
                                user: str = ALICE, channel: str = CHANNEL,
                                thread_ts: str | None = None, with_urls: bool = True,
                                url_base: str | None = None) -> str:
        """A person shares files (name, mimetype, bytes) with `text` as the message: a
        `message` event of subtype `file_share` whose `files` carry the private URLs (or,
        with `with_urls=False`, only ids, as Socket Mode may: files.info has the rest).
        `url_base` puts the URLs on another server (as an external file's are)."""
        if thread_ts is not None and self.message(channel, thread_ts) is None:
            raise ValueError(f"no message {thread_ts} in {channel}")
        stored = StoredMessage(channel, self._next_ts(), text, thread_ts=thread_ts, user=user,
                               bot_id=None)
        self.messages.setdefault(channel, []).append(stored)
        shared = []
        for name, mimetype, data in files:
            file_id = f"F{next(self._ids):08d}"
            kept = StoredFile(file_id, name, len(data), data=data, title=name, channel=channel,
                              thread_ts=thread_ts, completed=True, mimetype=mimetype, user=user)
            self.files[file_id] = kept
            described = self._file_json(kept)
            if url_base is not None:
                ours = f"http://127.0.0.1:{self.port}"
                described.update({key: described[key].replace(ours, url_base)
                                  for key in ("url_private", "url_private_download")})
            shared.append(described if with_urls
                          else {"id": file_id, "mode": "hidden_by_limit",
                                "file_access": "check_file_info"})
        self.changes.wake()
        body = message_event(user=user, channel=channel, text=text, ts=stored.ts,
                             thread_ts=thread_ts)
        body["event"].update({"subtype": "file_share", "files": shared, "upload": False,
                              "display_as_bot": False})
        return await self._deliver("events_api", body)

    def _file_json(self, stored: StoredFile) -> JSONDict:
        base = f"http://127.0.0.1:{self.port}/files-pri/{TEAM_ID}-{stored.id}"
        filetype = stored.filename.rpartition(".")[2].lower() if "." in stored.filename \
            else "binary"
        return {
            "id": stored.id, "created": int(time.time()), "timestamp": int(time.time()),
            "name": stored.filename, "title": stored.title or stored.filename,
            "mimetype": stored.mimetype, "filetype": filetype, "user": stored.user,
            "size": len(stored.data or b""), "mode": "hosted", "is_external": False,
            "is_public": True, "url_private": f"{base}/{stored.filename}",
            "url_private_download": f"{base}/download/{stored.filename}",
        }

    async def inject_view_submission(self, view: OpenedView, text: str, *,
                                     user: str | None = None) -> str:
        """A person fills the first input of an opened modal with `text` and submits it."""
        values: JSONDict = {}
        for block in view.view.get("blocks", []):
            if block.get("type") == "input":
                element = block["element"]
                values[block["block_id"]] = {
                    element["action_id"]: {"type": element["type"], "value": text}}
                break
        payload = view_submission_payload(user=self.users[user or view.user],
                                          view={**view.view, "id": view.id}, values=values)
        return await self._deliver("interactive", payload, interactive=True)

    async def send_signed(self, url: str, body: str, content_type: str, *,
                          secret: str | None = None, timestamp: int | str | None = None,
                          headers: dict[str, str] | None = None) -> tuple[int, str]:
        """POST `body` to `url` signed with `secret` (default: the workspace's) at
        `timestamp` (default: now); `headers` are added or replace the signed ones (e.g.
        ``X-Slack-Retry-Num`` on a retry, a malformed timestamp)."""
        headers = {**signed_headers(secret or self.signing_secret, body, content_type,
                                    timestamp), **(headers or {})}
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(url, data=body.encode(), headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=10)) as response:
            text = await response.text()
            self.http_results.append((content_type, response.status, text))
            self.changes.wake()
            return response.status, text

    async def redeliver(self, envelope_id: str) -> None:
        """Send an envelope again, as Slack does when it believes it went unacknowledged."""
        envelope = next(e for e in self.envelopes if e.id == envelope_id)
        self._pending.append(envelope)
        await self._flush(retry_attempt=1, retry_reason="timeout")

    async def push(self, type_: str, payload: JSONDict) -> str:
        """Send an envelope over Socket Mode (queued until an app connects)."""
        envelope = Envelope(str(uuid.uuid4()), type_, payload)
        self.envelopes.append(envelope)
        self._pending.append(envelope)
        await self._flush()
        return envelope.id

    # -- test API: observing --------------------------------------------------------------------

    @property
    def rate_limited(self) -> bool:
        """Whether the fake's own limits ever answered 429 (injected ones do not count)."""
        return bool(self.violations)

    def calls_to(self, method: str, *, ok: bool | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (ok is None or c.ok == ok)]

    def message(self, channel: str, ts: str) -> StoredMessage | None:
        return next((m for m in self.messages.get(channel, []) if m.ts == ts), None)

    def top_level(self, channel: str = CHANNEL) -> list[StoredMessage]:
        return [m for m in self.messages.get(channel, []) if m.thread_ts is None]

    def replies(self, channel: str, thread_ts: str) -> list[StoredMessage]:
        return [m for m in self.messages.get(channel, []) if m.thread_ts == thread_ts]

    def thread(self, channel: str, thread_ts: str) -> list[StoredMessage]:
        """A thread: its parent, then the replies, oldest first."""
        parent = self.message(channel, thread_ts)
        return ([parent] if parent else []) + self.replies(channel, thread_ts)

    def ephemerals_for(self, user: str) -> list[Ephemeral]:
        return [e for e in self.ephemerals if e.user == user]

    async def wait_for(self, method: str, predicate: Callable[[Call], bool] | None = None,
                       timeout: float = 5.0, *, ok: bool | None = True, since: int = 0) -> Call:
        """The first recorded call (from index `since`) of `method` matching `predicate`."""

        def find() -> Call | None:
            for call in self.calls[since:]:
                if call.method != method or (ok is not None and call.ok != ok):
                    continue
                if predicate is None or predicate(call):
                    return call
            return None

        found = await self.changes.wait(find, timeout)
        if found is None:
            raise AssertionError(f"no {method} call matching within {timeout} s; recent "
                                 f"calls:\n{self.describe_calls()}")
        return found

    async def wait_until(self, condition: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until `condition()` is truthy (re-checked after every change); return it."""
        found = await self.changes.wait(lambda: condition() or None, timeout)
        if found is None:
            raise AssertionError(f"condition not met within {timeout} s; recent calls:\n"
                                 f"{self.describe_calls()}")
        return found

    def describe_calls(self, last: int = 20) -> str:
        lines = []
        for call in self.calls[-last:]:
            summary = json.dumps(call.params, default=str, ensure_ascii=False)
            outcome = "ok" if call.ok else f"{call.status} {call.error}"
            lines.append(f"  #{call.index} {call.method} {summary[:200]} -> {outcome}")
        return "\n".join(lines) or "  (none)"

    # -- HTTP -----------------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params: JSONDict = {}
        token = ""
        try:
            params = await self._read_params(request)
            token = _bearer(request) or str(params.pop("token", "") or "")
            self.tokens.add(token)
            body = self._dispatch(method, token, params)
        except _ApiError as error:
            self._record(method, params, token, error.status, None, error.error)
            if error.status == 502 and self._unreachable == "close" and request.transport:
                request.transport.close()
            if error.status >= 500:
                return web.Response(status=error.status, text=BAD_GATEWAY_PAGE,
                                    content_type="text/html")
            headers = {"Retry-After": str(error.retry_after)} if error.retry_after else None
            return web.json_response({"ok": False, "error": error.error},
                                     status=error.status, headers=headers)
        self._record(method, params, token, 200, body, None)
        return web.json_response({"ok": True, **body})

    async def _read_params(self, request: web.Request) -> JSONDict:
        raw: JSONDict = dict(request.query)
        if request.content_type == "application/json":
            text = await request.text()
            if text:
                try:
                    decoded = json.loads(text)
                except ValueError as e:
                    raise _ApiError("invalid_json") from e
                if not isinstance(decoded, dict):
                    raise _ApiError("invalid_json")
                raw.update(decoded)
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                raw[key] = value.file.read() if isinstance(value, web.FileField) else value
        for key in _JSON_FIELDS & raw.keys():
            if isinstance(raw[key], str):
                try:
                    raw[key] = json.loads(raw[key])
                except ValueError as e:
                    raise _ApiError(f"invalid_{key}") from e
        return raw

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        if self._unreachable:
            return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")
        stored = self.files.get(request.match_info["file_id"])
        if stored is None:
            return web.Response(status=404, text="not found", content_type="text/plain")
        stored.data = await request.read()
        self.changes.wake()
        return web.Response(text=f"OK - {len(stored.data)}", content_type="text/plain")

    async def _handle_respond(self, request: web.Request) -> web.StreamResponse:
        rid = request.match_info["rid"]
        target = self._response_urls.get(rid)
        if target is None:
            return web.Response(status=404, text="no_response_url", content_type="text/plain")
        body = await request.json()
        self.responses.append((rid, body))
        if body.get("response_type", "ephemeral") == "ephemeral":
            self.ephemerals.append(Ephemeral(
                target.channel, target.user, str(body.get("text", "")),
                list(body.get("blocks") or []), body.get("thread_ts") or target.thread_ts,
                self._next_ts(), "response_url"))
        else:
            self.messages.setdefault(target.channel, []).append(StoredMessage(
                target.channel, self._next_ts(), str(body.get("text", "")),
                list(body.get("blocks") or [])))
        self.changes.wake()
        return web.Response(text="ok", content_type="text/plain")

    async def _handle_link(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.sockets.append(ws)
        self.connections += 1
        await ws.send_str(json.dumps({
            "type": "hello", "num_connections": len(self.sockets),
            "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
            "connection_info": {"app_id": APP_ID},
        }))
        self.changes.wake()
        await self._flush()
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                with contextlib.suppress(ValueError):
                    data = json.loads(message.data)
                    if isinstance(data, dict) and "envelope_id" in data:
                        self.acks[data["envelope_id"]] = data.get("payload")
                        self.changes.wake()
        finally:
            self.sockets.remove(ws)
            self.changes.wake()
        return ws

    def _record(self, method: str, params: JSONDict, token: str, status: int,
                response: JSONDict | None, error: str | None) -> None:
        shown = {k: ("(bytes)" if isinstance(v, bytes) else v) for k, v in params.items()}
        self.calls.append(Call(method, shown, self._clock(), token, status, response, error,
                               len(self.calls)))
        self.changes.wake()

    def _dispatch(self, method: str, token: str, params: JSONDict) -> JSONDict:
        if self._unreachable:
            raise _ApiError("bad_gateway", 502)
        if method not in self._handlers:
            raise _ApiError("unknown_method", 404)
        if queue := self._injected.get(method):
            raise queue.popleft()
        if method == "apps.connections.open":
            if not token.startswith("xapp-"):
                raise _ApiError("not_allowed_token_type")
            if self.app_token is not None and token != self.app_token:
                raise _ApiError("invalid_auth")
        else:
            if not token.startswith("xoxb-"):
                raise _ApiError("not_authed" if not token else "not_allowed_token_type")
            if self.bot_token is not None and token != self.bot_token:
                raise _ApiError("invalid_auth")
        key = self._rate_key(method, params)
        if key is not None:
            self._check_rate_limit(method, key)
        body = self._handlers[method](params)
        if key is not None:
            self._windows.setdefault(key, deque()).append(self._clock())
        return body

    # -- rate limits ----------------------------------------------------------------------------

    def _rate_key(self, method: str, params: JSONDict) -> tuple[str, str | None] | None:
        if not self.enforce_limits or self.limits.get(method) is None:
            return None
        channel = str(params.get("channel", "")) or None
        return (method, channel if method == "chat.postMessage" else None)

    def _check_rate_limit(self, method: str, key: tuple[str, str | None]) -> None:
        limit = self.limits[method]
        assert limit is not None
        now = self._clock()
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - limit.window:
            window.popleft()
        if len(window) >= limit.count:
            retry_after = max(1, math.ceil(window[0] + limit.window - now))
            self.violations.append(RateLimitViolation(method, key[1], retry_after, now))
            raise _ApiError("ratelimited", 429, retry_after)

    # -- waiting and delivery -------------------------------------------------------------------

    async def _flush(self, *, retry_attempt: int = 0, retry_reason: str = "") -> None:
        while self._pending and self.sockets:
            envelope = self._pending.popleft()
            await self.sockets[-1].send_str(json.dumps({
                "envelope_id": envelope.id, "type": envelope.type, "payload": envelope.payload,
                "accepts_response_payload": envelope.type != "events_api",
                "retry_attempt": retry_attempt, "retry_reason": retry_reason,
            }))

    async def _deliver(self, type_: str, payload: JSONDict, *, form: bool = False,
                       interactive: bool = False) -> str:
        if self.deliver_to is None:
            return await self.push(type_, payload)
        if form:
            body, ctype = urllib.parse.urlencode(payload), "application/x-www-form-urlencoded"
        elif interactive:
            body = urllib.parse.urlencode({"payload": json.dumps(payload)})
            ctype = "application/x-www-form-urlencoded"
        else:
            body, ctype = json.dumps(payload), "application/json"
        status, _ = await self.send_signed(self.deliver_to, body, ctype)
        return str(status)

    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.{next(self._ids):06d}"

    def _trigger(self, user: str, channel: str | None) -> str:
        trigger = f"{next(self._ids)}.{uuid.uuid4().hex[:12]}"
        self._triggers[trigger] = _Trigger(user, channel, self._clock())
        return trigger

    def _response_url(self, user: str, channel: str, thread_ts: str | None) -> str:
        rid = str(next(self._ids))
        self._response_urls[rid] = _ResponseUrl(user, channel, thread_ts)
        return f"http://127.0.0.1:{self.port}/respond/{rid}"

    # -- methods --------------------------------------------------------------------------------

    def _auth_test(self, _params: JSONDict) -> JSONDict:
        return {"url": TEAM_URL, "team": "Fake Team", "user": "bridge", "team_id": TEAM_ID,
                "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _connections_open(self, _params: JSONDict) -> JSONDict:
        ticket = uuid.uuid4().hex
        return {"url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={APP_ID}"}

    def _conversations_list(self, params: JSONDict) -> JSONDict:
        """Paginated like Slack's: `limit` (default 100, at most 1000) per page, an opaque
        `cursor`; public channels unless `types` says otherwise; a private channel only
        when the bot is in it."""
        types = str(params.get("types") or "public_channel").split(",")
        if not set(types) <= {"public_channel", "private_channel", "mpim", "im"}:
            raise _ApiError("invalid_types")
        exclude_archived = str(params.get("exclude_archived", "false")).lower() in ("true", "1")
        try:
            limit = min(max(int(params.get("limit") or 100), 1), 1000)
            start = int(base64.b64decode(str(params.get("cursor") or "")).decode()
                        .removeprefix("offset:") or 0)
        except ValueError as e:
            raise _ApiError("invalid_cursor" if params.get("cursor") else "invalid_limit") from e
        visible = [info for info in self.channel_info.values()
                   if ("private_channel" if info["is_private"] else "public_channel") in types
                   and (info["is_member"] or not info["is_private"])
                   and not (exclude_archived and info["is_archived"])]
        page = visible[start:start + limit]
        after = start + limit
        cursor = base64.b64encode(f"offset:{after}".encode()).decode() \
            if after < len(visible) else ""
        return {"channels": [dict(info) for info in page],
                "response_metadata": {"next_cursor": cursor}}

    def _channel(self, params: JSONDict, key: str = "channel") -> str:
        channel = str(params.get(key) or "")
        if channel not in self.channels:
            raise _ApiError("channel_not_found")
        return channel

    def _content(self, params: JSONDict) -> tuple[str, list[JSONDict] | None]:
        text = params.get("text")
        blocks = params.get("blocks")
        if blocks is not None:
            _check_blocks(blocks)
        if text is not None and not isinstance(text, str):
            raise _ApiError("invalid_arguments")
        if not text and not blocks:
            raise _ApiError("no_text")
        if text and len(text) > MAX_TEXT:
            raise _ApiError("msg_too_long")
        return text or "", blocks

    def _thread_parent(self, channel: str, thread_ts: Any) -> str | None:
        if thread_ts in (None, ""):
            return None
        parent = self.message(channel, str(thread_ts))
        if parent is None or parent.thread_ts is not None:
            raise _ApiError("thread_not_found")
        return parent.ts

    def _post_message(self, params: JSONDict) -> JSONDict:
        channel = self._channel(params)
        text, blocks = self._content(params)
        thread_ts = self._thread_parent(channel, params.get("thread_ts"))
        stored = StoredMessage(channel, self._next_ts(), text, list(blocks or []),
                               thread_ts=thread_ts,
                               reply_broadcast=bool(params.get("reply_broadcast")))
        self.messages.setdefault(channel, []).append(stored)
        return {"channel": channel, "ts": stored.ts, "message": _message_json(stored)}

    def _update(self, params: JSONDict) -> JSONDict:
        channel = self._channel(params)
        stored = self.message(channel, str(params.get("ts", "")))
        if stored is None:
            raise _ApiError("message_not_found")
        if stored.bot_id != BOT_ID:
            raise _ApiError("cant_update_message")
        text, blocks = self._content(params)
        stored.history.append((stored.text, stored.blocks))
        stored.text = text
        if blocks is not None:  # Slack keeps the old blocks when none are given
            stored.blocks = list(blocks)
        stored.edited = True
        return {"channel": channel, "ts": stored.ts, "text": text,
                "message": _message_json(stored)}

    def _post_ephemeral(self, params: JSONDict) -> JSONDict:
        channel = self._channel(params)
        user = str(params.get("user", ""))
        if user not in self.users:
            raise _ApiError("user_not_in_channel")
        text, blocks = self._content(params)
        thread_ts = params.get("thread_ts") or None
        ephemeral = Ephemeral(channel, user, text, list(blocks or []), thread_ts,
                              self._next_ts(), "chat.postEphemeral")
        self.ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.ts}

    def _views_open(self, params: JSONDict) -> JSONDict:
        trigger_id = str(params.get("trigger_id", ""))
        trigger = self._triggers.pop(trigger_id, None)
        if trigger is None:
            raise _ApiError("invalid_trigger_id")
        if self._clock() - trigger.time > TRIGGER_TTL:
            raise _ApiError("expired_trigger_id")
        view = params.get("view")
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise _ApiError("invalid_arguments")
        title = view.get("title", {}).get("text", "")
        if not title or len(title) > 24 or not view.get("blocks"):
            raise _ApiError("invalid_arguments")
        if len(str(view.get("private_metadata", ""))) > 3000:
            raise _ApiError("invalid_arguments")
        opened = OpenedView(f"V{next(self._ids):08d}", trigger_id, trigger.user, view)
        self.views.append(opened)
        return {"view": {**view, "id": opened.id}}

    def _get_upload_url(self, params: JSONDict) -> JSONDict:
        filename = str(params.get("filename") or "")
        try:
            length = int(params.get("length", ""))
        except ValueError:
            raise _ApiError("invalid_arguments") from None
        if not filename or length <= 0:
            raise _ApiError("invalid_arguments")
        if length > MAX_UPLOAD_BYTES:
            raise _ApiError("file_too_large")
        file_id = f"F{next(self._ids):08d}"
        self.files[file_id] = StoredFile(file_id, filename, length)
        return {"upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
                "file_id": file_id}

    def _files_info(self, params: JSONDict) -> JSONDict:
        stored = self.files.get(str(params.get("file", "")))
        if stored is None or not stored.completed:
            raise _ApiError("file_not_found")
        return {"file": self._file_json(stored), "comments": [], "response_metadata": {
            "next_cursor": ""}}

    async def _handle_download(self, request: web.Request) -> web.StreamResponse:
        """A file's private URL: its bytes for a request with a bot token, Slack's sign-in
        page (HTML, status 200) for anyone else, as Slack does."""
        if self._unreachable:
            return web.Response(status=502, text=BAD_GATEWAY_PAGE, content_type="text/html")
        token = _bearer(request)
        _, _, file_id = request.match_info["team_file"].partition("-")
        self.downloads.append((file_id, token))
        self.changes.wake()
        stored = self.files.get(file_id)
        authorised = token is not None and token.startswith("xoxb-") and (
            self.bot_token is None or token == self.bot_token)
        if not authorised:
            return web.Response(text=_SIGN_IN_PAGE, content_type="text/html")
        if stored is None or stored.data is None:
            return web.Response(status=404, text="not found", content_type="text/plain")
        return web.Response(body=stored.data, content_type=stored.mimetype)

    def _complete_upload(self, params: JSONDict) -> JSONDict:
        files = params.get("files")
        if not isinstance(files, list) or not files:
            raise _ApiError("invalid_arguments")
        channel = params.get("channel_id") or None
        thread_ts = None
        if channel is not None:
            channel = self._channel(params, "channel_id")
            thread_ts = self._thread_parent(channel, params.get("thread_ts"))
        shared = []
        for entry in files:
            stored = self.files.get(str(entry.get("id", "")))
            if stored is None or stored.data is None:
                raise _ApiError("file_not_found")
            stored.title = entry.get("title") or stored.filename
            stored.channel, stored.thread_ts = channel, thread_ts
            stored.initial_comment = params.get("initial_comment") or None
            stored.completed = True
            shared.append({"id": stored.id, "title": stored.title, "name": stored.filename})
        return {"files": shared}


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else None


def _message_json(stored: StoredMessage) -> JSONDict:
    message: JSONDict = {"type": "message", "user": stored.user, "text": stored.text,
                         "ts": stored.ts, "blocks": stored.blocks, "team": TEAM_ID}
    if stored.bot_id:
        message["bot_id"] = stored.bot_id
    if stored.thread_ts:
        message["thread_ts"] = stored.thread_ts
    return message


def _check_blocks(blocks: Any) -> None:
    """Reject what Slack rejects with ``invalid_blocks`` (the limits that matter here)."""
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        raise _ApiError("invalid_blocks")
    action_ids: set[str] = set()
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "section":
            text = block.get("text")
            if not isinstance(text, dict) or text.get("type") not in ("plain_text", "mrkdwn"):
                raise _ApiError("invalid_blocks")
            if not 1 <= len(text.get("text", "")) <= MAX_SECTION_TEXT:
                raise _ApiError("invalid_blocks")
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_ACTION_ELEMENTS:
                raise _ApiError("invalid_blocks")
            for element in elements:
                action_id = element.get("action_id", "")
                label = element.get("text", {}).get("text", "")
                if not action_id or action_id in action_ids:
                    raise _ApiError("invalid_blocks")  # action_ids are unique per message
                action_ids.add(action_id)
                if not 1 <= len(label) <= MAX_BUTTON_TEXT:
                    raise _ApiError("invalid_blocks")
                if len(element.get("value", "")) > MAX_BUTTON_VALUE:
                    raise _ApiError("invalid_blocks")
        elif kind not in ("context", "divider", "header", "input", "rich_text"):
            raise _ApiError("invalid_blocks")
