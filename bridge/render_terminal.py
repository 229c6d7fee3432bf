"""What chat shows of terminal sessions: the `/sessions local` list and an adopted session's
opening recap. Everything an agent or a person wrote is redacted, then cut."""

from __future__ import annotations

from collections.abc import Sequence

from bridge.actions import ButtonAction, Verb
from bridge.redact import Redactor
from bridge.render import Button, elapsed, shorten
from bridge.terminal import Attached, TerminalSession

PROMPT_CHARS = 80
RECAP_CHARS = 600
LIST_BUTTONS = 10
ATTACHED_MARK = {Attached.YES: "● open in a terminal", Attached.NO: "",
                 Attached.UNKNOWN: "(open? unknown)"}


def render_terminal_list(sessions: Sequence[TerminalSession], *, now: float,
                         redactor: Redactor) -> tuple[str, tuple[tuple[Button, ...], ...]]:
    """The list's text and one Adopt button per session (the first `LIST_BUTTONS`)."""
    if not sessions:
        return ("No terminal sessions found (Claude Code and Codex sessions the bridge does "
                "not run).", ())
    lines = []
    for s in sessions:
        mark = ATTACHED_MARK[s.attached]
        head = (f"{s.key}  {s.agent:<6} {short_place(s, redactor)}  "
                f"{elapsed(now - s.updated_at)} ago {mark}").rstrip()
        lines.append(head)
        first = shorten(s.first_prompt or "", PROMPT_CHARS, redactor)
        last = shorten(s.last_prompt or "", PROMPT_CHARS, redactor)
        if first:
            lines.append(f"    first: {first}")
        if last and last != first:
            lines.append(f"    last: {last}")
    lines.append("Adopt one with /adopt ID [PROMPT]: it continues in its own thread here.")
    buttons = tuple((Button(f"Adopt {s.key[:8]}", ButtonAction(Verb.ADOPT, s.key)),)
                    for s in sessions[:LIST_BUTTONS])
    return "\n".join(lines), buttons


def short_place(session: TerminalSession, redactor: Redactor, cwd_chars: int = 40) -> str:
    """`host:cwd@branch` with a long cwd cut from the left (its end says the most)."""
    cwd = redactor.redact(session.cwd or "?").text
    if len(cwd) > cwd_chars:
        cwd = "…" + cwd[-(cwd_chars - 1):]
    where = cwd if session.host == "local" else f"{session.host}:{cwd}"
    branch = shorten(session.branch, 60, redactor) if session.branch else None
    return f"{where}@{branch}" if branch else where


def render_recap(session: TerminalSession, changed: Sequence[str] | None, *,
                 redactor: Redactor) -> str:
    """The adopted session's opening message: where it was, what was asked last, what the
    agent said last, which files are changed."""
    lines = [f"Adopted the {session.protocol} terminal session {session.id} "
             f"({shorten(session.place, 120, redactor)})."]
    if session.last_prompt:
        lines.append(f"Last prompt: {shorten(session.last_prompt, RECAP_CHARS, redactor)}")
    if session.last_reply:
        lines.append(f"Last answer: {shorten(session.last_reply, RECAP_CHARS, redactor)}")
    if changed is None:
        lines.append("Changed files: unknown (not a git repository)")
    elif changed:
        shown = ", ".join(changed[:15]) + (f" and {len(changed) - 15} more"
                                          if len(changed) > 15 else "")
        lines.append(f"Changed files: {shorten(shown, RECAP_CHARS, redactor)}")
    else:
        lines.append("Changed files: none")
    lines.append("Reply here to continue it.")
    return "\n".join(lines)


def attached_refusal(session: TerminalSession) -> str:
    """Why adopting is refused while a terminal holds the session, and what to do."""
    return (f"{session.key} is still open in a terminal ({session.holder or 'a live process'})."
            " Two programs writing one session corrupt it: close it there first, or adopt "
            "anyway with --force.")
