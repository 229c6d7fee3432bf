"""The typed configuration and its loader.

The schema is the dataclasses below; `parse_config()` walks a TOML document against them
and reports the first problem as a `ConfigError` naming the dotted key path
(`agents.claude.command: expected a list of strings, got str`). Unknown keys are errors
(a typo must not silently fall back to a default). Secrets never live here: sections name
the environment variable that holds them (`token_env`), and `require_secret()` reads it.
"""

from __future__ import annotations

import math
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Literal, TypeVar, get_args, get_origin

from bridge.errors import ConfigError

# Every pattern here is used with `fullmatch`: with `match`, `$` lets a trailing newline in.
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what a shell takes as a variable
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}|\[?[0-9A-Fa-f:.]+\]?")
_USER = re.compile(r"[^\s\x00-\x1f\x7f-\x9f]{1,256}")
_SLACK_CHANNEL = re.compile(r"[CG][A-Z0-9]{2,}")  # an id (C…, G…), not a #name
# a duration longer than this is a typo, and would overflow the event loop's timers
_LONGEST = 10 * 366 * 86400.0


class Duration(float):
    """Seconds, written in the config as "30m", "2h", "7d", "90s" or a number of seconds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonConfig:
    state_dir: str | None = None  # default: $XDG_STATE_HOME/agent-bridge
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    max_line_bytes: int = 8 * 1024 * 1024
    shutdown_grace: Duration = Duration(5)
    idle_exit: Duration = Duration(900)  # close an idle agent process after this long


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    protocol: Literal["claude", "codex", "acp"] = "claude"
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    approval_policy: str = "on-request"  # codex
    sandbox: str = "workspace-write"  # codex


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectConfig:
    name: str
    path: str
    agent: str | None = None
    host: str = "local"
    worktree: bool = False
    # the chat or channel this project's sessions go to (each with its own rate budget),
    # instead of the surface's own `chat_id` / `channel`
    telegram_chat_id: int | None = None
    slack_channel: str | None = None

    def chat_on(self, surface: str) -> str | None:
        """The chat this project is routed to on `surface` ("telegram", "slack"), as that
        surface names chats (`open_thread`'s `chat`); None: the surface's home chat."""
        if surface == "telegram" and self.telegram_chat_id is not None:
            return str(self.telegram_chat_id)
        if surface == "slack":
            return self.slack_channel
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalsConfig:
    timeout: Duration | None = Duration(1800)
    on_timeout: Literal["deny", "keep"] = "deny"
    remind_after: Duration | None = None
    # modes that never ask a person (bridge.modes.NEVER_ASK) may be chosen from chat
    allow_bypass_from_chat: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TelegramConfig:
    token_env: str = "TELEGRAM_BOT_TOKEN"
    chat_id: int
    allowed_user_ids: list[int] = field(default_factory=list)
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret_env: str = "TELEGRAM_WEBHOOK_SECRET"
    poll_timeout: int = 30
    # the per-session progress message during a turn; unset: on in a private chat only
    progress: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackConfig:
    bot_token_env: str = "SLACK_BOT_TOKEN"
    app_token_env: str = "SLACK_APP_TOKEN"
    signing_secret_env: str = "SLACK_SIGNING_SECRET"
    mode: Literal["socket", "http"] = "socket"
    channel: str
    allowed_user_ids: list[str] = field(default_factory=list)
    base_url: str = "https://slack.com/api/"
    http_listen: str = "127.0.0.1"
    http_port: int = 3000
    progress: bool | None = None  # the per-session progress message; unset: off


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestConfig:
    cron: str | None = "0 9 * * mon-fri"
    timezone: str = "UTC"
    stalled_after: Duration = Duration(1200)
    unreviewed_after: Duration = Duration(7200)


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveConfig:
    auto_after: Duration | None = Duration(7 * 86400)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostConfig:
    address: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RedactConfig:
    patterns: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadsConfig:
    max_bytes: int = 20 * 1024 * 1024  # a larger photo or file sent in a thread is refused


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceConfig:
    # a local speech-to-text program (argv); it gets the voice note's path as its last
    # argument and prints the text; empty: voice notes are not transcribed
    command: list[str] = field(default_factory=list)
    timeout: Duration = Duration(120)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    agents: dict[str, AgentConfig] = field(default_factory=dict)
    default_agent: str = "claude"
    projects: list[ProjectConfig] = field(default_factory=list)
    approvals: ApprovalsConfig = field(default_factory=ApprovalsConfig)
    telegram: TelegramConfig | None = None
    slack: SlackConfig | None = None
    digest: DigestConfig = field(default_factory=DigestConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    hosts: dict[str, HostConfig] = field(default_factory=dict)
    redact: RedactConfig = field(default_factory=RedactConfig)
    uploads: UploadsConfig = field(default_factory=UploadsConfig)
    voice: VoiceConfig = field(default_factory=VoiceConfig)

    def agent(self, name: str) -> AgentConfig:
        return self.agents[name]

    def project(self, name: str) -> ProjectConfig | None:
        for project in self.projects:
            if project.name == name:
                return project
        return None

    def routed_chats(self, surface: str) -> frozenset[str]:
        """The chats projects are routed to on `surface` (besides its home chat)."""
        return frozenset(chat for p in self.projects if (chat := p.chat_on(surface)))


DEFAULT_AGENTS: dict[str, AgentConfig] = {
    "claude": AgentConfig(protocol="claude", command=["claude"]),
    "codex": AgentConfig(protocol="codex", command=["codex", "app-server"]),
}

_HINTS = {
    "token": "secrets are read from the environment: set `token_env` to a variable name",
    "bot_token": "secrets are read from the environment: set `bot_token_env`",
    "app_token": "secrets are read from the environment: set `app_token_env`",
    "signing_secret": "secrets are read from the environment: set `signing_secret_env`",
}


def load_config(text: str, *, source: str = "config") -> Config:
    """Parse TOML text into a `Config`; every error names the key path."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("", f"{source} is not valid TOML: {e}") from e
    return parse_config(document)


def parse_config(document: Mapping[str, Any]) -> Config:
    config = _build(Config, document, "")
    agents = {**DEFAULT_AGENTS}
    for name, agent in config.agents.items():
        _check_name(f"agents.{name}", name)
        if not agent.command:
            base = DEFAULT_AGENTS.get(name)
            default_cmd = base.command if base and base.protocol == agent.protocol else []
            if not default_cmd:
                raise ConfigError(f"agents.{name}.command", "required (the argv that starts it)")
            agent = _replace(agent, command=list(default_cmd))
        agents[name] = agent
    config = _replace(config, agents=agents)
    if config.default_agent not in agents:
        raise ConfigError("default_agent", f"no agent named {config.default_agent!r}")
    seen: set[str] = set()
    for i, project in enumerate(config.projects):
        key = f"projects[{i}]"
        _check_name(f"{key}.name", project.name)
        if project.name in seen:
            raise ConfigError(f"{key}.name", f"project {project.name!r} is defined twice")
        seen.add(project.name)
        if project.agent is not None and project.agent not in agents:
            raise ConfigError(f"{key}.agent", f"no agent named {project.agent!r}")
        if project.host != "local" and project.host not in config.hosts:
            raise ConfigError(f"{key}.host", f"no host named {project.host!r} in [hosts]")
    for name in config.hosts:
        _check_name(f"hosts.{name}", name)
    for i, pattern in enumerate(config.redact.patterns):
        try:
            re.compile(pattern)
        except re.error as e:
            raise ConfigError(
                f"redact.patterns[{i}]", f"not a valid regular expression: {e}"
            ) from None
    telegram = config.telegram
    if telegram is not None and telegram.mode == "webhook" and not telegram.webhook_url:
            raise ConfigError("telegram.webhook_url", "required when mode = \"webhook\"")
    _check_values(config)
    return config


def _check_values(config: Config) -> None:
    """Values of the right type that still cannot work, found before anything starts."""
    if config.daemon.max_line_bytes < 1024:
        raise ConfigError("daemon.max_line_bytes", "at least 1024 bytes")
    if config.uploads.max_bytes < 1:
        raise ConfigError("uploads.max_bytes", "at least 1 byte")
    if config.voice.command and not config.voice.command[0].strip():
        raise ConfigError("voice.command", "the first element must name a program")
    for i, project in enumerate(config.projects):
        key = f"projects[{i}].path"
        if project.host == "local" and not project.path.startswith(("/", "~")):
            raise ConfigError(key, f"{project.path!r} is relative: it would depend on the "
                                   "directory the daemon was started in; write it absolute "
                                   "or from ~")
        if project.host != "local" and not project.path.startswith("/"):
            raise ConfigError(key, f"{project.path!r} must be absolute on host "
                                   f"{project.host!r} (~ is not expanded there)")
        _check_routes(config, i, project)
    for name, agent in config.agents.items():
        _check_env(f"agents.{name}.env", agent.env)
    for name, host in config.hosts.items():
        _check_env(f"hosts.{name}.env", host.env)
    ports: list[tuple[str, int]] = []  # (key, port) of the sections that are configured
    if config.telegram is not None:
        ports.append(("telegram.webhook_port", config.telegram.webhook_port))
        if config.telegram.poll_timeout < 0:
            raise ConfigError("telegram.poll_timeout", "cannot be negative")
    if config.slack is not None:
        ports.append(("slack.http_port", config.slack.http_port))
    for name, host in config.hosts.items():
        key = f"hosts.{name}"
        if not 1 <= host.port <= 65535:
            raise ConfigError(f"{key}.port", f"{host.port} is not a port number (1-65535)")
        if not _HOST.fullmatch(host.address):
            raise ConfigError(f"{key}.address", f"{host.address!r} is not a host name or "
                                                "an IP address")
        if host.user is not None and not _USER.fullmatch(host.user):
            raise ConfigError(f"{key}.user", f"{host.user!r} is not a user name (no spaces or "
                                             "control characters)")
        for field_name, value in (("key_file", host.key_file),
                                  ("known_hosts", host.known_hosts)):
            if value is not None and not value.startswith(("/", "~")):
                raise ConfigError(f"{key}.{field_name}", f"{value!r} is relative: write it "
                                                         "absolute or from ~")
    for key, port in ports:
        if not 0 <= port <= 65535:
            raise ConfigError(key, f"{port} is not a port number (0-65535)")


def _check_routes(config: Config, i: int, project: ProjectConfig) -> None:
    """A project routed to a chat: the chat is one the platform could have, on a surface
    that is configured."""
    key = f"projects[{i}]"
    chat = project.telegram_chat_id
    if chat is not None:
        if config.telegram is None:
            raise ConfigError(f"{key}.telegram_chat_id", "routes the project to Telegram, "
                                                         "but there is no [telegram] section")
        if chat == 0:
            raise ConfigError(f"{key}.telegram_chat_id", "0 is not a chat id: a group's is "
                                                         "negative (-100…), a person's positive")
    channel = project.slack_channel
    if channel is not None:
        if config.slack is None:
            raise ConfigError(f"{key}.slack_channel", "routes the project to Slack, but there "
                                                      "is no [slack] section")
        if not _SLACK_CHANNEL.fullmatch(channel):
            raise ConfigError(f"{key}.slack_channel",
                              f"{channel!r} is not a channel id: write the id (C0…), found at "
                              "the bottom of the channel's details, not its #name")


def _check_env(key: str, env: Mapping[str, str]) -> None:
    """Variables given to an agent: on a host they go into a shell command line, so a name
    must be a plain identifier (the value is quoted); no NUL anywhere (no process takes it)."""
    for name, value in env.items():
        if not _ENV_NAME.fullmatch(name):
            shown = name.encode("unicode_escape").decode("ascii").replace('"', '\\"')
            raise ConfigError(key, f'"{shown}" is not a valid environment '
                                   "variable name: use letters, digits and _, not starting "
                                   "with a digit")
        if "\0" in value:
            raise ConfigError(f"{key}.{name}", "a value cannot contain a NUL character")


def require_secret(env: Mapping[str, str], variable: str, key: str) -> str:
    """The secret in environment variable `variable`, or a ConfigError naming `key`."""
    value = env.get(variable, "").strip()
    if not value:
        raise ConfigError(key, f"environment variable {variable} is not set (it holds the secret)")
    return value


def parse_duration(value: Any, key: str) -> Duration:
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a duration like \"30m\", got {value!r}")
    seconds: float | None = None
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError(key, "a duration cannot be negative")
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match:
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds is not None:
        if not math.isfinite(seconds) or seconds > _LONGEST:  # TOML has inf and nan
            raise ConfigError(key, f"{value!r} is not a duration up to 10 years")
        return Duration(seconds)
    raise ConfigError(key, f"expected a duration like \"30m\", \"2h\" or \"7d\", got {value!r}")


