"""`agent-bridge demo`: the whole loop in a minute, with no account and no network.

It makes a temporary git repository and a temporary state directory, starts a daemon of its
own there (never the one you may run: its own socket, database and lock) with the built-in
demo agent (`daemon/demo_agent.py`, speaking Claude Code's protocol), starts a session, and
puts each approval and question the agent asks to you in this terminal (`--yes` allows
everything and picks the first answer). Then it shows the agent's summary and the diff,
stops its daemon and removes what it made: no process and no file is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from daemon import demo_agent, paths
from daemon.client import call
from daemon.demo_chat import chat_tables
from daemon.doctor import MAX_SOCKET_PATH
from daemon.errors import ApiError, DaemonError

PROMPT = "Show me around: look at the repository, ask me something, and write a file."
DONE_STATES = frozenset({"idle", "completed", "failed", "stopped", "disconnected"})
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
QUIET_TIMEOUT = 120.0  # with nobody to ask (--yes), the agent must move within this long


class DemoFailed(DaemonError):
    """The demo could not run to its end; the message says why."""


class Quit(Exception):
    """The person ended the demo (end of input)."""


class Demo:
    def __init__(self, *, yes: bool, stdin: IO[str], out: IO[str], chat: str = "") -> None:
        self.yes = yes
        self.chat = chat  # the person's [telegram]/[slack] tables, as TOML, or ""
        self.stdin = stdin
        self.out = out
        self.tmp = Path(tempfile.mkdtemp(prefix="agent-bridge-demo-"))
        self.repo = self.tmp / "repo"
        self.state = self.tmp / "state"
        self.extra: Path | None = None  # a short state dir, when $TMPDIR is too deep
        if len(os.fsencode(paths.socket_path(self.state))) > MAX_SOCKET_PATH:
            self.extra = Path(tempfile.mkdtemp(prefix="ab-demo-", dir="/tmp"))
            self.state = self.extra / "state"
        self.sock = paths.socket_path(self.state)
        self.log = self.tmp / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.shown_events = 0
        self.handled: set[str] = set()  # approvals and questions put to the person or shown
        self._pending = b""  # input read but not yet taken as a line

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    # -- the stage ------------------------------------------------------------------

    def make_repo(self) -> None:
        if shutil.which("git") is None:
            raise DemoFailed("the demo needs git on PATH: install git, then run "
                             "`agent-bridge demo` again")
        self.repo.mkdir()
        (self.repo / "README.md").write_text("# A demo repository\n\nMade by agent-bridge "
                                             "demo; removed when it ends.\n", encoding="utf-8")
        identity = ["-c", "user.name=agent-bridge demo", "-c", "user.email=demo@localhost",
                    "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main",
                    "-c", "core.hooksPath=/dev/null"]
        for args in (["init", "-q"], ["add", "README.md"],
                     ["commit", "-q", "-m", "A demo repository"]):
            done = subprocess.run(["git", *identity, *args], cwd=self.repo, env=_git_env(),
                                  capture_output=True, text=True, timeout=30, check=False)
            if done.returncode != 0:
                raise DemoFailed(f"git {args[0]} failed in {self.repo}: "
                                 f"{done.stderr.strip() or done.returncode}")

    def write_config(self) -> Path:
        agent = [sys.executable, str(Path(demo_agent.__file__).resolve())]
        lines = [
            'default_agent = "demo"',
            "[daemon]",
            f"state_dir = {json.dumps(str(self.state))}",
            'shutdown_grace = "2s"',
            "[agents.demo]",
            'protocol = "claude"',
            f"command = {json.dumps(agent)}",
            "[[projects]]",
            'name = "demo"',
            f"path = {json.dumps(str(self.repo))}",
            'agent = "demo"',
        ]
        config = self.tmp / "config.toml"
        config.write_text("\n".join(lines) + "\n" + self.chat, encoding="utf-8")
        return config

    def start_daemon(self, config: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "AGENT_BRIDGE_CONFIG"}
        with self.log.open("ab") as log:
            # a session of its own: a Ctrl-C here reaches the demo, which stops it in order
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "--config", str(config), "run"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.tmp, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise DemoFailed(f"the demo daemon exited at start: {self.log_tail()}")
            with contextlib.suppress(ApiError):
                call(self.sock, "sessions", timeout=5)
                return
            if time.monotonic() > deadline:
                raise DemoFailed(f"the demo daemon did not answer within {START_TIMEOUT:.0f}s: "
                                 f"{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def cleanup(self) -> None:
        """Stop the demo daemon (its agent with it) and remove every file the demo made."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.extra is not None:
            shutil.rmtree(self.extra, ignore_errors=True)

    # -- the tour -------------------------------------------------------------------

    def run(self) -> int:
        self.say(f"agent-bridge demo: a temporary git repository in {self.repo},")
        self.say("a daemon of its own and a scripted demo agent (no model, no account, "
                 "no network).")
        if self.chat:
            self.say("Your chat is configured: the session's cards show there too; tap there "
                     "or answer here, whichever comes first counts.")
        self.make_repo()
        self.start_daemon(self.write_config())
        session = call(self.sock, "new", project="demo", prompt=PROMPT, agent=None,
                       worktree=False, plan=False)
        sid = session["id"]
        self.say(f"Session {sid} started: {PROMPT}")
        self.say("")
        final = self.follow(sid)
        return self.finish(final)

    def follow(self, sid: str) -> dict[str, Any]:
        """Put every approval and question to the person until the turn ends."""
        handled = self.handled
        quiet_since = time.monotonic()
        while True:
            session = call(self.sock, "show", id=sid)
            self.show_events(session)
            moved = False
            for approval in session["pending_approvals"]:
                if approval["id"] not in handled:
                    handled.add(approval["id"])
                    self.approval(sid, approval)
                    moved = True
            for question in session["pending_questions"]:
                if question["id"] not in handled:
                    handled.add(question["id"])
                    self.question(sid, question)
                    moved = True
            for approval in session.get("approvals", []):
                if approval["id"] not in handled and approval["state"] != "pending":
                    handled.add(approval["id"])  # decided in a chat before it was shown here
                    self.say(f"  ✓ approval {approval['id']}: {approval['tool']} "
                             f"{_what(approval['input'])}: {approval['state']} by "
                             f"{approval['decided_by'] or 'nobody'}")
            waiting = session["pending_approvals"] or session["pending_questions"]
            if session["state"] in DONE_STATES and not waiting and not moved:
                self.show_events(call(self.sock, "show", id=sid))
                return dict(session)
            if moved:
                quiet_since = time.monotonic()
            elif self.yes and time.monotonic() - quiet_since > QUIET_TIMEOUT:
                raise DemoFailed(f"the demo agent did nothing for {QUIET_TIMEOUT:.0f}s "
                                 f"(session {sid} is {session['state']}): {self.log_tail()}")
            time.sleep(0.1)

    def show_events(self, session: dict[str, Any]) -> None:
        events = session.get("events", [])
        for event in events[self.shown_events:]:
            data = event.get("data") or {}
            if event["kind"] == "assistant_text" and data.get("text"):
                self.say(f"  agent: {data['text']}")
            elif event["kind"] == "question_settled" and data.get("question_id") not in \
                    self.handled:
                self.handled.add(str(data.get("question_id")))
                self.say(f"  ✓ question {data.get('question_id')}: {data.get('state')} by "
                         f"{data.get('by') or 'nobody'}")
        self.shown_events = len(events)

    def approval(self, sid: str, approval: dict[str, Any]) -> None:
        tool_input = approval["input"]
        self.say(f"  ? approval {approval['id']}: {approval['tool']} {_what(tool_input)}")
        if approval["tool"] == "Write" and "content" in tool_input:
            self.say(f"    content: {str(tool_input['content']).strip()[:200]}")
        if self.yes:
            allow = True
            self.say("    allow? y (--yes)")
        else:
            line = self.ask("    allow? [y]es / [n]o: ", lambda: self.pending(sid, approval["id"]),
                            valid=lambda s: s.lower() in ("y", "yes", "n", "no"))
            if line is None:
                return
            allow = line.lower() in ("y", "yes")
        if allow:
            result = call(self.sock, "approve", approval_id=approval["id"], for_session=False)
        else:
            result = call(self.sock, "deny", approval_id=approval["id"],
                          reason="denied in agent-bridge demo")
        self.say(f"    → {result['message']}")

    def question(self, sid: str, question: dict[str, Any]) -> None:
        labels = [o["label"] for o in question["options"]]
        self.say(f"  ? question {question['id']}: {question['text']}")
        for n, label in enumerate(labels, 1):
            self.say(f"    {n}. {label}")
        if self.yes:
            choice = labels[0]
            self.say("    answer: 1 (--yes)")
        else:
            def valid(text: str) -> bool:
                return text in labels or (text.isdigit() and 1 <= int(text) <= len(labels))

            line = self.ask(f"    answer [1-{len(labels)}]: ",
                            lambda: self.pending(sid, question["id"]), valid=valid)
            if line is None:
                return
            choice = labels[int(line) - 1] if line.isdigit() else line
        result = call(self.sock, "answer", question_id=question["id"], labels=[choice],
                      text=None)
        self.say(f"    → {result['message']}")

    def pending(self, sid: str, request_id: str) -> bool:
        session = call(self.sock, "show", id=sid)
        return any(r["id"] == request_id
                   for r in [*session["pending_approvals"], *session["pending_questions"]])

    def ask(self, prompt: str, still_pending: Callable[[], bool],
            valid: Callable[[str], bool]) -> str | None:
        """A valid line typed by the person; None when the request was settled elsewhere
        meanwhile (a chat, another terminal). End of input quits the demo."""
        self.out.write(prompt)
        self.out.flush()
        while True:
            line = self._line(0.5)
            if line is None:
                if not still_pending():
                    self.say("\n    (settled elsewhere)")
                    return None
                continue
            text = line.strip()
            if valid(text):
                return text
            self.out.write(f"    not an answer: {text!r}. {prompt.strip()} ")
            self.out.flush()

    def _line(self, timeout: float) -> str | None:
        """The next line of input, None when none came within `timeout`; Quit at its end.
        Read from the descriptor, not through a buffer that select() cannot see into."""
        try:
            fd = self.stdin.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file: read it as it is
            line = self.stdin.readline()
            if not line:
                raise Quit from None
            return str(line)
        while b"\n" not in self._pending:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                if self._pending:
                    break
                raise Quit
            self._pending += chunk
        raw, _, self._pending = self._pending.partition(b"\n")
        return raw.decode("utf-8", "replace")

    def finish(self, session: dict[str, Any]) -> int:
        self.say("")
        cost = session.get("cost_usd")
        self.say(f"Session {session['id']} is {session['state']}"
                 + (f" (cost ${cost:.4f}: the demo agent has no model)"
                    if cost is not None else "")
                 + (f": {session['error']}" if session.get("error") else "."))
        diff = call(self.sock, "diff", id=session["id"])
        self.say(f"What changed: {diff['summary']}")
        if diff.get("diff"):
            self.say(diff["diff"].rstrip())
        self.say("")
        self.say("That is the loop: the agent asks, you decide, the daemon keeps the record.")
        self.say("Next: steer real agents from your phone with `agent-bridge setup telegram`")
        self.say("(or `setup slack`), and keep the daemon running with "
                 "`agent-bridge service install`.")
        return 0 if session["state"] in ("idle", "completed") else 1


