#!/usr/bin/env python3
"""A stand-in for the `claude` CLI in stream-json mode, for tests and benchmarks.

Speaks the same NDJSON wire protocol as Claude Code 2.1.331 (shapes copied from the
recordings in the shared reference `transcripts/claude-code-2.1.331-*.jsonl`): it answers
`initialize`, emits `system/init` at the start of every turn, asks `can_use_tool` over the
control protocol, honours `interrupt` (with `control_cancel_request` for a pending prompt)
and ends each turn with a `result`. Sessions are stored per working directory so that
`--resume=<id>` works only in the session's own cwd, like the real CLI.

Fake-only options (flags win over the environment):
  --scenario NAME   what the "model" does (env FAKE_CLAUDE_SCENARIO, default `approve`)
  --record PATH     append every stdin line to PATH, flushed at once (env FAKE_CLAUDE_RECORD)
  --flood N         line count for `flood`, approval count for `many_approvals`
  --delay-ms N      pause before each model step (interruptible)
Every real CLI flag is accepted, in `--flag=value` and `--flag value` form, and ignored
unless it matters here (`--resume`, `--session-id`, `--fork-session`, `--permission-mode`).

Persistence: `$FAKE_CLAUDE_HOME/projects/<sanitized cwd>/<session_id>.jsonl`
(FAKE_CLAUDE_HOME defaults to `$HOME/.fake-claude`).

Scenarios: approve, text, two_approvals, write, garbage, noise, truncated, huge_line,
unknown_type, crash_mid_approval, hang, flood, slow_approve, many_approvals, question
(AskUserQuestion: one single-select and one multi-select question, answered the way the
real 2.1.331 does: `updatedInput.answers`, question text → the label(s) joined by ", "),
plan (ExitPlanMode with a Markdown plan, as the real 2.1.331 asks to leave plan mode).
rate_limit (the usage limit is hit: `rate_limit_event` rejected, resetting in
$FAKE_CLAUDE_RESET_IN seconds (default 3600), the refused `assistant` message with
`error: rate_limit` and an error result; a prompt that says the limit "has reset" gets
`rate_limit_event` allowed and a normal answer).
write_each_turn (turn N asks to Write `turn-N.txt`, N counting the session's prompts),
big_write (a Write of 400 lines, too long for a card, ending in a GitHub token).

Standard library only. Stdin is read by one thread that records lines and queues them;
everything else (all stdout writes) happens on the main thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import signal
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

JSON = dict[str, Any]

VERSION = "2.1.331-fake"
MODEL = "claude-fake-1"
COST_PER_STEP = 0.00014  # the real CLI against the mock API: 0.00014 per model call
TOOLS = [
    "Task", "AskUserQuestion", "Bash", "Edit", "ExitPlanMode", "Glob", "Grep",
    "NotebookEdit", "Read", "Skill", "TodoWrite", "WebFetch", "WebSearch", "Write",
]  # fmt: skip
REJECTED_TEXT = (
    "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if "
    "it was a file edit, the new_string was NOT written to the file). STOP what you are "
    "doing and wait for the user to tell you how to proceed."
)
QUESTIONS = [
    {"question": "Which database?", "header": "Database", "multiSelect": False,
     "options": [{"label": "SQLite", "description": "one file"},
                 {"label": "Postgres", "description": "a server"}]},
    {"question": "Which colours?", "header": "Colours", "multiSelect": True,
     "options": [{"label": "Red", "description": "warm"},
                 {"label": "Blue", "description": "cool"},
                 {"label": "Green", "description": "calm"}]},
]

PLAN = "# Plan: greet\n\n1. Write the greeting\n2. Check that it reads well"

SCENARIOS = frozenset(
    {
        "approve", "text", "two_approvals", "write", "garbage", "noise", "truncated",
        "huge_line", "unknown_type", "crash_mid_approval", "hang", "flood", "slow_approve",
        "many_approvals", "question", "plan", "rate_limit", "write_each_turn", "big_write",
    }
)  # fmt: skip

# Real CLI flags that take no value; every other flag consumes the next token as its value
# when that token does not look like a flag.
BOOLEAN_FLAGS = frozenset(
    {
        "-p", "--print", "--verbose", "-c", "--continue", "--fork-session",
        "--include-partial-messages", "--include-hook-events", "--strict-mcp-config",
        "--replay-user-messages", "--no-session-persistence", "--dangerously-skip-permissions",
        "--allow-dangerously-skip-permissions", "--ide", "--bare", "-h", "--help",
        "-v", "--version", "--mcp-debug", "--disable-slash-commands",
    }
)  # fmt: skip
# Flags whose value is optional: only a following token that is not a flag is their value.
OPTIONAL_VALUE_FLAGS = frozenset({"-r", "--resume", "-d", "--debug"})
FAKE_FLAGS = frozenset({"--scenario", "--record", "--flood", "--delay-ms"})

ECHO_TO_FILE = re.compile(r"^\s*echo\s+(?P<text>.*?)\s*>\s*(?P<file>[^\s;&|<>]+)\s*$")


# ---------------------------------------------------------------------------- options


@dataclass(slots=True)
class Options:
    scenario: str = "approve"
    record: str | None = None
    flood: int = 1000
    delay_ms: int = 0
    resume: str | None = None
    session_id: str | None = None
    fork_session: bool = False
    permission_mode: str = "default"
    version_only: bool = False


def parse_args(argv: list[str]) -> Options:
    """Parse argv the forgiving way the fake needs: real flags are skipped with their value."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            continue  # a positional prompt; stream-json input brings the prompts
        if "=" in arg and arg.startswith("--"):
            name, value = arg.split("=", 1)
            values[name] = value
            continue
        if arg in BOOLEAN_FLAGS:
            flags.add(arg)
            continue
        nxt = argv[i] if i < len(argv) else None
        takes_next = nxt is not None and (not nxt.startswith("-") or nxt == "" or arg in FAKE_FLAGS)
        if arg in OPTIONAL_VALUE_FLAGS and nxt is not None and nxt.startswith("-"):
            takes_next = False
        if takes_next and nxt is not None:
            values[arg] = nxt
            i += 1
        else:
            flags.add(arg)

    opts = Options()
    opts.scenario = values.get("--scenario") or os.environ.get("FAKE_CLAUDE_SCENARIO") or "approve"
    opts.record = values.get("--record") or os.environ.get("FAKE_CLAUDE_RECORD") or None
    opts.flood = _int_option(values, "--flood", 1000)
    opts.delay_ms = _int_option(values, "--delay-ms", 0)
    opts.resume = values.get("--resume", values.get("-r"))
    if opts.resume is None and ({"--resume", "-r"} & flags):
        fail("Error: --resume requires a session id when input is not interactive")
    opts.session_id = values.get("--session-id")
    opts.fork_session = "--fork-session" in flags
    opts.permission_mode = values.get("--permission-mode") or "default"
    opts.version_only = bool({"-v", "--version"} & flags)
    if opts.scenario not in SCENARIOS:
        fail(f"fake_claude: unknown scenario {opts.scenario!r}; known: {sorted(SCENARIOS)}")
    return opts


