"""The sessions' progress messages on one surface (`bridge/progress.py` says what they show).

Edited with the status cards (`SessionThreads.flush_status`: at most every status interval
per session, at `Priority.STATUS`, with what the budget has left), so a turn's progress is
coalesced to its latest state and never delays an answer or an approval card. One message
per turn: it is posted once the turn has something to show, edited while the turn runs,
and left as it was when the turn ends (the summary follows it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bridge.config import Config
from bridge.model import SessionView
from bridge.progress import progress_on, render_progress
from bridge.redact import Redactor
from bridge.session import SessionState
from bridge.surface import SurfaceError
from daemon.outbound import Outbound
from daemon.pacing import Priority
from daemon.store import Store

log = logging.getLogger(__name__)

# while the agent works on a turn
_AT_WORK = frozenset({SessionState.RUNNING, SessionState.WAITING_APPROVAL})


@dataclass(slots=True)
class _Shown:
    turn: int  # the session's completed turns when this one began
    ref: str | None  # the message, once posted
    text: str  # what it shows


def enabled_on(surface: str, config: Config,
               chat_for: Callable[[str, SessionView], str | None]) -> Callable[[SessionView], bool]:
    """Whether a session gets a progress message on `surface` (`bridge.progress.progress_on`):
    its chat is private when it is a Telegram chat with a user (a positive id) or a Slack
    direct message (an id starting with D)."""

    def enabled(session: SessionView) -> bool:
        configured: bool | None = None
        home: str | None = None
        if surface == "telegram" and config.telegram is not None:
            configured, home = config.telegram.progress, str(config.telegram.chat_id)
        elif surface == "slack" and config.slack is not None:
            configured, home = config.slack.progress, config.slack.channel
        chat = chat_for(surface, session) or home or ""
        private = chat.isdigit() if surface == "telegram" else chat.startswith("D")
        return progress_on(session, configured, private_chat=private)

    return enabled


class ProgressMessages:
    def __init__(self, store: Store, surface: Outbound, redactor: Redactor,
                 enabled: Callable[[SessionView], bool]) -> None:
        self.store = store
        self.surface = surface
        self.redactor = redactor
        self.enabled = enabled
        self._shown: dict[str, _Shown] = {}
        self.posted = 0
        self.edited = 0

    async def flush(self, session: SessionView, thread: str) -> tuple[bool, bool]:
        """Bring the session's progress message up to date where the budget has room now:
        (whether a call was made, whether it is still due)."""
        sid = session.id
        shown = self._shown.get(sid)
        if shown is not None and shown.turn != session.turns:
            del self._shown[sid]  # that turn ended: its message stays as it was
            shown = None
        if session.state not in _AT_WORK or not self.enabled(session):
            return False, False
        card = render_progress(session, await self.store.turn_progress(sid),
                               redactor=self.redactor)
        if card is None or (shown is not None and shown.text == card.text):
            return False, False
        ref = shown.ref if shown is not None else None
        if not self.surface.pacer(ref or thread, edit=bool(ref)).room(Priority.STATUS):
            return False, True
        try:
            if ref:
                await self.surface.edit(ref, card)
                self.edited += 1
            else:
                ref = await self.surface.post(thread, card, notify=False)
                self.posted += 1
        except SurfaceError as e:  # e.g. deleted: the next change is a new message
            log.warning("%s: could not show the progress of %s: %s", self.surface.name, sid, e)
            ref = None
        self._shown[sid] = _Shown(turn=session.turns, ref=ref, text=card.text)
        return True, False
