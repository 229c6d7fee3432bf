"""Evidence: what a request will do, in the words a person checks before allowing it.

An Edit or MultiEdit is a unified diff of the text it replaces; a Write says whether it
creates the file or overwrites one (a fact the daemon looked up when the request arrived,
`on_disk`), with the new content's size and lines; a patch (Codex `fileChange`, ACP diffs)
lists every file with its own hunks, new and deleted files labelled; a command is the
whole command. Anything else is its input as JSON.

`request_evidence()` gives the whole text, uncut and unredacted (but for an input shown as
JSON, whose strings are redacted before they are escaped): the card redacts it and shows
what fits (`bridge.render`), and when it does not fit the whole of it goes out as a
file (`bridge.render_plans.request_attachment`).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from bridge.redact import Redactor

# Claude's file tools and the neutral ones the codecs map patches to
_EDITS = frozenset({"Edit", "MultiEdit", "Write", "NotebookEdit", "Delete", "Move"})


def size_text(n: int) -> str:
    if n < 1024:
        return f"{n} byte{'s' if n != 1 else ''}"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def unified(path: str, old: str, new: str) -> str:
    """`old` → `new` of `path` as a unified diff (no trailing newline)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=f"a/{path.lstrip('/')}" if old else "/dev/null",
        tofile=f"b/{path.lstrip('/')}", n=3)
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out).rstrip("\n")


def _added(text: str) -> str:
    """A new file's content as the added side of a diff."""
    return _sided(text, "+")


def _sided(text: str, side: str) -> str:
    return "\n".join(f"{side}{line}" for line in text.splitlines())


def command_evidence(tool_input: Mapping[str, Any]) -> str | None:
    command = tool_input.get("command")
    if isinstance(command, list):
        command = " ".join(str(c) for c in command)
    return f"$ {command}" if isinstance(command, str) else None


def _path(tool_input: Mapping[str, Any]) -> str | None:
    path = tool_input.get("file_path") or tool_input.get("path") or tool_input.get("notebook_path")
    return path if isinstance(path, str) and path else None


def write_evidence(path: str, content: str, on_disk: Mapping[str, int | None] | None) -> str:
    """A Write: new file or overwrite (with the size it replaces), its size and content."""
    size = len(content.encode("utf-8", "surrogatepass"))
    lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
    if on_disk is None or path not in on_disk:
        what = "writes (whether the file exists was not checked)"
    elif on_disk[path] is None:
        what = "new file"
    else:
        what = f"overwrites the existing file ({size_text(on_disk[path] or 0)})"
    head = f"{path}\n{what}: {size_text(size)}, {lines} line{'s' if lines != 1 else ''}"
    return f"{head}\n{content}" if content else head


def edit_evidence(path: str, tool_input: Mapping[str, Any]) -> str:
    old, new = tool_input.get("old_string"), tool_input.get("new_string")
    old, new = (old if isinstance(old, str) else ""), (new if isinstance(new, str) else "")
    every = " (every occurrence)" if tool_input.get("replace_all") else ""
    return f"{path}: replaces{every}\n{unified(path, old, new)}"


def multi_edit_evidence(path: str, edits: list[Any]) -> str:
    parts = [f"{path}: {len(edits)} edit{'s' if len(edits) != 1 else ''}"]
    for n, edit in enumerate(edits, 1):
        if not isinstance(edit, Mapping):
            continue
        old, new = edit.get("old_string"), edit.get("new_string")
        every = " (every occurrence)" if edit.get("replace_all") else ""
        parts.append(f"edit {n}{every}:\n" + unified(
            path, old if isinstance(old, str) else "", new if isinstance(new, str) else ""))
    return "\n".join(parts)


def _is_diff(text: str) -> bool:
    return text.startswith(("@@", "--- ", "diff ", "Index: "))


def patch_evidence(changes: list[Any]) -> str:
    """Every file of a patch with its own hunks (Codex `fileChange` changes)."""
    files = [c for c in changes if isinstance(c, Mapping)]
    parts = [f"{len(files)} file{'s' if len(files) != 1 else ''}:"]
    for change in files:
        path, kind = str(change.get("path") or "?"), str(change.get("kind") or "update")
        diff = change.get("diff")
        diff = diff.rstrip("\n") if isinstance(diff, str) else ""
        moved = change.get("move_path")
        label = {"add": "new file", "delete": "deleted"}.get(kind, "modified")
        if isinstance(moved, str) and moved:
            label += f", moved to {moved}"
        parts.append(f"── {path} ({label})")
        if diff and not _is_diff(diff) and kind in ("add", "delete"):
            # Codex sends a new file's content (and a deleted one's) rather than a diff
            parts.append(_sided(diff, "+" if kind == "add" else "-"))
        elif diff:
            parts.append(diff)
    return "\n".join(parts)


def diffs_evidence(diffs: list[Any]) -> str:
    """Every file of an ACP tool call's diffs (`old_text` None: a new file)."""
    files = [d for d in diffs if isinstance(d, Mapping)]
    parts = [f"{len(files)} file{'s' if len(files) != 1 else ''}:"]
    for diff in files:
        path = str(diff.get("path") or "?")
        old, new = diff.get("old_text"), diff.get("new_text")
        new = new if isinstance(new, str) else ""
        if isinstance(old, str):
            parts.append(f"── {path} (modified)")
            parts.append(unified(path, old, new))
        else:
            parts.append(f"── {path} (new file)")
            parts.append(_added(new))
    return "\n".join(parts)


def request_evidence(tool: str, tool_input: Mapping[str, Any], *, redactor: Redactor,
                     on_disk: Mapping[str, int | None] | None = None) -> str:
    """The whole evidence of a request (unredacted, uncut); see the module's docstring."""
    command = command_evidence(tool_input)
    if command is not None:
        return command
    diffs = tool_input.get("diffs")
    if isinstance(diffs, list) and diffs:
        return diffs_evidence(diffs)
    changes = tool_input.get("changes")
    if isinstance(changes, list) and changes and all(
            isinstance(c, Mapping) and "diff" in c for c in changes):
        return patch_evidence(changes)
    path = _path(tool_input)
    if tool in _EDITS and path is not None:
        if tool == "Write" or ("content" in tool_input and "old_string" not in tool_input):
            content = tool_input.get("content")
            return write_evidence(path, content if isinstance(content, str) else "", on_disk)
        if tool == "MultiEdit" and isinstance(tool_input.get("edits"), list):
            return multi_edit_evidence(path, tool_input["edits"])
        if "old_string" in tool_input or "new_string" in tool_input:
            return edit_evidence(path, tool_input)
        return path
    try:
        return json.dumps(redacted_input(tool_input, redactor), ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return redactor.redact(str(tool_input)).text


def redacted_input(value: Any, redactor: Redactor) -> Any:
    """`value` with every string in it redacted, before it is serialised: in JSON a line
    break becomes `\\n` and a quote `\\"`, which hide where a secret starts and ends."""
    if isinstance(value, str):
        return redactor.redact(value).text
    if isinstance(value, Mapping):
        return {k: redacted_input(v, redactor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redacted_input(v, redactor) for v in value]
    return value
