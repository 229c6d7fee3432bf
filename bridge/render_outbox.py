"""What delivery shows for an outbox intent, besides the cards of `bridge.render`: the
approval reminder, the turn summary assembled from its intent, the diff's texts, the
empty digest. Pure: the daemon reads what they need (changes, tool events, the clock)
and passes it in.
"""

from __future__ import annotations

import re

from bridge.approvals import Approval
from bridge.diffs import DiffPackage, DiffSummary, render_diff_summary
from bridge.model import SessionView
from bridge.outbox import PostSummary
from bridge.plans import is_plan, plan_text
from bridge.redact import Redactor
from bridge.render import Card, TurnSummary, elapsed, shorten, tool_preview
from bridge.render_plans import render_decision_card

# a final message longer than this many messages is sent as a `.md` file
FINAL_MESSAGES = 3

NOTHING_NEEDS_YOU = Card("📋 Nothing needs you right now.")
NO_CHANGES = Card("No changes.")


def render_reminder(approval: Approval, session: SessionView, *, now: float,
                    timeout: float | None, on_timeout: str, redactor: Redactor) -> Card:
    """The reminder of a pending approval, with the approval card's buttons; it says when
    the request will be denied if a timer denies it."""
    left = ""
    if timeout is not None and on_timeout == "deny":
        remaining = approval.requested_at + timeout - now
        left = f"; it will be denied in {elapsed(max(0, remaining))}"
    if is_plan(approval.tool):
        first = plan_text(approval.input).partition("\n")[0]
        text = (f"⏰ Still waiting for you: the plan “{shorten(first, 120, redactor)}” "
                f"(request {approval.id}){left}.")
    else:
        preview = tool_preview(approval.tool, approval.input, 200, redactor=redactor)
        text = (f"⏰ Still waiting for you: {approval.tool} {preview} "
                f"(request {approval.id}){left}.")
    return Card(text, render_decision_card(approval, session, redactor=redactor).buttons)


def changes_text(summary: DiffSummary, note: str | None) -> str | None:
    """The summary's "files changed" part: the diff summary and the note about it."""
    lines = [render_diff_summary(summary)] if not summary.is_empty else []
    if note:
        lines.append(f"({note})")
    return "\n".join(lines) or None


def turn_changes_text(turn: int, own: DiffSummary, own_note: str | None,
                      total: DiffSummary, total_note: str | None) -> str | None:
    """The summary's "files changed" part for one turn: the turn's own change (its diff is
    the attachment), then the session's whole change so far as one line."""
    lines = []
    if not own.is_empty:
        lines.append(f"This turn (turn {turn}): {render_diff_summary(own)}")
    elif not total.is_empty:
        lines.append(f"This turn (turn {turn}): no changes.")
    if own_note:
        lines.append(f"({own_note})")
    if not total.is_empty:
        n = len(total.files)
        lines.append(f"Since the session started: {n} file{'s' if n != 1 else ''} changed, "
                     f"+{total.added} −{total.removed}")
    if total_note and total_note != own_note:
        lines.append(f"({total_note})")
    return "\n".join(lines) or None


def turn_summary(intent: PostSummary, *, changes: str | None, verification: str | None,
                 resume_command: str | None) -> TurnSummary:
    """The end-of-turn summary: what the turn reported, and what was read at delivery."""
    return TurnSummary(
        final_text=intent.final_text,
        is_error=intent.is_error,
        error=intent.error,
        cost_usd=intent.cost_usd,
        duration_ms=intent.duration_ms,
        num_turns=intent.num_turns,
        changes=changes,
        verification=verification,
        resume_command=resume_command,
        interrupted=intent.interrupted,
        stopped_by=intent.stopped_by,
    )


def final_attachment(session: SessionView, final_text: str, piece_limit: int) -> str | None:
    """The `.md` file name the whole final message goes in when it is too long for
    FINAL_MESSAGES messages of `piece_limit` characters; None when it fits."""
    if len(final_text) > FINAL_MESSAGES * piece_limit:
        return f"reply-{session.id}-{max(session.turns, 1)}.md"
    return None


def final_caption(session: SessionView, final_text: str) -> str:
    return f"{session.id}: the whole final message ({len(final_text)} characters)"


def diff_name(session: SessionView, turn: int | None = None) -> str:
    """The name of a diff attachment (without its extension): a turn's own change is
    `ID-turnN`, the session's whole diff `ID-N` after N turns."""
    if turn is not None:
        return f"{session.id}-turn{turn}"
    return f"{session.id}-{max(session.turns, 1)}"


def diff_caption(session: SessionView, package: DiffPackage) -> str:
    return f"{session.id}: {package.filename} ({package.size} bytes of diff)"


def render_diff_reply(session: SessionView, summary: DiffSummary,
                      note: str | None, *, turn: int | None = None) -> tuple[Card, bool]:
    """The answer to "show the diff" (of the whole session, or of turn `turn` alone): its
    card, and whether the diff itself follows (not when it could not be read at all)."""
    head = (f"Diff of {session.id} ({session.place}) since the session started" if turn is None
            else f"Diff of {session.id} ({session.place}), turn {turn} alone")
    if note and summary.is_empty:
        return Card(f"{head}: {note}."), False
    text = f"{head}:\n{render_diff_summary(summary)}"
    if note:
        text += f"\n({note})"
    return Card(text), True


def without_clock(status_text: str) -> str:
    """A status card without its clock, so a ticking 'elapsed' (or the time it was drawn)
    alone is not an edit."""
    return re.sub(r"(elapsed|as of) [^·\n]*(· )?", "", status_text)
