"""Exceptions of the daemon.

    DaemonError
    ├── StoreError          the database cannot be used (newer schema, corrupt, locked)
    ├── NotFound            an id names no session or approval
    ├── Conflict            the action does not fit the current state (already decided, live)
    ├── LaunchError         an agent could not be started (binary missing, bad cwd, host down)
    ├── ApiError            the control socket could not be reached or answered an error
    └── SetupFailed         `setup` or `service` stopped; the message says what to do
"""

from __future__ import annotations


class DaemonError(Exception):
    """Root of every error raised by `daemon`. `code` is stable for `--json` output."""

    code = "error"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class StoreError(DaemonError):
    code = "store"


class NotFound(DaemonError):
    code = "not_found"


class Conflict(DaemonError):
    code = "conflict"


class LaunchError(DaemonError):
    code = "launch"


class ApiError(DaemonError):
    code = "api"


class SetupFailed(DaemonError):
    code = "setup"
