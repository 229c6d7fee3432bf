#!/usr/bin/env python3
"""A stand-in for an Agent Client Protocol agent (protocol version 1), for tests.

Speaks JSON-RPC 2.0 over stdio with the exact shapes of reference/agent-protocols.md §3.2:
`initialize` (advertising `loadSession` and `sessionCapabilities.resume`), `session/new`,
`session/load` (replays the history as `session/update`, then answers null),
`session/resume` (answers {} without replay), `session/prompt` (one at a time; ends with a
`stopReason`), `session/cancel` (ends the running prompt with `cancelled`), and
`session/request_permission` for an `execute` tool call, offering the options
`allow_always` / `allow` / `reject` (kinds allow_always, allow_once, reject_once). Every
turn ends with a `usage_update` that carries the session's running cost.

Fake-only options:
  --scenario NAME   what the agent does each prompt (env FAKE_ACP_SCENARIO, default approve)
  --record PATH     append every stdin line to PATH, flushed at once (env FAKE_ACP_RECORD)
  --no-resume       do not advertise sessionCapabilities.resume (clients must session/load)
  --no-load         do not advertise loadSession either
  --images          advertise promptCapabilities.image (else an image block is refused)

Scenarios: approve, text, two_approvals, garbage, crash_mid_approval, hang, fs_request
(asks the client for `fs/read_text_file`, which it never advertised, and carries on when
refused), refusal (ends the turn with stopReason `refusal`), plan (`plan` updates, then an
ExitPlanMode permission with claude-agent-acp's own options, PLAN_OPTIONS; it says which
option was chosen), elicitation (a `session/create_elicitation` form the way
claude-agent-acp asks AskUserQuestion: `question_0` with a `question_0_custom` companion;
it says the content). A command allowed "always"
runs without asking again in this session.

Persistence: `$FAKE_ACP_HOME/sessions/<sessionId>.json` (FAKE_ACP_HOME defaults to
`$HOME/.fake-acp`), so a new process can load or resume a session.

Standard library only; one thread reads stdin, the main thread writes stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from jsonl_stdin import Eof, stdin_reader

JSON = dict[str, Any]
VERSION = "0.3.0-fake"
COST_PER_PROMPT = 0.0015
SCENARIOS = frozenset(
    {"approve", "text", "two_approvals", "garbage", "crash_mid_approval", "hang", "fs_request",
     "refusal", "plan", "elicitation", "edit"}
)
# claude-agent-acp's options for ExitPlanMode (its recorded scenario "exit-plan-approve")
PLAN_OPTIONS = [
    {"kind": "allow_once", "name": "Yes, manually approve edits", "optionId": "exit-plan-default"},
    {"kind": "allow_always", "name": "Yes, clear context (0% used) and use auto mode",
     "optionId": "exit-plan-clear-auto"},
    {"kind": "allow_always", "name": "Yes, and use auto mode", "optionId": "exit-plan-auto"},
    {"kind": "allow_always", "name": "Yes, and auto-accept edits", "optionId": "acceptEdits"},
    {"kind": "allow_always", "name": "Yes, and bypass permissions",
     "optionId": "exit-plan-bypass"},
    {"kind": "reject_once", "name": "No, keep planning", "optionId": "reject"},
]
OPTIONS = [
    {"optionId": "allow_always", "name": "Always Allow", "kind": "allow_always"},
    {"optionId": "allow", "name": "Allow", "kind": "allow_once"},
    {"optionId": "reject", "name": "Reject", "kind": "reject_once"},
]
ECHO_TO_FILE = re.compile(r"^\s*echo\s+(?P<text>.*?)\s*>\s*(?P<file>[^\s;&|<>]+)\s*$")


@dataclass(slots=True)
class Options:
    scenario: str = "approve"
    record: str | None = None
    resume: bool = True
    load: bool = True
    images: bool = False  # advertise promptCapabilities.image


def parse_args(argv: list[str]) -> Options:
    opts = Options()
    values: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--scenario", "--record") and i + 1 < len(argv):
            values[arg] = argv[i + 1]
            i += 1
        elif arg == "--images":
            opts.images = True
        elif arg == "--no-resume":
            opts.resume = False
        elif arg == "--no-load":
            opts.resume = opts.load = False
        i += 1
    opts.scenario = values.get("--scenario") or os.environ.get("FAKE_ACP_SCENARIO") or "approve"
    opts.record = values.get("--record") or os.environ.get("FAKE_ACP_RECORD") or None
    if opts.scenario not in SCENARIOS:
        fail(f"fake_acp: unknown scenario {opts.scenario!r}; known: {sorted(SCENARIOS)}")
    return opts


def fail(message: str, code: int = 1) -> NoReturn:
    print(message, file=sys.stderr, flush=True)
    hard_exit(code)


def hard_exit(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def sleep_forever() -> NoReturn:
    while True:
        time.sleep(3600)


def fake_home() -> Path:
    home = os.environ.get("FAKE_ACP_HOME")
    if home:
        return Path(home)
    return Path(os.environ.get("HOME") or Path.home()) / ".fake-acp"


@dataclass(slots=True)
class Session:
    id: str
    cwd: str
    history: list[JSON] = field(default_factory=list)  # {"role": "user"|"agent", "text"}
    cost: float = 0.0
    allowed_always: set[str] = field(default_factory=set)

    @property
    def path(self) -> Path:
        return fake_home() / "sessions" / f"{self.id}.json"

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"sessionId": self.id, "cwd": self.cwd, "history": self.history, "cost": self.cost}
        self.path.write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, session_id: str) -> Session | None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", session_id):
            return None
        path = fake_home() / "sessions" / f"{session_id}.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["sessionId"], data["cwd"], data["history"], float(data["cost"]))



class Cancelled(Exception):
    """`session/cancel` arrived, or the client answered a permission `cancelled`."""


@dataclass(slots=True)
class Prompt:
    request_id: Any
    pending: dict[int, JSON] = field(default_factory=dict)  # our request id → tool call
    answers: dict[int, JSON] = field(default_factory=dict)
    raw_answers: dict[int, Any] = field(default_factory=dict)  # the whole result
    refused: dict[int, JSON] = field(default_factory=dict)  # our fs request → its error
    rejected: bool = False


class FakeAcp:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.inbox: queue.Queue[JSON | Eof] = queue.Queue()
        self.initialized = False
        self.session: Session | None = None
        self.prompt: Prompt | None = None
        self.queued: list[JSON] = []
        self.ids = iter(range(10**9))

    # -- output

    def emit(self, message: JSON) -> None:
        try:
            sys.stdout.buffer.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
            sys.stdout.buffer.flush()
        except (BrokenPipeError, ValueError):
            hard_exit(1)

    def result(self, request_id: Any, result: Any) -> None:
        self.emit({"id": request_id, "result": result})

    def error(self, request_id: Any, code: int, message: str, data: Any = None) -> None:
        error: JSON = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        self.emit({"id": request_id, "error": error})

    def update(self, update: JSON) -> None:
        assert self.session is not None
        self.emit({"method": "session/update",
                   "params": {"sessionId": self.session.id, "update": update}})

    def say(self, text: str) -> None:
        self.update({"sessionUpdate": "agent_message_chunk", "messageId": "msg_1",
                     "content": {"type": "text", "text": text}})

    # -- requests

    def handle(self, message: JSON) -> None:
        """Everything that can arrive at any time. Raises Cancelled during a prompt."""
        method = message.get("method")
        params = message.get("params") or {}
        request_id = message.get("id")
        if message.get("jsonrpc") != "2.0":
            if request_id is not None:
                self.error(request_id, -32600, "Invalid Request: jsonrpc must be \"2.0\"")
            return
        if method is None:
            self.take_answer(message)
            return
        if method == "session/cancel":
            if self.prompt is not None and self.session is not None \
                    and params.get("sessionId") == self.session.id:
                raise Cancelled()
            return
        if request_id is None:
            return
        if method == "initialize":
            self.initialized = True
            session_caps: JSON = {"list": {}, "close": {}}
            if self.opts.resume:
                session_caps["resume"] = {}
            self.result(request_id, {
                "protocolVersion": 1,
                "agentCapabilities": {
                    "loadSession": self.opts.load,
                    "promptCapabilities": {"image": self.opts.images, "audio": False,
                                           "embeddedContext": True},
                    "mcpCapabilities": {"http": False, "sse": False},
                    "sessionCapabilities": session_caps,
                },
                "agentInfo": {"name": "fake-acp", "title": "Fake ACP Agent", "version": VERSION},
                "authMethods": [],
            })
        elif not self.initialized:
            self.error(request_id, -32600, "Invalid Request: not initialized")
        elif method == "session/new":
            cwd = params.get("cwd")
            if not isinstance(cwd, str) or not Path(cwd).is_absolute() \
                    or not isinstance(params.get("mcpServers"), list):
                self.error(request_id, -32602, "Invalid params")
                return
            self.session = Session(f"sess_{secrets.token_hex(8)}", cwd)
            self.session.save()
            self.result(request_id, {
                "sessionId": self.session.id,
                "modes": {"currentModeId": "default", "availableModes": [
                    {"id": "default", "name": "Default"}, {"id": "plan", "name": "Plan Mode"}]},
                "models": {"currentModelId": "fake-model", "availableModels": [
                    {"modelId": "fake-model", "name": "Fake"}]},
            })
        elif method in ("session/load", "session/resume"):
            self.open_existing(request_id, method, params)
        elif method == "session/prompt":
            if self.session is None or params.get("sessionId") != self.session.id:
                self.error(request_id, -32002, "Resource not found",
                           {"uri": params.get("sessionId")})
            elif self.prompt is not None or self.queued:
                self.error(request_id, -32600, "Invalid Request: a prompt is already running")
            elif not self.opts.images and any(
                    isinstance(b, dict) and b.get("type") == "image"
                    for b in params.get("prompt") or []):
                # ACP: a client sends image content only to an agent that advertised it
                self.error(request_id, -32602, "Invalid params: image content not supported")
            else:
                self.queued.append(message)
        else:
            self.error(request_id, -32601, "Method not found", {"method": method})

    def open_existing(self, request_id: Any, method: str, params: JSON) -> None:
        if (method == "session/load" and not self.opts.load) or (
                method == "session/resume" and not self.opts.resume):
            self.error(request_id, -32601, "Method not found", {"method": method})
            return
        session = Session.load(str(params.get("sessionId") or ""))
        if session is None:
            self.error(request_id, -32002, "Resource not found", {"uri": params.get("sessionId")})
            return
        self.session = session
        if method == "session/resume":
            self.result(request_id, {})
            return
        for entry in session.history:
            kind = "user_message_chunk" if entry["role"] == "user" else "agent_message_chunk"
            self.update({"sessionUpdate": kind, "content": {"type": "text", "text": entry["text"]}})
        self.result(request_id, None)

    def take_answer(self, message: JSON) -> None:
        prompt = self.prompt
        request_id = message.get("id")
        if prompt is None:
            return
        if request_id in prompt.pending:
            if "error" in message:
                prompt.answers[request_id] = {"outcome": "cancelled"}
            else:
                prompt.answers[request_id] = (message.get("result") or {}).get("outcome") or {}
                prompt.raw_answers[request_id] = message.get("result")
        elif request_id in prompt.refused:
            prompt.refused[request_id] = message.get("error") or {"result": message.get("result")}

    # -- a prompt

    def run_prompt(self, message: JSON) -> None:
        assert self.session is not None
        params = message.get("params") or {}
        blocks = params.get("prompt") or []
        text = "\n".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict))
        self.prompt = Prompt(message.get("id"))
        self.session.history.append({"role": "user", "text": text})
        try:
            stop = self.play()
        except Cancelled:
            for call in self.prompt.pending.values():
                self.update({"sessionUpdate": "tool_call_update",
                             "toolCallId": call["toolCallId"], "status": "failed"})
            stop = "cancelled"
        self.session.cost = round(self.session.cost + COST_PER_PROMPT, 6)
        self.update({"sessionUpdate": "usage_update", "used": 1000 * len(self.session.history),
                     "size": 200000, "cost": {"amount": self.session.cost, "currency": "USD"}})
        self.session.save()
        request_id = self.prompt.request_id
        self.prompt = None
        self.result(request_id, {"stopReason": stop})

    def play(self) -> str:
        assert self.session is not None and self.prompt is not None
        name = self.opts.scenario
        if name == "garbage":
            self.say("Let me see.")
            sys.stdout.buffer.write(b'{"jsonrpc": "2.0", "method": "session/update", oops\n')
            sys.stdout.buffer.flush()
        if name == "fs_request":
            self.ask_file()
        if name == "refusal":
            self.finish("I cannot help with that.")
            return "refusal"
        if name == "plan":
            self.plan()
            return "end_turn"
        if name == "elicitation":
            self.elicit()
            return "end_turn"
        if name in ("text", "garbage", "fs_request"):
            self.finish("Hello from fake acp.")
            return "end_turn"
        self.say("I'll run it.")
        if name == "edit":
            return self.edit()
        scripts = ["echo one > one.txt", "echo two > two.txt"] if name == "two_approvals" else [
            "echo hi > out.txt"]
        calls = [self.tool_call(script) for script in scripts]
        asking = [call for call in calls if self.ask(call)]
        if asking and name == "crash_mid_approval":
            fail("fake crash", code=3)
        for call in calls:
            if call not in asking:
                self.run_tool(call)
        self.settle()
        self.finish("Understood, I did not run it." if self.prompt.rejected else "All done.")
        return "end_turn"

    def elicit(self) -> None:
        assert self.session is not None and self.prompt is not None
        request_id = next(self.ids)
        self.prompt.pending[request_id] = {"toolCallId": "toolu_ask"}
        self.emit({"id": request_id, "method": "session/create_elicitation", "params": {
            "sessionId": self.session.id, "mode": "form", "toolCallId": "toolu_ask",
            "message": "Which database?", "requestedSchema": {"type": "object", "properties": {
                "question_0": {"type": "string", "title": "Database", "oneOf": [
                    {"const": "SQLite", "title": "SQLite", "description": "one file"},
                    {"const": "Postgres", "title": "Postgres", "description": "a server"}]},
                "question_0_custom": {"type": "string", "title": "Other",
                                      "description": "Type your own answer (optional)."}}}}})
        while request_id not in self.prompt.raw_answers:
            self.wait()
        del self.prompt.pending[request_id]
        self.finish(f"Form answered: {json.dumps(self.prompt.raw_answers[request_id])}.")

    def plan(self) -> None:
        assert self.session is not None and self.prompt is not None
        steps = ["Write the greeting", "Check that it reads well"]
        for statuses in (("in_progress", "pending"), ("in_progress", "pending")):
            self.update({"sessionUpdate": "plan", "entries": [
                {"content": step, "priority": "medium", "status": status}
                for step, status in zip(steps, statuses, strict=True)]})
        call = {"toolCallId": f"toolu_{secrets.token_hex(4)}", "title": "Approve Plan",
                "kind": "switch_mode", "status": "pending", "content": [],
                "rawInput": {"plan": "# Plan\n1. Write the greeting\n2. Check it"},
                "_meta": {"claudeCode": {"toolName": "ExitPlanMode"}}}
        self.update({"sessionUpdate": "tool_call", **call})
        request_id = next(self.ids)
        self.prompt.pending[request_id] = call
        self.emit({"id": request_id, "method": "session/request_permission", "params": {
            "sessionId": self.session.id, "toolCall": call, "options": PLAN_OPTIONS}})
        while request_id not in self.prompt.answers:
            self.wait()
        outcome = self.prompt.answers.pop(request_id)
        del self.prompt.pending[request_id]
        if outcome.get("outcome") != "selected":
            raise Cancelled()
        option = outcome.get("optionId")
        if option not in {o["optionId"] for o in PLAN_OPTIONS}:
            fail(f"fake_acp: answered with an option never offered: {option!r}", 4)
        self.finish(f"Plan answered with {option}.")

    def edit(self) -> str:
        """`edit`: one tool call with two diffs, an existing file's (`app.py`, its line
        `line 3` replaced) and a new file's (oldText null), asked for and written if allowed."""
        assert self.session is not None and self.prompt is not None
        cwd = Path(self.session.cwd)
        old = (cwd / "app.py").read_text() if (cwd / "app.py").exists() else ""
        diffs = [{"type": "diff", "path": str(cwd / "app.py"), "oldText": old,
                  "newText": old.replace("line 3\n", "line three\n")},
                 {"type": "diff", "path": str(cwd / "fresh.py"), "oldText": None,
                  "newText": "print('fresh')\n"}]
        call = {"toolCallId": f"call_{secrets.token_hex(4)}", "title": "Edit app.py, add fresh.py",
                "kind": "edit", "status": "pending", "content": diffs,
                "locations": [{"path": d["path"]} for d in diffs],
                "rawInput": {"file_path": str(cwd / "app.py")}}
        self.update({"sessionUpdate": "tool_call", **call})
        request_id = next(self.ids)
        self.prompt.pending[request_id] = call
        self.emit({"id": request_id, "method": "session/request_permission", "params": {
            "sessionId": self.session.id, "toolCall": {"toolCallId": call["toolCallId"]},
            "options": OPTIONS}})
        while request_id not in self.prompt.answers:
            self.wait()
        outcome = self.prompt.answers.pop(request_id)
        self.prompt.pending.pop(request_id)
        if outcome.get("optionId") in ("allow", "allow_always"):
            for diff in diffs:
                Path(str(diff["path"])).write_text(str(diff["newText"]), encoding="utf-8")
            self.finish("Edited.")
        else:
            self.finish("Understood, I did not edit.")
        return "end_turn"

    def tool_call(self, script: str) -> JSON:
        call = {"toolCallId": f"call_{secrets.token_hex(4)}", "title": f"`{script}`",
                "kind": "execute", "status": "pending", "rawInput": {"command": script}}
        self.update({"sessionUpdate": "tool_call", **call})
        return call

    def ask(self, call: JSON) -> bool:
        """Ask for permission unless the command was allowed always; True if asked."""
        assert self.session is not None and self.prompt is not None
        if call["rawInput"]["command"] in self.session.allowed_always:
            return False
        request_id = next(self.ids)
        self.prompt.pending[request_id] = call
        self.emit({"id": request_id, "method": "session/request_permission", "params": {
            "sessionId": self.session.id, "toolCall": call, "options": OPTIONS}})
        return True

    def settle(self) -> None:
        assert self.session is not None and self.prompt is not None
        prompt = self.prompt
        while prompt.pending:
            for request_id in list(prompt.answers):
                outcome = prompt.answers.pop(request_id)
                call = prompt.pending.pop(request_id)
                if outcome.get("outcome") != "selected":
                    prompt.pending[request_id] = call  # failed as cancelled, below
                    raise Cancelled()
                option = outcome.get("optionId")
                if option == "allow_always":
                    self.session.allowed_always.add(call["rawInput"]["command"])
                if option in ("allow", "allow_always"):
                    self.run_tool(call)
                elif option == "reject":
                    prompt.rejected = True
                    self.update({"sessionUpdate": "tool_call_update",
                                 "toolCallId": call["toolCallId"], "status": "failed",
                                 "content": [{"type": "content", "content": {
                                     "type": "text", "text": "The user rejected this."}}]})
                else:
                    fail(f"fake_acp: answered with an option never offered: {option!r}", 4)
            if prompt.pending:
                self.wait()

    def run_tool(self, call: JSON) -> None:
        assert self.session is not None
        self.update({"sessionUpdate": "tool_call_update", "toolCallId": call["toolCallId"],
                     "status": "in_progress"})
        match = ECHO_TO_FILE.match(call["rawInput"]["command"])
        cwd = Path(self.session.cwd).resolve()
        if match and (target := (cwd / match["file"]).resolve()).is_relative_to(cwd):
            target.write_text(match["text"] + "\n", encoding="utf-8")
        self.update({"sessionUpdate": "tool_call_update", "toolCallId": call["toolCallId"],
                     "status": "completed", "rawOutput": {"exit_code": 0},
                     "content": [{"type": "content", "content": {"type": "text",
                                                                 "text": "(no output)"}}]})

    def ask_file(self) -> None:
        assert self.session is not None and self.prompt is not None
        request_id = next(self.ids)
        self.prompt.refused[request_id] = {}
        self.emit({"id": request_id, "method": "fs/read_text_file", "params": {
            "sessionId": self.session.id, "path": str(Path(self.session.cwd) / "README")}})
        while not self.prompt.refused[request_id]:
            self.wait()
        self.say(f"The client said: {self.prompt.refused[request_id].get('message')}. ")

    def finish(self, text: str) -> None:
        assert self.session is not None
        users = sum(1 for h in self.session.history if h["role"] == "user")
        if users > 1:
            text = f"{text} (turn {users} of session)"
        self.say(text)
        self.session.history.append({"role": "agent", "text": text})

    # -- main loop

    def wait(self) -> None:
        message = self.inbox.get()
        if isinstance(message, Eof):
            self.at_eof()
        self.handle(message)

    def at_eof(self) -> NoReturn:
        if self.opts.scenario == "hang":
            sleep_forever()
        hard_exit(0)

    def run(self) -> NoReturn:
        threading.Thread(target=stdin_reader, args=(self.inbox, self.opts.record, "fake_acp"),
                         daemon=True).start()
        while True:
            if self.queued:
                self.run_prompt(self.queued.pop(0))
                continue
            message = self.inbox.get()
            if isinstance(message, Eof):
                self.at_eof()
            with contextlib.suppress(Cancelled):
                self.handle(message)


def main(argv: list[str]) -> NoReturn:
    opts = parse_args(argv)
    if opts.scenario == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    FakeAcp(opts).run()


if __name__ == "__main__":
    main(sys.argv[1:])
