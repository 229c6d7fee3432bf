"""The CLI's `setup telegram|slack` and `service install|uninstall|status|logs`.

Parsers here, modules imported only when their command runs: every other command starts as
fast as before.
"""

from __future__ import annotations

import argparse
import asyncio
import os

SERVICE_ACTIONS = ("install", "uninstall", "status", "logs")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                 common: argparse.ArgumentParser) -> None:
    text = "connect a chat: check the tokens, find the chat, write the config"
    setup = sub.add_parser("setup", help=text, description=text, parents=[common])
    platforms = setup.add_subparsers(dest="platform", required=True, metavar="PLATFORM")
    text = ("pair a Telegram chat: the token from $TELEGRAM_BOT_TOKEN, then `/pair CODE` "
            "sent in the chat")
    p = platforms.add_parser("telegram", help=text, description=text, parents=[common])
    _shared(p, "the Bot API endpoint (default: the config's, else api.telegram.org/bot)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="how long to wait for the /pair message (default 600)")
    text = ("connect a Slack channel: the app manifest, both tokens checked, the channel "
            "found by name")
    p = platforms.add_parser("slack", help=text, description=text, parents=[common])
    _shared(p, "the Web API endpoint (default: the config's, else slack.com/api/)")
    p.add_argument("--channel", help="the channel's name (#name) or id (C0…)")
    p.add_argument("--user", action="append", default=[], metavar="MEMBER_ID",
                   help="a person allowed to act (U0…: profile → ⋮ → Copy member ID); "
                        "may be repeated")
    p.add_argument("--manifest", action="store_true", help="only print the app manifest")
    text = "run the daemon as a service of your user (systemd on Linux, launchd on macOS)"
    service = sub.add_parser("service", help=text, description=text, parents=[common])
    service.add_argument("action", choices=SERVICE_ACTIONS)
    service.add_argument("--dry-run", action="store_true",
                         help="print the files it would write and the commands it would run")
    service.add_argument("--follow", "-f", action="store_true", help="logs: keep following")


def _shared(p: argparse.ArgumentParser, base_url_help: str) -> None:
    p.add_argument("--base-url", help=base_url_help)
    p.add_argument("--yes", "-y", action="store_true",
                   help="write the config without asking")


def main(args: argparse.Namespace) -> int:
    if args.command == "setup":
        from daemon.setup_common import console

        terminal = console()
        if args.platform == "telegram":
            from daemon.setup_telegram import setup_telegram

            return asyncio.run(setup_telegram(
                terminal, config_arg=args.config, env=os.environ, base_url=args.base_url,
                yes=args.yes, timeout=args.timeout))
        from daemon.setup_slack import setup_slack

        return asyncio.run(setup_slack(
            terminal, config_arg=args.config, env=os.environ, base_url=args.base_url,
            yes=args.yes, channel=args.channel, users=args.user, manifest_only=args.manifest))
    from daemon.service import service

    return service(args.action, config_arg=args.config, env=os.environ, dry_run=args.dry_run,
                   follow=args.follow)
