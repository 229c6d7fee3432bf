"""`agent-bridge setup telegram`: pair the bot with a chat and a person, without reading JSON.

1. The token comes from the environment variable the daemon reads (`[telegram] token_env`,
   default TELEGRAM_BOT_TOKEN), checked with getMe. It is never written anywhere.
2. A one-time code is printed; the person sends `/pair CODE` where the sessions should go (a
   group with topics, or a private chat with the bot). getUpdates is polled until it comes;
   the chat id and the person's user id are taken from that message only. Any other
   message is skipped, a `/pair` with a wrong code is ignored and said so.
3. The chat is checked: topics on, the bot an admin that may manage topics and delete messages
   (getChat, getChatMember); what is missing is named with how to fix it.
4. The change of `[telegram]` is shown as a diff and written once the person agrees.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from telegram import Bot, ChatMemberAdministrator, Message
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
)

from bridge.config import Config, TelegramConfig
from daemon import paths
from daemon.errors import SetupFailed
from daemon.setup_common import Terminal, apply_change, config_target, hide

_DEFAULTS = TelegramConfig(chat_id=0)
PAIR_TIMEOUT = 600.0
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a screen
_PAIR = re.compile(r"/pair(?:@(\w+))?(?:\s+(\S+))?\s*", re.IGNORECASE)
# the admin rights the bridge uses, and what happens without each
RIGHTS = (
    ("can_manage_topics", "Manage topics", "sessions live in reply chains, not a topic each"),
    ("can_delete_messages", "Delete messages",
     "a secret typed as an answer stays in the chat"),
)


def pairing_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))


def file_url(base_url: str) -> str:
    """The file endpoint that goes with a Bot API `base_url` (…/bot → …/file/bot)."""
    head, sep, _ = base_url.rpartition("/bot")
    return f"{head}/file/bot" if sep else base_url.rstrip("/") + "/file/bot"


async def setup_telegram(terminal: Terminal, *, config_arg: str | None, env: Mapping[str, str],
                         base_url: str | None = None, yes: bool = False,
                         timeout: float = PAIR_TIMEOUT) -> int:
    path = config_target(config_arg, env)
    current = _current(env, path)
    token_env = (current or _DEFAULTS).token_env
    token = env.get(token_env, "").strip()
    if not token:
        raise SetupFailed(f"${token_env} is not set. Create a bot with @BotFather (/newbot), "
                          f"then `export {token_env}=<the token it gives>` and run this again "
                          "(the token stays in the environment, never in the config)")
    base = base_url or (current or _DEFAULTS).base_url
    files = file_url(base_url) if base_url else (current or _DEFAULTS).base_file_url
    bot = Bot(token, base_url=base, base_file_url=files)
    try:
        try:
            await bot.initialize()  # getMe
        except InvalidToken as e:
            raise SetupFailed(f"Telegram refused the token in ${token_env} ({hide(str(e), token)})"
                              ": copy it again from @BotFather (/mybots → the bot → API Token)"
                              ) from e
        except NetworkError as e:
            raise SetupFailed(f"cannot reach the Bot API at {base}: {hide(str(e), token)}; "
                              "check the network (or --base-url)") from e
        me = bot.bot
        terminal.say(f"Bot @{me.username} ({me.first_name}): the token in ${token_env} works.")
        message = await _wait_for_pairing(terminal, bot, me.username or "", timeout)
        findings = await _check_chat(bot, message, me.id, me.username or "")
    except TelegramError as e:
        raise SetupFailed(f"Telegram said: {hide(str(e), token)}") from e
    finally:
        await _close(bot)
    user = message.from_user
    assert user is not None  # _wait_for_pairing takes only messages from a person
    allowed = list(current.allowed_user_ids) if current else []
    if user.id not in allowed:
        allowed.append(user.id)
    values: dict[str, int | str | list[int]] = {"chat_id": message.chat.id,
                                                 "allowed_user_ids": allowed}
    if base_url:
        values |= {"base_url": base, "base_file_url": files}
    if findings:
        terminal.say("What is missing (the config works without it, with less):")
        for finding in findings:
            terminal.say(f"  ✗ {finding}")
    written = apply_change(terminal, path, "telegram", values, yes=yes)
    if written:
        terminal.say(f"Next: start the daemon with ${token_env} in its environment "
                     "(`agent-bridge run`, or `agent-bridge service install`), then send "
                     "`/new PROJECT what to do` in the chat.")
    return 0


def _current(env: Mapping[str, str], path: Path) -> TelegramConfig | None:
    """The [telegram] section there is now (None: no file or no section). A file that does
    not load is refused: setup would only add to the confusion."""
    if not path.exists():
        return None
    config: Config = paths.read_config(str(path), env)[0]
    return config.telegram


async def _wait_for_pairing(terminal: Terminal, bot: Bot, username: str,
                            timeout: float) -> Message:
    code = pairing_code()
    terminal.say("Now, in Telegram, choose where the sessions go:")
    terminal.say(f"  • a group with Topics on (a topic per session): add @{username}, make it "
                 "an admin with Manage topics and Delete messages, and send in the group:")
    terminal.say(f"        /pair@{username} {code}")
    terminal.say(f"  • or a private chat: open https://t.me/{username}, press Start, and send:")
    terminal.say(f"        /pair {code}")
    terminal.say(f"Waiting for it (up to {timeout:.0f} s; Ctrl-C stops)…")
    started = time.time()
    deadline = time.monotonic() + timeout
    offset: int | None = None
    while (remaining := deadline - time.monotonic()) > 0:
        poll = int(min(remaining, 5))
        try:
            updates = await bot.get_updates(offset=offset, timeout=poll,
                                            read_timeout=poll + 10)
        except Conflict as e:
            raise SetupFailed(_conflict(str(e))) from e
        except (BadRequest, Forbidden):
            raise  # an answer, not a network problem (PTB derives them from NetworkError)
        except NetworkError as e:
            terminal.say(f"(Telegram did not answer: {e}; trying again)")
            await asyncio.sleep(1)
            continue
        for update in updates:
            offset = update.update_id + 1
            message = update.message
            if message is None or message.text is None or message.from_user is None:
                continue
            if message.date.timestamp() < started - 5:  # from before this setup
                continue
            found = _PAIR.fullmatch(message.text.strip())
            if found is None or (message.from_user.is_bot and message.sender_chat is None):
                continue
            addressed, given = found.group(1), found.group(2) or ""
            if addressed and addressed.lower() != username.lower():
                continue  # for another bot in the same group
            where = _where(message)
            if not hmac.compare_digest(given.upper().encode(), code.encode()):
                terminal.say(f"Ignored /pair with a wrong code from {_who(message)} in {where}: "
                             f"send the code printed above ({code}).")
                continue
            if message.sender_chat is not None:
                terminal.say(f"Ignored /pair sent anonymously (as {where}): agent-bridge needs "
                             "your own user id. Turn off \"Remain anonymous\" in your admin "
                             "rights, or send it from a private chat.")
                continue
            await bot.get_updates(offset=offset, timeout=0)  # confirmed: not seen again
            terminal.say(f"Paired: {where} (chat id {message.chat.id}), person "
                         f"{_who(message)} (user id {message.from_user.id}).")
            return message
    raise SetupFailed(f"no `/pair {code}` arrived within {timeout:.0f} s. Check that the bot "
                      "is in the chat (and that the code is sent as it was printed), then run "
                      "setup again: each run prints a new code")


def _conflict(error: str) -> str:
    if "webhook" in error.lower():
        return ("the bot has a webhook set, and Telegram does not hand out messages with "
                "getUpdates while it is (agent-bridge in webhook mode, or another program, set "
                "it). Set [telegram] chat_id and allowed_user_ids by hand, or remove the "
                "webhook (deleteWebhook) and run setup again")
    return ("another program is reading this bot's messages (is `agent-bridge run` running "
            "with this token?). Stop it while setup runs, then start it again")


def _who(message: Message) -> str:
    user = message.from_user
    if user is None:
        return "someone"
    return f"@{user.username}" if user.username else user.full_name


def _where(message: Message) -> str:
    chat = message.chat
    if chat.type == "private":
        return "a private chat"
    return f"\"{chat.title}\""


async def _check_chat(bot: Bot, message: Message, bot_id: int, username: str) -> list[str]:
    """What the chat lacks for the bridge to work fully, each with how to fix it."""
    findings: list[str] = []
    chat = await bot.get_chat(message.chat.id)
    name = f"\"{chat.title}\""
    if chat.type == "group":
        findings.append(f"{name} is a basic group: it has no topics, so sessions live in "
                        "reply chains. Turning Topics on (group settings → Topics) makes it a "
                        "supergroup with a new id: run `agent-bridge setup telegram` again then")
    elif chat.type == "supergroup" and not chat.is_forum:
        findings.append(f"Topics are off in {name}, so sessions live in reply chains. For a "
                        "topic per session: group settings → Topics → on (the id stays)")
    if chat.type in ("group", "supergroup"):
        member = await bot.get_chat_member(chat.id, bot_id)
        if not isinstance(member, ChatMemberAdministrator):
            rights = " and ".join(label for _, label, _ in RIGHTS)
            findings.append(f"@{username} is not an admin in {name} (it is {member.status}): "
                            f"group settings → Administrators → Add Admin → @{username}, with "
                            f"{rights}. An admin also sees every reply in the topics")
        else:
            for attribute, label, why in RIGHTS:
                if not getattr(member, attribute, False):
                    findings.append(f"@{username} may not {label.lower()} in {name}, so "
                                    f"{why}: group settings → Administrators → @{username} → "
                                    f"turn on {label}")
    try:
        thread = message.message_thread_id if message.is_topic_message else None
        await bot.send_message(chat.id, "agent-bridge is paired with this chat: sessions "
                               "will show up here.", message_thread_id=thread,
                               reply_to_message_id=message.message_id)
    except TelegramError as e:
        findings.append(f"@{username} cannot post in {name} ({e}): let members (or the bot) "
                        "send messages there")
    return findings


async def _close(bot: Bot) -> None:
    with contextlib.suppress(TelegramError):  # nothing to keep: the setup is over either way
        await bot.shutdown()
