#!/usr/bin/env python3
"""The demo agent of `agent-bridge demo`: a scripted stand-in for Claude Code.

It speaks Claude Code's stream-json protocol with the control protocol (`initialize`,
`can_use_tool`, `control_response`, `interrupt`, `result`), the same lines the daemon
reads from the real `claude`, so the daemon drives it with its own Claude driver. No model,
no account, no network. Every turn follows one script:

1. asks to run `git log --oneline -1` (Bash) and runs it when allowed;
2. asks which greeting to write (AskUserQuestion, answered like the real CLI expects:
   `updatedInput.answers`, question → label);
3. asks to write `hello.txt` with it (Write) and writes it when allowed, in its cwd only;
4. ends the turn with a `result` (cost 0: there is no model).

Standard library only; run as a script (`python demo_agent.py`). Claude Code's flags are
accepted and ignored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
VERSION = "agent-bridge-demo-1"
MODEL = "demo (scripted, no model)"
QUESTION = "Which greeting should hello.txt hold?"
GREETINGS = ("Hello, world", "Hi from agent-bridge")


class Interrupted(Exception):
    def __init__(self, request_id: str) -> None:
        super().__init__(request_id)
        self.request_id = request_id


class DemoAgent:
    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.session_id = str(uuid.uuid4())
        self.prompts: deque[JSON] = deque()
        self.answers: dict[str, JSON] = {}
        self.in_turn = False
        self.turns = 0

    # -- the wire -------------------------------------------------------------------

    def emit(self, message: JSON) -> None:
        sys.stdout.write(json.dumps(message, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def envelope(self, message: JSON) -> JSON:
        return {**message, "parent_tool_use_id": None, "session_id": self.session_id,
                "uuid": str(uuid.uuid4()),
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")}

    def read(self) -> JSON | None:
        """The next message from stdin; None at EOF (the daemon closed the session)."""
        while True:
            line = sys.stdin.readline()
            if not line:
                return None
            if line.strip():
                message: JSON = json.loads(line)
                return message

    def handle(self, message: JSON) -> None:
        kind = message.get("type")
        if kind == "user":
            self.prompts.append(message)
        elif kind == "control_response":
            response = message.get("response") or {}
            self.answers[str(response.get("request_id"))] = response
        elif kind == "control_request":
            self.control_request(message)

    def control_request(self, message: JSON) -> None:
        request_id = str(message.get("request_id", ""))
        subtype = (message.get("request") or {}).get("subtype")
        if subtype == "interrupt" and self.in_turn:
            raise Interrupted(request_id)
        body: JSON = {}
        if subtype == "initialize":
            body = {"commands": [], "agents": [], "models": [], "pid": os.getpid(),
                    "output_style": "default", "available_output_styles": ["default"],
                    "account": {"tokenSource": "none", "apiKeySource": "none"},
                    "claude_code_version": VERSION, "current_permission_mode": "default"}
        elif subtype == "set_permission_mode":
            body = {"mode": (message.get("request") or {}).get("mode", "default")}
        self.emit({"type": "control_response",
                   "response": {"subtype": "success", "request_id": request_id,
                                "response": body}})

    # -- one turn -------------------------------------------------------------------

    def say(self, text: str) -> None:
        self.emit(self.envelope({"type": "assistant", "message": {
            "id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant",
            "model": MODEL, "content": [{"type": "text", "text": text}],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}}))

    def ask(self, tool: str, tool_input: JSON, description: str) -> tuple[str, JSON]:
        """Announce a tool call, ask for permission and wait: (tool_use_id, the answer)."""
        tool_use_id = f"toolu_{uuid.uuid4().hex[:20]}"
        self.emit(self.envelope({"type": "assistant", "message": {
            "id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant",
            "model": MODEL, "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
            "content": [{"type": "tool_use", "id": tool_use_id, "name": tool,
                         "input": tool_input}]}}))
        request_id = str(uuid.uuid4())
        self.emit({"type": "control_request", "request_id": request_id, "request": {
            "subtype": "can_use_tool", "tool_name": tool, "display_name": tool,
            "input": tool_input, "description": description, "tool_use_id": tool_use_id,
            "permission_suggestions": [], "blocked_path": None}})
        while request_id not in self.answers:
            message = self.read()
            if message is None:
                sys.exit(0)  # the daemon closed us while we waited: nothing was done
            try:
                self.handle(message)
            except Interrupted:
                self.emit({"type": "control_cancel_request", "request_id": request_id})
                raise
        answer = self.answers.pop(request_id)
        body = answer.get("response") or {}
        if answer.get("subtype") != "success":
            body = {"behavior": "deny", "message": str(answer.get("error") or "error")}
        return tool_use_id, body

    def tool_result(self, tool_use_id: str, text: str, *, is_error: bool) -> None:
        self.emit(self.envelope({"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool_use_id, "content": text,
             "is_error": is_error}]}}))

    def result(self, text: str | None, *, interrupted: bool = False) -> None:
        message: JSON = {
            "type": "result", "subtype": "error_during_execution" if interrupted else "success",
            "is_error": interrupted, "duration_ms": 1, "duration_api_ms": 0, "num_turns": 1,
            "session_id": self.session_id, "total_cost_usd": 0.0,
            "usage": {"input_tokens": 0, "output_tokens": 0}, "permission_denials": [],
            "stop_reason": "end_turn", "uuid": str(uuid.uuid4()),
            "terminal_reason": "aborted_tools" if interrupted else "completed"}
        if interrupted:
            message["errors"] = ["interrupted by the user"]
        else:
            message["result"] = text
        self.emit(message)

    def init(self) -> None:
        self.emit({"type": "system", "subtype": "init", "cwd": str(self.cwd),
                   "session_id": self.session_id, "tools": ["AskUserQuestion", "Bash", "Write"],
                   "mcp_servers": [], "model": MODEL, "permissionMode": "default",
                   "apiKeySource": "none", "claude_code_version": VERSION,
                   "uuid": str(uuid.uuid4())})

    def turn(self) -> None:
        self.turns += 1
        self.in_turn = True
        self.init()
        try:
            if self.turns > 1:
                self.say("This demo agent knows one script. Start another tour with "
                         "`agent-bridge demo`.")
                self.result("This demo agent knows one script.")
                return
            self.script()
        except Interrupted as stop:
            self.emit({"type": "control_response", "response": {
                "subtype": "success", "request_id": stop.request_id,
                "response": {"still_queued": []}}})
            self.result(None, interrupted=True)
        finally:
            self.in_turn = False

    def script(self) -> None:
        self.say("Hello! I am the agent-bridge demo agent. I will look at this repository, "
                 "ask you one question and write a file, asking before each step.")
        tool_use_id, answer = self.ask("Bash", {"command": "git log --oneline -1",
                                                "description": "Show the latest commit"},
                                       "Show the latest commit")
        if answer.get("behavior") == "allow":
            self.tool_result(tool_use_id, git_log(self.cwd), is_error=False)
        else:
            self.tool_result(tool_use_id, denied(answer), is_error=True)
        options = [{"label": GREETINGS[0], "description": "the classic"},
                   {"label": GREETINGS[1], "description": "a little louder"}]
        questions = [{"question": QUESTION, "header": "Greeting", "multiSelect": False,
                      "options": options}]
        tool_use_id, answer = self.ask("AskUserQuestion", {"questions": questions},
                                       "Ask the user a question")
        answers = (answer.get("updatedInput") or {}).get("answers") or {}
        greeting = str(answers.get(QUESTION) or GREETINGS[0])
        self.tool_result(tool_use_id, f'The user answered: "{QUESTION}"="{greeting}".',
                         is_error=False)
        target = self.cwd / "hello.txt"
        tool_use_id, answer = self.ask("Write", {"file_path": str(target),
                                                 "content": greeting + "\n"}, "hello.txt")
        if answer.get("behavior") == "allow":
            target.write_text(greeting + "\n", encoding="utf-8")
            self.tool_result(tool_use_id, f"File created successfully at: {target}",
                             is_error=False)
            text = f"Done: hello.txt now says {greeting!r}. That is the whole tour."
        else:
            self.tool_result(tool_use_id, denied(answer), is_error=True)
            text = "Understood: I did not write hello.txt. That is the whole tour."
        self.say(text)
        self.result(text)

    def run(self) -> None:
        while True:
            if self.prompts:
                self.prompts.popleft()
                self.turn()
                continue
            message = self.read()
            if message is None:
                return
            self.handle(message)


def git_log(cwd: Path) -> str:
    try:
        done = subprocess.run(["git", "log", "--oneline", "-1"], cwd=cwd, capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"git failed: {e}"
    return (done.stdout or done.stderr).strip() or "(no output)"


def denied(answer: JSON) -> str:
    return str(answer.get("message") or "The user denied this tool use.")


def main() -> None:
    if "--version" in sys.argv[1:] or "-v" in sys.argv[1:]:
        print(f"{VERSION} (Claude Code)")
        return
    DemoAgent(Path.cwd()).run()


if __name__ == "__main__":
    main()
