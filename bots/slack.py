"""Slack through slack-bolt (async) and slack_sdk: translation only.

Outgoing: a thread per session in the configured channel. The thread's parent message is the
session's status card; approval cards, summaries and files go into the thread. Cards become
Block Kit: the text in plain-text sections, each row of buttons an actions block whose
buttons carry the opaque payload as `value`, plus an escaped plain `text` fallback for
notifications. Files go up with files_upload_v2.
Incoming: Socket Mode (the default: no public URL) or signed HTTP requests; the `/agent`
slash command (and `/sessions`, `/resume`), button taps, the deny-reason modal and replies
in a session's thread become `Incoming` actions; the daemon's `Reply` is shown to the person
who asked (ephemeral), never decided here.
Errors become the port's signals: 429/`ratelimited` → `SurfaceRetry` (Retry-After; no retry
handler, delivery paces itself), network and 5xx → `SurfaceUnavailable`, a vanished thread
parent → `ThreadGone`, other refusals → `SurfaceError`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bots.slack_files import fetch, files_of
from bridge.actions import Verb
from bridge.approvals import Actor
from bridge.config import SlackConfig
from bridge.errors import ConfigError
from bridge.model import SessionView
from bridge.render import Button, Card, split_text
from bridge.surface import (
    Downloaded,
    Inbox,
    Incoming,
    IncomingFile,
    IncomingKind,
    Limits,
    Rate,
    Reply,
    SurfaceError,
    SurfaceRetry,
    SurfaceUnavailable,
    ThreadGone,
)

log = logging.getLogger(__name__)

# Slack allows about one chat.postMessage a second per channel, with short bursts (10 in any
# 10 s); chat.update is Tier 3, about 50 a minute in the workspace, whichever the channel (10 in
# any 12 s keeps that average without a burst of 50 in one second). Ephemeral answers are Tier
# 4 (100 a minute) and spend no channel's budget.
# A section block holds 3000 characters: longer texts (up to 3900, under the 4000 Slack
# advises for `text`) are split over several sections of one message. Slack takes files up to
# 1 GB; 50 MB is plenty for a diff. A diff up to 2900 characters fits one section inline.
LIMITS = Limits(text=3900, caption=3000, file_bytes=50 * 1024 * 1024, inline_diff=2900,
                thread_titles=False)
POST_RATES = (Rate(10, 10.0),)
UPDATE_RATES = (Rate(50, 60.0), Rate(10, 12.0))
SECTION_CHARS = 3000
HTTP_PATH = "/slack/events"
CONNECT_TIMEOUT = 30.0
REASON_VIEW = "deny_reason"
_BUTTON = re.compile(r"^btn\d+$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
# the shared grammar's commands that Slack reaches as `/agent NAME` (`/sessions` and
# `/resume` are slash commands of their own)
_SUBCOMMANDS = re.compile(
    r"(?<![\w/.-])/(new|stop|archive|unarchive|status|diff|digest|help|adopt)(?![\w/-]|\.\w)")
_GONE = ("thread_not_found", "message_not_found")
_UNAVAILABLE = ("internal_error", "fatal_error", "service_unavailable", "request_timeout")
_RETRY_AFTER_DEFAULT = 1.0
# Slack re-sends what it thinks went unanswered (a Socket Mode envelope, an HTTP event with
# X-Slack-Retry-Num) and a signed request can be replayed while its timestamp is within five
# minutes either way: each delivery is remembered for twice that long and acts once
SEEN_FOR = 600.0
SEEN_MAX = 10_000
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


class _GivenClientNotice(logging.Filter):
    """Bolt warns that `token` is unused whenever SLACK_BOT_TOKEN is set and a client is given;
    we give the client on purpose (it carries `base_url`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


# Bolt's own loggers (and the Socket Mode client's) hang below this one, so they follow the
# level the daemon sets for "slack_bolt" instead of copying the root's (debug: every payload)
BOLT_LOG = logging.getLogger("slack_bolt.bridge")
BOLT_LOG.addFilter(_GivenClientNotice())
_STYLES = {Verb.ALLOW_ONCE: "primary", Verb.DENY: "danger", Verb.STOP_APPROVAL: "danger"}


def thread_ref(channel: str, ts: str) -> str:
    return json.dumps({"c": channel, "t": ts})


def message_ref(channel: str, ts: str, thread_ts: str | None) -> str:
    ref: dict[str, str] = {"c": channel, "m": ts}
    if thread_ts is not None:
        ref["t"] = thread_ts
    return json.dumps(ref)


def escape(text: str) -> str:
    """Slack's mrkdwn escaping, so that `<!channel>` in a command is text, not a ping."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def blocks_for(text: str, buttons: tuple[tuple[Button, ...], ...]) -> list[dict[str, Any]]:
    """Block Kit for a card: plain-text sections, then one actions block per row."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "plain_text", "text": piece, "emoji": True}}
        for piece in split_text(text, SECTION_CHARS) if piece.strip()
    ]
    index = 0
    for row_number, row in enumerate(buttons):
        elements: list[dict[str, Any]] = []
        for button in row:
            element: dict[str, Any] = {
                "type": "button", "action_id": f"btn{index}",
                "text": {"type": "plain_text", "text": button.label[:75], "emoji": True},
            }
            if button.url:
                element["url"] = button.url
            else:
                element["value"] = button.action.encode()
                style = _STYLES.get(button.action.verb)
                if style:
                    element["style"] = style
            elements.append(element)
            index += 1
        if elements:
            blocks.append({"type": "actions", "block_id": f"row{row_number}",
                           "elements": elements})
    return blocks


