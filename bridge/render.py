"""Chat-neutral cards: plain text and rows of buttons that each surface translates.

Nothing here knows Telegram or Slack. Text is plain (surfaces escape it for their markup);
the renderers keep every card well under the smallest platform limit.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.actions import DECISION_BUTTONS, ButtonAction, Verb
from bridge.approvals import FILE_TOOLS, TIMER, Approval, ApprovalState, decided_how
from bridge.events import DecisionKind
from bridge.evidence import redacted_input, request_evidence
from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.risk import risk_tags
from bridge.session import SessionState
from bridge.visible import shown_plainly

PREVIEW_CHARS = 600
CARD_LIMIT = 3500
# how much evidence an approval card shows; the rest of the card is its head, tags, outcome
EVIDENCE_CHARS = 2800

STATE_ICONS: dict[SessionState, str] = {
    SessionState.STARTING: "⏳",
    SessionState.RUNNING: "🟢",
    SessionState.WAITING_APPROVAL: "🔐",
    SessionState.IDLE: "💤",
    SessionState.COMPLETED: "✅",
    SessionState.FAILED: "❌",
    SessionState.STOPPED: "⏹",
    SessionState.DISCONNECTED: "📡",
}

STATE_LABELS: dict[SessionState, str] = {
    SessionState.STARTING: "starting",
    SessionState.RUNNING: "running",
    SessionState.WAITING_APPROVAL: "waiting for approval",
    SessionState.IDLE: "idle (reply to continue)",
    SessionState.COMPLETED: "completed",
    SessionState.FAILED: "failed",
    SessionState.STOPPED: "stopped",
    SessionState.DISCONNECTED: "disconnected",
}


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    action: ButtonAction
    url: str | None = None  # where the surface can open a link instead (e.g. a thread)


@dataclass(frozen=True, slots=True)
class Card:
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()


def elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def limit_line(session: SessionView, now: float) -> str | None:
    """"limit hit, resets …" for a session whose limit is hit (status card, lists, digest)."""
    if session.limit_hit_at is None:
        return None
    line = "limit hit"
    if session.limit_reset_at is not None:
        line += f", resets {clock(session.limit_reset_at)}"
        if session.limit_reset_at > now:
            line += f" (in {elapsed(session.limit_reset_at - now)})"
    if session.resume_at is not None:
        line += f"; resumes {clock(session.resume_at)}"
    return line



# How far past a cut text is redacted: more than the longest secret (a 8192-bit PEM key,
# JSON-escaped), so a secret that the cut would split is whole when it is found.
_REDACT_AHEAD = 16384


def shorten(text: str, limit: int, redactor: Redactor) -> str:
    """`text` redacted, then cut to `limit` characters: a secret is never cut before it is
    redacted (half a token is no longer recognised)."""
    return _shortened(text, limit, redactor)[0]


def _shortened(text: str, limit: int, redactor: Redactor) -> tuple[str, bool]:
    """`shorten`, and whether anything was cut."""
    text = redactor.redact(text.strip()[: limit + _REDACT_AHEAD]).text.strip()
    if len(text) <= limit:
        return text, False
    return text[: limit - 1].rstrip() + "…", True


def topic_title(session: SessionView, *, redactor: Redactor) -> str:
    """A thread or topic name: state icon, short id, project, the prompt's start."""
    title = f"{STATE_ICONS[session.state]} {session.id} · {session.place}"
    if session.title:
        title += f" · {session.title}"
    return shorten(title, 120, redactor)


def tool_preview(tool: str, tool_input: Mapping[str, Any], limit: int = PREVIEW_CHARS, *,
                 redactor: Redactor) -> str:
    """What the tool will do, in the words a person checks: the command, or the file and
    the start of its new content; secrets redacted before anything is cut or serialised."""
    return _preview(tool, tool_input, limit, redactor)[0]


def _preview(tool: str, tool_input: Mapping[str, Any], limit: int,
             redactor: Redactor) -> tuple[str, bool]:
    """`tool_preview`, and whether it had to leave something out."""
    command = tool_input.get("command")
    if isinstance(command, list):
        command = " ".join(str(c) for c in command)
    if isinstance(command, str):
        text, cut = _shortened(shown_plainly(command), limit, redactor)
        return f"$ {text}", cut
    path = tool_input.get("file_path") or tool_input.get("path") or tool_input.get("notebook_path")
    if tool in FILE_TOOLS and isinstance(path, str):
        # a file tool is its file and new content; any other tool shows every key it has
        body = tool_input.get("content") or tool_input.get("new_string") or ""
        if isinstance(body, str) and body:
            text, cut = _shortened(body, limit, redactor)
            return f"{redactor.redact(path).text}\n{text}", cut
        return redactor.redact(path).text, False
    try:
        dumped = json.dumps(redacted_input(tool_input, redactor), ensure_ascii=False,
                            sort_keys=True)
    except (TypeError, ValueError):
        dumped = str(tool_input)
    return _shortened(shown_plainly(dumped), limit, redactor)


