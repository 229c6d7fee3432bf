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
from bridge.events import DecisionKind, PlanStep, PlanUpdated, StepStatus

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


_STEP_STATUS = {"pending": StepStatus.PENDING, "in_progress": StepStatus.IN_PROGRESS,
                "inprogress": StepStatus.IN_PROGRESS, "completed": StepStatus.COMPLETED}


def plan_steps(entries: Any, *, text_key: str) -> tuple[PlanStep, ...]:
    """The steps of a plan as an agent lists them (Codex `{step, status}` with `inProgress`,
    ACP `{content, status}` with `in_progress`); entries without text are left out, an
    unknown status reads as pending."""
    steps: list[PlanStep] = []
    for entry in entries if isinstance(entries, list) else ():
        text = entry.get(text_key) if isinstance(entry, dict) else None
        if not isinstance(text, str) or not text.strip():
            continue
        status = str(entry.get("status") or "").replace("-", "_").lower()
        steps.append(PlanStep(text=text.strip(),
                              status=_STEP_STATUS.get(status, StepStatus.PENDING)))
    return tuple(steps)


class PlanTracker:
    """What of an agent's plan is news. Agents repeat their plan on every change of any
    step (and some with nothing changed): a plan is shown once per turn and edited only
    when its steps or text change. `key` names the turn's plan message."""

    def __init__(self) -> None:
        self.key: str | None = None
        self._shown: PlanUpdated | None = None

    def next_turn(self) -> None:
        self.key = None
        self._shown = None

    def news(self, plan: PlanUpdated, new_key: str) -> PlanUpdated | None:
        """The plan to show (merged with what this turn showed), or None when nothing
        changed."""
        shown = self._shown
        merged = PlanUpdated(
            steps=plan.steps or (shown.steps if shown else ()),
            text=plan.text or (shown.text if shown else None))
        if merged == shown or (not merged.steps and not merged.text):
            return None
        if self.key is None:
            self.key = new_key
        self._shown = merged
        return merged
