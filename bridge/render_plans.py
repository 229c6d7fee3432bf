"""A plan's card: the plan as readable text (its Markdown, never escaped JSON), and its own
buttons (`bridge.plans.PLAN_BUTTONS`). Once settled, the card says how and by whom, as an
approval card does (`render_outcome`).

What a card cannot hold goes out whole as a document (`request_attachment`, the one owner
of that): a plan too long for its card as a `.md`, a tool request whose evidence does not
fit as a `.txt`. The card is cut and says so; the document is redacted whole by the daemon
before it is sent, never cut."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bridge.actions import ButtonAction, Verb
from bridge.approvals import Approval, ApprovalState
from bridge.evidence import request_evidence
from bridge.model import SessionView
from bridge.plans import PLAN_BUTTONS, is_plan, plan_filename, plan_text
from bridge.redact import Redactor
from bridge.render import (
    CARD_LIMIT,
    Button,
    Card,
    evidence_cut,
    render_approval_card,
    render_outcome,
    request_filename,
    shorten,
)
from bridge.risk import risk_tags

_NOT_ALLOWING = frozenset({Verb.DENY_REASON, Verb.STOP_APPROVAL})
# how much of a plan its card shows; the rest of the card is its head and outcome
PLAN_CHARS = 3000


def plan_attachment(approval: Approval) -> str | None:
    """The `.md` file name the whole plan goes out as when its card cannot hold it."""
    if not is_plan(approval.tool) or len(plan_text(approval.input)) <= PLAN_CHARS:
        return None
    return plan_filename(approval.id)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A document that goes with a card: `text` is to be redacted whole before sending."""

    filename: str
    text: str
    caption: str


def request_attachment(approval: Approval, session: SessionView, *,
                       redactor: Redactor) -> Attachment | None:
    """The whole request as a document, when its card had to cut it; else None."""
    if is_plan(approval.tool):
        name = plan_attachment(approval)
        if name is None:
            return None
        return Attachment(name, plan_text(approval.input),
                          f"{session.id}: the whole plan (request {approval.id})")
    if not evidence_cut(approval, redactor=redactor)[1]:
        return None
    cwd = approval.cwd or session.cwd
    head = [f"{approval.tool} ({session.agent}), request {approval.id} of session "
            f"{session.id} ({session.place})", f"cwd: {cwd}"]
    risks = risk_tags(approval.tool, approval.input, cwd)
    if risks:
        head.append("risk: " + " · ".join(risk.value for risk in risks))
    if approval.description:
        head.append(f"why: {approval.description}")
    evidence = request_evidence(approval.tool, approval.input, redactor=redactor,
                                on_disk=approval.on_disk)
    return Attachment(request_filename(approval.id), "\n".join([*head, "", evidence]) + "\n",
                      f"{session.id}: the whole request {approval.id} ({approval.tool})")


def render_decision_card(approval: Approval, session: SessionView, *,
                         redactor: Redactor) -> Card:
    """The card of anything the approval lifecycle holds: a plan's or a tool's."""
    if is_plan(approval.tool):
        return render_plan_card(approval, session, redactor=redactor)
    return render_approval_card(approval, session, redactor=redactor)


def render_plan_card(approval: Approval, session: SessionView, *,
                     redactor: Redactor) -> Card:
    plan = plan_text(approval.input)
    lines = [f"📋 Plan to approve · {session.id} · {session.place}",
             f"{session.agent}, request {approval.id}", ""]
    lines.append(shorten(plan, PLAN_CHARS, redactor) if plan else "(the agent sent no plan)")
    attached = plan_attachment(approval)
    if attached:
        lines.append(f"(shortened: the whole plan is attached as {attached})")
    lines.append("")
    if approval.state is not ApprovalState.PENDING:
        lines.append(render_outcome(approval))
        return Card(shorten("\n".join(lines), CARD_LIMIT, redactor))
    if approval.choices:  # the agent's own options (ACP), each a row: labels are long
        rows: tuple[tuple[Button, ...], ...] = tuple(
            (Button(redactor.redact(c.label).text, ButtonAction(Verb.PLAN_CHOICE, approval.id,
                                                                  i)),)
            for i, c in enumerate(approval.choices))
        rest = tuple(Button(b.label, ButtonAction(b.verb, approval.id)) for b in PLAN_BUTTONS
                     if b.decision in approval.offered and b.verb in _NOT_ALLOWING)
        return Card(shorten("\n".join(lines), CARD_LIMIT, redactor), (*rows, rest))
    buttons = [Button(b.label, ButtonAction(b.verb, approval.id)) for b in PLAN_BUTTONS
               if b.decision in approval.offered]
    rows = (tuple(buttons[:2]), tuple(buttons[2:]))
    return Card(shorten("\n".join(lines), CARD_LIMIT, redactor), tuple(r for r in rows if r))


_STEP_MARKS = {"completed": "✅", "in_progress": "▶️", "pending": "▫️"}


def render_plan_progress(steps: Sequence[tuple[str, str]], text: str | None,
                         session: SessionView, *, redactor: Redactor) -> Card:
    """The agent's plan as it stands (Codex's plan updates, ACP `plan` updates): its text,
    then one line per step marked with its status. Shown, never answered: no buttons."""
    done = sum(1 for _, status in steps if status == "completed")
    head = f"🗒 Plan · {session.id}"
    if steps:
        head += f" · {done}/{len(steps)} done"
    lines = [head]
    if text:
        lines += ["", shorten(text, PLAN_CHARS, redactor)]
    if steps:
        lines.append("")
        lines += [f"{_STEP_MARKS.get(status, '▫️')} {step}" for step, status in steps]
    return Card(shorten("\n".join(lines), CARD_LIMIT, redactor))
