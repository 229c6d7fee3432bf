"""`agent-bridge hooks install|uninstall`: the two hooks in the agents' own settings.

Claude Code reads `$CLAUDE_CONFIG_DIR/settings.json` (default `~/.claude`), Codex
`$CODEX_HOME/hooks.json` (default `~/.codex`); both take `{"hooks": {"PermissionRequest":
[group], "Stop": [group]}}` (docs/terminal-hooks.md). Install appends one group to each event,
calling `agent-bridge hook KIND`, after showing the change. What it added, and the file's bytes
before and after, are kept in the state dir (`hooks-installed.json`): uninstall puts the old
bytes back when the file is as install left it, and otherwise removes exactly the groups it
added and nothing else.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.errors import DaemonError

RECORD = "hooks-installed.json"
EVENTS = {"PermissionRequest": "permission-request", "Stop": "stop"}
HOOK_TIMEOUT = 600  # seconds the agent gives the hook; the hook itself gives up at 590
CODEX_TRUST = ("Codex runs a new hook only once you trust it: start `codex`, type /hooks and "
               "trust the two agent-bridge hooks.")


@dataclass(frozen=True, slots=True)
class Target:
    agent: str
    path: Path


def targets(env: Mapping[str, str]) -> dict[str, Target]:
    home = Path(env.get("HOME") or Path.home())
    claude = Path(env["CLAUDE_CONFIG_DIR"]) if env.get("CLAUDE_CONFIG_DIR") else home / ".claude"
    codex = Path(env["CODEX_HOME"]) if env.get("CODEX_HOME") else home / ".codex"
    return {"claude": Target("claude", claude / "settings.json"),
            "codex": Target("codex", codex / "hooks.json")}


def hook_command(kind: str, agent: str, socket: Path) -> str:
    """The line the agent runs: this agent-bridge, by absolute path where it can be found."""
    found = shutil.which("agent-bridge")
    argv0 = Path(sys.argv[0])
    if argv0.name == "agent-bridge" and argv0.exists():
        found = str(argv0.resolve())
    base = [found] if found else [sys.executable, "-m", "daemon.cli"]
    return shlex.join([*base, "hook", kind, "--agent", agent, "--socket", str(socket)])


def our_groups(agent: str, socket: Path) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for event, kind in EVENTS.items():
        hook = {"type": "command", "command": hook_command(kind, agent, socket),
                "timeout": HOOK_TIMEOUT}
        group: dict[str, Any] = {"hooks": [hook]}
        if event == "PermissionRequest":
            group = {"matcher": "*", **group}
        groups[event] = group
    return groups


@dataclass(frozen=True, slots=True)
class Change:
    target: Target
    before: bytes | None  # None: the file does not exist
    after: bytes

    def diff(self) -> str:
        old = (self.before or b"").decode("utf-8", "replace").splitlines(keepends=True)
        new = self.after.decode("utf-8", "replace").splitlines(keepends=True)
        name = str(self.target.path)
        lines = difflib.unified_diff(old, new, name if self.before is not None else "/dev/null",
                                     name)
        return "".join(lines)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _settings(raw: bytes | None, path: Path) -> dict[str, Any]:
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise DaemonError(f"{path} is not valid JSON ({e}); fix it first, then run "
                          "`agent-bridge hooks install` again") from e
    if not isinstance(data, dict) or not isinstance(data.get("hooks", {}), dict):
        raise DaemonError(f"{path}: expected a JSON object whose \"hooks\" is an object")
    return data


def plan_install(target: Target, socket: Path) -> Change | None:
    """The change install makes, or None when our hooks are there already."""
    before = _read(target.path)
    data = _settings(before, target.path)
    hooks = data.setdefault("hooks", {})
    added = False
    for event, group in our_groups(target.agent, socket).items():
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise DaemonError(f"{target.path}: hooks.{event} is not a list")
        if group not in groups:
            groups.append(group)
            added = True
    if not added:
        return None
    return Change(target, before, (json.dumps(data, indent=2) + "\n").encode())


def _record_path(state: Path) -> Path:
    return state / RECORD


def _load_record(state: Path) -> dict[str, Any]:
    raw = _read(_record_path(state))
    try:
        record = json.loads(raw) if raw else {}
    except ValueError:
        record = {}
    return record if isinstance(record, dict) else {}


def _save_record(state: Path, record: dict[str, Any]) -> None:
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write(_record_path(state), (json.dumps(record, indent=2) + "\n").encode(), mode=0o600)


def _write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace `path` atomically, keeping its mode (a new file: `mode`, else 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        keep = path.stat().st_mode & 0o777
    except FileNotFoundError:
        keep = mode if mode is not None else 0o600
    tmp = path.with_name(f".{path.name}.agent-bridge.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, keep)
    try:
        os.write(fd, data)
        os.fchmod(fd, keep)
    finally:
        os.close(fd)
    tmp.replace(path)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def install(change: Change, state: Path, socket: Path) -> None:
    _write(change.target.path, change.after)
    record = _load_record(state)
    record[change.target.agent] = {
        "path": str(change.target.path),
        "original": None if change.before is None else base64.b64encode(change.before).decode(),
        "written_sha256": _sha(change.after),
        "added": our_groups(change.target.agent, socket),
    }
    _save_record(state, record)


def uninstall(agent: str, state: Path) -> str:
    """Remove what install added; a sentence saying what was done."""
    record = _load_record(state)
    entry = record.get(agent)
    if not isinstance(entry, dict):
        return f"{agent}: no agent-bridge hooks were installed (nothing to remove)"
    path = Path(entry["path"])
    current = _read(path)
    if current is not None and _sha(current) == entry.get("written_sha256"):
        original = entry.get("original")
        if original is None:
            path.unlink()
            said = f"{agent}: removed {path} (install had created it)"
        else:
            _write(path, base64.b64decode(original))
            said = f"{agent}: {path} is back as it was before install"
    elif current is None:
        said = f"{agent}: {path} is gone already"
    else:
        data = _settings(current, path)
        hooks = data.get("hooks", {})
        removed = 0
        for event, group in dict(entry.get("added", {})).items():
            groups = hooks.get(event)
            if isinstance(groups, list) and group in groups:
                groups.remove(group)
                removed += 1
                if not groups:
                    del hooks[event]
        if not hooks and "hooks" in data:
            del data["hooks"]
        _write(path, (json.dumps(data, indent=2) + "\n").encode())
        said = (f"{agent}: {path} changed since install; removed only agent-bridge's "
                f"{removed} hook group(s), the rest is kept")
    del record[agent]
    _save_record(state, record)
    return said


def status(env: Mapping[str, str], state: Path, socket: Path) -> dict[str, str]:
    """Per agent, in words: installed or not, and whether it is as installed."""
    record = _load_record(state)
    found: dict[str, str] = {}
    for agent, target in targets(env).items():
        raw = _read(target.path)
        try:
            data = _settings(raw, target.path)
        except DaemonError as e:
            found[agent] = f"cannot read {target.path}: {e.message}"
            continue
        hooks = data.get("hooks", {})
        ours = our_groups(agent, socket)
        present = [e for e, g in ours.items() if g in (hooks.get(e) or [])]
        other_lines = [e for e in EVENTS if e not in present and "agent-bridge hook" in
                       json.dumps(hooks.get(e, []))]
        if len(present) == len(ours):
            text = f"installed in {target.path}"
            if agent == "codex":
                text += " (" + CODEX_TRUST + ")"
        elif other_lines:
            text = (f"agent-bridge hooks in {target.path} call another socket or binary: run "
                    "`agent-bridge hooks uninstall` then `hooks install`")
        elif present:
            text = f"partly installed in {target.path} ({', '.join(present)}): run hooks install"
        elif agent in record:
            text = f"removed from {target.path} by hand: run `agent-bridge hooks install --{agent}`"
        else:
            text = f"not installed (agent-bridge hooks install --{agent})"
        found[agent] = text
    return found


def confirm(change: Change, *, yes: bool, ask: Callable[[str], str] = input) -> bool:
    """Whether to write `change` (shown first): --yes, or a "y" from a person at a terminal."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise DaemonError("not writing without a confirmation: run it in a terminal, or "
                          "pass --yes once you have read the change above")
    return ask(f"Write this to {change.target.path}? [y/N] ").strip().lower() in ("y", "yes")
