"""`agent-bridge setup slack`: the app manifest, both tokens checked, the channel found by name.

1. The manifest to paste at api.slack.com/apps (scopes, events, interactivity, Socket Mode,
   the slash commands the bridge answers), and where the two tokens come from.
2. The tokens come from the environment variables the daemon reads (`[slack] bot_token_env`,
   `app_token_env`): the bot token is checked with auth.test, the app token with
   apps.connections.open (no connection is made). Neither is ever written.
3. The channel is found by its name with conversations.list (`--channel`, else asked), and
   the bot's membership checked; people allowed to act come from `--user` (or are asked).
4. The change of `[slack]` is shown as a diff and written once the person agrees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bridge.config import SlackConfig
from daemon import paths
from daemon.errors import SetupFailed
from daemon.setup_common import Terminal, apply_change, config_target, hide

_DEFAULTS = SlackConfig(channel="C0")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
_MEMBER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
TIMEOUT = 10  # seconds per Web API call
MAX_PAGES = 50  # conversations.list pages of 200: a workspace of 10,000 channels

# The bridge's Slack app. `channels:read`/`groups:read` let setup find the channel by name.
MANIFEST: dict[str, Any] = {
    "display_information": {
        "name": "agent-bridge",
        "description": "Steer coding agents on your machines; approve their tool calls "
                       "from Slack.",
        "background_color": "#2c2d30",
    },
    "features": {
        "bot_user": {"display_name": "agent-bridge", "always_online": True},
        "slash_commands": [
            {"command": "/agent", "description": "Start and steer coding-agent sessions",
             "usage_hint": "new PROJECT PROMPT | sessions [all] | resume ID [PROMPT] | "
                           "stop|archive|unarchive|status|diff ID | help",
             "should_escape": False},
            {"command": "/sessions", "description": "List the open sessions (all = with "
                                                    "archived)",
             "usage_hint": "[all]", "should_escape": False},
            {"command": "/resume", "description": "Continue a session, even after a restart "
                                                  "or from the archive",
             "usage_hint": "ID [PROMPT]", "should_escape": False},
        ],
    },
    "oauth_config": {"scopes": {"bot": [
        "chat:write", "commands", "files:write", "files:read", "channels:history",
        "groups:history", "channels:read", "groups:read",
    ]}},
    "settings": {
        "event_subscriptions": {"bot_events": ["message.channels", "message.groups"]},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": True,
        "token_rotation_enabled": False,
    },
}


def print_manifest(terminal: Terminal) -> None:
    terminal.say("1. At https://api.slack.com/apps: Create New App → From an app manifest, "
                 "pick the workspace, choose JSON and paste:")
    terminal.say(json.dumps(MANIFEST, indent=2))
    terminal.say("2. Basic Information → App-Level Tokens → Generate Token and Scopes, with "
                 "connections:write: that is the app token (xapp-…).")
    terminal.say("3. Install App → Install to Workspace: the Bot User OAuth Token (xoxb-…).")


async def setup_slack(terminal: Terminal, *, config_arg: str | None, env: Mapping[str, str],
                      base_url: str | None = None, yes: bool = False,
                      channel: str | None = None, users: Sequence[str] = (),
                      manifest_only: bool = False) -> int:
    print_manifest(terminal)
    if manifest_only:
        return 0
    path = config_target(config_arg, env)
    current = paths.read_config(str(path), env)[0].slack if path.exists() else None
    settings = current or _DEFAULTS
    socket = settings.mode == "socket"
    bot_token = env.get(settings.bot_token_env, "").strip()
    app_token = env.get(settings.app_token_env, "").strip() if socket else ""
    missing = [name for name, value in ((settings.bot_token_env, bot_token),
                                        (settings.app_token_env, app_token if socket else "-"))
               if not value]
    if missing:
        exports = " ".join(f"{name}=…" for name in missing)
        raise SetupFailed(f"{' and '.join('$' + n for n in missing)} not set. Create the app "
                          f"as above, then `export {exports}` and run this again (the tokens "
                          "stay in the environment, never in the config)")
    for given in users:
        if not _MEMBER_ID.fullmatch(given):
            raise SetupFailed(f"--user {given!r} is not a member id: it looks like U0…, found "
                              "in the person's profile under ⋮ → Copy member ID")
    base = base_url or settings.base_url
    client = AsyncWebClient(token=bot_token, base_url=base, timeout=TIMEOUT)
    try:
        bot_name = await _check_bot_token(terminal, client, settings.bot_token_env)
        if socket:
            await _check_app_token(terminal, base, app_token, settings.app_token_env)
        if not channel:
            channel = (terminal.ask("The channel for the sessions (its name, or its id C0…): ")
                       or "").strip()
        if not channel:
            raise SetupFailed("no channel given: pass --channel NAME")
        channel_id, findings = await _find_channel(client, channel, bot_name)
    except SlackApiError as e:
        raise SetupFailed(f"Slack said: {e.response.get('error')}") from e
    except (SlackClientError, OSError, TimeoutError) as e:
        raise SetupFailed(f"cannot reach Slack at {base}: "
                          f"{hide(str(e), bot_token, app_token)}") from e
    allowed = list(current.allowed_user_ids) if current else []
    people = list(users)
    if not people and not yes and not allowed:
        answer = terminal.ask("Your member id, to be allowed to act (U0…: profile → ⋮ → Copy "
                              "member ID; Enter to skip): ") or ""
        if _MEMBER_ID.fullmatch(answer.strip()):
            people.append(answer.strip())
    allowed += [p for p in people if p not in allowed]
    if not allowed:
        findings.append("nobody may act yet (allowed_user_ids is empty): run again with "
                        "--user U0… (profile → ⋮ → Copy member ID)")
    values: dict[str, str | list[str]] = {"channel": channel_id, "allowed_user_ids": allowed}
    if base_url:
        values["base_url"] = base
    if findings:
        terminal.say("What is missing:")
        for finding in findings:
            terminal.say(f"  ✗ {finding}")
    if apply_change(terminal, path, "slack", values, yes=yes):
        tokens = f"${settings.bot_token_env}" + (f" and ${settings.app_token_env}"
                                                 if socket else "")
        terminal.say(f"Next: start the daemon with {tokens} in its environment "
                     "(`agent-bridge run`, or `agent-bridge service install`), then type "
                     "`/agent help` in the channel.")
    return 0


async def _check_bot_token(terminal: Terminal, client: AsyncWebClient, variable: str) -> str:
    try:
        auth = await client.auth_test()
    except SlackApiError as e:
        error = e.response.get("error")
        hint = ("that is an app-level token; the bot token starts with xoxb-"
                if str(client.token or "").startswith("xapp-") else
                "copy the Bot User OAuth Token (xoxb-…) again from Install App")
        raise SetupFailed(f"Slack refused the bot token in ${variable} ({error}): {hint}") from e
    name = str(auth.get("user") or "agent-bridge")
    terminal.say(f"Bot token (${variable}): @{name} in {auth.get('team')}, it works.")
    return name


async def _check_app_token(terminal: Terminal, base: str, token: str, variable: str) -> None:
    client = AsyncWebClient(token=token, base_url=base, timeout=TIMEOUT)
    try:
        await client.apps_connections_open(app_token=token)
    except SlackApiError as e:
        error = e.response.get("error")
        hint = {
            "not_allowed_token_type": "it is not an app-level token: make one under Basic "
                                      "Information → App-Level Tokens (xapp-…)",
            "missing_scope": "give the app-level token the connections:write scope",
        }.get(str(error), "copy the app-level token (xapp-…) again from Basic Information → "
                          "App-Level Tokens")
        raise SetupFailed(f"Slack refused the app token in ${variable} ({error}): {hint}"
                          ) from e
    terminal.say(f"App token (${variable}): Socket Mode opens, it works.")


async def _find_channel(client: AsyncWebClient, given: str,
                        bot_name: str) -> tuple[str, list[str]]:
    """The channel's id, and what is missing there."""
    wanted = given.strip().lstrip("#")
    by_id = _CHANNEL_ID.fullmatch(wanted) is not None
    cursor = None
    try:
        for _ in range(MAX_PAGES):
            page = await client.conversations_list(
                types="public_channel,private_channel", exclude_archived=True, limit=200,
                cursor=cursor)
            for info in page.get("channels") or []:
                if info.get("id") == wanted or info.get("name") == wanted.lower():
                    findings = [] if info.get("is_member") else [
                        f"the bot is not in #{info.get('name')}: type `/invite @{bot_name}` "
                        "there (it cannot post otherwise)"]
                    return str(info["id"]), findings
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
    except SlackApiError as e:
        if e.response.get("error") != "missing_scope":
            raise
        if by_id:
            return wanted, [f"the bot may not list channels, so whether it is in {wanted} is "
                            "unchecked: add channels:read and groups:read to the app's scopes"]
        raise SetupFailed("the bot may not list channels (missing_scope): add channels:read "
                          "and groups:read to the app's Bot Token Scopes and reinstall it, or "
                          "pass --channel with the channel's id (C0…, at the bottom of its "
                          "details)") from e
    raise SetupFailed(f"no channel {'' if by_id else '#'}{wanted} that the bot can see: check "
                      "the name; a private channel shows only once the bot is in it "
                      f"(`/invite @{bot_name}` there)")