def _int_option(values: dict[str, str], name: str, default: int) -> int:
    raw = values.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        fail(f"fake_claude: {name} needs an integer, got {raw!r}")


def fail(message: str, code: int = 1) -> NoReturn:
    print(message, file=sys.stderr, flush=True)
    hard_exit(code)


def hard_exit(code: int) -> NoReturn:
    """Exit at once. os._exit, because the stdin thread may hold the stdin buffer's lock and a
    normal interpreter shutdown can then abort ("could not acquire lock ... daemon threads")."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


# ---------------------------------------------------------------------------- sessions


def sanitize_path(path: str) -> str:
    """Project directory name, as Claude Code derives it from a cwd."""
    name = re.sub(r"[^A-Za-z0-9]", "-", path)
    if len(name) > 200:
        digest = int(hashlib.sha256(path.encode()).hexdigest()[:12], 16)
        name = f"{name[:200]}-{_base36(digest)}"
    return name


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def fake_home() -> Path:
    home = os.environ.get("FAKE_CLAUDE_HOME")
    if home:
        return Path(home)
    return Path(os.environ.get("HOME") or Path.home()) / ".fake-claude"


class SessionStore:
    """One JSONL file per session: a `user` line per prompt and a `result` line per turn."""

    def __init__(self, cwd: str, session_id: str) -> None:
        self.cwd = cwd
        self.session_id = session_id
        self.path = fake_home() / "projects" / sanitize_path(cwd) / f"{session_id}.jsonl"
        self.prompts: list[str] = []
        self.cost = 0.0

    def load(self) -> None:
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("type") == "user":
                        self.prompts.append(entry["message"]["content"])
                    elif entry.get("type") == "result":
                        self.cost += float(entry.get("cost_usd", 0.0))

    def copy_from(self, other: SessionStore) -> None:
        self.prompts = list(other.prompts)
        self.cost = other.cost
        for prompt in self.prompts:
            self._append({"type": "user", "message": {"role": "user", "content": prompt}})
        self._append({"type": "result", "cost_usd": self.cost})

    def add_prompt(self, prompt: str) -> None:
        self.prompts.append(prompt)
        self._append({"type": "user", "message": {"role": "user", "content": prompt}})

    def add_result(self, cost: float) -> None:
        self.cost += cost
        self._append({"type": "result", "cost_usd": cost})

    def _append(self, entry: JSON) -> None:
        entry = {
            **entry,
            "sessionId": self.session_id,
            "cwd": self.cwd,
            "version": VERSION,
            "uuid": new_uuid(),
            "timestamp": now_iso(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")


def open_session(opts: Options, cwd: str) -> SessionStore:
    """The session this process carries, or exit the way the real CLI does."""
    if opts.session_id is not None:
        try:
            uuid.UUID(opts.session_id)
        except ValueError:
            fail("Error: Invalid session ID. Must be a valid UUID.")
        if opts.resume is not None and not opts.fork_session:
            fail(
                "Error: --session-id can only be used with --continue or --resume "
                "if --fork-session is also specified."
            )
    if opts.resume is None:
        store = SessionStore(cwd, opts.session_id or new_uuid())
        if opts.session_id is not None and store.path.exists():
            fail(f"Error: Session ID {opts.session_id} is already in use.")
        return store
    old = SessionStore(cwd, opts.resume)
    if not old.path.is_file():
        fail(f"No conversation found with session ID: {opts.resume}")
    old.load()
    if not opts.fork_session:
        return old
    forked = SessionStore(cwd, opts.session_id or new_uuid())
    forked.copy_from(old)
    return forked


# ---------------------------------------------------------------------------- helpers


def new_uuid() -> str:
    return str(uuid.uuid4())


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prompt_text(message: JSON) -> str:
    content = (message.get("message") or {}).get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b.get("text", "") for b in content if isinstance(b, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


class Eof:
    """Queued by the stdin thread when stdin closes."""


EOF = Eof()


class Interrupted(Exception):
    """Ends the running turn: an `interrupt` request, or a deny with `interrupt: true`."""

    def __init__(self, request_id: str | None, denied: tuple[ToolCall, str] | None = None):
        super().__init__("interrupted")
        self.request_id = request_id
        self.denied = denied


@dataclass(slots=True)
class ToolCall:
    tool_use_id: str
    name: str
    input: JSON


@dataclass(slots=True)
class Answer:
    allow: bool
    updated_input: JSON | None = None
    message: str = ""
    interrupt: bool = False


@dataclass(slots=True)
class Turn:
    started: float
    steps: int = 0
    pending: dict[str, ToolCall] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    denials: list[JSON] = field(default_factory=list)


def tool_result(call: ToolCall, content: str, *, is_error: bool) -> JSON:
    return {
        "tool_use_id": call.tool_use_id,
        "type": "tool_result",
        "content": content,
        "is_error": is_error,
    }


def stdin_reader(lines: queue.Queue[JSON | Eof], record: str | None) -> None:
    """Thread body: record every stdin line, queue the parsed ones, then EOF."""
    rec: BinaryIO | None = Path(record).open("ab") if record else None  # noqa: SIM115
    stdin = sys.stdin.buffer
    try:
        while True:
            raw = stdin.readline()
            if not raw:
                break
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            if rec is not None:
                rec.write(line + b"\n")
                rec.flush()
            try:
                message = json.loads(line)
            except ValueError as e:
                print(f"fake_claude: ignoring invalid JSON on stdin: {e}", file=sys.stderr)
                continue
            if isinstance(message, dict):
                lines.put(message)
    finally:
        if rec is not None:
            rec.close()
        lines.put(EOF)


# ---------------------------------------------------------------------------- the fake


class FakeClaude:
    def __init__(self, opts: Options, session: SessionStore, cwd: str) -> None:
        self.opts = opts
        self.session = session
        self.cwd = cwd
        self.out = sys.stdout.buffer
        self.inbox: queue.Queue[JSON | Eof] = queue.Queue()
        self.turns: deque[JSON] = deque()
        self.turn: Turn | None = None
        self.eof = False
        self.last_result_error = False
        self.seq = 0

    # -- output

    def emit(self, message: JSON, *, flush: bool = True) -> None:
        self.write_raw(json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n")
        if flush:
            self.flush()

    def write_raw(self, text: str) -> None:
        try:
            self.out.write(text.encode("utf-8"))
        except (BrokenPipeError, ValueError):
            hard_exit(1)

    def flush(self) -> None:
        try:
            self.out.flush()
        except (BrokenPipeError, ValueError):
            hard_exit(1)

    def envelope(self, message: JSON) -> JSON:
        return {
            **message,
            "parent_tool_use_id": None,
            "session_id": self.session.session_id,
            "uuid": new_uuid(),
            "timestamp": now_iso(),
        }

    def assistant(self, block: JSON, message_id: str | None = None) -> None:
        self.emit(
            self.envelope(
                {
                    "type": "assistant",
                    "message": {
                        "id": message_id or f"msg_{uuid.uuid4().hex[:20]}",
                        "type": "message",
                        "role": "assistant",
                        "model": MODEL,
                        "content": [block],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": 10,
                            "output_tokens": 5,
                            "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0,
                        },
                        "context_management": None,
                    },
                }
            )
        )

    def user_blocks(self, content: list[JSON], **extra: Any) -> None:
        self.emit(
            self.envelope({"type": "user", "message": {"role": "user", "content": content}}) | extra
        )

    def control_success(self, request_id: str, response: JSON) -> None:
        self.emit(
            {
                "type": "control_response",
                "response": {"subtype": "success", "request_id": request_id, "response": response},
            }
        )

    def system_init(self) -> None:
        self.emit(
            {
                "type": "system",
                "subtype": "init",
                "cwd": self.cwd,
                "session_id": self.session.session_id,
                "tools": TOOLS,
                "mcp_servers": [],
                "model": MODEL,
                "permissionMode": self.opts.permission_mode,
                "slash_commands": ["compact", "clear", "review"],
                "apiKeySource": "none",
                "claude_code_version": VERSION,
                "output_style": "default",
                "agents": ["general-purpose", "Explore", "Plan"],
                "skills": [],
                "plugins": [],
                "capabilities": ["interrupt_receipt_v1", "interrupt_cancel_queued_v1"],
                "uuid": new_uuid(),
                "fast_mode_state": "off",
            }
        )

    # -- input

    def next_message(self, timeout: float | None = None) -> JSON | Eof | None:
        """The next stdin message, EOF (sticky), or None when `timeout` passed."""
        if self.eof:
            if timeout is not None:
                time.sleep(timeout)
                return None
            return EOF
        try:
            message = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(message, Eof):
            self.eof = True
        return message

    def handle(self, message: JSON) -> None:
        """Everything that can arrive at any time. Raises Interrupted during a turn."""
        kind = message.get("type")
        if kind == "user":
            self.turns.append(message)
        elif kind == "control_response":
            self.take_answer(message.get("response") or {})
        elif kind == "control_request":
            self.control_request(message)
        elif kind not in ("keep_alive", "update_environment_variables"):
            print(f"fake_claude: ignoring stdin message of type {kind!r}", file=sys.stderr)

    def control_request(self, message: JSON) -> None:
        request_id = str(message.get("request_id", ""))
        request = message.get("request") or {}
        subtype = request.get("subtype")
        if subtype == "initialize":
            self.control_success(
                request_id,
                {
                    "commands": [],
                    "agents": [],
                    "output_style": "default",
                    "available_output_styles": ["default"],
                    "models": [],
                    "account": {"tokenSource": "none", "apiKeySource": "none"},
                    "pid": os.getpid(),
                    "claude_code_version": VERSION,
                    "current_permission_mode": self.opts.permission_mode,
                    "session_state": "running" if self.turn else "idle",
                    "capabilities": [],
                },
            )
        elif subtype == "interrupt":
            if self.turn is not None:
                raise Interrupted(request_id)
            self.control_success(request_id, {"still_queued": []})
        elif subtype == "set_permission_mode":
            self.opts.permission_mode = str(request.get("mode") or "default")
            self.control_success(request_id, {})
        elif subtype in ("set_model", "set_max_thinking_tokens", "mcp_status"):
            self.control_success(request_id, {})
        else:
            self.emit(
                {
                    "type": "control_response",
                    "response": {
                        "subtype": "error",
                        "request_id": request_id,
                        "error": f"Unsupported control request subtype: {subtype}",
                    },
                }
            )

    def take_answer(self, response: JSON) -> None:
        request_id = response.get("request_id")
        turn = self.turn
        if turn is None or request_id not in turn.pending:
            return  # unknown, cancelled or already answered: ignored like the real CLI
        if response.get("subtype") == "error":
            answer = Answer(allow=False, message=str(response.get("error") or "error"))
        else:
            body = response.get("response") or {}
            if body.get("behavior") == "allow":
                updated = body.get("updatedInput")
                answer = Answer(allow=True, updated_input=updated if updated else None)
            else:
                answer = Answer(
                    allow=False,
                    message=str(body.get("message") or "Permission denied"),
                    interrupt=bool(body.get("interrupt")),
                )
        turn.answers[request_id] = answer

    def at_eof_with_pending_prompt(self) -> NoReturn:
        if self.opts.scenario == "hang":
            sleep_forever()
        hard_exit(1 if self.last_result_error else 0)

    def pause(self, seconds: float) -> None:
        """Sleep while still serving stdin (an interrupt ends the pause and the turn)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message = self.next_message(timeout=left)
            if isinstance(message, dict):
                self.handle(message)

    def answers(self, turn: Turn) -> Any:
        """Yield (request_id, call, answer) as answers arrive, until no prompt is pending."""
        while turn.pending:
            for request_id in list(turn.answers):
                answer = turn.answers.pop(request_id)
                call = turn.pending.pop(request_id)
                yield request_id, call, answer
            if not turn.pending:
                return
            message = self.next_message()
            if isinstance(message, Eof):
                self.at_eof_with_pending_prompt()
            if message is not None:
                self.handle(message)

    # -- the model

    def model_step(self, turn: Turn) -> None:
        if self.opts.delay_ms > 0:
            self.pause(self.opts.delay_ms / 1000)
        turn.steps += 1

    def tool_use(self, name: str, tool_input: JSON, message_id: str | None = None) -> ToolCall:
        call = ToolCall(f"toolu_{uuid.uuid4().hex[:20]}", name, tool_input)
        self.assistant(
            {"type": "tool_use", "id": call.tool_use_id, "name": name, "input": tool_input},
            message_id,
        )
        return call

    def ask(self, turn: Turn, call: ToolCall) -> str:
        request_id = new_uuid()
        request: JSON = {
            "subtype": "can_use_tool",
            "tool_name": call.name,
            "display_name": call.name,
            "input": call.input,
        }
        if call.name == "Bash":
            command = str(call.input.get("command", ""))
            words = command.split()
            rule = " ".join(words[:2]) + " *" if len(words) > 1 else command
            target = self.echo_target(command)
            request |= {
                "description": call.input.get("description", command),
                "permission_suggestions": [
                    {
                        "type": "addRules",
                        "rules": [{"toolName": "Bash", "ruleContent": rule}],
                        "behavior": "allow",
                        "destination": "localSettings",
                    },
                    {"type": "addDirectories", "directories": [self.cwd], "destination": "session"},
                ],
                "blocked_path": str(target) if target else None,
            }
        else:
            path = str(call.input.get("file_path", ""))
            request |= {
                "description": Path(path).name if path else call.name,
                "permission_suggestions": [
                    {"type": "setMode", "mode": "acceptEdits", "destination": "session"}
                ],
                "blocked_path": None,
            }
        request["tool_use_id"] = call.tool_use_id
        turn.pending[request_id] = call
        self.emit({"type": "control_request", "request_id": request_id, "request": request})
        return request_id

    def echo_target(self, command: str) -> Path | None:
        match = ECHO_TO_FILE.match(command)
        if not match:
            return None
        target = (Path(self.cwd) / match["file"]).resolve()
        return target if target.is_relative_to(Path(self.cwd).resolve()) else None

    def run_tool(self, call: ToolCall, tool_input: JSON) -> None:
        """Carry out an allowed call (only harmless file writes inside cwd) and report it."""
        meta = [
            {
                "id": call.tool_use_id,
                "permission_decision": {"decision": "accept", "source": "user_temporary"},
            }
        ]
        if call.name == "AskUserQuestion":
            answers = tool_input.get("answers") or {}
            if answers:
                given = ", ".join(f'"{q}"="{a}"' for q, a in answers.items())
                result_text = (f"Your questions have been answered: {given}. You can now "
                               "continue with these answers in mind.")
            else:
                result_text = "The user did not answer the questions."
            structured: JSON = {"questions": tool_input.get("questions"), "answers": answers}
        elif call.name == "ExitPlanMode":
            result_text = "User has approved your plan. You can now start coding."
            structured = {"plan": tool_input.get("plan"), "isAgent": False}
        elif call.name == "Write":
            path = Path(str(tool_input.get("file_path", "")))
            content = str(tool_input.get("content", ""))
            if not path.is_absolute():
                path = Path(self.cwd) / path
            if path.resolve().is_relative_to(Path(self.cwd).resolve()):
                path.write_text(content, encoding="utf-8")
            result_text = f"File created successfully at: {path}"
            structured = {
                "type": "create",
                "filePath": str(path),
                "content": content,
                "structuredPatch": [],
                "originalFile": None,
            }
        else:
            command = str(tool_input.get("command", ""))
            match = ECHO_TO_FILE.match(command)
            target = self.echo_target(command)
            if match and target is not None:
                text = match["text"].strip().strip("'\"")
                target.write_text(text + "\n", encoding="utf-8")
            result_text = "(Bash completed with no output)"
            structured = {
                "stdout": "",
                "stderr": "",
                "interrupted": False,
                "isImage": False,
                "noOutputExpected": False,
            }
        self.user_blocks(
            [tool_result(call, result_text, is_error=False)],
            tool_use_result=structured,
            tool_result_meta=meta,
        )

    def deny_tool(self, turn: Turn, call: ToolCall, message: str) -> None:
        turn.denials.append(
            {"tool_name": call.name, "tool_use_id": call.tool_use_id, "tool_input": call.input}
        )
        self.user_blocks(
            [tool_result(call, message, is_error=True)],
            tool_use_result=f"Error: {message}",
            tool_result_meta=[
                {
                    "id": call.tool_use_id,
                    "non_execution_kind": "permission-rule",
                    "permission_decision": {"decision": "reject", "source": "user_reject"},
                }
            ],
        )

    def settle(self, turn: Turn) -> bool:
        """Wait for every pending prompt and act on each answer. True if any was denied."""
        denied = False
        for _, call, answer in self.answers(turn):
            if answer.allow:
                self.run_tool(call, answer.updated_input or call.input)
            elif answer.interrupt:
                raise Interrupted(None, denied=(call, answer.message))
            else:
                self.deny_tool(turn, call, answer.message)
                denied = True
        return denied

    def final_text(self, turn: Turn, text: str) -> None:
        count = len(self.session.prompts)
        if count > 1:
            text = f"{text} (turn {count} of session)"
        self.model_step(turn)
        self.assistant({"type": "text", "text": text})
        self.result(turn, text=text)

    # -- results

    def result(
        self,
        turn: Turn,
        *,
        text: str | None,
        interrupted: str | None = None,
        stop_reason: str | None = "end_turn",
    ) -> None:
        cost = round(turn.steps * COST_PER_STEP, 8)
        self.session.add_result(cost)
        elapsed = max(1, int((time.monotonic() - turn.started) * 1000))
        usage = {
            "input_tokens": 10 * turn.steps,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 5 * turn.steps,
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": "standard",
        }
        message: JSON = {
            "type": "result",
            "subtype": "error_during_execution" if interrupted else "success",
            "is_error": bool(interrupted),
            "duration_ms": elapsed,
            "duration_api_ms": max(1, elapsed // 2),
            # the real CLI counts the rejected tool round as a turn of its own
            "num_turns": turn.steps + {None: 0, "aborted_streaming": 1}.get(interrupted, 2),
            "session_id": self.session.session_id,
            "total_cost_usd": round(self.session.cost, 8),
            "usage": usage,
            "modelUsage": {
                MODEL: {
                    "inputTokens": 10 * turn.steps,
                    "outputTokens": 5 * turn.steps,
                    "cacheReadInputTokens": 0,
                    "cacheCreationInputTokens": 0,
                    "webSearchRequests": 0,
                    "costUSD": cost,
                    "contextWindow": 200000,
                    "maxOutputTokens": 64000,
                }
            },
            "permission_denials": turn.denials,
            "stop_reason": stop_reason,
            "terminal_reason": interrupted or "completed",
            "api_error_status": None,
            "uuid": new_uuid(),
        }
        if interrupted:
            message["errors"] = [
                f"[ede_diagnostic] result_type=user last_content_type=n/a stop_reason={stop_reason}"
            ]
        else:
            message["result"] = text
        self.last_result_error = bool(interrupted)
        self.emit(message)

    def end_interrupted(self, turn: Turn, signal_: Interrupted) -> None:
        # the order the real CLI uses: cancel pending prompts, receipt, rejections, marker, result
        cancelled = list(turn.pending.items())
        for request_id, _ in cancelled:
            self.emit({"type": "control_cancel_request", "request_id": request_id})
        turn.pending.clear()
        turn.answers.clear()
        if signal_.request_id is not None:
            self.control_success(signal_.request_id, {"still_queued": []})
        rejected = [(call, REJECTED_TEXT) for _, call in cancelled]
        if signal_.denied is not None:
            rejected.insert(0, signal_.denied)
        for call, text in rejected:
            turn.denials.append(
                {"tool_name": call.name, "tool_use_id": call.tool_use_id, "tool_input": call.input}
            )
            self.user_blocks(
                [tool_result(call, text, is_error=True)],
                tool_use_result="User rejected tool use",
                tool_result_meta=[{"id": call.tool_use_id, "non_execution_kind": "user-rejected"}],
            )
        marker = (
            "[Request interrupted by user for tool use]"
            if rejected
            else ("[Request interrupted by user]")
        )
        self.user_blocks([{"type": "text", "text": marker}])
        self.result(
            turn,
            text=None,
            interrupted="aborted_tools" if rejected else "aborted_streaming",
            stop_reason="tool_use" if rejected else None,
        )

    # -- turns

    def run_turn(self, message: JSON) -> None:
        turn = Turn(started=time.monotonic())
        self.turn = turn
        self.session.add_prompt(prompt_text(message))
        try:
            if self.opts.scenario == "noise":
                self.write_raw("[SandboxDebug] something the sandbox wanted to say\n")
            self.system_init()
            self.scenario(turn)
        except Interrupted as signal_:
            self.end_interrupted(turn, signal_)
        finally:
            self.turn = None

    def scenario(self, turn: Turn) -> None:
        name = self.opts.scenario
        if name == "garbage":
            self.write_raw('{"type": "assistant", "message": {oops\n')
            self.flush()
        elif name == "truncated":
            self.write_raw('{"type":"assistant","message":{"id":"msg_trunc","content":[{"ty')
            self.flush()
            hard_exit(0)
        elif name == "unknown_type":
            self.emit({"type": "brand_new_thing", "session_id": self.session.session_id, "x": 1})
        elif name == "huge_line":
            self.model_step(turn)
            self.assistant({"type": "text", "text": "x" * 10_000_000})
        elif name == "flood":
            self.flood(turn)
            return
        elif name == "rate_limit":
            self.rate_limited(turn)
            return
        elif name == "slow_approve":
            for i in range(10):
                self.assistant({"type": "text", "text": f"thinking step {i + 1}"})
                self.pause(0.05)
        if name in ("text", "garbage", "noise", "unknown_type", "huge_line"):
            self.final_text(turn, "Hello from fake claude.")
        elif name == "two_approvals":
            self.model_step(turn)
            message_id = f"msg_{uuid.uuid4().hex[:20]}"
            calls = [
                self.tool_use(
                    "Bash",
                    {"command": f"echo {word} > {word}.txt", "description": f"write {word}.txt"},
                    message_id,
                )
                for word in ("one", "two")
            ]
            for call in calls:
                self.ask(turn, call)
            self.settle(turn)
            self.final_text(turn, "All done.")
        elif name == "question":
            self.model_step(turn)
            self.ask(turn, self.tool_use("AskUserQuestion", {"questions": QUESTIONS}))
            self.settle(turn)
            self.final_text(turn, "Thanks for answering.")
        elif name == "plan":
            self.model_step(turn)
            self.ask(turn, self.tool_use("ExitPlanMode", {
                "plan": PLAN, "planFilePath": str(Path(self.cwd) / "plan.md")}))
            denied = self.settle(turn)
            self.final_text(turn, "Planning more." if denied else "Plan approved, coding.")
        elif name == "many_approvals":
            for i in range(self.opts.flood):
                self.model_step(turn)
                call = self.tool_use(
                    "Bash", {"command": f"echo {i} > many.txt", "description": f"step {i}"}
                )
                self.ask(turn, call)
                self.settle(turn)
            self.final_text(turn, "All done.")
        elif name == "big_write":
            self.model_step(turn)
            token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
            content = "".join(f"line {i} of the new content\n" for i in range(400))
            call = self.tool_use("Write", {"file_path": str(Path(self.cwd) / "big.txt"),
                                           "content": f"{content}token {token}\n"})
            self.ask(turn, call)
            denied = self.settle(turn)
            self.final_text(turn, "Understood, I did not run it." if denied else "All done.")
        elif name == "write_each_turn":
            self.model_step(turn)
            n = len(self.session.prompts)
            call = self.tool_use(
                "Write", {"file_path": str(Path(self.cwd) / f"turn-{n}.txt"),
                          "content": f"written in turn {n}\n"})
            self.ask(turn, call)
            denied = self.settle(turn)
            self.final_text(turn, "Understood, I did not run it." if denied else "All done.")
        elif name == "write":
            self.model_step(turn)
            call = self.tool_use(
                "Write",
                {"file_path": str(Path(self.cwd) / "hello.py"), "content": "print('hi')\n"},
            )
            self.ask(turn, call)
            denied = self.settle(turn)
            self.final_text(turn, "Understood, I did not run it." if denied else "All done.")
        else:  # approve, slow_approve, hang, crash_mid_approval
            self.model_step(turn)
            call = self.tool_use(
                "Bash", {"command": "echo hi > out.txt", "description": "write a file"}
            )
            self.ask(turn, call)
            if name == "crash_mid_approval":
                fail("fake crash", code=3)
            denied = self.settle(turn)
            self.final_text(turn, "Understood, I did not run it." if denied else "All done.")

    def rate_limited(self, turn: Turn) -> None:
        """The shapes the real 2.1.331 sends (`rate_limit_event`, checked against the mock
        model API with `anthropic-ratelimit-unified-*` headers)."""
        reset = int(time.time() + float(os.environ.get("FAKE_CLAUDE_RESET_IN", "3600")))
        again = "has reset" in (self.session.prompts[-1] if self.session.prompts else "")
        status = "allowed" if again else "rejected"
        self.emit({"type": "rate_limit_event",
                   "rate_limit_info": {"status": status, "resetsAt": reset,
                                       "rateLimitType": "five_hour", "isUsingOverage": False},
                   "uuid": new_uuid(), "session_id": self.session.session_id})
        if again:
            self.final_text(turn, "Picking up where I left off.")
            return
        text = "You've hit your limit · resets 3pm (UTC)"
        message = self.envelope({"type": "assistant", "message": {
            "id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant",
            "model": "<synthetic>", "content": [{"type": "text", "text": text}],
            "stop_reason": "stop_sequence", "stop_sequence": "", "usage": {
                "input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0}}})
        message["error"] = "rate_limit"
        self.emit(message)
        self.result(turn, text=text)

    def flood(self, turn: Turn) -> None:
        self.model_step(turn)
        session_id = self.session.session_id
        for i in range(self.opts.flood):
            self.emit(
                {
                    "type": "assistant",
                    "message": {
                        "id": "msg_flood",
                        "type": "message",
                        "role": "assistant",
                        "model": MODEL,
                        "content": [{"type": "text", "text": f"line {i}"}],
                    },
                    "parent_tool_use_id": None,
                    "session_id": session_id,
                    "uuid": new_uuid(),
                },
                flush=(i + 1) % 1000 == 0,
            )
        self.flush()
        self.result(turn, text="Flood done.")

    # -- main loop

    def run(self) -> NoReturn:
        threading.Thread(
            target=stdin_reader, args=(self.inbox, self.opts.record), daemon=True
        ).start()
        while True:
            if self.turns:
                self.run_turn(self.turns.popleft())
                continue
            message = self.next_message()
            if isinstance(message, Eof):
                if self.opts.scenario == "hang":
                    sleep_forever()
                hard_exit(1 if self.last_result_error else 0)
            if message is not None:
                self.handle(message)


def sleep_forever() -> NoReturn:
    while True:
        time.sleep(3600)


def main(argv: list[str]) -> NoReturn:
    opts = parse_args(argv)
    if opts.version_only:
        print(f"{VERSION} (Claude Code)", flush=True)
        hard_exit(0)
    if opts.scenario == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    cwd = str(Path.cwd())
    session = open_session(opts, cwd)
    FakeClaude(opts, session, cwd).run()


if __name__ == "__main__":
    main(sys.argv[1:])