def session_buttons(session: SessionView) -> tuple[tuple[Button, ...], ...]:
    sid = session.id
    if session.archived:
        return ((Button("Unarchive", ButtonAction(Verb.UNARCHIVE, sid)),),)
    live = session.state in (
        SessionState.STARTING,
        SessionState.RUNNING,
        SessionState.WAITING_APPROVAL,
        SessionState.IDLE,
    )
    row: list[Button] = []
    if session.state in (SessionState.RUNNING, SessionState.WAITING_APPROVAL):
        row.append(Button("Interrupt", ButtonAction(Verb.INTERRUPT, sid)))
    if live:
        row.append(Button("Stop", ButtonAction(Verb.STOP, sid)))
    else:
        row.append(Button("Resume", ButtonAction(Verb.RESUME, sid)))
    row.append(Button("Diff", ButtonAction(Verb.DIFF, sid)))
    row.append(Button("Archive", ButtonAction(Verb.ARCHIVE, sid)))
    return (tuple(row),)


def render_status_card(session: SessionView, *, now: float, pending: int = 0,
                       questions: int = 0, redactor: Redactor) -> Card:
    icon = STATE_ICONS[session.state]
    lines = [f"{icon} {session.id} · {STATE_LABELS[session.state]}"]
    if session.archived:
        lines[0] += " · archived"
    lines.append(f"{session.place} · {session.agent}")
    if session.title:
        lines.append(f"“{shorten(session.title, 200, redactor)}”")
    settings = [f"mode {session.mode}" if session.mode else "",
                f"model {shorten(session.model, 80, redactor)}" if session.model else ""]
    if any(settings):
        lines.append(" · ".join(s for s in settings if s))
    if session.last_tool:
        lines.append(f"last tool: {shorten(session.last_tool, 200, redactor)}")
    facts = [f"elapsed {elapsed(now - session.created_at)}"]
    if session.cost_usd is not None:
        facts.append(f"${session.cost_usd:.2f}")
    elif session.tokens:
        facts.append(f"{compact(session.tokens)} tokens")
    if pending:
        facts.append(f"{pending} approval{'s' if pending > 1 else ''} waiting")
    if questions:
        facts.append(f"{questions} question{'s' if questions > 1 else ''} waiting")
    # when the chat's budget holds an edit back, the card says how old it is
    facts.append(f"as of {datetime.fromtimestamp(now, UTC).strftime('%H:%M:%S')} UTC")
    lines.append(" · ".join(facts))
    if session.error and session.state in (SessionState.FAILED, SessionState.DISCONNECTED):
        lines.append(f"reason: {shorten(session.error, 500, redactor)}")
    limited = limit_line(session, now)
    if limited:
        lines.append(f"⛔ {limited}")
    return Card("\n".join(lines), session_buttons(session))


def evidence_cut(approval: Approval, *, redactor: Redactor) -> tuple[str, bool]:
    """The evidence an approval card shows (redacted, then cut to EVIDENCE_CHARS), and
    whether it was cut: then the whole request goes along as a file."""
    return _shortened(request_evidence(approval.tool, approval.input, redactor=redactor,
                                       on_disk=approval.on_disk),
                      EVIDENCE_CHARS, redactor)


def render_approval_card(approval: Approval, session: SessionView, *,
                         redactor: Redactor) -> Card:
    evidence, cut = evidence_cut(approval, redactor=redactor)
    lines = [
        f"🔐 Approval needed · {session.id} · {session.place}",
        f"{approval.tool} ({session.agent}), request {approval.id}",
    ]
    cwd = approval.cwd or session.cwd
    risks = risk_tags(approval.tool, approval.input, cwd)
    if risks:
        lines.append("⚠️ risk: " + " · ".join(risk.value for risk in risks))
    lines.append(evidence)
    if approval.description:
        lines.append(f"why: {shorten(approval.description, 300, redactor)}")
    lines.append(f"cwd: {cwd}")
    if cut:
        lines.append(f"(shortened: the whole request is attached as "
                     f"{request_filename(approval.id)})")
    if approval.state is not ApprovalState.PENDING:
        lines.append(render_outcome(approval))
        return Card(shorten("\n".join(lines), CARD_LIMIT, redactor))
    offered = set(approval.offered)
    if cut and DecisionKind.ALLOW_SESSION in offered:
        # a rule for the session covers the whole request: offered only when all of it
        # is on the card (the attachment and `agent-bridge show` have it whole)
        offered.discard(DecisionKind.ALLOW_SESSION)
        lines.append("(no \"allow for session\" on a shortened card)")
    buttons = [
        Button(button.label, ButtonAction(button.verb, approval.id))
        for button in DECISION_BUTTONS
        if button.decision in offered
    ]
    rows = (tuple(buttons[:2]), tuple(buttons[2:]))
    return Card(shorten("\n".join(lines), CARD_LIMIT, redactor), tuple(r for r in rows if r))


def request_filename(approval_id: str) -> str:
    """The name of the file a request too long for its card goes out as."""
    return f"request-{approval_id}.txt"


