#!/usr/bin/env python3
"""A stand-in for `codex app-server` (Codex 0.169.0), for tests.

Speaks JSON-RPC over stdio the way the recordings in
`tests/fixtures/transcripts/codex-0.169.0-app-server-*.jsonl` show it: no `jsonrpc` member,
integer ids, `emittedAtMs` on notifications, the `configWarning` and
`remoteControl/status/changed` noise after `initialize`, `thread/started` after the
`thread/start` answer, `item/started` before the approval request it belongs to, and
`serverRequest/resolved` once an approval has been answered (or made moot by an interrupt).
Requests before `initialize` get "Not initialized"; a second `turn/start` while a turn runs
is refused.

Fake-only options:
  --scenario NAME   what the "model" does each turn (env FAKE_CODEX_SCENARIO, default approve)
  --record PATH     append every stdin line to PATH, flushed at once (env FAKE_CODEX_RECORD)
Every other argument (`app-server`, `-c key=value`, `--listen …`) is accepted and ignored.

Scenarios: approve, text, file_change, two_approvals, decline_missing, garbage,
crash_mid_approval, hang, secret_question (a secret `requestUserInput`), plan_updates (four
`turn/plan/updated` as the real one sends them: the second repeats the first). With
approvalPolicy "untrusted" (or decline_missing) the command
approval lists the decisions the real one did (`accept`, an execpolicy amendment, `cancel`:
no `decline`, which is still accepted); otherwise it also offers `acceptForSession` and
`decline`. A command accepted for the session runs without asking again in this process.

Persistence: threads are rollout files under `$CODEX_HOME/sessions/YYYY/MM/DD/`
(CODEX_HOME defaults to `$HOME/.codex`), so `thread/resume` of a known thread continues it
and of an unknown one answers the real error ("no rollout found for thread id …").

Standard library only. One thread reads stdin (recording and queueing lines); everything
else, all stdout writes included, happens on the main thread.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from jsonl_stdin import Eof, stdin_reader

JSON = dict[str, Any]
VERSION = "0.169.0"
SCENARIOS = frozenset(
    {
        "approve", "text", "file_change", "two_approvals", "decline_missing", "garbage",
        "crash_mid_approval", "hang", "secret_question", "plan_updates",
    }
)  # fmt: skip
INVALID_REQUEST = -32600
ECHO_TO_FILE = re.compile(r"^\s*echo\s+(?P<text>.*?)\s*>\s*(?P<file>[^\s;&|<>]+)\s*$")
BUBBLEWRAP_WARNING = (
    "Codex could not find bubblewrap on PATH. Install bubblewrap with your OS package "
    "manager. See the sandbox prerequisites: https://developers.openai.com/codex/concepts/"
    "sandboxing#prerequisites. Codex will use the bundled bubblewrap in the meantime."
)


def parse_args(argv: list[str]) -> tuple[str, str | None]:
    values: dict[str, str] = {}
    i = 0
    while i < len(argv):
        if argv[i] in ("--scenario", "--record") and i + 1 < len(argv):
            values[argv[i]] = argv[i + 1]
            i += 2
            continue
        if "=" in argv[i] and argv[i].split("=", 1)[0] in ("--scenario", "--record"):
            name, value = argv[i].split("=", 1)
            values[name] = value
        i += 1
    scenario = values.get("--scenario") or os.environ.get("FAKE_CODEX_SCENARIO") or "approve"
    record = values.get("--record") or os.environ.get("FAKE_CODEX_RECORD") or None
    if scenario not in SCENARIOS:
        fail(f"fake_codex: unknown scenario {scenario!r}; known: {sorted(SCENARIOS)}")
    return scenario, record


def fail(message: str, code: int = 1) -> NoReturn:
    print(message, file=sys.stderr, flush=True)
    hard_exit(code)


def hard_exit(code: int) -> NoReturn:
    """os._exit: the stdin thread may hold the buffer's lock (see fake_claude)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def sleep_forever() -> NoReturn:
    while True:
        time.sleep(3600)


