#!/usr/bin/env python3
"""Ingest: one agent floods output events as fast as it can write; all must be stored.

    python bench/ingest.py [--events 200000]

Setup: `agent-bridge run` (unmodified) with the fake Bot API (its default, Telegram-like
limits: 20 sends a minute in a group, 60 edits a minute per chat, 30 chat calls a second)
and the forum supergroup as the chat, so the session gets a topic and a status card that the
flood keeps changing; bench/bench_agent.py writes `--events` assistant text lines in 1,000-line
chunks, then ends its turn.

- stored rate: events / (agent starts writing → the daemon has stored the turn's end, seen
  by polling `sessions` on the control socket every 20 ms); every `assistant_text` row is
  counted in the events table afterwards.
- daemon CPU per event: utime+stime of the daemon (/proc/<pid>/stat) across the flood.
- chat calls: 429s answered by the fake, and the most sends+edits in the chat in any 60 s
  (Telegram: 20 a minute in a group) and chat calls in any 1 s (30).
- baselines, same run: the agent writing the same lines to /dev/null; the same rows
  inserted with one executemany in one transaction into the daemon's schema (WAL,
  synchronous=NORMAL).

Target (issue 9): ≥ 20,000 events/s stored, all of them.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import (
    AGENT,
    FORUM_CHAT_ID,
    Daemon,
    cpu_seconds,
    machine,
    max_in_window,
    read_times,
    table,
    verdict,
    wait_until,
)
from _telegram import FakeTelegram, FakeThread

TARGET_RATE = 20_000
SENDS_PER_MIN = 20
CALLS_PER_SEC = 30
CHAT_WRITES = {"sendMessage", "sendDocument", "editMessageText", "editMessageReplyMarkup"}


def agent_to_devnull(events: int, base: Path) -> float:
    """Seconds the bench agent needs to write `events` lines to /dev/null."""
    times = base / "devnull.jsonl"
    prompt = json.dumps({"type": "user", "message": {"role": "user", "content": "go"}}) + "\n"
    with Path("/dev/null").open("wb") as sink:
        subprocess.run([sys.executable, str(AGENT), "--times", str(times), "--flood",
                        str(events)], input=prompt.encode(), stdout=sink, check=True,
                       timeout=120)
    records = {r["ev"]: r for r in read_times(times)}
    return records["flooded"]["t"] - records["flood"]["t"]


def raw_inserts(events: int, base: Path) -> float:
    """Seconds for one executemany of `events` event rows in one transaction, with the
    daemon's schema (created by the daemon's own migration scripts)."""
    from daemon.migrations import MIGRATIONS

    path = base / "raw.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for script in MIGRATIONS:
        db.executescript(script)
    db.execute("INSERT INTO sessions (id, project, agent, protocol, cwd, state, created_at, "
               "updated_at) VALUES ('s', 'p', 'a', 'claude', '/', 'running', 0, 0)")
    data = json.dumps({"text": "line 123456"})
    rows = [("s", time.time(), "assistant_text", data) for _ in range(events)]
    t0 = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT INTO events (session_id, ts, kind, data) VALUES (?,?,?,?)", rows)
    db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    started = time.monotonic()
    n = args.events
    print(f"ingest: {machine()}")
    print(f"  one agent, {n:,} assistant text events, forum supergroup with the fake's limits")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as name:
        base = Path(name)
        devnull = agent_to_devnull(n, base)
        raw = raw_inserts(n, base)
        tg = FakeThread(FakeTelegram)
        tmp = base / "daemon"
        tmp.mkdir()
        times = tmp / "times.jsonl"
        daemon = Daemon(tmp, agents={"flood": [sys.executable, str(AGENT), "--times",
                                               str(times), "--flood", str(n)]},
                        telegram=tg.config(chat=FORUM_CHAT_ID))
        try:
            daemon.start()
            wait_until(lambda: tg.on(lambda: tg.fake.waiting_polls > 0), 30, "the bot to poll")
            since = tg.calls_count()
            cpu0 = cpu_seconds(daemon.pid)
            sid = daemon.api("new", project="demo", prompt="flood", agent="flood",
                             worktree=False)["id"]

            def turn_done() -> bool:
                sessions = daemon.api("sessions")
                return any(s["id"] == sid and s["turns"] >= 1 for s in sessions)

            wait_until(turn_done, 110, "the flood to be stored", interval=0.02)
            t_done = time.monotonic()
            cpu1 = cpu_seconds(daemon.pid)
            # let the coalesced status edits and the turn summary go out, then look at them
            wait_until(lambda: tg.on(lambda: any("Turn finished" in str(c.params.get("text"))
                                                 for c in tg.fake.calls[since:])),
                       30, "the turn summary")
            time.sleep(2.5)
            calls = tg.on(lambda: list(tg.fake.calls[since:]))
            violations = tg.on(lambda: list(tg.fake.violations))
            rss_hwm = int(Path(f"/proc/{daemon.pid}/status").read_text()
                          .split("VmHWM:")[1].split()[0])
        finally:
            leftovers = daemon.cleanup()
            tg.close()
        with sqlite3.connect(daemon.database) as db:
            stored = db.execute("SELECT COUNT(*) FROM events WHERE session_id = ? AND "
                                "kind = 'assistant_text'", (sid,)).fetchone()[0]
            commits = db.execute("SELECT COUNT(DISTINCT ts) FROM events WHERE session_id = ? "
                                 "AND kind = 'assistant_text'", (sid,)).fetchone()[0]
        records = {r["ev"]: r for r in read_times(times)}
    flood_t0 = records["flood"]["t"]
    written = records["flooded"]["t"] - flood_t0
    elapsed = t_done - flood_t0
    rate = stored / elapsed
    cpu = cpu1 - cpu0
    chat_writes = [c.time for c in calls if c.method in CHAT_WRITES and c.ok]
    chat_calls = [c.time for c in calls if "chat_id" in c.params]
    per_min = max_in_window(chat_writes, 60.0)
    per_sec = max_in_window(chat_calls, 1.0)
    methods = Counter(c.method for c in calls if c.method != "getUpdates")
    rate_ok = rate >= TARGET_RATE and stored == n
    limits_ok = not violations and per_min <= SENDS_PER_MIN and per_sec <= CALLS_PER_SEC
    print()
    print(table([
        ["events stored / written", f"{stored:,} / {n:,}", "all", verdict(stored == n)],
        ["stored rate (events/s)", f"{rate:,.0f}", f"≥ {TARGET_RATE:,}", verdict(rate_ok)],
        ["  flood written → stored (s)", f"{elapsed:.2f}", "", ""],
        ["  agent writing into the daemon's pipe (s)", f"{written:.2f}", "", ""],
        ["daemon CPU per event (µs)", f"{cpu / n * 1e6:.1f}", "", ""],
        ["  daemon CPU total (s), share of one core",
         f"{cpu:.2f}, {cpu / elapsed * 100:.0f}%", "", ""],
        ["  store transactions (distinct batch times)", f"{commits:,}",
         "", ""],
        ["  daemon peak RSS (MB)", f"{rss_hwm / 1024:.1f}", "", ""],
        ["429s from the fake", len(violations), "0", verdict(not violations)],
        ["chat sends+edits in any 60 s", per_min, f"≤ {SENDS_PER_MIN}",
         verdict(per_min <= SENDS_PER_MIN)],
        ["chat calls in any 1 s", per_sec, f"≤ {CALLS_PER_SEC}",
         verdict(per_sec <= CALLS_PER_SEC)],
    ], ["ingest", "value", "target", ""]))
    print()
    print("Bot API calls during the flood: "
          + ", ".join(f"{m} {k}" for m, k in sorted(methods.items())))
    print("baselines (same run): the agent writing to /dev/null "
          f"{n / devnull:,.0f} lines/s ({devnull:.2f} s); one executemany of {n:,} rows in one "
          f"transaction {n / raw:,.0f} rows/s ({raw:.2f} s); daemon rate / raw inserts "
          f"{rate / (n / raw):.2f}")
    print(f"processes left behind: {len(leftovers)}; elapsed {time.monotonic() - started:.1f} s")
    return 0 if rate_ok and limits_ok and not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
