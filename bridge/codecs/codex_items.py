"""Codex's thread items → neutral tool events, and the small decoders the codec shares.

An item arrives twice: `item/started` (a `commandExecution`, `fileChange` or `mcpToolCall`
becomes `ToolStarted`) and `item/completed` (`ToolFinished`; an `agentMessage` is the
assistant's text, which the codec keeps as the turn's result). A command is shown exactly
as Codex will run it; a file change lists every file its patch touches. Also here: the
thread's token usage, the version in the `initialize` answer's user agent, and the
notifications that carry nothing the bridge shows.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from bridge.codecs.jsonrpc import error_text
from bridge.events import JSON, AgentEvent, ToolFinished, ToolStarted, UsageUpdated

# Notifications that carry nothing the bridge shows (status it derives from turns, rate
# limits, streaming deltas of items that also arrive completed): dropped.
QUIET = frozenset(
    {
        "configWarning", "warning", "deprecationNotice",
        "remoteControl/status/changed", "thread/name/updated",
        "thread/goal/cleared", "thread/goal/updated", "thread/archived", "thread/unarchived",
        "turn/diff/updated", "mcpServer/startupStatus/updated",
        "item/commandExecution/terminalInteraction", "item/reasoning/summaryPartAdded",
        "item/mcpToolCall/progress", "item/autoApprovalReview/started",
        "item/autoApprovalReview/completed", "thread/readState/changed",
    }
)  # fmt: skip

# the items whose item/started the codec keeps: their approvals carry no command or diff
REMEMBERED = ("commandExecution", "fileChange")


def tool_started(kind: Any, item_id: str, item: JSON, cwd: str) -> ToolStarted | None:
    """`item/started` of a tool item; None for any other item."""
    if kind == "commandExecution":
        command = command_text(item.get("command"))
        return ToolStarted(tool_use_id=item_id, tool="Bash",
                           input={"command": command, "cwd": item.get("cwd") or cwd})
    if kind == "fileChange":
        return ToolStarted(tool_use_id=item_id, tool="Edit",
                           input=file_change_input(item.get("changes")))
    if kind == "mcpToolCall":
        arguments = item.get("arguments")
        return ToolStarted(
            tool_use_id=item_id, tool=f"mcp__{item.get('server')}__{item.get('tool')}",
            input=arguments if isinstance(arguments, dict) else {"arguments": arguments})
    return None


def tool_finished(kind: Any, item_id: str, item: JSON) -> ToolFinished | None:
    """`item/completed` of a tool item; None for any other item."""
    status = item.get("status")
    if kind == "commandExecution":
        output = item.get("aggregatedOutput") or ""
        exit_code = item.get("exitCode")
        return ToolFinished(
            tool_use_id=item_id, is_error=status != "completed",
            output=output or ("" if status == "completed" else str(status)),
            exit_code=exit_code if isinstance(exit_code, int) else None)
    if kind == "fileChange":
        changes = _changes(item.get("changes"))
        done = "; ".join(f"{c['kind']} {c['path']}" for c in changes)
        if status != "completed":
            done = f"{status}: {done}" if done else str(status)
        return ToolFinished(tool_use_id=item_id, is_error=status != "completed", output=done)
    if kind == "mcpToolCall":
        failed = status != "completed"
        payload = item.get("error") if failed else item.get("result")
        return ToolFinished(tool_use_id=item_id, is_error=failed,
                            output=error_text(payload) if failed else _dump(payload))
    return None


def file_change_input(raw: Any) -> JSON:
    """A file change as the approval card shows it: the first path, and as `content` (the
    body a card previews) every file the patch touches, then the unified diffs; every
    change listed in `changes`. An "allow for session" rule covers exactly these paths."""
    changes = _changes(raw)
    tool_input: JSON = {"changes": changes}
    if changes:
        tool_input["file_path"] = changes[0]["path"]
        diffs = "\n".join(c["diff"] for c in changes if c["diff"])
        if len(changes) > 1 or changes[0].get("move_path"):
            touched = "\n".join(_touched(c) for c in changes)
            count = f"{len(changes)} file{'s' if len(changes) > 1 else ''}"
            diffs = f"{count}:\n{touched}\n\n{diffs}"
        tool_input["content"] = diffs
    return tool_input


def _touched(change: JSON) -> str:
    moved = change.get("move_path")
    return f"{change['kind']} {change['path']}" + (f" → {moved}" if moved else "")


def _changes(raw: Any) -> list[JSON]:
    if not isinstance(raw, list):
        return []
    changes = []
    for change in raw:
        if not isinstance(change, dict):
            continue
        kind = change.get("kind")
        moved = kind.get("move_path") if isinstance(kind, dict) else None
        if isinstance(kind, dict):
            kind = kind.get("type")
        entry: JSON = {"path": str(change.get("path", "")), "kind": str(kind or "update"),
                       "diff": str(change.get("diff") or "")}
        if isinstance(moved, str) and moved:
            entry["move_path"] = moved  # the patch also writes here
        changes.append(entry)
    return changes


def command_text(command: Any) -> str:
    """The command exactly as Codex will run it, wrapper and all (`/bin/bash -lc '…'`): the
    card shows it and an "allow for session" rule matches it, so nothing of it may be
    left out (a rule made for `/bin/bash -lc 'X'` must not cover `./bash -lc 'X'`)."""
    if isinstance(command, list):
        return shlex.join(str(c) for c in command)
    if isinstance(command, str):
        return command
    return ""


def last_message(items: Any) -> str | None:
    if not isinstance(items, list):
        return None
    messages = [i for i in items if isinstance(i, dict) and i.get("type") == "agentMessage"]
    texts = [t for m in messages if isinstance(t := m.get("text"), str) and t]
    return texts[-1] if texts else None


def version_of(user_agent: Any) -> str | None:
    """`agent-bridge/0.169.0 (Debian 12.0.0; x86_64) …` → `0.169.0`."""
    if not isinstance(user_agent, str) or "/" not in user_agent:
        return None
    return user_agent.split(" ", 1)[0].split("/", 1)[1] or None


def _dump(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)[:4000]


def usage(usage: object) -> list[AgentEvent]:
    """The thread's running totals; a report without them changes nothing."""
    total = usage.get("total") if isinstance(usage, dict) else None
    if not isinstance(total, dict) or not isinstance(total.get("totalTokens"), int):
        return []

    def count(key: str) -> int:
        value = total.get(key)
        return value if isinstance(value, int) else 0

    return [UsageUpdated(total_tokens=total["totalTokens"], input_tokens=count("inputTokens"),
                         output_tokens=count("outputTokens"))]
