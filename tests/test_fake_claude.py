"""The fake Claude CLI speaks the real stream-json protocol (checked against the shapes in
the 2.1.331 recordings): approvals, denials, interrupts, resume, recording, misbehaviour."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

FAKE = Path(__file__).parent / "fakes" / "fake_claude.py"
REAL_ARGS = [
    "--output-format",
    "stream-json",
    "--verbose",
    "--input-format",
    "stream-json",
    "--permission-prompt-tool",
    "stdio",
    "--setting-sources=",
]
TIMEOUT = 10.0

JSON = dict[str, Any]


class Fake:
    """A running fake: JSON lines in, JSON lines out, read with deadlines."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.seen: list[JSON] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(b"")

    def send(self, message: JSON) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def prompt(self, text: str = "please run a command") -> None:
        self.send(
            {
                "type": "user",
                "session_id": "",
                "message": {"role": "user", "content": text},
                "parent_tool_use_id": None,
            }
        )

    def answer(self, request: JSON, response: JSON) -> None:
        self.send(
            {
                "type": "control_response",
                "response": {
                    "subtype": "success",
                    "request_id": request["request_id"],
                    "response": response,
                },
            }
        )

    def read(self) -> JSON:
        line = self.lines.get(timeout=TIMEOUT)
        assert line, "the fake closed stdout"
        message: JSON = json.loads(line)
        self.seen.append(message)
        return message

    def read_until(self, done: Callable[[JSON], bool]) -> JSON:
        while not done(message := self.read()):
            pass
        return message

    def close_stdin(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=TIMEOUT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def is_type(kind: str, subtype: str | None = None) -> Callable[[JSON], bool]:
    def check(message: JSON) -> bool:
        if message.get("type") != kind:
            return False
        inner = message.get("request") or message
        return subtype is None or inner.get("subtype") == subtype

    return check


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        **os.environ,
        "HOME": str(home),
        "FAKE_CLAUDE_HOME": str(tmp_path / "fake-claude"),
        "FAKE_CLAUDE_SCENARIO": "",
        "FAKE_CLAUDE_RECORD": "",
    }


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.fixture
def spawn(ws: Path, env: dict[str, str]) -> Iterator[Callable[..., Fake]]:
    started: list[Fake] = []

    def start(*args: str, cwd: Path | None = None) -> Fake:
        fake = Fake([*args, *REAL_ARGS], cwd or ws, env)
        started.append(fake)
        return fake

    try:
        yield start
    finally:
        for fake in started:
            fake.kill()


def test_allow_runs_the_command_and_ends_with_success(spawn: Callable[..., Fake], ws: Path) -> None:
    fake = spawn("--model", "claude-x", "-p", "--append-system-prompt", "be brief")
    initialize = {"subtype": "initialize", "hooks": None}
    fake.send({"type": "control_request", "request_id": "req_1", "request": initialize})
    fake.prompt()

    init_answer = fake.read_until(is_type("control_response"))
    assert init_answer["response"]["request_id"] == "req_1"
    assert init_answer["response"]["response"]["pid"] == fake.proc.pid
    init = fake.read_until(is_type("system", "init"))
    assert init["cwd"] == str(ws)
    request = fake.read_until(is_type("control_request", "can_use_tool"))
    body = request["request"]
    assert body["tool_name"] == "Bash"
    assert body["input"] == {"command": "echo hi > out.txt", "description": "write a file"}
    assert body["tool_use_id"].startswith("toolu_")
    assert body["permission_suggestions"][0]["destination"] == "localSettings"

    fake.answer(request, {"behavior": "allow", "updatedInput": body["input"]})
    tool_result = fake.read_until(is_type("user"))
    block = tool_result["message"]["content"][0]
    assert block == {
        "tool_use_id": body["tool_use_id"],
        "type": "tool_result",
        "content": "(Bash completed with no output)",
        "is_error": False,
    }
    result = fake.read_until(is_type("result"))
    assert result["subtype"] == "success"
    assert result["is_error"] is False
    assert result["result"] == "All done."
    assert result["session_id"] == init["session_id"]
    assert result["terminal_reason"] == "completed"
    assert result["permission_denials"] == []
    assert result["total_cost_usd"] == pytest.approx(0.00028)
    assert (ws / "out.txt").read_text() == "hi\n"
    assert fake.close_stdin() == 0


def test_allow_with_changed_input_runs_the_changed_command(
    spawn: Callable[..., Fake], ws: Path
) -> None:
    fake = spawn()
    fake.prompt()
    request = fake.read_until(is_type("control_request"))
    fake.answer(request, {"behavior": "allow", "updatedInput": {"command": "echo bye > b.txt"}})
    fake.read_until(is_type("result"))
    assert (ws / "b.txt").read_text() == "bye\n"
    assert not (ws / "out.txt").exists()


def test_deny_reports_the_message_and_lists_the_denial(
    spawn: Callable[..., Fake], ws: Path
) -> None:
    fake = spawn()
    fake.prompt()
    request = fake.read_until(is_type("control_request"))
    fake.answer(request, {"behavior": "deny", "message": "not in this repo"})

    tool_result = fake.read_until(is_type("user"))
    block = tool_result["message"]["content"][0]
    assert block["is_error"] is True
    assert block["content"] == "not in this repo"
    result = fake.read_until(is_type("result"))
    assert result["subtype"] == "success"
    assert result["is_error"] is False
    assert result["result"] == "Understood, I did not run it."
    assert result["permission_denials"] == [
        {
            "tool_name": "Bash",
            "tool_use_id": request["request"]["tool_use_id"],
            "tool_input": request["request"]["input"],
        }
    ]
    assert not (ws / "out.txt").exists()
    assert fake.close_stdin() == 0


