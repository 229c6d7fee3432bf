#!/usr/bin/env python3
"""Scale: 100 concurrent sessions on one daemon, each asking for approvals now and then.

    python bench/scale.py [--sessions 100] [--approvals 6] [--gap-ms 3000] [--lines 50]
                          [--profile daemon.prof]

Setup: one daemon with the fake Bot API and the forum supergroup (a topic per session). Each
session's agent (bench/bench_agent.py) writes `--lines` assistant lines, pauses a random
0..2x`--gap-ms` (seeded, independently per session), asks for an approval and waits for
it, `--approvals` times. Every card is tapped "Allow once" on the fake 50 ms after it
arrives, through the real python-telegram-bot long poll. The sessions are started one after
the other on the control socket, and the first of them ask while the last are starting;
the push latency is also shown for those two phases apart.

Rate limits: 100 sessions in one chat need ~100 topics, 100 status cards and 2 calls per
approval; Telegram allows 20 a minute in a group, and the daemon paces itself to that. Paced,
a card would wait minutes for its slot, and the figure would be the platform's limit, not the
daemon. So this bench raises the limit, in the bench only, on both sides: the fake does not
enforce limits, and the daemon runs through bench/_daemon.py, which sets the surface's
budget to 100,000 a minute in its own process. Everything else is `agent-bridge run`.

- peak RSS: VmHWM of the daemon (/proc/<pid>/status) at the end; baseline: VmRSS of the
  same daemon idle, before any session.
- push latency: agent writes the request → the fake has the card (as bench/approval_latency),
  for every approval under load; baseline: one session alone on the same daemon, same run.
- no event lost: per session, the assistant_text, approval_requested and decision rows in
  the store equal what the agent wrote and received.

Targets (issue 9): peak RSS ≤ 200 MB, push p99 ≤ 50 ms under that load, no event lost.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    AGENT,
    FORUM_CHAT_ID,
    Daemon,
    cpu_seconds,
    harness_without_gc,
    machine,
    print_profile,
    read_times,
    status_kb,
    summary_ms,
    table,
    tagged_pids,
    verdict,
    wait_until,
)
from _telegram import FakeThread, TappingFake

TARGET_RSS_MB = 200
TARGET_PUSH_MS = 50.0
RAISED_BUDGET = 100_000


def agent_argv(times_dir: Path, approvals: int, gap_ms: float, lines: int, seed: int,
               jitter: bool) -> list[str]:
    argv = [sys.executable, str(AGENT), "--times-dir", str(times_dir), "--approvals",
            str(approvals), "--gap-ms", str(gap_ms), "--lines", str(lines), "--seed", str(seed)]
    return [*argv, "--jitter"] if jitter else argv


def latencies(tg: FakeThread, times_dir: Path, sids: list[str]) -> dict[str, list[float]]:
    """Push and return latencies (seconds); `asked`: when each pushed request was written."""
    fake = tg.fake
    cards, delivered = tg.on(lambda: (dict(fake.cards), dict(fake.delivered)))
    push, asked, back = [], [], []
    for sid in sids:
        records = read_times(times_dir / f"{sid}.jsonl")
        answers = {r["rid"]: r["t"] for r in records if r["ev"] == "answer"}
        for r in records:
            if r["ev"] != "ask":
                continue
            key = (sid, r["i"])
            if key in cards:
                push.append(cards[key] - r["t"])
                asked.append(r["t"])
            if key in delivered and r["rid"] in answers:
                back.append(answers[r["rid"]] - delivered[key])
    return {"push": push, "asked": asked, "return": back}


def finished(times_dir: Path, sid: str) -> bool:
    return any(r["ev"] == "done" for r in read_times(times_dir / f"{sid}.jsonl"))


def lost_events(database: Path, times_dir: Path, sids: list[str]) -> tuple[int, int, list[str]]:
    """(rows expected, rows found, sessions with a difference)."""
    with sqlite3.connect(database) as db:
        counts: dict[tuple[str, str], int] = {
            (sid, kind): n for sid, kind, n in db.execute(
                "SELECT session_id, kind, COUNT(*) FROM events WHERE kind IN "
                "('assistant_text', 'approval_requested', 'decision') "
                "GROUP BY session_id, kind")
        }
    expected = found = 0
    bad = []
    for sid in sids:
        records = read_times(times_dir / f"{sid}.jsonl")
        end = next((r for r in records if r["ev"] == "done"), {"lines": -1, "asks": -1})
        answers = sum(r["ev"] == "answer" for r in records)
        want = {"assistant_text": end["lines"], "approval_requested": end["asks"],
                "decision": answers}
        got = {kind: counts.get((sid, kind), 0) for kind in want}
        expected += sum(want.values())
        found += sum(got.values())
        if got != want:
            bad.append(f"{sid}: stored {got}, agent {want}")
    return expected, found, bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--approvals", type=int, default=6, help="per session (default 6)")
    parser.add_argument("--gap-ms", type=float, default=3000.0,
                        help="mean pause before each request (default 3000)")
    parser.add_argument("--lines", type=int, default=50,
                        help="assistant lines before each request (default 50)")
    parser.add_argument("--profile", type=Path,
                        help="run the daemon under cProfile, write its statistics to this file "
                        "and print the top of them")
    args = parser.parse_args()
    harness_without_gc()
    started = time.monotonic()
    print(f"scale: {machine()}")
    print(f"  {args.sessions} sessions x {args.approvals} approvals, pause 0..{2 * args.gap_ms:g}"
          f" ms, {args.lines} lines before each; forum supergroup, limits raised (see --help)")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as name:
        base = Path(name)
        times_dir = base / "times"
        times_dir.mkdir()
        tg = FakeThread(lambda: TappingFake(0.05, enforce_limits=False))
        single = agent_argv(times_dir, 20, 100, 0, 0, jitter=False)
        loaded = agent_argv(times_dir, args.approvals, args.gap_ms, args.lines, 1, jitter=True)
        daemon = Daemon(base / "daemon", agents={"single": single, "load": loaded},
                        telegram=tg.config(chat=FORUM_CHAT_ID), raise_limits=RAISED_BUDGET,
                        profile=args.profile)
        try:
            daemon.start()
            wait_until(lambda: tg.on(lambda: tg.fake.waiting_polls > 0), 30, "the bot to poll")
            time.sleep(1.0)
            idle_rss = status_kb(daemon.pid, "VmRSS")
            # baseline: one session alone, same daemon
            alone = daemon.api("new", project="demo", prompt="alone", agent="single",
                               worktree=False)["id"]
            wait_until(lambda: finished(times_dir, alone), 60, "the single session", 0.05)
            base_lat = latencies(tg, times_dir, [alone])
            # the load
            cpu0 = cpu_seconds(daemon.pid)
            bench0 = time.process_time()
            t0 = time.monotonic()
            sids = [daemon.api("new", project="demo", prompt=f"load {i}", agent="load",
                               worktree=False)["id"] for i in range(args.sessions)]
            spawned = time.monotonic() - t0
            running = set(sids)

            def all_done() -> bool:
                running.difference_update([s for s in running if finished(times_dir, s)])
                return not running

            wait_until(all_done, 100, "every session", 0.25)
            load_time = time.monotonic() - t0
            cpu = cpu_seconds(daemon.pid) - cpu0
            bench_cpu = time.process_time() - bench0
            time.sleep(0.5)  # the last decisions' rows
            agents_cpu = sum(cpu_seconds(pid) for pid in tagged_pids(daemon.tag)
                             if pid != daemon.pid)  # they idle until the daemon stops
            hwm = status_kb(daemon.pid, "VmHWM")
            live = len(daemon.api("sessions"))
            load_lat = latencies(tg, times_dir, sids)
            calls = tg.on(lambda: len(tg.fake.calls))
        finally:
            leftovers = daemon.cleanup()
            tg.close()
        expected, found, bad = lost_events(daemon.database, times_dir, [alone, *sids])
    asked = sum(1 for _ in load_lat["push"])
    push_alone, push_load = summary_ms(base_lat["push"]), summary_ms(load_lat["push"])
    back_alone, back_load = summary_ms(base_lat["return"]), summary_ms(load_lat["return"])
    rss_ok = hwm / 1024 <= TARGET_RSS_MB
    push_ok = push_load["p99"] <= TARGET_PUSH_MS
    lost_ok = expected == found and not bad
    print()
    print(table([
        ["daemon peak RSS, VmHWM (MB)", f"{hwm / 1024:.1f}", f"≤ {TARGET_RSS_MB}",
         verdict(rss_ok), f"idle VmRSS {idle_rss / 1024:.1f} MB"],
        ["  per session above idle (MB)", f"{(hwm - idle_rss) / 1024 / (args.sessions + 1):.2f}",
         "", "", ""],
        ["approval push p50 / p99 / max (ms)",
         f"{push_load['p50']:.1f} / {push_load['p99']:.1f} / {push_load['max']:.1f}",
         f"p99 ≤ {TARGET_PUSH_MS:g}", verdict(push_ok),
         f"alone: {push_alone['p50']:.1f} / {push_alone['p99']:.1f} / {push_alone['max']:.1f}"],
        ["approval return p50 / p99 / max (ms)",
         f"{back_load['p50']:.1f} / {back_load['p99']:.1f} / {back_load['max']:.1f}", "", "",
         f"alone: {back_alone['p50']:.1f} / {back_alone['p99']:.1f} / {back_alone['max']:.1f}"],
        ["events stored / written (rows)", f"{found:,} / {expected:,}", "none lost",
         verdict(lost_ok), ""],
    ], ["scale", "under load", "target", "", "baseline (same run)"]))
    for line in bad[:5]:
        print("  lost:", line)
    print()
    ramp_end = t0 + spawned
    during = [v for v, t in zip(load_lat["push"], load_lat["asked"], strict=True) if t < ramp_end]
    after = [v for v, t in zip(load_lat["push"], load_lat["asked"], strict=True) if t >= ramp_end]
    for label, values in (("while sessions were still being started", during),
                          ("once all were running", after)):
        if values:
            part = summary_ms(values)
            print(f"  push {label}: n {part['n']}, p50 {part['p50']:.1f}, "
                  f"p99 {part['p99']:.1f}, max {part['max']:.1f} ms")
    print(f"{args.sessions} sessions started in {spawned:.1f} s (control socket `new`); all done "
          f"in {load_time:.1f} s; {asked} approvals under load ({push_load['n']} cards, "
          f"{back_load['n']} decisions); {calls:,} Bot API calls; sessions listed {live}")
    print(f"CPU under load (2 cores = {2 * load_time:.0f} s): daemon {cpu:.1f} s "
          f"({cpu / load_time * 100:.0f}% of a core), the agents {agents_cpu:.1f} s, this process "
          f"(fake Bot API) {bench_cpu:.1f} s")
    print(f"processes left behind: {len(leftovers)}; elapsed {time.monotonic() - started:.1f} s")
    if args.profile is not None:
        print_profile(args.profile)
    return 0 if rss_ok and push_ok and lost_ok and not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
