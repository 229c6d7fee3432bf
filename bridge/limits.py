"""A session's usage limit: what a `UsageLimit` event changes, and how it is shown.

The agent reports its account's limit now and then (`bridge.codecs.limits`). When it says
the limit is hit, the session records when (`limit_hit_at`) and when it resets
(`limit_reset_at`, when known), and a notice goes to its thread with a "Resume at reset"
button; a person may schedule the session to be resumed then (`resume_at`, run by the
daemon's scheduler). When the agent says the limit allows work again, both are cleared. A
limit reported again in the same words is not a new notice; a reset time learnt later is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.actions import ButtonAction, Verb
from bridge.events import UsageLimit
from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render import Button, Card, clock, elapsed, shorten

#: what the agent is told when a scheduled resume fires
RESUME_PROMPT = ("Your usage limit has reset. Continue the task where you left off.")


@dataclass(frozen=True, slots=True, kw_only=True)
class ShownNotice:
    """A notice to post in the session's thread: `limit` marks the usage-limit notice
    (rendered at delivery with the session's limit and the "Resume at reset" button)."""

    text: str
    limit: bool = False


@dataclass(slots=True)
class LimitWatch:
    """What one agent process said about its limit so far (None: nothing yet)."""

    hit: bool | None = None
    resets_at: float | None = None
    warned: bool = False

    def fold(self, event: UsageLimit, now: float) -> tuple[dict[str, Any], ShownNotice | None]:
        """The session fields `event` changes, and the notice it makes (None: nothing new)."""
        if event.hit:
            resets_at = event.resets_at if event.resets_at is not None else self.resets_at
            new = self.hit is not True or resets_at != self.resets_at
            self.hit, self.resets_at = True, resets_at
            changes: dict[str, Any] = {"limit_reset_at": resets_at}
            if not new:
                return changes, None
            changes["limit_hit_at"] = now
            said = f"The agent says: {event.text}" if event.text else ""
            return changes, ShownNotice(text=said, limit=True)
        was_hit = self.hit
        self.hit, self.resets_at = False, None
        changes = {} if was_hit is False else {"limit_hit_at": None, "limit_reset_at": None}
        if event.warning and not self.warned:
            self.warned = True
            when = f"; it resets {clock(event.resets_at)}" if event.resets_at else ""
            which = f" ({event.limit})" if event.limit else ""
            return changes, ShownNotice(text=f"The agent is close to its usage limit{which}"
                                             f"{when}.")
        return changes, None


def resume_time(session: SessionView, now: float) -> float | None:
    """When "Resume at reset" resumes the session: its reset time, or now when that has
    passed; None when its limit is not hit or its reset time is not known."""
    if session.limit_hit_at is None or session.limit_reset_at is None:
        return None
    return max(session.limit_reset_at, now)


def render_notice(text: str, redactor: Redactor) -> Card:
    return Card(f"⚠️ {shorten(text, 3000, redactor)}")


def render_limit_notice(session: SessionView, text: str, *, now: float,
                        redactor: Redactor) -> Card:
    """The usage-limit notice: why the session stopped moving, when the limit resets, and
    the button that resumes it then (or cancels that, once scheduled)."""
    lines = [f"⛔ {session.id} hit its usage limit: the agent's requests are refused."]
    if session.limit_reset_at is not None:
        when = clock(session.limit_reset_at)
        left = session.limit_reset_at - now
        lines.append(f"It resets {when}" + (f" (in {elapsed(left)})." if left > 0 else "."))
    else:
        lines.append("The agent did not say when it resets: /resume it later.")
    if session.resume_at is not None:
        lines.append(f"⏰ It resumes {clock(session.resume_at)}.")
    if text:
        lines.append(shorten(text, 500, redactor))
    return Card("\n".join(lines), limit_buttons(session))


def limit_buttons(session: SessionView) -> tuple[tuple[Button, ...], ...]:
    if session.resume_at is not None:
        return ((Button("Cancel scheduled resume",
                        ButtonAction(Verb.CANCEL_RESUME, session.id)),),)
    if session.limit_hit_at is not None and session.limit_reset_at is not None:
        return ((Button("Resume at reset", ButtonAction(Verb.RESUME_AT_RESET, session.id)),),)
    return ()