def _what(tool_input: dict[str, Any]) -> str:
    return str(tool_input.get("command") or tool_input.get("file_path")
               or json.dumps(tool_input))


def _git_env() -> dict[str, str]:
    """git as the demo needs it: the person's hooks and templates stay out of a throwaway
    repository (a commit hook that signs or lints must not fail the demo)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**env, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}


def demo(config_arg: str | None, *, yes: bool, stdin: IO[str] | None = None,
         out: IO[str] | None = None) -> int:
    """Run the tour; 0 when it went through (whatever was allowed or denied). Without
    `--yes`, a chat configured in the person's config shows the demo's cards too (their
    config is only read; their daemon and state are never touched)."""
    output = out or sys.stdout
    chat, note = ("", None) if yes else chat_tables(config_arg, os.environ)
    if note:
        print(note, file=output, flush=True)
    tour = Demo(yes=yes, stdin=stdin or sys.stdin, out=output, chat=chat)
    # a SIGTERM, or the terminal closing, ends the demo as Ctrl-C does: through the cleanup
    previous = {sig: signal.getsignal(sig) for sig in _ENDING}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupted)
    try:
        return tour.run()
    except Quit:
        tour.say("\nEnd of input: the demo stops here.")
        return 1
    finally:
        for sig in _ENDING:  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        try:
            tour.cleanup()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_ENDING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