def unreadable_images(params: JSON) -> str | None:
    """The first `localImage` input whose file Codex could not read (it reads them itself)."""
    for item in params.get("input") or []:
        if isinstance(item, dict) and item.get("type") == "localImage":
            path = item.get("path")
            if not isinstance(path, str) or not Path(path).is_file():
                return str(path)
    return None


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id() -> str:
    """A UUIDv7-like id, as Codex uses for threads, turns and items."""
    raw = f"{now_ms():012x}7{secrets.token_hex(2)[:3]}8{secrets.token_hex(8)[:15]}"
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def codex_home() -> Path:
    home = os.environ.get("CODEX_HOME")
    if home:
        return Path(home)
    return Path(os.environ.get("HOME") or Path.home()) / ".codex"


# ---------------------------------------------------------------------------- threads


@dataclass(slots=True)
class Thread:
    id: str
    cwd: str
    path: Path
    created: int
    approval_policy: str = "on-request"
    prompts: list[str] = field(default_factory=list)
    tokens: int = 0
    allowed_for_session: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, cwd: str, approval_policy: str) -> Thread:
        thread_id = new_id()
        stamp = datetime.now(UTC)
        path = (codex_home() / "sessions" / stamp.strftime("%Y/%m/%d")
                / f"rollout-{stamp.strftime('%Y-%m-%dT%H-%M-%S')}-{thread_id}.jsonl")
        thread = cls(thread_id, cwd, path, int(time.time()), approval_policy)
        thread.append("session_meta", {"id": thread_id, "cwd": cwd, "originator": "agent-bridge",
                                       "cli_version": VERSION, "source": "vscode"})
        return thread

    @classmethod
    def find(cls, thread_id: str) -> Thread | None:
        sessions = codex_home() / "sessions"
        found = sorted(sessions.glob(f"*/*/*/rollout-*-{thread_id}.jsonl")) if thread_id else []
        if not found:
            return None
        thread = cls(thread_id, "", found[0], 0)
        for line in found[0].read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                payload = entry["payload"]
                if entry["type"] == "session_meta":
                    thread.cwd = payload["cwd"]
                    thread.created = int(payload.get("created", 0))
                elif entry["type"] == "event_msg" and payload["type"] == "user_message":
                    thread.prompts.append(payload["message"])
                elif entry["type"] == "event_msg" and payload["type"] == "token_count":
                    thread.tokens = int(payload["total"])
        return thread

    def append(self, kind: str, payload: JSON) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                 "type": kind, "payload": payload}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def as_json(self, *, with_turns: bool = False) -> JSON:
        turns = []
        if with_turns:
            for i, prompt in enumerate(self.prompts):
                turns.append({"id": f"{self.id}-t{i + 1}", "items": [
                    {"type": "userMessage", "id": new_id(), "clientId": None,
                     "content": [{"type": "text", "text": prompt, "text_elements": []}]}],
                    "itemsView": "full", "status": "completed", "error": None})
        return {
            "id": self.id, "sessionId": self.id, "forkedFromId": None, "parentThreadId": None,
            "preview": self.prompts[0] if self.prompts else "", "ephemeral": False,
            "historyMode": "paginated", "modelProvider": "mock", "model": "gpt-mock",
            "reasoningEffort": None, "createdAt": self.created, "updatedAt": int(time.time()),
            "status": {"type": "idle"}, "path": str(self.path), "cwd": self.cwd,
            "cliVersion": VERSION, "originator": "agent-bridge", "source": "vscode",
            "gitInfo": None, "name": None, "turns": turns,
        }


# ---------------------------------------------------------------------------- the fake



class Interrupted(Exception):
    """Ends the running turn: `turn/interrupt` (its request id) or a `cancel` decision."""

    def __init__(self, request_id: int | str | None) -> None:
        super().__init__("interrupted")
        self.request_id = request_id


@dataclass(slots=True)
class Call:
    item: JSON
    request_id: int


@dataclass(slots=True)
class Turn:
    id: str
    pending: dict[int, Call] = field(default_factory=dict)  # server request id → call
    answers: dict[int, JSON] = field(default_factory=dict)
    declined: bool = False