def test_interrupt_cancels_the_pending_prompt_and_ends_the_turn_in_error(
    spawn: Callable[..., Fake], ws: Path
) -> None:
    fake = spawn()
    fake.prompt()
    request = fake.read_until(is_type("control_request"))
    interrupt = {"subtype": "interrupt"}
    fake.send({"type": "control_request", "request_id": "req_2_int", "request": interrupt})
    # the real client also answered the prompt right after: too late, ignored
    fake.answer(request, {"behavior": "deny", "message": "stopped", "interrupt": True})

    assert fake.read() == {"type": "control_cancel_request", "request_id": request["request_id"]}
    receipt = fake.read()
    assert receipt["response"] == {
        "subtype": "success",
        "request_id": "req_2_int",
        "response": {"still_queued": []},
    }
    rejection = fake.read()
    assert rejection["message"]["content"][0]["is_error"] is True
    marker = fake.read()
    assert marker["message"]["content"] == [
        {"type": "text", "text": "[Request interrupted by user for tool use]"}
    ]
    result = fake.read()
    assert result["type"] == "result"
    assert result["subtype"] == "error_during_execution"
    assert result["is_error"] is True
    assert result["terminal_reason"] == "aborted_tools"
    assert result["errors"]

    # the process stays usable for another turn; it exits 1 because that one was an error...
    fake.prompt("again")
    request = fake.read_until(is_type("control_request"))
    fake.answer(request, {"behavior": "allow", "updatedInput": request["request"]["input"]})
    assert fake.read_until(is_type("result"))["is_error"] is False
    # ...and 0 once the last turn succeeded
    assert fake.close_stdin() == 0
    assert (ws / "out.txt").exists()


def test_interrupted_last_turn_exits_1(spawn: Callable[..., Fake]) -> None:
    fake = spawn()
    fake.prompt()
    fake.read_until(is_type("control_request"))
    fake.send({"type": "control_request", "request_id": "i", "request": {"subtype": "interrupt"}})
    fake.read_until(is_type("result"))
    assert fake.close_stdin() == 1


def test_resume_continues_the_session_in_its_own_cwd(
    spawn: Callable[..., Fake], tmp_path: Path
) -> None:
    first = spawn("--scenario", "text")
    first.prompt("hello")
    session_id = first.read_until(is_type("result"))["session_id"]
    assert first.close_stdin() == 0

    second = spawn("--scenario", "text", f"--resume={session_id}")
    second.prompt("more")
    assert second.read_until(is_type("system", "init"))["session_id"] == session_id
    result = second.read_until(is_type("result"))
    assert result["session_id"] == session_id
    assert result["result"] == "Hello from fake claude. (turn 2 of session)"
    assert second.close_stdin() == 0

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    lost = spawn("--resume", session_id, cwd=elsewhere)
    assert lost.close_stdin() == 1
    assert lost.proc.stderr is not None
    assert (
        f"No conversation found with session ID: {session_id}" in lost.proc.stderr.read().decode()
    )


def test_record_captures_every_stdin_line(spawn: Callable[..., Fake], tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    fake = spawn("--record", str(record))
    fake.prompt()
    request = fake.read_until(is_type("control_request"))
    fake.answer(request, {"behavior": "allow", "updatedInput": request["request"]["input"]})
    fake.read_until(is_type("result"))

    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert [m["type"] for m in recorded] == ["user", "control_response"]
    assert recorded[1]["response"]["request_id"] == request["request_id"]
    assert recorded[1]["response"]["response"]["behavior"] == "allow"


def test_two_approvals_are_outstanding_together(spawn: Callable[..., Fake], ws: Path) -> None:
    fake = spawn("--scenario", "two_approvals")
    fake.prompt()
    first = fake.read_until(is_type("control_request"))
    second = fake.read_until(is_type("control_request"))
    fake.answer(second, {"behavior": "allow", "updatedInput": second["request"]["input"]})
    fake.answer(first, {"behavior": "deny", "message": "no"})
    result = fake.read_until(is_type("result"))
    assert [d["tool_use_id"] for d in result["permission_denials"]] == [
        first["request"]["tool_use_id"]
    ]
    assert (ws / "two.txt").exists()
    assert not (ws / "one.txt").exists()


def test_crash_mid_approval_exits_3(spawn: Callable[..., Fake]) -> None:
    fake = spawn("--scenario", "crash_mid_approval")
    fake.prompt()
    fake.read_until(is_type("control_request"))
    assert fake.proc.wait(timeout=TIMEOUT) == 3
    assert fake.proc.stderr is not None
    assert b"fake crash" in fake.proc.stderr.read()


def test_hang_ignores_eof_and_sigterm(spawn: Callable[..., Fake]) -> None:
    fake = spawn("--scenario", "hang")
    fake.prompt()
    request = fake.read_until(is_type("control_request"))
    fake.answer(request, {"behavior": "allow", "updatedInput": request["request"]["input"]})
    fake.read_until(is_type("result"))
    assert fake.proc.stdin is not None
    fake.proc.stdin.close()
    fake.proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        fake.proc.wait(timeout=0.3)
    fake.proc.kill()
    assert fake.proc.wait(timeout=TIMEOUT) == -signal.SIGKILL
