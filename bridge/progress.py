"""A session's progress message: what its running turn is doing, edited in place.

While a turn runs, the session's thread may hold one progress message: the last few tool
calls with how they ended (running, ok, failed with the exit code) and the agent's latest
text. It is drawn from the turn's stored events whenever the status cards are edited, so it
shows the latest state (never every step), and it spends only the status budget. Whether a
session has one: `/verbose ID on|off` for that session, else the surface's `progress`
setting, else on in a private chat and off in a group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render import Card, shorten, tool_preview

SHOWN_TOOLS = 5  # the last tool calls shown


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolStep:
    tool: str
    preview: str
    done: bool = False
    failed: bool = False
    exit_code: int | None = None


def progress_on(session: SessionView, configured: bool | None, *, private_chat: bool) -> bool:
    """Whether the session gets a progress message on a surface (see the module)."""
    if session.verbose is not None:
        return session.verbose
    if configured is not None:
        return configured
    return private_chat


def steps_of(events: Sequence[tuple[str, dict[str, Any]]],
             redactor: Redactor) -> tuple[list[ToolStep], str | None]:
    """The tool calls of a turn's events (`tool_started`, `tool_finished`, in order) and
    the agent's latest text."""
    steps: dict[str, ToolStep] = {}
    text: str | None = None
    for kind, data in events:
        if kind == "assistant_text" and str(data.get("text") or "").strip():
            text = str(data["text"])
        elif kind == "tool_started":
            tool = str(data.get("tool") or "tool")
            given = data.get("input")
            tool_input: dict[str, Any] = given if isinstance(given, dict) else {}
            steps[str(data.get("tool_use_id"))] = ToolStep(
                tool=tool, preview=tool_preview(tool, tool_input, 80, redactor=redactor))
        elif kind == "tool_finished":
            key = str(data.get("tool_use_id"))
            started = steps.get(key)
            if started is None:
                continue
            code = data.get("exit_code")
            steps[key] = ToolStep(tool=started.tool, preview=started.preview, done=True,
                                  failed=bool(data.get("is_error")) or bool(code),
                                  exit_code=code if isinstance(code, int) else None)
    return list(steps.values()), text


def render_progress(session: SessionView, events: Sequence[tuple[str, dict[str, Any]]], *,
                    redactor: Redactor) -> Card | None:
    """The progress message of the running turn; None while it has nothing to show."""
    steps, text = steps_of(events, redactor)
    if not steps and text is None:
        return None
    lines = [f"🛠 {session.id} at work: turn {session.turns + 1}"]
    if len(steps) > SHOWN_TOOLS:
        lines.append(f"… {len(steps) - SHOWN_TOOLS} earlier tool call(s)")
    for step in steps[-SHOWN_TOOLS:]:
        if not step.done:
            mark, how = "▶️", "running"
        elif step.failed:
            mark = "❌"
            how = f"exit {step.exit_code}" if step.exit_code is not None else "failed"
        else:
            mark, how = "✅", "ok"
        lines.append(f"{mark} {step.tool} {step.preview} · {how}")
    if text is not None:
        lines.append(f"💬 {shorten(text, 600, redactor)}")
    return Card("\n".join(lines))
