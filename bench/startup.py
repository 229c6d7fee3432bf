#!/usr/bin/env python3
"""Startup: `agent-bridge run` until its control socket answers, and `agent-bridge sessions`
with 10,000 sessions in the store, next to baselines measured in the same run.

    python bench/startup.py [--runs 5] [--sessions 10000]

Setup: the real CLI (`.venv/bin/agent-bridge`, unmodified) with a config that has the fake
Bot API (tests/fakes/telegram_api.py, in a thread of this process) as its Telegram surface,
in a temporary state dir. Every figure is the median (and max) of `--runs` runs.

- ready: fork of `agent-bridge run` → the control socket answers `ping` (polled every 2 ms;
  the daemon is stopped with SIGTERM and waited for after each run). Twice: on an empty
  state dir (the database is created and migrated) and on the store with the sessions.
- sessions: `agent-bridge sessions` (and `--json`) against that daemon: process start →
  exit, the full list printed to a pipe.
- the store: `--sessions` sessions written through daemon/store/ (its migrations make
  the schema; its private `_insert_events` and `_insert_approval` write the rows, in one
  transaction, a benchmark fixture):
  projects, agents, branches and titles vary; 40 % archived (up to 90 days old), the rest
  open, completed, failed or stopped within the last 6 days (younger than the 7 days after
  which the daemon archives them itself; live ones would be ended by recovery at start),
  12 events and one decided approval each. That is more open sessions than a daemon keeps
  in real use, where they are archived after a week.
- baselines, same run: `python -c pass` (the interpreter alone), python importing the
  daemon's third-party dependencies (python-telegram-bot, aiohttp, aiosqlite, asyncssh,
  APScheduler, unidiff), `agent-bridge --help` (the CLI's own start) and the raw SQLite
  query behind the list (every column of the open sessions, in this process).

Targets (issue 9): ready ≤ 1.5 s; `agent-bridge sessions` with 10,000 sessions ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    Daemon,
    machine,
    table,
    verdict,
)
from _telegram import FakeTelegram, FakeThread

READY_TARGET = 1.5
SESSIONS_TARGET = 0.5
DEPENDENCIES = "telegram.ext, aiohttp, aiosqlite, asyncssh, apscheduler, unidiff"


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds from fork to exit of `argv` (its output to a pipe, read to the end)."""
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=60, env=env)
    return time.perf_counter() - t0


def spread(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), max(values)


def fmt(values: list[float]) -> str:
    median, worst = spread(values)
    return f"{median:.3f} / {worst:.3f}"


def populate(database: Path, count: int, project: Path) -> float:
    """`count` finished sessions with their events and approvals, written through the
    daemon's store module; returns the seconds that took."""
    from bridge.approvals import Approval, ApprovalState
    from bridge.events import DecisionKind
    from bridge.session import SessionState
    from daemon import store as st

    rng = random.Random(9)
    states = [SessionState.COMPLETED] * 7 + [SessionState.FAILED, SessionState.STOPPED,
                                             SessionState.COMPLETED]
    now = time.time()

    async def write() -> None:
        store = await st.Store.open(database)
        try:
            async with store._transaction() as db:
                for n in range(count):
                    sid = f"s{n:05d}"
                    archived = rng.random() < 0.4
                    # open ones are younger than [archive] auto_after (7 days), or the
                    # daemon would archive them while we measure
                    created = now - rng.uniform(600, (90 if archived else 6) * 86400)
                    state = rng.choice(states)
                    await db.execute(
                        "INSERT INTO sessions (id, project, agent, protocol, host, cwd, state, "
                        "archived, agent_session_id, title, branch, last_tool, cost_usd, error, "
                        "turns, created_at, updated_at, last_event_at, finished_at, owner) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (sid, f"project-{n % 12}", rng.choice(("claude", "codex")), "claude",
                         "local", str(project), state.value, int(archived),
                         f"agent-{n:08x}", f"fix the flaky test number {n} in the checkout flow",
                         f"agent/{sid}" if n % 3 else None, "Bash pytest -q tests/test_checkout.py",
                         round(rng.uniform(0.01, 3.0), 4),
                         "the agent exited with code 1" if state is SessionState.FAILED else None,
                         rng.randint(1, 9), created, created + 600, created + 600,
                         created + 600, "telegram:1"),
                    )
                    await store._insert_events(db, sid, [
                        (created + k, kind, json.dumps({"text": f"{kind} {k} of {sid}"}))
                        for k, kind in enumerate(["prompt", "session_started"]
                                                 + ["assistant_text"] * 8
                                                 + ["tool_started", "turn_completed"])
                    ])
                    await store._insert_approval(db, Approval(
                        id=f"a{n:05d}", session_id=sid, request_id=f"r{n}", tool="Bash",
                        input={"command": "pytest -q"}, offered=(DecisionKind.ALLOW_ONCE,),
                        requested_at=created + 5, state=ApprovalState.PENDING,
                    ))
                    await db.execute(
                        "UPDATE approvals SET state = 'allowed', decision = 'allow_once', "
                        "decided_by = 'someone', decided_at = ? WHERE id = ?",
                        (created + 9, f"a{n:05d}"))
        finally:
            await store.close()

    t0 = time.perf_counter()
    asyncio.run(write())
    return time.perf_counter() - t0


