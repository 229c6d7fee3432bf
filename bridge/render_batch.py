"""A grouped approval card: several sessions' waiting approvals in one message.

A chat's rate budget is the platform's, not ours: a Telegram group takes 20 messages a
minute, so twenty busy sessions asking for approvals would see their cards minutes late.
When the budget for a chat is spent, the approvals that wait for it go out together, as
one message in the chat's home place, each with its own "Allow once" and "Deny" buttons
(the same actions as its own card's, so a tap decides exactly that approval). Each entry
shows its session, tool and what it will do, cut to fit after redaction; nothing broader
than the entry is offered ("Allow for session" needs the whole request on the card).
Once an entry is settled the message is edited to say how and by whom, and its buttons go.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.actions import DECISION_BUTTONS, ButtonAction
from bridge.approvals import Approval, ApprovalState
from bridge.events import DecisionKind
from bridge.model import SessionView
from bridge.plans import is_plan
from bridge.redact import Redactor
from bridge.render import CARD_LIMIT, Button, Card, render_outcome, shorten, tool_preview

BATCH_MOST = 20  # entries in one grouped card (40 buttons; Telegram takes 100)
ENTRY_LEAST = 120  # the least of the card an entry has (with BATCH_MOST of them)
BATCH_DECISIONS = (DecisionKind.ALLOW_ONCE, DecisionKind.DENY)
_BATCH_BUTTONS = tuple(b for b in DECISION_BUTTONS
                       if b.decision in BATCH_DECISIONS and not b.label.endswith("…"))


def batchable(approval: Approval) -> bool:
    """Whether an approval's card may go grouped: a pending tool call that offers both
    "Allow once" and "Deny" (a plan keeps its own card, its own buttons and its file)."""
    return (approval.state is ApprovalState.PENDING and not is_plan(approval.tool)
            and all(d in approval.offered for d in BATCH_DECISIONS))


def render_batch_card(entries: Sequence[tuple[Approval, SessionView]], *,
                      redactor: Redactor) -> Card:
    """The grouped card of `entries` (in the order they are numbered), each pending one
    with its own buttons."""
    waiting = sum(a.state is ApprovalState.PENDING for a, _ in entries)
    head = (f"🔐 {waiting} of {len(entries)} approvals waiting" if waiting
            else f"🔐 {len(entries)} approvals, all settled")
    lines = [head + " (grouped: this chat's message limit is reached)"]
    rows: list[tuple[Button, ...]] = []
    # every entry, pending or settled, within its share: the card never has to be cut, so no
    # button stands for an entry whose text the cut took away
    share = max(ENTRY_LEAST, (CARD_LIMIT - 400) // max(1, len(entries)))
    for n, (approval, session) in enumerate(entries, start=1):
        heading = f"{n}. {session.id} · {session.place} · {approval.tool}, request {approval.id}"
        lines.append("")
        if approval.state is not ApprovalState.PENDING:  # how it ended, not what it asked
            lines.append(shorten(f"{heading}\n{render_outcome(approval)}", share, redactor))
            continue
        entry = "\n".join([
            heading, tool_preview(approval.tool, approval.input, share, redactor=redactor)])
        lines.append(shorten(entry, share, redactor))
        rows.append(tuple(Button(f"{b.label} #{n}", ButtonAction(b.verb, approval.id))
                          for b in _BATCH_BUTTONS))
    lines.append("")
    lines.append("Each whole request: agent-bridge show SESSION.")
    return Card(shorten("\n".join(lines), CARD_LIMIT, redactor), tuple(rows))