def render_outcome(approval: Approval) -> str:
    """How a settled approval's card ends: who decided, when, and why (`describe_outcome`
    words, with the time and the reason a person gave)."""
    when = f" at {clock(approval.decided_at)}" if approval.decided_at else ""
    match approval.state:
        case ApprovalState.ALLOWED:
            return f"✅ {decided_how(approval, first_upper=True)} by {approval.decided_by}{when}"
        case ApprovalState.DENIED:
            if approval.decided_by == TIMER.label:  # the timer's reason says it all
                return f"⌛ Timed out{when}: {approval.reason or 'denied automatically'}"
            stopped = approval.decision is DecisionKind.STOP
            said = f"{decided_how(approval, first_upper=True)} by {approval.decided_by}"
            # only a reason the person gave (older rows kept the default one: not echoed)
            given = approval.reason if (approval.reason or said).rstrip(".") != said else None
            reason = f": {given}" if given else ""
            return f"{'⏹' if stopped else '🚫'} {said}{when}{reason}"
        case ApprovalState.EXPIRED:
            why = approval.reason or "the agent stopped waiting. Nothing was approved."
            return f"⌛ Expired{when}: {why.rstrip('.')}."
        case ApprovalState.WITHDRAWN:
            return f"↩ Withdrawn by the agent{when}. Nothing was approved."
        case ApprovalState.PENDING:
            return "Waiting for a decision."


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnSummary:
    """What a person needs at the end of a turn to decide whether it is worth keeping."""

    final_text: str | None
    is_error: bool
    error: str | None = None
    cost_usd: float | None = None
    duration_ms: int | None = None
    num_turns: int | None = None
    changes: str | None = None  # rendered diff summary
    verification: str | None = None  # "$ pytest -q → exit 0"
    resume_command: str | None = None
    interrupted: bool = False  # stopped before it finished (by `stopped_by`, when known)
    stopped_by: str | None = None


def compact(n: int) -> str:
    """A count as people read it: 950, 12.3k, 4.1M."""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return f"{n / 1_000_000:.1f}M".replace(".0M", "M")


def render_summary_card(session: SessionView, summary: TurnSummary, *,
                        attached: str | None = None,
                        redactor: Redactor) -> Card:
    """The end-of-turn card with the whole final message (it may exceed one message: the
    caller splits it), or its beginning when it goes along as the file `attached`."""
    if summary.interrupted:
        # an interrupt keeps the session (it waits for a reply); a stop ends it
        how = "stopped" if session.state is SessionState.STOPPED else "interrupted"
        head = f"⏹ Turn {how} by {summary.stopped_by}" if summary.stopped_by else (
            "⏹ Turn interrupted")
    else:
        head = "❌ Turn failed" if summary.is_error else "🏁 Turn finished"
    lines = [f"{head} · {session.id} · {session.place} · {session.agent}"]
    if summary.final_text and attached:
        lines.append(shorten(summary.final_text, 1500, redactor))
        lines.append(f"(the whole final message is attached: {attached})")
    elif summary.final_text:
        lines.append(redactor.redact(summary.final_text.strip()).text)
    if summary.is_error and summary.error:
        lines.append(f"error: {shorten(summary.error, 500, redactor)}")
    facts: list[str] = []
    if summary.cost_usd is not None:
        facts.append(f"${summary.cost_usd:.4f}")
    elif session.tokens:
        facts.append(f"{compact(session.tokens)} tokens so far")
    if summary.duration_ms is not None:
        facts.append(elapsed(summary.duration_ms / 1000))
    if summary.num_turns is not None:
        facts.append(f"{summary.num_turns} turns")
    if facts:
        lines.append(" · ".join(facts))
    if summary.changes:
        lines.append(summary.changes)
    if summary.verification:
        lines.append(f"last check: {summary.verification}")
    if summary.resume_command:
        # meant to be pasted into a shell: the path is quoted (resume_command comes quoted),
        # and a line that redaction would change is left out, since cutting a secret out of
        # it can take a closing quote with it (what was an argument would then run)
        desk = f"cd {shlex.quote(session.cwd)} && {summary.resume_command}"
        if not redactor.redact(desk).count:
            lines.append(f"at your desk: {desk}")
    return Card("\n".join(lines), session_buttons(session))


def split_text(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut at line ends where possible."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut <= limit // 2:
            cut = limit
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def render_session_list(sessions: Sequence[SessionView], *, now: float,
                        redactor: Redactor) -> str:
    if not sessions:
        return "No sessions."
    lines = []
    for s in sessions:
        flag = " [archived]" if s.archived else ""
        limited = limit_line(s, now)
        if limited:
            flag += f" [{limited}]"
        lines.append(
            f"{STATE_ICONS[s.state]} {s.id}  {s.state.value:<16} {s.place:<24} {s.agent:<8} "
            f"{elapsed(now - s.updated_at):>8} ago  {shorten(s.title, 50, redactor)}{flag}"
        )
    return "\n".join(lines)
