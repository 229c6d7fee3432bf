"""Sessions started in a terminal: what their agents' own files say, and who holds them.

Theory of operation: the daemon reads, for each session file, its size, modification time,
first bytes (`head`) and last bytes (`tail`) — never the whole transcript — and hands them
here with the list of agent processes it could see. This module does no I/O: it parses those
bytes tolerantly (a line that is not JSON, or not a kind it knows, is skipped; a cut first or
last line is dropped), and tells whether a live process still holds each session.

Claude Code keeps one file per session, `$CLAUDE_CONFIG_DIR/projects/<cwd>/<id>.jsonl`, lines
such as `{"type":"user","message":{"content":"…"},"cwd":…,"gitBranch":…,"sessionId":…}`.
Codex keeps rollouts, `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl`, a first
`session_meta` line (`id`, `cwd`, `git.branch`) then `response_item` / `event_msg` lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

CLAUDE = "claude"
CODEX = "codex"
PROTOCOLS = (CLAUDE, CODEX)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# text a person did not type: context the CLIs add as user messages
_INJECTED = ("<environment_context", "<user_instructions", "<permissions", "<command-",
             "<local-command-", "<system-reminder", "Caveat: ", "# AGENTS.md", "<turn_aborted")


class Attached(StrEnum):
    """Whether a live process holds the session: `yes` (adopting it needs force), `no`, or
    `unknown` (the host's processes could not be read)."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionFile:
    """One session file as read: `head` its first bytes, `tail` its last (the same bytes
    when the whole file fit in `head`). `agent` is the configured agent that resumes it."""

    protocol: str
    agent: str
    host: str
    path: str
    size: int
    mtime: float
    head: bytes
    tail: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessInfo:
    """A process that might hold a session: its argv, working directory, the files it has
    open (only session files matter), and whether the daemon runs it (`AGENT_BRIDGE_SESSION`
    in its environment)."""

    pid: int
    argv: tuple[str, ...]
    cwd: str | None = None
    files: frozenset[str] = frozenset()
    bridge: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalSession:
    id: str
    protocol: str
    agent: str
    host: str
    path: str
    cwd: str | None
    branch: str | None
    first_prompt: str | None
    last_prompt: str | None
    last_reply: str | None  # the agent's last message
    updated_at: float
    attached: Attached = Attached.UNKNOWN
    holder: str | None = None  # the process that holds it, "pid N: argv"

    @property
    def key(self) -> str:
        """A short handle (≤ 16 of the id's letters and digits) for buttons and typing."""
        return re.sub(r"[^a-z0-9]", "", self.id.lower())[:16]

    @property
    def place(self) -> str:
        where = (self.cwd or "?") if self.host == "local" else f"{self.host}:{self.cwd or '?'}"
        return f"{where}@{self.branch}" if self.branch else where


def session_id_of(protocol: str, filename: str) -> str | None:
    """The session id a file's name carries (Claude: `<id>.jsonl`; Codex: `rollout-…-<id>
    .jsonl`); None for a file that is no session of that agent."""
    if not filename.endswith(".jsonl"):
        return None
    stem = filename[: -len(".jsonl")]
    if protocol == CLAUDE:
        return stem if _UUID.fullmatch(stem) else None
    if protocol == CODEX and stem.startswith("rollout-"):
        found = _UUID.search(stem[-36:])
        return found.group(0) if found else None
    return None


def parse_session(file: SessionFile) -> TerminalSession | None:
    """The session a file holds, or None when its name is no session's."""
    sid = session_id_of(file.protocol, file.path.rsplit("/", 1)[-1])
    if sid is None:
        return None
    whole = len(file.head) >= file.size
    head = list(_json_lines(file.head, cut_start=False, cut_end=not whole))
    tail = head if whole else list(_json_lines(file.tail, cut_start=True, cut_end=False))
    facts = _claude_facts if file.protocol == CLAUDE else _codex_facts
    first = [f for line in head for f in facts(line)]
    last = [f for line in tail for f in facts(line)]

    def pick(kind: str, items: list[tuple[str, str]], *, newest: bool) -> str | None:
        values = [v for k, v in items if k == kind and v]
        if not values:
            return None
        return values[-1] if newest else values[0]

    return TerminalSession(
        id=sid, protocol=file.protocol, agent=file.agent, host=file.host, path=file.path,
        cwd=pick("cwd", last, newest=True) or pick("cwd", first, newest=False),
        branch=pick("branch", last, newest=True) or pick("branch", first, newest=True),
        first_prompt=pick("prompt", first, newest=False),
        last_prompt=pick("prompt", last, newest=True) or pick("prompt", first, newest=True),
        last_reply=pick("reply", last, newest=True) or pick("reply", first, newest=True),
        updated_at=file.mtime,
    )


def _json_lines(data: bytes, *, cut_start: bool, cut_end: bool) -> Iterator[dict[str, Any]]:
    """The JSON objects of `data`, one a line; a line cut by the read (the first of a tail,
    the last of a head) and any line that is not a JSON object are skipped."""
    lines = data.split(b"\n")
    if cut_start:
        lines = lines[1:]
    if cut_end:
        lines = lines[:-1]
    for raw in lines:
        raw = raw.strip()
        if not raw.startswith(b"{"):
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


def _text(content: Any) -> str | None:
    """The text of a message's content: a string, or the text blocks of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b.get("text") for b in content if isinstance(b, dict)
                 and b.get("type") in ("text", "input_text", "output_text", "Text")]
        texts = [p for p in parts if isinstance(p, str)]
        return "\n".join(texts) if texts and len(texts) == len(content) else None
    return None


def _typed(text: str | None) -> str | None:
    """`text` if a person typed it (not context the CLI injected), stripped."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    return None if text.startswith(_INJECTED) else text


def _claude_facts(line: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if _absolute(line.get("cwd")):
        yield "cwd", line["cwd"]
    if isinstance(line.get("gitBranch"), str) and line["gitBranch"] not in ("", "HEAD"):
        yield "branch", line["gitBranch"]
    kind = line.get("type")
    message = line.get("message")
    if line.get("isSidechain") or line.get("isMeta") or not isinstance(message, dict):
        if kind == "last-prompt" and isinstance(line.get("lastPrompt"), str):
            prompt = _typed(line["lastPrompt"])
            if prompt:
                yield "prompt", prompt
        return
    if kind == "user":
        prompt = _typed(_text(message.get("content")))
        if prompt:
            yield "prompt", prompt
    elif kind == "assistant":
        content = message.get("content")
        reply = _text([b for b in content if isinstance(b, dict) and b.get("type") == "text"]
                      or None) if isinstance(content, list) else _text(content)
        if reply and reply.strip():
            yield "reply", reply.strip()


def _absolute(cwd: Any) -> bool:
    """Whether `cwd` is a directory to resume in: an absolute path (a relative one would be
    taken from wherever the daemon runs)."""
    return isinstance(cwd, str) and cwd.startswith("/")


def _codex_facts(line: dict[str, Any]) -> Iterator[tuple[str, str]]:
    payload = line.get("payload")
    if not isinstance(payload, dict):
        return
    kind, inner = line.get("type"), payload.get("type")
    if kind in ("session_meta", "turn_context") and _absolute(payload.get("cwd")):
        yield "cwd", payload["cwd"]
    if kind == "session_meta":
        git = payload.get("git")
        if isinstance(git, dict) and isinstance(git.get("branch"), str) and git["branch"]:
            yield "branch", git["branch"]
    elif kind == "response_item" and inner == "message":
        text = _text(payload.get("content"))
        if payload.get("role") == "user":
            prompt = _typed(text)
            if prompt:
                yield "prompt", prompt
        elif payload.get("role") == "assistant" and text and text.strip():
            yield "reply", text.strip()
    elif kind == "event_msg":
        if inner == "user_message" and isinstance(payload.get("message"), str):
            prompt = _typed(payload["message"])
            if prompt:
                yield "prompt", prompt
        elif inner == "agent_message" and isinstance(payload.get("message"), str):
            yield "reply", payload["message"].strip()


# -- who holds a session ---------------------------------------------------------------------


def _runs(protocol: str, argv: Sequence[str]) -> bool:
    """Whether `argv` runs that agent's CLI (its native binary, or node running its script)."""
    names = [a.rsplit("/", 1)[-1] for a in argv[:2]]
    if protocol == CLAUDE:
        return any(n in ("claude", "claude.exe", "cli.js") and ("claude" in a)
                   for n, a in zip(names, argv[:2], strict=False))
    return any(n in ("codex", "codex.js") for n in names)


def _named_ids(argv: Sequence[str]) -> set[str]:
    return {m.group(0) for a in argv for m in _UUID.finditer(a.lower())}


def attach(sessions: Sequence[TerminalSession],
           processes: Sequence[ProcessInfo] | None) -> list[TerminalSession]:
    """`sessions` with `attached` told from `processes` (None: they could not be read).

    A session is held by a process that has its file open, or that runs its agent naming
    its id (`claude --resume ID`, `codex resume ID`), or that runs its agent in its
    directory without naming another session, when it is that directory's newest session
    of that agent (a plain `claude` started there is working on it). Processes the daemon
    runs itself are not terminals and hold nothing here."""
    if processes is None:
        return [replace(s, attached=Attached.UNKNOWN, holder=None) for s in sessions]
    outside = [p for p in processes if not p.bridge]
    # a directory's newest session per agent; sessions written in the same instant are all
    # its newest (which one a plain `claude` holds cannot be told: adopting either asks)
    latest: dict[tuple[str, str, str | None], float] = {}
    for s in sessions:
        place = (s.host, s.protocol, s.cwd)
        latest[place] = max(latest.get(place, s.updated_at), s.updated_at)
    newest: dict[tuple[str, str, str | None], set[str]] = {}
    for s in sessions:
        place = (s.host, s.protocol, s.cwd)
        if s.updated_at == latest[place]:
            newest.setdefault(place, set()).add(s.id)
    found = []
    for s in sessions:
        holder = next((p for p in outside if _holds(p, s, newest)), None)
        found.append(replace(
            s, attached=Attached.YES if holder else Attached.NO,
            holder=f"pid {holder.pid}: {' '.join(holder.argv)[:200]}" if holder else None))
    return found


def _holds(p: ProcessInfo, s: TerminalSession,
           newest: dict[tuple[str, str, str | None], set[str]]) -> bool:
    if s.path in p.files:
        return True
    if not _runs(s.protocol, p.argv):
        return False
    named = _named_ids(p.argv)
    if named:
        return s.id in named
    return (p.cwd is not None and p.cwd == s.cwd
            and s.id in newest.get((s.host, s.protocol, s.cwd), set()))


def names(wanted: str, session_id: str) -> bool:
    """Whether `wanted` names the session: the start of its id (dashes ignored, so its
    `key` too), at least six letters or digits of it."""
    bare = wanted.strip().lower().replace("-", "")
    return len(bare) >= 6 and session_id.lower().replace("-", "").startswith(bare)