def slack_commands(text: str) -> str:
    """A reply in the words of this app: `/new …` is typed `/agent new …` here."""
    return _SUBCOMMANDS.sub(r"/agent \1", text)


def _fallback(text: str) -> str:
    return escape(text.strip() or "…")[:SECTION_CHARS * 2]


def translate(error: Exception) -> Exception:
    """The port's signal for a slack_sdk or network error."""
    if isinstance(error, SlackApiError):
        response = error.response
        status = getattr(response, "status_code", 200)
        data = getattr(response, "data", None)
        code = data.get("error", "") if isinstance(data, dict) else ""
        if status == 429 or code == "ratelimited":
            headers = getattr(response, "headers", None) or {}
            try:
                after = float(headers.get("Retry-After", _RETRY_AFTER_DEFAULT))
            except (TypeError, ValueError):
                after = _RETRY_AFTER_DEFAULT
            return SurfaceRetry(after, "Slack rate limit")
        if status >= 500 or code in _UNAVAILABLE:
            return SurfaceUnavailable(f"Slack unavailable (HTTP {status} {code})".strip())
        return SurfaceError(f"Slack refused: {code or f'HTTP {status}'}")
    if isinstance(error, SlackRequestError):
        if re.search(r"status: 5\d\d", str(error)):
            return SurfaceUnavailable(f"Slack upload failed: {error}")
        return SurfaceError(f"Slack request failed: {error}")
    return SurfaceUnavailable(f"Slack unreachable: {type(error).__name__}: {error}")