class FakeCodex:
    def __init__(self, scenario: str, record: str | None) -> None:
        self.scenario = scenario
        self.record = record
        self.inbox: queue.Queue[JSON | Eof] = queue.Queue()
        self.initialized = False
        self.client = "codex"
        self.thread: Thread | None = None
        self.turn: Turn | None = None
        self.queued: list[JSON] = []  # turn/start requests accepted, to run on the main loop
        self.server_ids = iter(range(10**9))

    # -- output

    def emit(self, message: JSON) -> None:
        try:
            sys.stdout.buffer.write(json.dumps(message).encode() + b"\n")
            sys.stdout.buffer.flush()
        except (BrokenPipeError, ValueError):
            hard_exit(1)

    def notify(self, method: str, params: JSON) -> None:
        self.emit({"method": method, "params": params, "emittedAtMs": now_ms()})

    def result(self, request_id: Any, result: JSON) -> None:
        self.emit({"id": request_id, "result": result})

    def error(self, request_id: Any, message: str, code: int = INVALID_REQUEST) -> None:
        self.emit({"id": request_id, "error": {"code": code, "message": message}})

    def status(self, flags: list[str] | None) -> None:
        assert self.thread is not None
        status: JSON = {"type": "idle"} if flags is None else {"type": "active",
                                                               "activeFlags": flags}
        self.notify("thread/status/changed", {"threadId": self.thread.id, "status": status})

    # -- requests

    def handle(self, message: JSON) -> None:
        """Everything that can arrive at any time. Raises Interrupted during a turn."""
        method = message.get("method")
        if method is None:
            self.take_answer(message)
            return
        request_id = message.get("id")
        params = message.get("params") or {}
        if request_id is None:
            return  # `initialized` and other notifications
        if method == "initialize":
            if self.initialized:
                self.error(request_id, "Already initialized")
                return
            self.initialized = True
            self.client = str((params.get("clientInfo") or {}).get("name") or "codex")
            self.result(request_id, {
                "userAgent": f"{self.client}/{VERSION} (Debian 12.0.0; x86_64) xterm "
                             f"({self.client}; 0.1)",
                "codexHome": str(codex_home()), "platformFamily": "unix", "platformOs": "linux"})
            self.notify("configWarning", {"summary": BUBBLEWRAP_WARNING, "details": None})
            self.notify("remoteControl/status/changed", {
                "status": "disabled", "serverName": "fake", "installationId": new_id(),
                "environmentId": None})
        elif not self.initialized:
            self.error(request_id, "Not initialized")
        elif method == "thread/start":
            self.thread_start(request_id, params)
        elif method == "thread/resume":
            self.thread_resume(request_id, params)
        elif method == "turn/start":
            if self.thread is None or params.get("threadId") != self.thread.id:
                self.error(request_id, f"thread not found: {params.get('threadId')}")
            elif self.turn is not None or self.queued:
                self.error(request_id, "a turn is already in progress on this thread")
            elif unreadable := unreadable_images(params):
                self.error(request_id, f"failed to read image {unreadable}")
            else:
                self.queued.append(message)
                self.turn = Turn(new_id())
                self.result(request_id, {"turn": self.turn_json("inProgress")})
        elif method == "turn/interrupt":
            if self.turn is None or params.get("turnId") != self.turn.id:
                self.error(request_id, "there is no active turn to interrupt")
            else:
                raise Interrupted(request_id)
        else:
            self.error(request_id, f"unknown method {method}", code=-32601)

    def thread_start(self, request_id: Any, params: JSON) -> None:
        cwd = str(params.get("cwd") or Path.cwd())
        policy = str(params.get("approvalPolicy") or "on-request")
        self.thread = Thread.create(cwd, policy)
        self.result(request_id, self.thread_result(params))
        self.notify("thread/started", {"thread": self.thread.as_json()})
        self.notify("warning", {"threadId": self.thread.id, "message":
                                "Model metadata for `gpt-mock` not found. Defaulting to "
                                "fallback metadata; this can degrade performance."})

    def thread_resume(self, request_id: Any, params: JSON) -> None:
        thread_id = str(params.get("threadId") or "")
        thread = Thread.find(thread_id)
        if thread is None:
            self.error(request_id, f"no rollout found for thread id {thread_id}")
            return
        thread.approval_policy = str(params.get("approvalPolicy") or "on-request")
        self.thread = thread
        self.notify("deprecationNotice", {"summary": "Full-history hydration is deprecated for "
                                          "paginated threads.", "details": None})
        self.status(None)
        self.result(request_id, self.thread_result(params, with_turns=True))

    def thread_result(self, params: JSON, *, with_turns: bool = False) -> JSON:
        assert self.thread is not None
        return {
            "thread": self.thread.as_json(with_turns=with_turns), "model": "gpt-mock",
            "modelProvider": "mock", "serviceTier": None, "cwd": self.thread.cwd,
            "approvalPolicy": self.thread.approval_policy, "approvalsReviewer": "user",
            "sandbox": {"type": "workspaceWrite", "writableRoots": [], "networkAccess": False,
                        "excludeTmpdirEnvVar": False, "excludeSlashTmp": False},
            "reasoningEffort": None,
        }

    def take_answer(self, message: JSON) -> None:
        request_id = message.get("id")
        if self.turn is None or request_id not in self.turn.pending:
            return  # unknown or already settled: ignored
        if "error" in message:
            self.turn.answers[request_id] = {"decision": "decline"}
        else:
            self.turn.answers[request_id] = message.get("result") or {}

    # -- the turn

    def turn_json(self, status: str) -> JSON:
        assert self.turn is not None
        return {"id": self.turn.id, "rootTurnId": self.turn.id, "items": [],
                "itemsView": "notLoaded", "status": status, "error": None,
                "startedAt": int(time.time()), "completedAt": None, "durationMs": None}

    def item(self, method: str, item: JSON) -> None:
        assert self.thread is not None and self.turn is not None
        self.notify(method, {"item": item, "threadId": self.thread.id, "turnId": self.turn.id})

    def run_turn(self, message: JSON) -> None:
        assert self.thread is not None and self.turn is not None
        params = message.get("params") or {}
        text = "\n".join(str(i.get("text", "")) for i in params.get("input") or []
                         if isinstance(i, dict))
        self.thread.prompts.append(text)
        self.thread.append("event_msg", {"type": "user_message", "message": text})
        self.status([])
        self.notify("turn/started",
                    {"threadId": self.thread.id, "turn": self.turn_json("inProgress")})
        user = {"type": "userMessage", "id": new_id(), "clientId": None,
                "content": [{"type": "text", "text": text, "text_elements": []}]}
        self.item("item/started", user)
        self.item("item/completed", user)
        try:
            self.play()
        except Interrupted as signal_:
            self.end_interrupted(signal_)
        finally:
            self.turn = None

    def play(self) -> None:
        assert self.thread is not None and self.turn is not None
        name = self.scenario
        if name == "garbage":
            sys.stdout.buffer.write(b'{"method": "item/started", "params": {oops\n')
            sys.stdout.buffer.flush()
        if name in ("text", "garbage"):
            self.finish("Hello from fake codex.")
            return
        if name == "secret_question":
            self.secret_question()
            return
        if name == "plan_updates":
            self.plan_updates()
            return
        if name == "file_change":
            self.file_change()
        elif name == "two_approvals":
            calls = [self.command(f"echo {w} > {w}.txt") for w in ("one", "two")]
            self.settle([c for c in calls if c is not None])
        else:
            call = self.command("echo hi > out.txt")
            if call is not None and name == "crash_mid_approval":
                fail("fake crash", code=3)
            self.settle([call] if call is not None else [])
        self.finish("Understood, I did not run it." if self.turn.declined else "All done.")

    def plan_updates(self) -> None:
        assert self.thread is not None and self.turn is not None
        steps = ("Write the greeting", "Check that it reads well")
        for statuses in (("inProgress", "pending"), ("inProgress", "pending"),
                         ("completed", "inProgress"), ("completed", "completed")):
            self.notify("turn/plan/updated", {
                "threadId": self.thread.id, "turnId": self.turn.id,
                "explanation": "Greeting work",
                "plan": [{"step": step, "status": status}
                         for step, status in zip(steps, statuses, strict=True)]})
        self.finish("Planned and done.")

    def command(self, script: str) -> Call | None:
        """Start a command item; ask for approval unless it may run. None if it already ran."""
        assert self.thread is not None and self.turn is not None
        command = f"/bin/bash -lc '{script}'"
        item = {"type": "commandExecution", "id": f"call_{secrets.token_hex(4)}",
                "command": command, "cwd": self.thread.cwd, "processId": None,
                "source": "agent", "status": "inProgress",
                "commandActions": [{"type": "unknown", "command": script}],
                "aggregatedOutput": None, "exitCode": None, "durationMs": None,
                "startedAtMs": now_ms()}
        policy = self.thread.approval_policy
        if policy == "never" or command in self.thread.allowed_for_session:
            self.item("item/started", item)
            self.run_command(item)
            return None
        self.status(["waitingOnApproval"])
        self.item("item/started", item)
        argv = ["/bin/bash", "-lc", script]
        params: JSON = {"kind": "command", "threadId": self.thread.id, "turnId": self.turn.id,
                        "itemId": item["id"], "startedAtMs": item["startedAtMs"],
                        "environmentId": "local", "command": command, "cwd": self.thread.cwd,
                        "commandActions": item["commandActions"],
                        "proposedExecpolicyAmendment": argv}
        amendment = {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": argv}}
        if policy == "untrusted" or self.scenario == "decline_missing":
            params["availableDecisions"] = ["accept", amendment, "cancel"]
        else:
            params["reason"] = "Writing a file in the workspace needs your approval"
            params["availableDecisions"] = ["accept", "acceptForSession", amendment, "decline",
                                            "cancel"]
        return self.ask("item/commandExecution/requestApproval", params, item)

    def file_change(self) -> None:
        assert self.thread is not None and self.turn is not None
        path = str(Path(self.thread.cwd) / "hello.py")
        item = {"type": "fileChange", "id": f"call_{secrets.token_hex(4)}", "status": "inProgress",
                "changes": [{"path": path, "kind": {"type": "add"}, "diff": "print('hi')\n"}]}
        self.status(["waitingOnApproval"])
        self.item("item/started", item)
        params = {"threadId": self.thread.id, "turnId": self.turn.id, "itemId": item["id"],
                  "startedAtMs": now_ms(), "reason": None, "grantRoot": None}
        self.settle([self.ask("item/fileChange/requestApproval", params, item)])

    def secret_question(self) -> None:
        """`item/tool/requestUserInput` with one secret question (the 0.169.0 shape; Codex
        itself sets `isOther`); the answer, `answers[id].answers[]`, is the final text's
        length, never the answer itself."""
        assert self.thread is not None and self.turn is not None
        item = {"type": "toolCall", "id": f"call_{secrets.token_hex(4)}"}
        params = {"threadId": self.thread.id, "turnId": self.turn.id, "itemId": item["id"],
                  "isBlocking": True, "questions": [{
                      "id": "token", "header": "Token", "question": "Your deploy token?",
                      "isOther": True, "isSecret": True,
                      "options": [{"label": "none", "description": "deploy without one"}]}]}
        call = self.ask("item/tool/requestUserInput", params, item)
        turn = self.turn
        while call.request_id not in turn.answers:
            self.wait()
        answer = turn.answers.pop(call.request_id)
        turn.pending.pop(call.request_id)
        self.notify("serverRequest/resolved", {"threadId": self.thread.id,
                                               "requestId": call.request_id})
        given = (answer.get("answers") or {}).get("token", {}).get("answers") or []
        self.finish(f"Thanks: {len(given)} answer(s) of {sum(map(len, given))} characters.")

    def ask(self, method: str, params: JSON, item: JSON) -> Call:
        assert self.turn is not None
        request_id = next(self.server_ids)
        call = Call(item, request_id)
        self.turn.pending[request_id] = call
        self.emit({"method": method, "id": request_id, "params": params})
        return call

    def settle(self, calls: list[Call]) -> None:
        """Wait for every answer and act on each as it arrives."""
        assert self.thread is not None and self.turn is not None
        turn = self.turn
        while turn.pending:
            for request_id in list(turn.answers):
                answer = turn.answers.pop(request_id)
                call = turn.pending.pop(request_id)
                self.notify("serverRequest/resolved", {"threadId": self.thread.id,
                                                       "requestId": request_id})
                self.status([] if not turn.pending else ["waitingOnApproval"])
                decision = answer.get("decision")
                if decision == "cancel":
                    self.item("item/completed", {**call.item, "status": "declined"})
                    raise Interrupted(None)
                if decision in ("accept", "acceptForSession") or isinstance(decision, dict):
                    if decision == "acceptForSession" and call.item["type"] == "commandExecution":
                        self.thread.allowed_for_session.add(call.item["command"])
                    self.run_command(call.item)
                else:
                    turn.declined = True
                    self.item("item/completed", {**call.item, "status": "declined"})
            if turn.pending:
                self.wait()

    def run_command(self, item: JSON) -> None:
        """Carry out an accepted item: only harmless file writes inside the cwd."""
        assert self.thread is not None
        cwd = Path(self.thread.cwd).resolve()
        if item["type"] == "fileChange":
            for change in item["changes"]:
                target = Path(change["path"]).resolve()
                if target.is_relative_to(cwd):
                    target.write_text(change["diff"], encoding="utf-8")
            self.item("item/completed", {**item, "status": "completed"})
            return
        script = item["commandActions"][0]["command"]
        match = ECHO_TO_FILE.match(script)
        if match:
            target = (cwd / match["file"]).resolve()
            if target.is_relative_to(cwd):
                target.write_text(match["text"].strip("'\"") + "\n", encoding="utf-8")
        self.item("item/completed", {**item, "status": "completed", "processId": str(os.getpid()),
                                     "source": "unifiedExecStartup", "exitCode": 0,
                                     "durationMs": 0, "completedAtMs": now_ms()})

    def usage(self) -> None:
        assert self.thread is not None and self.turn is not None
        self.thread.tokens += 15
        self.thread.append("event_msg", {"type": "token_count", "total": self.thread.tokens})
        last = {"totalTokens": 15, "inputTokens": 10, "cachedInputTokens": 0,
                "cacheWriteInputTokens": 0, "outputTokens": 5, "reasoningOutputTokens": 0}
        total = {**last, "totalTokens": self.thread.tokens}
        self.notify("thread/tokenUsage/updated", {
            "threadId": self.thread.id, "turnId": self.turn.id,
            "tokenUsage": {"total": total, "last": last, "modelContextWindow": 258400}})
        self.notify("account/rateLimits/updated", {"rateLimits": {"limitId": "codex",
                                                                  "primary": None}})

    def finish(self, text: str) -> None:
        assert self.thread is not None and self.turn is not None
        if len(self.thread.prompts) > 1:
            text = f"{text} (turn {len(self.thread.prompts)} of thread)"
        self.usage()
        message = {"type": "agentMessage", "id": f"msg_{secrets.token_hex(4)}", "text": text,
                   "phase": None, "memoryCitation": None}
        self.item("item/started", message)
        self.item("item/completed", message)
        self.thread.append("event_msg", {"type": "agent_message", "message": text})
        self.status(None)
        turn = {**self.turn_json("completed"), "items": [message], "itemsView": "summary",
                "completedAt": int(time.time()), "durationMs": 5}
        self.notify("turn/completed", {"threadId": self.thread.id, "turn": turn})

    def end_interrupted(self, signal_: Interrupted) -> None:
        assert self.thread is not None and self.turn is not None
        for request_id, call in list(self.turn.pending.items()):
            self.notify("serverRequest/resolved", {"threadId": self.thread.id,
                                                   "requestId": request_id})
            self.item("item/completed", {**call.item, "status": "declined"})
        self.turn.pending.clear()
        if signal_.request_id is not None:
            self.result(signal_.request_id, {})
        self.status(None)
        turn = {**self.turn_json("interrupted"), "completedAt": int(time.time())}
        self.notify("turn/completed", {"threadId": self.thread.id, "turn": turn})

    # -- main loop

    def wait(self) -> None:
        message = self.inbox.get()
        if isinstance(message, Eof):
            self.at_eof()
        self.handle(message)

    def at_eof(self) -> NoReturn:
        if self.scenario == "hang":
            sleep_forever()
        hard_exit(0)

    def run(self) -> NoReturn:
        threading.Thread(target=stdin_reader, args=(self.inbox, self.record, "fake_codex"),
                         daemon=True).start()
        while True:
            if self.queued:
                self.run_turn(self.queued.pop(0))
                continue
            message = self.inbox.get()
            if isinstance(message, Eof):
                self.at_eof()
            with contextlib.suppress(Interrupted):  # an interrupt with no turn: answered
                self.handle(message)


def main(argv: list[str]) -> NoReturn:
    scenario, record = parse_args(argv)
    if scenario == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    FakeCodex(scenario, record).run()


if __name__ == "__main__":
    main(sys.argv[1:])
