"""Exceptions of the pure core.

    BridgeError
    ├── ConfigError            a config value is missing, of the wrong type or unknown (key path)
    ├── ProtocolError          the agent broke its wire protocol (offending line attached)
    ├── IllegalTransition      a state machine was asked for a move its table does not allow
    └── ApprovalError          an approval action that cannot apply (unknown, already decided)
"""

from __future__ import annotations


class BridgeError(Exception):
    """Root of every error raised by `bridge`."""


class ConfigError(BridgeError):
    """A configuration error; `key` is the dotted path of the offending key."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class ProtocolError(BridgeError):
    """The agent sent something that is not its protocol (corrupt JSON, missing field)."""

    def __init__(self, message: str, line: bytes | str | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(message)

    def excerpt(self, limit: int = 200) -> str:
        """The start of the offending line, for humans."""
        if self.line is None:
            return ""
        text = self.line.decode("utf-8", "replace") if isinstance(self.line, bytes) else self.line
        return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


class IllegalTransition(BridgeError):
    def __init__(self, machine: str, current: str, target: str) -> None:
        self.machine = machine
        self.current = current
        self.target = target
        super().__init__(f"{machine}: cannot go from {current} to {target}")


class ApprovalError(BridgeError):
    pass