async def call(awaitable: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
    """Await a Web API call, turning slack_sdk's and aiohttp's errors into the port's."""
    try:
        return await awaitable
    except (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError,
            OSError) as e:
        raise translate(e) from e


def delivery_key(body: dict[str, Any]) -> str:
    """What identifies one delivery from Slack, the same on every retry or replay of it: the
    event id (Events API), the trigger id (commands, taps, form submissions), else the
    body itself."""
    for field in ("event_id", "trigger_id"):
        value = body.get(field)
        if isinstance(value, str) and value:
            return f"{field}:{value}"
    canonical = json.dumps(body, sort_keys=True, default=str)
    return "body:" + hashlib.sha256(canonical.encode()).hexdigest()


def team_of(body: dict[str, Any]) -> str:
    """The workspace a person acted from, as the payload says."""
    user = body.get("user")
    team = body.get("team")
    return str((user.get("team_id") if isinstance(user, dict) else None)
               or (team.get("id") if isinstance(team, dict) else None)
               or body.get("team_id") or "")


def place(team: str, channel: str) -> str:
    return f"{team}/{channel}"


def _error_code(error: BaseException) -> str:
    cause = error.__cause__
    if isinstance(cause, SlackApiError) and isinstance(cause.response.data, dict):
        return str(cause.response.data.get("error", ""))
    return ""


class SlackSurface:
    name = "slack"
    limits = LIMITS

    def __init__(self, config: SlackConfig, bot_token: str, *, app_token: str | None = None,
                 signing_secret: str | None = None) -> None:
        # no secret, no check: a signed-HTTP app without its signing secret would take
        # requests signed with the empty key, i.e. anyone's
        if config.mode == "http" and not signing_secret:
            raise ConfigError("slack.signing_secret_env",
                              "HTTP mode needs the signing secret to verify requests")
        if config.mode == "socket" and not app_token:
            raise ConfigError("slack.app_token_env", "Socket Mode needs an app-level token")
        self.config = config
        self.channel = config.channel  # the home channel (projects may be routed to others)
        self._app_token = app_token
        # no rate-limit retry handler: delivery paces itself and must see 429s
        self.client = AsyncWebClient(token=bot_token, base_url=config.base_url)
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret or "",
            request_verification_enabled=config.mode == "http",
            process_before_response=False,
            logger=BOLT_LOG,
        )
        self.bot_user_id: str | None = None
        self.team_url: str | None = None
        self.team: str | None = None  # the workspace, known after auth.test
        self.bot_username: str | None = None  # commands name the app, not a bot user
        self._seen: OrderedDict[str, float] = OrderedDict()  # delivery key → first seen
        self._inbox: Inbox | None = None
        self._names: dict[str, str] = {}  # user id → @name, learnt from payloads
        self._socket: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None
        # set by the daemon: waits for a slot in the channel's budget (shared with delivery)
        self.throttle: Callable[[str], Awaitable[None]] | None = None
        self.app.middleware(self._once)
        self.app.command("/agent")(self._on_agent)
        self.app.command("/sessions")(self._on_sessions)
        self.app.command("/resume")(self._on_resume)
        self.app.action(_BUTTON)(self._on_tap)
        self.app.view(REASON_VIEW)(self._on_reason)
        self.app.event("message")(self._on_message)

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, inbox: Inbox) -> None:
        self._inbox = inbox
        auth = await call(self.client.auth_test())
        self.bot_user_id = auth.get("user_id")
        self.team_url = auth.get("url")
        self.team = str(auth.get("team_id") or "")
        if self.config.mode == "http":
            await self._serve_http()
        else:
            await self._connect_socket()

    async def _connect_socket(self) -> None:
        if not self._app_token:
            raise SurfaceError("Socket Mode needs an app-level token (xapp-…)")
        opened = await call(self.client.apps_connections_open(app_token=self._app_token))
        handler = AsyncSocketModeHandler(self.app, self._app_token)
        handler.client.wss_uri = opened["url"]  # checked above: errors surface as ours
        self._socket = handler
        try:
            await asyncio.wait_for(handler.connect_async(), CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
        except TimeoutError as e:
            raise SurfaceUnavailable("Slack Socket Mode: no connection") from e

    async def _serve_http(self) -> None:
        web_app = web.Application()
        web_app.router.add_post(HTTP_PATH, self._on_http)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.config.http_listen, self.config.http_port)
        try:
            await site.start()
        except OSError as e:
            raise SurfaceError(f"cannot listen on {self.config.http_listen}:"
                               f"{self.config.http_port}: {e}") from e

    async def _on_http(self, request: web.Request) -> web.Response:
        """Bolt checks the signature and the timestamp (older than 5 minutes: 401). What it
        would choke on (a timestamp that is no number, a signature or body that is not
        text) is refused here the same way: no such request comes from Slack."""
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature", "")
        try:
            (await request.read()).decode("utf-8")
            readable = True
        except UnicodeDecodeError:
            readable = False
        if (timestamp is not None and not _TIMESTAMP.fullmatch(timestamp)) \
                or not signature.isascii() or not readable:
            return web.json_response({"error": "invalid request"}, status=401)
        response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    async def _once(self, body: dict[str, Any],
                    next_: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        """A delivery seen before (a retry, a replay) is acknowledged and ignored. Runs after
        Bolt's signature check: only verified requests are remembered."""
        key = delivery_key(body)
        now = time.monotonic()
        while self._seen and (len(self._seen) >= SEEN_MAX
                              or next(iter(self._seen.values())) < now - SEEN_FOR):
            self._seen.popitem(last=False)
        if key in self._seen:
            log.info("slack delivered %s again: acknowledged, ignored", key)
            return BoltResponse(status=200, body="")
        self._seen[key] = now
        await next_()
        return None

    async def stop(self) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            await socket.close_async()  # type: ignore[no-untyped-call]
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # -- outgoing ---------------------------------------------------------------------

    async def open_thread(
        self, session: SessionView, title: str, card: Card, chat: str | None = None
    ) -> tuple[str, str | None]:
        # Slack threads have no title: the parent, the status card, names the session
        channel = chat or self.channel
        response = await call(self.client.chat_postMessage(
            channel=channel, text=_fallback(card.text),
            blocks=blocks_for(card.text, card.buttons), unfurl_links=False,
        ))
        ts = str(response["ts"])
        return thread_ref(channel, ts), message_ref(channel, ts, ts)

    async def set_thread(self, thread: str, *, title: str | None, open: bool | None) -> None:
        """Slack threads have no title and cannot be closed: the status card shows both."""

    def thread_link(self, thread: str) -> str | None:
        """A permalink to the thread's parent (Slack builds them from the team URL)."""
        if not self.team_url:
            return None
        ref = json.loads(thread)
        return f"{self.team_url}archives/{ref['c']}/p{ref['t'].replace('.', '')}"

    async def post(self, thread: str, card: Card, *, notify: bool,
                   mention: str | None = None) -> str:
        """In a thread Slack notifies only its participants: `mention` calls the owner by
        name (in the notification text and in a line above the card)."""
        ref = json.loads(thread) if thread else {"c": self.channel}
        thread_ts = ref.get("t")
        text, blocks = _fallback(card.text), blocks_for(card.text, card.buttons)
        if mention and _USER_ID.match(mention):
            text = f"<@{mention}> {text}"
            blocks.insert(0, {"type": "section",
                              "text": {"type": "mrkdwn", "text": f"<@{mention}>"}})
        try:
            response = await call(self.client.chat_postMessage(
                channel=ref["c"], thread_ts=thread_ts, text=text, blocks=blocks,
                unfurl_links=False,
            ))
        except SurfaceError as e:
            if thread_ts and _error_code(e) in _GONE:
                raise ThreadGone(str(e)) from e
            raise
        return message_ref(ref["c"], str(response["ts"]), thread_ts)

    async def edit(self, message: str, card: Card) -> None:
        ref = json.loads(message)
        try:
            # blocks are always given: an update without them would keep the old buttons
            await call(self.client.chat_update(
                channel=ref["c"], ts=ref["m"], text=_fallback(card.text),
                blocks=blocks_for(card.text, card.buttons),
            ))
        except SurfaceError as e:
            if ref.get("t") == ref["m"] and _error_code(e) in _GONE:
                raise ThreadGone(str(e)) from e  # the parent, i.e. the thread, is gone
            raise

    async def send_file(self, thread: str, filename: str, data: bytes, caption: str) -> None:
        ref = json.loads(thread) if thread else {"c": self.channel}
        thread_ts = ref.get("t")
        try:
            await call(self.client.files_upload_v2(
                channel=ref["c"], thread_ts=thread_ts, file=data, filename=filename,
                title=filename, initial_comment=caption[: self.limits.caption] or None,
            ))
        except SurfaceError as e:
            if thread_ts and _error_code(e) in _GONE:
                raise ThreadGone(str(e)) from e
            raise

    async def fetch_file(self, file: IncomingFile, *, limit: int) -> Downloaded:
        return await fetch(self.client, file, limit=limit, call=call)

    def budget_of(self, ref: str, *, edit: bool = False) -> tuple[str, tuple[Rate, ...]]:
        """Posts spend their channel's budget; updates the workspace's (Tier 3)."""
        if edit:
            return "updates", UPDATE_RATES
        channel = json.loads(ref)["c"] if ref else self.channel
        return f"channel {channel}", POST_RATES

    def chat_ref(self, chat: str) -> str:
        return json.dumps({"c": chat})

    def place_of(self, chat: str | None = None) -> str | None:
        if self.team is None:
            return None
        return place(self.team, chat or self.channel)

    def thread_of(self, message: str) -> str | None:
        ref = json.loads(message)
        return thread_ref(ref["c"], ref["t"]) if "t" in ref else None

    # -- incoming ---------------------------------------------------------------------

    def _actor(self, user_id: str, name: str | None) -> Actor:
        if name:
            self._names[user_id] = f"@{name}"
        return Actor(surface=self.name, user_id=user_id, name=self._names.get(user_id))

    async def _ask(self, incoming: Incoming) -> Reply | None:
        if self._inbox is None:
            return None
        return await self._inbox(incoming)

    async def _on_agent(self, ack: AsyncAck, command: dict[str, Any],
                        respond: AsyncRespond) -> None:
        await ack()
        sub, _, rest = str(command.get("text", "")).strip().partition(" ")
        await self._command(command, respond, f"/{sub or 'help'} {rest}".strip())

    async def _on_sessions(self, ack: AsyncAck, command: dict[str, Any],
                           respond: AsyncRespond) -> None:
        await ack()
        await self._command(command, respond, f"/sessions {command.get('text', '')}".strip())

    async def _on_resume(self, ack: AsyncAck, command: dict[str, Any],
                         respond: AsyncRespond) -> None:
        await ack()
        await self._command(command, respond, f"/resume {command.get('text', '')}".strip())

    async def _command(self, command: dict[str, Any], respond: AsyncRespond, text: str) -> None:
        actor = self._actor(str(command.get("user_id", "")), command.get("user_name"))
        where = place(team_of(command), str(command.get("channel_id", "")))
        reply = await self._ask(Incoming(surface=self.name, actor=actor,
                                         kind=IncomingKind.COMMAND, text=text, place=where))
        if reply is None:
            return
        if reply.in_thread:
            await self._post_in_thread(reply.in_thread, reply)
            return
        shown = slack_commands(reply.text)
        try:
            await respond(text=_fallback(shown), blocks=blocks_for(shown, reply.buttons),
                          response_type="ephemeral", replace_original=False)
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            log.warning("could not answer /%s: %s", text.split()[0], e)

    async def _on_tap(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                      respond: AsyncRespond) -> None:
        await ack()
        if "value" not in action:
            return  # a link button: Slack opens the URL, nothing for us to do
        user = body.get("user") or {}
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id", ""))
        thread_ts = container.get("thread_ts") or message.get("thread_ts")
        thread = thread_ref(channel, thread_ts) if channel and thread_ts else None
        actor = self._actor(str(user.get("id", "")), user.get("username") or user.get("name"))
        value = str(action.get("value", ""))
        reply = await self._ask(Incoming(surface=self.name, actor=actor, kind=IncomingKind.TAP,
                                         payload=value, thread=thread,
                                         place=place(team_of(body), channel)))
        if reply is None:
            return
        # only a deny reason has a form; any other answer is asked for in the thread
        deny_reason = value.startswith(f"{Verb.DENY_REASON.value}:")
        if reply.force_reply and deny_reason and await self._open_reason_modal(
                body, thread, channel, value):
            return
        await self._ephemeral(channel, actor.user_id, thread_ts, reply,
                              respond=respond if body.get("response_url") else None)

    async def _open_reason_modal(self, body: dict[str, Any], thread: str | None,
                                 channel: str, button: str) -> bool:
        """Ask for a deny reason in a modal; its submission names the button that opened it
        (so that it can only ever deny that approval)."""
        trigger_id = body.get("trigger_id")
        if not trigger_id:
            return False
        view = {
            "type": "modal", "callback_id": REASON_VIEW,
            "private_metadata": json.dumps({"thread": thread, "channel": channel,
                                            "button": button}),
            "title": {"type": "plain_text", "text": "Deny with reason"},
            "submit": {"type": "plain_text", "text": "Deny"},
            "close": {"type": "plain_text", "text": "Cancel"},
            "blocks": [{
                "type": "input", "block_id": "reason",
                "label": {"type": "plain_text", "text": "Reason (sent to the agent)"},
                "element": {"type": "plain_text_input", "action_id": "text",
                            "multiline": True},
            }],
        }
        try:
            await call(self.client.views_open(trigger_id=trigger_id, view=view))
        except (SurfaceError, SurfaceRetry, SurfaceUnavailable) as e:
            log.info("could not open the reason modal (%s): asking in the thread", e)
            return False
        return True

    async def _on_reason(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        user = body.get("user") or {}
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        values = (view.get("state") or {}).get("values") or {}
        reason = str(((values.get("reason") or {}).get("text") or {}).get("value") or "")
        actor = self._actor(str(user.get("id", "")), user.get("username") or user.get("name"))
        thread = meta.get("thread")
        channel = str(meta.get("channel") or "")
        reply = await self._ask(Incoming(surface=self.name, actor=actor,
                                         kind=IncomingKind.REASON, text=reason, thread=thread,
                                         payload=str(meta.get("button") or ""),
                                         place=place(team_of(body), channel)))
        channel = channel or self.channel
        thread_ts = json.loads(thread)["t"] if thread else None
        if reply is not None:
            await self._ephemeral(channel, actor.user_id, thread_ts, reply)

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("subtype") not in (None, "thread_broadcast", "file_share") \
                or event.get("bot_id"):
            return  # edits, joins, bots (ourselves included)
        if not event.get("user"):
            return
        channel = str(event.get("channel") or "")
        team = str(event.get("user_team") or event.get("team") or body.get("team_id") or "")
        text = str(event.get("text") or "")
        thread_ts = event.get("thread_ts")
        thread = thread_ref(channel, thread_ts) if thread_ts else None
        actor = self._actor(str(event["user"]), None)
        files = files_of(event) if event.get("subtype") == "file_share" else ()
        kind = IncomingKind.COMMAND if text.startswith("/") and not files else IncomingKind.TEXT
        reply = await self._ask(Incoming(surface=self.name, actor=actor, kind=kind, text=text,
                                         thread=thread, place=place(team, channel),
                                         files=files))
        if reply is not None and reply.delete_message:
            # a bot token cannot delete a person's message on Slack: the person must
            reply = replace(reply, text=f"{reply.text} Delete your message: it holds a secret "
                                        f"and Slack does not let the bot delete it.")
        if reply is not None:
            await self._ephemeral(channel, actor.user_id, thread_ts, reply)

    async def _ephemeral(self, channel: str, user: str, thread_ts: str | None,
                         reply: Reply, *, respond: AsyncRespond | None = None) -> None:
        """Answer only `user`: on a tap's `response_url` when it takes the answer (it does
        not count against chat.postEphemeral's 100 a minute, which a person tapping through
        a grouped card would spend), else with chat.postEphemeral."""
        if reply.in_thread:
            await self._post_in_thread(reply.in_thread, reply)
            return
        shown = slack_commands(reply.text)
        if respond is not None:
            try:
                answered = await respond(
                    text=_fallback(shown), blocks=blocks_for(shown, reply.buttons),
                    response_type="ephemeral", replace_original=False)
                if answered.status_code == 200:
                    return
                log.info("the response_url refused the answer to %s (%s): posting it", user,
                         answered.status_code)
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                log.info("could not answer %s on the response_url (%s): posting it", user, e)
        try:
            await call(self.client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread_ts, text=_fallback(shown),
                blocks=blocks_for(shown, reply.buttons),
            ))
        except (SurfaceError, SurfaceRetry, SurfaceUnavailable) as e:
            log.warning("could not answer %s in %s: %s", user, channel, e)

    async def _post_in_thread(self, thread: str, reply: Reply) -> None:
        try:
            if self.throttle is not None:
                await self.throttle(thread)
            await self.post(thread, Card(slack_commands(reply.text), reply.buttons),
                            notify=False)
        except (SurfaceError, SurfaceRetry, SurfaceUnavailable, ThreadGone) as e:
            log.warning("could not answer in thread %s: %s", thread, e)

