#!/usr/bin/env python3
"""A bench-only stand-in for `claude` in stream-json mode that timestamps its own I/O.

It speaks the minimal shape of the protocol that `tests/fakes/fake_claude.py` speaks (answer
`initialize`, emit `system/init`, ask `can_use_tool` over the control protocol, end the turn
with a `result`) and records, in a side file (JSON lines, `--times`):

  {"ev": "ask", "i": N, "rid": ID, "t": T}     T: time.monotonic() just before the request
                                                is written to stdout
  {"ev": "answer", "rid": ID, "t": T, "ok": B}  T: time.monotonic() right after the decision
                                                line was read from stdin
  {"ev": "flood", "t": T, "wall": W}           before and after the --flood lines
  {"ev": "flooded", "t": T, "wall": W}
  {"ev": "turn", "t": T}                       --until: the turn began (the prompt was read)
  {"ev": "done", "lines": L, "asks": A}         at the end of the turn
  {"ev": "tool", "i": N, "t": T, "ask": B}      --tools-for: a tool call written (B: it asks)
  {"ev": "user", "text": S, "t": T}             --tools-for: a person's message read mid-turn

time.monotonic() is CLOCK_MONOTONIC, one clock for every process on Linux, so the bench can
subtract these from times taken in its own process (the fake Bot API's).

Options:
  --times PATH      the side file (default: none)
  --times-dir DIR   the side file is DIR/<$AGENT_BRIDGE_SESSION>.jsonl (one per session)
  --approvals N     permission requests, one after the other (each waits for its answer)
  --lines K         assistant text lines written before each request (or alone, see --flood)
  --flood N         N assistant text lines as fast as possible, no requests
  --gap-ms G        pause before each request (milliseconds; with --jitter, uniform 0..2G)
  --jitter          randomise the pause (seeded by --seed and $AGENT_BRIDGE_SESSION, so that
                    sessions sharing one command line still pause independently)
  --seed S
  --until PATH      instead of --approvals: ask, one after the other (with --lines and --gap-ms
                    before each), until PATH exists, then end the turn (bench/scale_ramp.py)
  --tools-for S     instead of the above: for S seconds, a tool call every --tool-gap seconds
                    (uniform), each asking for approval with probability --ask-ratio (the
                    others run at once); messages sent during the turn are noted, not answered
  --tool-gap A,B    (default 1,3)
  --ask-ratio P     (default 0.3)
Every other argument (the real CLI's flags the daemon passes) is ignored.
Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import queue
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
EOF: JSON = {"type": "__eof__"}


class Agent:
    def __init__(self, opts: argparse.Namespace) -> None:
        self.opts = opts
        self.session_id = str(uuid.uuid4())
        self.inbox: queue.Queue[JSON] = queue.Queue()
        self.answers: dict[str, queue.Queue[JSON]] = {}
        self.answers_lock = threading.Lock()
        self.times_lock = threading.Lock()
        times = Path(opts.times) if opts.times else None
        if opts.times_dir:
            session = os.environ.get("AGENT_BRIDGE_SESSION", f"pid{os.getpid()}")
            times = Path(opts.times_dir) / f"{session}.jsonl"
        self.times = times.open("a", encoding="utf-8") if times else None
        self.out = sys.stdout.buffer
        self.fd = sys.stdout.fileno()
        self.rng = random.Random(f"{opts.seed}/{os.environ.get('AGENT_BRIDGE_SESSION', '')}")
        self.lines_written = 0
        self.asks = 0
        self.in_turn = False

    # -- side file ------------------------------------------------------------------

    def note(self, record: JSON) -> None:
        if self.times is None:
            return
        with self.times_lock:
            self.times.write(json.dumps(record) + "\n")
            self.times.flush()

    # -- stdout ---------------------------------------------------------------------

    def write_now(self, message: JSON) -> None:
        self.out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        self.out.flush()

    def text_line(self, text: str) -> bytes:
        return json.dumps(
            {
                "type": "assistant",
                "message": {
                    "id": "msg_bench",
                    "type": "message",
                    "role": "assistant",
                    "model": "bench",
                    "content": [{"type": "text", "text": text}],
                },
                "parent_tool_use_id": None,
                "session_id": self.session_id,
            },
            separators=(",", ":"),
        ).encode() + b"\n"

    def text_lines(self, count: int, *, chunk: int = 1000) -> None:
        """`count` assistant lines, written in chunks of `chunk` lines (as a CLI's buffered
        stdout would), flushed at the end."""
        done = 0
        while done < count:
            n = min(chunk, count - done)
            self.out.write(b"".join(self.text_line(f"line {done + k}") for k in range(n)))
            done += n
        self.out.flush()
        self.lines_written += count

    # -- stdin ----------------------------------------------------------------------

    def reader(self) -> None:
        stdin = sys.stdin.buffer
        while True:
            raw = stdin.readline()
            now = time.monotonic()
            if not raw:
                self.inbox.put(EOF)
                return
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if message.get("type") == "control_response":
                response = message.get("response") or {}
                rid = str(response.get("request_id"))
                body = response.get("response") or {}
                self.note({"ev": "answer", "rid": rid, "t": now,
                           "ok": body.get("behavior") == "allow"})
                with self.answers_lock:
                    box = self.answers.get(rid)
                if box is not None:
                    box.put(message)
                    continue
            if message.get("type") == "user" and self.in_turn and self.opts.tools_for:
                content = (message.get("message") or {}).get("content")
                text = content if isinstance(content, str) else json.dumps(content)
                self.note({"ev": "user", "text": text, "t": now})
                continue
            self.inbox.put(message)

    def next_message(self) -> JSON:
        message = self.inbox.get()
        if message is EOF:
            self.exit(0)
        return message

    # -- the turn -------------------------------------------------------------------

    def handle_control(self, message: JSON) -> None:
        request = message.get("request") or {}
        response: JSON = {}
        if request.get("subtype") == "initialize":
            response = {"commands": [], "models": [], "pid": os.getpid(),
                        "claude_code_version": "bench"}
        self.write_now({"type": "control_response", "response": {
            "subtype": "success", "request_id": message.get("request_id"), "response": response}})

    def ask(self, i: int) -> None:
        rid = str(uuid.uuid4())
        tool_id = f"toolu_{uuid.uuid4().hex[:20]}"
        tool_input = {"command": f"echo {i} > bench.txt", "description": f"bench step {i}"}
        self.write_now({"type": "assistant", "message": {
            "id": f"msg_{i}", "type": "message", "role": "assistant", "model": "bench",
            "content": [{"type": "tool_use", "id": tool_id, "name": "Bash", "input": tool_input}],
        }, "parent_tool_use_id": None, "session_id": self.session_id})
        box: queue.Queue[JSON] = queue.Queue()
        with self.answers_lock:
            self.answers[rid] = box
        request = json.dumps({"type": "control_request", "request_id": rid, "request": {
            "subtype": "can_use_tool", "tool_name": "Bash", "input": tool_input,
            "description": tool_input["description"], "tool_use_id": tool_id,
            "permission_suggestions": [], "blocked_path": None,
        }}, separators=(",", ":")).encode() + b"\n"
        t = time.monotonic()
        os.write(self.fd, request)  # unbuffered: the timestamp is the write
        self.note({"ev": "ask", "i": i, "rid": rid, "t": t})
        self.asks += 1
        answer = box.get()
        with self.answers_lock:
            del self.answers[rid]
        body = (answer.get("response") or {}).get("response") or {}
        allowed = body.get("behavior") == "allow"
        self.write_now({"type": "user", "message": {"role": "user", "content": [{
            "tool_use_id": tool_id, "type": "tool_result", "is_error": not allowed,
            "content": "(Bash completed with no output)" if allowed else "denied",
        }]}, "parent_tool_use_id": None, "session_id": self.session_id})

    def tool_call(self, i: int) -> None:
        """A tool call that needs no approval: tool_use, then its result at once."""
        tool_id = f"toolu_{uuid.uuid4().hex[:20]}"
        tool_input = {"command": f"echo {i} > bench.txt", "description": f"bench step {i}"}
        self.write_now({"type": "assistant", "message": {
            "id": f"msg_{i}", "type": "message", "role": "assistant", "model": "bench",
            "content": [{"type": "tool_use", "id": tool_id, "name": "Bash", "input": tool_input}],
        }, "parent_tool_use_id": None, "session_id": self.session_id})
        self.write_now({"type": "user", "message": {"role": "user", "content": [{
            "tool_use_id": tool_id, "type": "tool_result", "is_error": False,
            "content": "(Bash completed with no output)",
        }]}, "parent_tool_use_id": None, "session_id": self.session_id})

    def tools(self) -> None:
        opts = self.opts
        low, high = (float(x) for x in opts.tool_gap.split(","))
        end = time.monotonic() + opts.tools_for
        i = 0
        while True:
            time.sleep(self.rng.uniform(low, high))
            if time.monotonic() >= end:
                return
            asks = self.rng.random() < opts.ask_ratio
            self.note({"ev": "tool", "i": i, "t": time.monotonic(), "ask": asks})
            if asks:
                self.ask(i)
            else:
                self.tool_call(i)
            i += 1

    def turn(self) -> None:
        opts = self.opts
        started = time.monotonic()
        self.in_turn = True
        if opts.until:
            self.note({"ev": "turn", "t": started})
        self.write_now({"type": "system", "subtype": "init", "session_id": self.session_id,
                        "cwd": str(Path.cwd()), "model": "bench", "tools": ["Bash"],
                        "claude_code_version": "bench"})
        if opts.flood:
            self.note({"ev": "flood", "t": time.monotonic(), "wall": time.time()})
            self.text_lines(opts.flood)
            self.note({"ev": "flooded", "t": time.monotonic(), "wall": time.time()})
        if opts.tools_for:
            self.tools()
        steps = range(opts.approvals) if not opts.until else itertools.count()
        for i in steps:
            if opts.until and Path(opts.until).exists():
                break
            if opts.lines:
                self.text_lines(opts.lines)
            if opts.gap_ms:
                gap = opts.gap_ms * (2 * self.rng.random() if opts.jitter else 1.0)
                time.sleep(gap / 1000)
            self.ask(i)
        elapsed = time.monotonic() - started
        self.write_now({
            "type": "result", "subtype": "success", "is_error": False,
            "duration_ms": int(elapsed * 1000), "num_turns": 1, "result": "bench done",
            "session_id": self.session_id, "total_cost_usd": 0.0, "terminal_reason": "completed",
        })
        self.in_turn = False
        self.note({"ev": "done", "lines": self.lines_written, "asks": self.asks,
                   "elapsed": elapsed})

    def run(self) -> None:
        threading.Thread(target=self.reader, daemon=True).start()
        while True:
            message = self.next_message()
            kind = message.get("type")
            if kind == "control_request":
                self.handle_control(message)
            elif kind == "user":
                self.turn()

    def exit(self, code: int) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        if self.times is not None:
            self.times.close()
        os._exit(code)


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--times")
    parser.add_argument("--times-dir")
    parser.add_argument("--approvals", type=int, default=0)
    parser.add_argument("--lines", type=int, default=0)
    parser.add_argument("--flood", type=int, default=0)
    parser.add_argument("--gap-ms", type=float, default=0.0)
    parser.add_argument("--jitter", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tools-for", type=float, default=0.0)
    parser.add_argument("--tool-gap", default="1,3")
    parser.add_argument("--ask-ratio", type=float, default=0.3)
    parser.add_argument("--until")
    opts, _ = parser.parse_known_args()
    agent = Agent(opts)
    try:
        agent.run()
    except BrokenPipeError:
        agent.exit(1)


if __name__ == "__main__":
    main()
