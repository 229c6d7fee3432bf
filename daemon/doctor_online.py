"""doctor's online checks: do the tokens work, and can the bot do its job in the chat.

Each check has a short deadline. A platform that cannot be reached is a warning (offline,
or behind a proxy: `run` would retry); a platform that answers "no" is a failure. Secrets
never appear in what is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping

from bridge.config import Config, SlackConfig, TelegramConfig
from daemon.doctor import Check
from daemon.setup_common import hide

TIMEOUT = 5.0  # seconds per call
# Slack errors that say the token itself is wrong (others: the call, or Slack, had a problem)
_REFUSED = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked",
                      "token_expired", "not_allowed_token_type", "missing_scope"})


async def online_checks(config: Config, env: Mapping[str, str]) -> list[Check]:
    work: list[Awaitable[list[Check]]] = []
    if config.telegram is not None and env.get(config.telegram.token_env):
        work.append(_telegram(config.telegram, env[config.telegram.token_env].strip()))
    if config.slack is not None and env.get(config.slack.bot_token_env):
        work.append(_slack_bot(config.slack, env[config.slack.bot_token_env].strip()))
        if config.slack.mode == "socket" and env.get(config.slack.app_token_env):
            work.append(_slack_app(config.slack, env[config.slack.app_token_env].strip()))
    results = await asyncio.gather(*work)
    return [check for checks in results for check in checks]


async def _telegram(config: TelegramConfig, token: str) -> list[Check]:
    from telegram import Bot, ChatMemberAdministrator
    from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, TelegramError
    from telegram.request import HTTPXRequest

    from daemon.setup_telegram import RIGHTS

    name = "telegram bot"
    variable = f"${config.token_env}"

    def request() -> HTTPXRequest:
        return HTTPXRequest(connect_timeout=TIMEOUT, read_timeout=TIMEOUT,
                            write_timeout=TIMEOUT, pool_timeout=TIMEOUT)

    bot = Bot(token, base_url=config.base_url, base_file_url=config.base_file_url,
              request=request(), get_updates_request=request())
    try:
        try:
            await bot.initialize()  # getMe
        except InvalidToken:
            return [Check(name, "fail", f"Telegram refuses the token in {variable}: copy it "
                                        "again from @BotFather (/mybots → API Token)")]
        except NetworkError as e:
            return [Check(name, "warn", f"could not check {variable}: {config.base_url} did "
                                        f"not answer ({hide(str(e), token)}); offline?")]
        username = bot.bot.username
        checks = [Check(name, "ok", f"@{username}: the token in {variable} works")]
        where = f"chat {config.chat_id}"
        try:
            chat = await bot.get_chat(config.chat_id)
        except (BadRequest, Forbidden) as e:  # PTB makes them NetworkErrors: Telegram said no
            return [*checks, Check("telegram chat", "fail",
                                   f"telegram.chat_id: @{username} cannot reach {where} "
                                   f"({hide(str(e), token)}): add the bot there, or run "
                                   "`agent-bridge setup telegram`")]
        except NetworkError as e:
            return [*checks, Check("telegram chat", "warn",
                                   f"could not check {where}: {hide(str(e), token)}")]
        except TelegramError as e:
            return [*checks, Check("telegram chat", "fail",
                                   f"telegram.chat_id: @{username} cannot reach {where} "
                                   f"({hide(str(e), token)}): add the bot there, or run "
                                   "`agent-bridge setup telegram`")]
        missing: list[str] = []
        if chat.type == "supergroup" and not chat.is_forum:
            missing.append("Topics are off (sessions live in reply chains): group settings "
                           "→ Topics")
        if chat.type in ("group", "supergroup"):
            member = await bot.get_chat_member(chat.id, bot.bot.id)
            if not isinstance(member, ChatMemberAdministrator):
                missing.append(f"@{username} is not an admin: make it one with "
                               + " and ".join(label for _, label, _ in RIGHTS))
            else:
                missing += [f"@{username} may not {label.lower()}, so {why}"
                            for attribute, label, why in RIGHTS
                            if not getattr(member, attribute, False)]
        title = chat.title or "the private chat"
        if missing:
            return [*checks, Check("telegram chat", "warn", f"{title}: " + "; ".join(missing))]
        return [*checks, Check("telegram chat", "ok", f"{title} ({chat.type})")]
    except TelegramError as e:
        return [Check(name, "fail", f"Telegram said: {hide(str(e), token)}")]
    finally:
        with contextlib.suppress(TelegramError):
            await bot.shutdown()


async def _slack_call(name: str, variable: str, config: SlackConfig, token: str,
                      method: str) -> tuple[Check | None, dict[str, object]]:
    import aiohttp
    from slack_sdk.errors import SlackApiError, SlackClientError
    from slack_sdk.web.async_client import AsyncWebClient

    client = AsyncWebClient(token=token, base_url=config.base_url, timeout=int(TIMEOUT))
    try:
        if method == "auth.test":
            response = await client.auth_test()
        else:
            response = await client.apps_connections_open(app_token=token)
        return None, dict(response.data) if isinstance(response.data, dict) else {}
    except SlackApiError as e:
        error = str(e.response.get("error"))
        if error in _REFUSED:
            return Check(name, "fail", f"Slack refuses the token in {variable} ({error}): "
                                       "`agent-bridge setup slack` says where each token "
                                       "comes from"), {}
        return Check(name, "warn", f"could not check {variable}: Slack answered {error}"), {}
    except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as e:
        return Check(name, "warn", f"could not check {variable}: {config.base_url} did not "
                                   f"answer ({hide(str(e) or type(e).__name__, token)}); "
                                   "offline?"), {}


async def _slack_bot(config: SlackConfig, token: str) -> list[Check]:
    variable = f"${config.bot_token_env}"
    problem, auth = await _slack_call("slack bot", variable, config, token, "auth.test")
    if problem is not None:
        return [problem]
    return [Check("slack bot", "ok", f"@{auth.get('user')} in {auth.get('team')}: the token in "
                                     f"{variable} works")]


async def _slack_app(config: SlackConfig, token: str) -> list[Check]:
    variable = f"${config.app_token_env}"
    problem, _ = await _slack_call("slack app", variable, config, token, "apps.connections.open")
    if problem is not None:
        return [problem]
    return [Check("slack app", "ok", f"Socket Mode opens with the token in {variable}")]