def raw_query(database: Path, runs: int) -> list[float]:
    """Seconds for the SELECT behind the list: every column of the open sessions."""
    from daemon.store.sessions import SESSION_COLUMNS

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        rows = db.execute(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE archived = 0 "
                          "ORDER BY updated_at DESC").fetchall()
        db.close()
        times.append(time.perf_counter() - t0)
        assert rows
    return times


def ready_times(daemon: Daemon, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        try:
            times.append(daemon.start())
        finally:
            daemon.stop()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=10_000)
    args = parser.parse_args()
    started = time.monotonic()
    runs = args.runs
    print(f"startup: {machine()}")
    print(f"  median / max of {runs} runs, in seconds; {args.sessions:,} sessions in the store")
    python = sys.executable
    bare = [timed([python, "-c", "pass"]) for _ in range(runs)]
    deps = [timed([python, "-c", f"import {DEPENDENCIES}"]) for _ in range(runs)]
    tg = FakeThread(FakeTelegram)
    leftovers: list[int] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as name:
            base = Path(name)
            empty = Daemon(base / "empty", telegram=tg.config())
            try:
                ready_empty = ready_times(empty, runs)
            finally:
                leftovers += empty.cleanup()
            full = Daemon(base / "full", telegram=tg.config())
            full.state.mkdir(parents=True)
            filled = populate(full.database, args.sessions, full.project)
            try:
                ready_full = ready_times(full, runs)
                help_ = [timed(full.argv("--help"), env=full.env) for _ in range(runs)]
                full.start()
                listed = len(full.api("sessions"))
                human = [timed(full.argv("sessions"), env=full.env) for _ in range(runs)]
                as_json = [timed(full.argv("sessions", "--json"), env=full.env)
                           for _ in range(runs)]
                everything = [timed(full.argv("sessions", "--all"), env=full.env)
                              for _ in range(runs)]
            finally:
                leftovers += full.cleanup()
            raw = raw_query(full.database, runs)
    finally:
        tg.close()
    ready_ok = spread(ready_empty)[0] <= READY_TARGET and spread(ready_full)[0] <= READY_TARGET
    sessions_ok = spread(human)[0] <= SESSIONS_TARGET
    print()
    print(table([
        ["`run` → socket answers, empty state dir", fmt(ready_empty), f"≤ {READY_TARGET}",
         verdict(spread(ready_empty)[0] <= READY_TARGET)],
        [f"`run` → socket answers, {args.sessions:,} sessions", fmt(ready_full),
         f"≤ {READY_TARGET}", verdict(spread(ready_full)[0] <= READY_TARGET)],
        [f"`sessions` ({listed:,} open of {args.sessions:,})", fmt(human),
         f"≤ {SESSIONS_TARGET}", verdict(sessions_ok)],
        ["  `sessions --json`", fmt(as_json), "", ""],
        [f"  `sessions --all` ({args.sessions:,})", fmt(everything), "", ""],
        ["baseline: `python -c pass`", fmt(bare), "", ""],
        ["baseline: python importing the dependencies", fmt(deps), "", ""],
        ["baseline: `agent-bridge --help`", fmt(help_), "", ""],
        ["baseline: the raw SQLite query of the list", fmt(raw), "", ""],
    ], ["startup (s)", "median / max", "target", ""]))
    print()
    print(f"ready / python importing the dependencies: "
          f"{spread(ready_empty)[0] / spread(deps)[0]:.1f}x; `sessions` / `--help`: "
          f"{spread(human)[0] / spread(help_)[0]:.1f}x; dependencies: {DEPENDENCIES}")
    print(f"store written in {filled:.1f} s; processes left behind: {len(leftovers)}; "
          f"elapsed {time.monotonic() - started:.1f} s")
    return 0 if ready_ok and sessions_ok and not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
