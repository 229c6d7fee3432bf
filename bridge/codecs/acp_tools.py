"""An ACP tool call (`tool_call`, merged with its `tool_call_update`s) as the neutral tool
events and approval cards show it: a tool name, the input a card previews, and the output.
"""

from __future__ import annotations

import json

from bridge.events import JSON

_TOOL_NAMES = {
    "execute": "Bash", "edit": "Edit", "read": "Read", "delete": "Delete", "move": "Move",
    "search": "Search", "fetch": "WebFetch", "think": "Think", "switch_mode": "SwitchMode",
}  # fmt: skip


def tool_name(call: JSON) -> str:
    """Claude's own tool name when the Claude adapter gives it, else one for the kind."""
    meta = call.get("_meta")
    if isinstance(meta, dict):
        claude = meta.get("claudeCode")
        if isinstance(claude, dict) and isinstance(claude.get("toolName"), str):
            return str(claude["toolName"])
    kind = call.get("kind")
    if isinstance(kind, str) and kind in _TOOL_NAMES:
        return _TOOL_NAMES[kind]
    title = call.get("title")
    return title if isinstance(title, str) and title else "tool"


def tool_input(call: JSON) -> JSON:
    """The call as a card shows it: its raw input, the first diff as `file_path` and
    `content`, every diff (old and new text) in `diffs`, and, when it touches more than
    one file (several diffs, or `locations` beyond the file shown), every file in
    `changes`, listed at the head of `content` so that the card names each one (an "allow
    for session" rule covers exactly these)."""
    raw = call.get("rawInput")
    tool_input: JSON = dict(raw) if isinstance(raw, dict) else {}
    touched: list[JSON] = []
    diffs: list[JSON] = []
    for item in call.get("content") or []:
        if isinstance(item, dict) and item.get("type") == "diff":
            path, text, old = item.get("path"), item.get("newText"), item.get("oldText")
            if "file_path" not in tool_input:
                tool_input["file_path"] = path
                tool_input["content"] = text
            touched.append({"path": str(path), "kind": "edit",
                            "diff": text if isinstance(text, str) else ""})
            # what the card shows as a diff: oldText null (or absent) is a new file
            diffs.append({"path": str(path), "old_text": old if isinstance(old, str) else None,
                          "new_text": text if isinstance(text, str) else ""})
    if diffs:
        tool_input["diffs"] = diffs
    for location in call.get("locations") or []:
        path = location.get("path") if isinstance(location, dict) else None
        if isinstance(path, str) and path:
            touched.append({"path": path, "kind": "touches", "diff": ""})
    paths = list(dict.fromkeys(c["path"] for c in touched))
    shown = tool_input.get("file_path") or tool_input.get("path")
    if paths and paths != [shown]:
        tool_input["changes"] = [next(c for c in touched if c["path"] == p) for p in paths]
        listing = "\n".join(f"{c['kind']} {c['path']}" for c in tool_input["changes"])
        body = tool_input.get("content")
        tool_input["content"] = listing + (f"\n\n{body}" if isinstance(body, str) else "")
    if not tool_input and isinstance(call.get("title"), str):
        tool_input["title"] = call["title"]
    return tool_input


def tool_output(call: JSON) -> str:
    parts = []
    for item in call.get("content") or []:
        if not isinstance(item, dict):
            continue
        inner = item.get("content")
        if item.get("type") == "content" and isinstance(inner, dict):
            if isinstance(inner.get("text"), str):
                parts.append(inner["text"])
        elif item.get("type") == "diff":
            parts.append(f"edited {item.get('path')}")
        elif item.get("type") == "terminal":
            parts.append(f"terminal {item.get('terminalId')}")
    if parts:
        return "\n".join(parts)
    raw = call.get("rawOutput")
    if raw is None:
        return ""
    return raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)[:4000]
