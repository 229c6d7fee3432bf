"""Plans: an agent shows a plan and waits for a person to approve it or to send it back.

At the wire a plan decision is an approval (Claude's ExitPlanMode is a `can_use_tool`
request), so it lives in the approval lifecycle (`bridge.approvals`: exactly once, timers
that never approve); what differs is what it offers and how it reads:

    Approve                 allow the tool (Claude leaves plan mode for its default mode)
    Approve, accept edits   allow it and switch the session to acceptEdits
    Keep planning…          deny it; the person's next reply in the thread is the feedback
                            the agent hears (it stays in plan mode)

Checked against Claude Code 2.1.331: the CLI reads the plan file itself and sends it as
`input.plan` (with `input.planFilePath`); `updatedPermissions: [{"type": "setMode", "mode":
"acceptEdits", "destination": "session"}]` with the allow switches the mode (the next
Edit runs without asking); a deny's `message` is the tool result the model reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.actions import DecisionButton, Verb
from bridge.events import DecisionKind

EXIT_PLAN_MODE = "ExitPlanMode"

# what a plan approval offers (Stop is there as on every card: it ends the session)
PLAN_DECISIONS: tuple[DecisionKind, ...] = (
    DecisionKind.ALLOW_ONCE,
    DecisionKind.ACCEPT_EDITS,
    DecisionKind.DENY,
    DecisionKind.STOP,
)

# a plan card's buttons, in order; "Keep planning…" opens the reply form of a deny reason
PLAN_BUTTONS: tuple[DecisionButton, ...] = (
    DecisionButton(Verb.ALLOW_ONCE, DecisionKind.ALLOW_ONCE, "Approve"),
    DecisionButton(Verb.ACCEPT_EDITS, DecisionKind.ACCEPT_EDITS, "Approve, accept edits"),
    DecisionButton(Verb.DENY_REASON, DecisionKind.DENY, "Keep planning…"),
    DecisionButton(Verb.STOP_APPROVAL, DecisionKind.STOP, "Stop"),
)

KEEP_PLANNING = "The user wants you to keep planning."
FEEDBACK_PROMPT = "Send your feedback on the plan as your next message here."


def is_plan(tool: str) -> bool:
    """Whether a request with this tool name is a plan to approve."""
    return tool == EXIT_PLAN_MODE


def plan_text(tool_input: Mapping[str, Any]) -> str:
    """The plan as the agent wrote it (Markdown), or "" when the request has none."""
    plan = tool_input.get("plan")
    return plan.strip() if isinstance(plan, str) else ""


def plan_filename(approval_id: str) -> str:
    """The name of the `.md` document a plan too long for its card goes out as."""
    return f"plan-{approval_id}.md"
