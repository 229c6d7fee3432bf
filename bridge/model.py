"""Read models: what the store returns and the renderers show."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.session import SessionState

#: the owner surface of a session seen through the agents' hooks ("terminal:<uid>")
HOOKS_SURFACE = "terminal"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionView:
    id: str
    project: str
    agent: str
    protocol: str
    cwd: str
    host: str = "local"
    state: SessionState
    archived: bool = False
    agent_session_id: str | None = None
    title: str = ""
    branch: str | None = None
    last_tool: str | None = None
    cost_usd: float | None = None
    error: str | None = None
    created_at: float
    updated_at: float
    turns: int = 0
    last_event_at: float | None = None
    finished_at: float | None = None  # when the last turn ended
    reviewed_at: float | None = None  # when a person last replied, asked for the diff, archived
    parked: str | None = None  # why it waits on a person although nothing is pending
    owner: str | None = None  # who started it, "surface:user id"
    tokens: int | None = None  # the agent's running total, where it reports tokens
    mode: str | None = None  # the permission mode (bridge.modes), as chosen or announced
    model: str | None = None  # the model, as the agent names it
    limit_hit_at: float | None = None  # when the agent said its usage limit was hit
    limit_reset_at: float | None = None  # when it said the limit resets
    resume_at: float | None = None  # when a scheduled resume (at the reset) runs
    verbose: bool | None = None  # /verbose: its progress message on or off (None: default)

    def owner_on(self, surface: str) -> str | None:
        """The owner's user id if they started the session from `surface`."""
        if self.owner is None:
            return None
        where, _, user_id = self.owner.partition(":")
        return user_id if where == surface and user_id else None

    @property
    def through_hooks(self) -> bool:
        """A terminal session the daemon only sees through the agent's hooks (its cards in
        chat, the process in a terminal: daemon/terminal.py); adopting it is still to do."""
        return self.owner_on(HOOKS_SURFACE) is not None

    @property
    def place(self) -> str:
        """`host:project@branch`, the host left out when local."""
        where = self.project if self.host == "local" else f"{self.host}:{self.project}"
        return f"{where}@{self.branch}" if self.branch else where
