"""What a config reload (SIGHUP) may change while the daemon runs, and what waits for a restart.

Applied at once: `agents`, `default_agent` and `projects` (for sessions started or resumed
from then on), `approvals` (timeouts and reminders of what waits, too), `digest` and
`archive` (the schedules), and `daemon.log_level`. Everything else is read once at start —
the chat surfaces and their tokens, the hosts and their connections, the redaction patterns,
the state directory and the process limits — and keeps its old value until the next start;
`plan_reload` names each such key that changed, so the log can say so.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

from bridge.config import Config
from bridge.errors import ConfigError

LIVE_SECTIONS = ("agents", "default_agent", "projects", "approvals", "digest", "archive")
RESTART_SECTIONS = ("daemon", "telegram", "slack", "hosts", "redact")
LIVE_DAEMON_FIELDS = ("log_level",)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadPlan:
    """`config` is what the daemon runs with from now on: the new file's live parts and the
    old restart-only ones. `applied` and `needs_restart` name the keys that changed."""

    config: Config
    applied: tuple[str, ...]
    needs_restart: tuple[str, ...]


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    applied = [name for name in LIVE_SECTIONS if getattr(old, name) != getattr(new, name)]
    applied += [f"daemon.{name}" for name in LIVE_DAEMON_FIELDS
                if getattr(old.daemon, name) != getattr(new.daemon, name)]
    needs_restart: list[str] = []
    for name in RESTART_SECTIONS:
        needs_restart += _changed_keys(name, getattr(old, name), getattr(new, name))
    needs_restart = [k for k in needs_restart
                     if k not in {f"daemon.{f}" for f in LIVE_DAEMON_FIELDS}]
    kept = {name: getattr(old, name) for name in RESTART_SECTIONS}
    kept["daemon"] = replace(old.daemon, **{f: getattr(new.daemon, f)
                                            for f in LIVE_DAEMON_FIELDS})
    config = replace(new, **kept)
    _check_runnable(config)
    return ReloadPlan(config=config, applied=tuple(applied), needs_restart=tuple(needs_restart))


def _check_runnable(config: Config) -> None:
    """The live parts of the new file must work with the parts kept from the start: a
    project on a host, or routed to a surface, that only a restart would bring is refused
    (ConfigError, with its key), and the running config stays."""
    restart = "restart agent-bridge to use it (the running config is kept until then)"
    for i, project in enumerate(config.projects):
        key = f"projects[{i}]"
        if project.host != "local" and project.host not in config.hosts:
            raise ConfigError(f"{key}.host", f"host {project.host!r} is not one the daemon "
                                             f"connected at start; {restart}")
        if project.telegram_chat_id is not None and config.telegram is None:
            raise ConfigError(f"{key}.telegram_chat_id", "routes the project to Telegram, "
                                                         f"which is not running; {restart}")
        if project.slack_channel is not None and config.slack is None:
            raise ConfigError(f"{key}.slack_channel", "routes the project to Slack, which is "
                                                      f"not running; {restart}")


def _changed_keys(key: str, old: Any, new: Any) -> list[str]:
    """The dotted keys under `key` whose values differ (the section itself when it was
    added or removed, or is not a table of fields)."""
    if old == new:
        return []
    if is_dataclass(old) and is_dataclass(new) and type(old) is type(new):
        return [f"{key}.{f.name}" for f in fields(old)
                if getattr(old, f.name) != getattr(new, f.name)]
    if isinstance(old, dict) and isinstance(new, dict):
        return [f"{key}.{name}" for name in sorted(old.keys() | new.keys())
                if old.get(name) != new.get(name)]
    return [key]