# ------------------------------------------------------------------------ the walker

T = TypeVar("T")


def _replace(obj: T, **changes: Any) -> T:
    import dataclasses

    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


def _check_name(key: str, name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ConfigError(key, "names use letters, digits, '-', '_' and '.' (at most 64)")


def _build(cls: type[T], data: Any, path: str) -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(path, f"expected a table, got {_typename(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in known:
            hint = _HINTS.get(str(key))
            raise ConfigError(sub, f"unknown key{'; ' + hint if hint else ''}")
        kwargs[key] = _convert(hints[key], value, sub)
    for name, f in known.items():
        if name not in kwargs and f.default is MISSING and f.default_factory is MISSING:
            sub = f"{path}.{name}" if path else name
            raise ConfigError(sub, "required")
    return cls(**kwargs)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _convert(args[0], value, path)
        raise AssertionError(f"unsupported union at {path}")
    if tp is Duration:
        return parse_duration(value, path)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            options = ", ".join(repr(c) for c in choices)
            raise ConfigError(path, f"expected one of {options}, got {value!r}")
        return value
    if origin is list:
        (item,) = get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(path, f"expected a list, got {_typename(value)}")
        return [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, item = get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(path, f"expected a table, got {_typename(value)}")
        return {str(k): _convert(item, v, f"{path}.{k}") for k, v in value.items()}
    if is_dataclass(tp):
        return _build(tp, value, path)  # type: ignore[arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {_typename(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected an integer, got {_typename(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, f"expected a number, got {_typename(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected a string, got {_typename(value)}")
        return value
    raise AssertionError(f"unsupported config type {tp!r} at {path}")


def _typename(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
