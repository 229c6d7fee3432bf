#!/usr/bin/env python3
"""Scale, ramped: 1, 100, 250, 500 concurrent sessions on one daemon, and what each costs.

    python bench/scale_ramp.py [--steps 1,100,250,500] [--window 15] [--gap-ms 15000]
                               [--lines 50] [--profile daemon.prof]

The companion of bench/scale.py (same daemon, fake Bot API, tapping and checks; limits raised
the same way, see its --help). Instead of a fixed batch of sessions that each ask 6 times,
every session here keeps working until the bench ends it: `--lines` assistant lines, a pause
of 0..2x`--gap-ms` (seeded, per session), an approval it waits for (tapped "Allow once" on
the fake 50 ms after the card arrives), again and again. The bench starts sessions on the
control socket until N are running, waits until each has read its prompt and has its forum
topic, then measures a `--window` of seconds at that N, and ramps to the next N. Every
session is its own agent process, bench/bench_agent.py started with `python -S` (no
site-packages: ~12 MB and ~20 ms of CPU to start instead of ~14 MB and ~40 ms), supervised
by the daemon as any agent is.

Per N (in the window): the daemon's VmRSS at its end, its CPU (ms per second of wall time),
open file descriptors and threads, approval push latency (agent writes the request → the
fake has the card; computed at the end, so a card still on its way is not left out), Bot
API calls per second. The cost of a session is the slope of the least-squares line through
the points N >= 1: MB per session and CPU ms/s per session, next to the baseline: the idle
daemon (N = 0) and one session alone (N = 1; push latency from a session asking 20 times in
a row with nothing else running, as scale.py does).

Targets (issue 16): peak RSS (VmHWM) <= 250 MB, push p99 <= 50 ms at the last N, no event
lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import (
    AGENT,
    CLK_TCK,
    FORUM_CHAT_ID,
    Daemon,
    FakeThread,
    TappingFake,
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
from scale import RAISED_BUDGET, finished, latencies, lost_events

TARGET_RSS_MB = 250
TARGET_PUSH_MS = 50.0


@dataclass
class Point:
    n: int
    started_in: float  # seconds to start the sessions added for this step
    t0: float  # the window (time.monotonic())
    t1: float
    cpu: float  # daemon CPU seconds in the window
    rss_kb: int  # VmRSS at the window's end
    fds: int
    threads: int
    calls: int  # Bot API calls in the window
    threads_cpu: dict[str, float]  # CPU seconds in the window by thread kind (thread_cpu)

    @property
    def cpu_ms_per_s(self) -> float:
        return self.cpu / (self.t1 - self.t0) * 1000


def lean_agent(times_dir: Path, stop: Path, gap_ms: float, lines: int) -> list[str]:
    return [sys.executable, "-S", str(AGENT), "--times-dir", str(times_dir), "--until",
            str(stop), "--gap-ms", str(gap_ms), "--lines", str(lines), "--seed", "1",
            "--jitter"]


def in_turn(times_dir: Path, sid: str) -> bool:
    return (times_dir / f"{sid}.jsonl").exists()  # its first line is "turn"


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of `pid`'s threads by kind: the event loop (the main thread), `waitpid`
    (asyncio's child watcher, a thread per child) and the rest (SQLite's, the resolver's)."""
    kinds = {"loop": 0.0, "waitpid": 0.0, "other": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            used = cpu_seconds_of(task / "stat")
        except OSError:
            continue  # ended meanwhile
        kind = "loop" if task.name == str(pid) else (
            "waitpid" if comm.startswith("waitpid") else "other")
        kinds[kind] += used
    return kinds


def cpu_seconds_of(stat_path: Path) -> float:
    stat = stat_path.read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def open_fds(pid: int) -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="1,100,250,500",
                        help="session counts to measure at, ascending (default 1,100,250,500)")
    parser.add_argument("--window", type=float, default=15.0,
                        help="seconds measured at each step (default 15)")
    parser.add_argument("--gap-ms", type=float, default=15000.0,
                        help="mean pause before each request (default 15000: at 500 sessions, "
                        "33 approvals a second)")
    parser.add_argument("--lines", type=int, default=50,
                        help="assistant lines before each request (default 50)")
    parser.add_argument("--profile", type=Path,
                        help="run the daemon under cProfile, write its statistics to this file "
                        "and print the top of them")
    args = parser.parse_args()
    steps = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    harness_without_gc()
    started = time.monotonic()
    print(f"scale_ramp: {machine()}")
    print(f"  steps {', '.join(map(str, steps))} sessions, {args.window:g} s measured at each; "
          f"each session: {args.lines} lines, a pause of 0..{2 * args.gap_ms:g} ms and an "
          f"approval, over and over; forum supergroup, limits raised (see scale.py --help)")
    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix="bench-ramp-") as name:
        base = Path(name)
        times_dir = base / "times"
        times_dir.mkdir()
        stop = base / "stop"
        tg = FakeThread(lambda: TappingFake(0.05, enforce_limits=False))
        single = [sys.executable, "-S", str(AGENT), "--times-dir", str(times_dir),
                  "--approvals", "20", "--gap-ms", "100", "--seed", "0"]
        daemon = Daemon(base / "daemon",
                        agents={"single": single,
                                "load": lean_agent(times_dir, stop, args.gap_ms, args.lines)},
                        telegram=tg.config(chat=FORUM_CHAT_ID), raise_limits=RAISED_BUDGET,
                        profile=args.profile, gc_log=base / "gc.json")
        sids: list[str] = []
        try:
            daemon.start()
            wait_until(lambda: tg.on(lambda: tg.fake.waiting_polls > 0), 30, "the bot to poll")
            time.sleep(1.0)

            def measure(n: int, started_in: float) -> Point:
                cpu0, calls0, t0 = cpu_seconds(daemon.pid), tg.calls_count(), time.monotonic()
                kinds0 = thread_cpu(daemon.pid)
                time.sleep(args.window)
                t1 = time.monotonic()
                kinds1 = thread_cpu(daemon.pid)
                return Point(n, started_in, t0, t1, cpu_seconds(daemon.pid) - cpu0,
                             status_kb(daemon.pid, "VmRSS"), open_fds(daemon.pid),
                             status_kb(daemon.pid, "Threads"), tg.calls_count() - calls0,
                             {k: kinds1[k] - kinds0.get(k, 0.0) for k in kinds1})

            def topics() -> int:
                return tg.on(lambda: sum(1 for c in tg.fake.calls
                                         if c.method == "createForumTopic" and c.ok))

            idle = measure(0, 0.0)
            # push baseline: one session asking 20 times in a row, nothing else running
            alone = daemon.api("new", project="demo", prompt="alone", agent="single",
                               worktree=False)["id"]
            wait_until(lambda: finished(times_dir, alone), 60, "the single session", 0.05)
            base_lat = latencies(tg, times_dir, [alone])
            agents_alive = len(tagged_pids(daemon.tag)) - 1
            for n in steps:
                t = time.monotonic()
                while len(sids) < n:
                    sids.append(daemon.api("new", project="demo", prompt=f"load {len(sids)}",
                                           agent="load", worktree=False)["id"])
                started_in = time.monotonic() - t
                waiting = set(sids)

                def all_working(waiting: set[str] = waiting) -> bool:
                    waiting.difference_update([s for s in waiting if in_turn(times_dir, s)])
                    return not waiting

                wait_until(all_working, 60, f"{n} sessions to begin their turn", 0.1)
                # and their threads (a topic and a status card each) are open: the window
                # measures sessions at work, not the opening of the last ones
                wait_until(lambda: topics() >= len(sids) + 1, 120, f"{n} topics", 0.25)
                time.sleep(1.0)
                points.append(measure(n, started_in))
                p = points[-1]
                split = ", ".join(f"{k} {v / (p.t1 - p.t0) * 1000:.0f}"
                                  for k, v in p.threads_cpu.items())
                print(f"  N = {n}: started in {started_in:.1f} s, VmRSS {p.rss_kb / 1024:.1f} MB,"
                      f" daemon CPU {p.cpu_ms_per_s:.0f} ms/s (threads: {split})", flush=True)
            hwm = status_kb(daemon.pid, "VmHWM")
            live = len(daemon.api("sessions"))
            stop.touch()
            running = set(sids)

            def all_done() -> bool:
                running.difference_update([s for s in running if finished(times_dir, s)])
                return not running

            wait_until(all_done, 60 + 4 * args.gap_ms / 1000, "every session to end", 0.25)
            time.sleep(0.5)  # the last decisions' rows
            agent_pids = [pid for pid in tagged_pids(daemon.tag) if pid != daemon.pid]
            agents_cpu = sum(cpu_seconds(pid) for pid in agent_pids)
            agents_rss = sum(status_kb(pid, "VmRSS") for pid in agent_pids)
            lat = latencies(tg, times_dir, sids)
            asks = sum(1 for s in sids for r in read_times(times_dir / f"{s}.jsonl")
                       if r["ev"] == "ask")
        finally:
            leftovers = daemon.cleanup()
            tg.close()
        expected, found, bad = lost_events(daemon.database, times_dir, [alone, *sids])
        gc_file = base / "gc.json"
        gc_pauses = json.loads(gc_file.read_text()) if gc_file.exists() else {}

    def window(p: Point) -> list[float]:
        return [v for v, t in zip(lat["push"], lat["asked"], strict=True) if p.t0 <= t < p.t1]

    push_alone = summary_ms(base_lat["push"])
    rows = [["0 (idle)", "", f"{idle.rss_kb / 1024:.1f}", "", f"{idle.cpu_ms_per_s:.1f}", "",
             f"{idle.fds} / {idle.threads}", f"{idle.calls / (idle.t1 - idle.t0):.1f}",
             f"alone (20 in a row): {push_alone['p50']:.1f} / {push_alone['p99']:.1f} / "
             f"{push_alone['max']:.1f}"]]
    prev = idle
    for p in points:
        push = summary_ms(window(p))
        dn = p.n - prev.n
        rows.append([
            str(p.n), f"{p.started_in:.1f}", f"{p.rss_kb / 1024:.1f}",
            f"{(p.rss_kb - prev.rss_kb) / 1024 / dn:.3f}" if dn else "",
            f"{p.cpu_ms_per_s:.0f}", f"{(p.cpu_ms_per_s - prev.cpu_ms_per_s) / dn:.2f}"
            if dn else "", f"{p.fds} / {p.threads}", f"{p.calls / (p.t1 - p.t0):.0f}",
            f"n {push['n']}: {push['p50']:.1f} / {push['p99']:.1f} / {push['max']:.1f}",
        ])
        prev = p
    print()
    print(table(rows, ["N", "start s", "VmRSS MB", "+MB/sess", "CPU ms/s", "+ms/s/sess",
                       "fds / thr", "API/s", "push p50 / p99 / max (ms)"]))
    xs = [float(p.n) for p in points]
    mb = slope(xs, [p.rss_kb / 1024 for p in points])
    ms = slope(xs, [p.cpu_ms_per_s for p in points])
    last = points[-1]
    push_last = summary_ms(window(last))
    push_all = summary_ms(lat["push"])
    rss_ok = hwm / 1024 <= TARGET_RSS_MB
    push_ok = push_last["p99"] <= TARGET_PUSH_MS
    lost_ok = expected == found and not bad and push_all["n"] == asks
    print()
    print(table([
        ["daemon peak RSS, VmHWM (MB)", f"{hwm / 1024:.1f}", f"≤ {TARGET_RSS_MB}",
         verdict(rss_ok), f"idle VmRSS {idle.rss_kb / 1024:.1f} MB"],
        ["  cost of a session: RSS (MB), slope N ≥ 1", f"{mb:.3f}", "", "",
         f"N = {points[0].n}: {points[0].rss_kb / 1024:.1f} MB" if points else ""],
        ["  cost of a session: CPU (ms/s), slope", f"{ms:.2f}", "", "",
         f"idle {idle.cpu_ms_per_s:.1f} ms/s"],
        [f"approval push at N = {last.n}: p50 / p99 / max (ms)",
         f"{push_last['p50']:.1f} / {push_last['p99']:.1f} / {push_last['max']:.1f}",
         f"p99 ≤ {TARGET_PUSH_MS:g}", verdict(push_ok),
         f"alone: {push_alone['p50']:.1f} / {push_alone['p99']:.1f} / {push_alone['max']:.1f}"],
        ["  over the whole run, ramps included", f"{push_all['p50']:.1f} / "
         f"{push_all['p99']:.1f} / {push_all['max']:.1f}", "", "", f"n {push_all['n']}"],
        ["events stored / written (rows)", f"{found:,} / {expected:,}", "none lost",
         verdict(lost_ok), f"cards {push_all['n']:,} / requests {asks:,}"],
    ], ["scale_ramp", "measured", "target", "", "baseline (same run)"]))
    for line in bad[:5]:
        print("  lost:", line)
    print("daemon's garbage collections over the run, by generation: " + "; ".join(
        f"{g}: {v['count']} taking {v['total_ms']:.0f} ms, max {v['max_ms']:.1f} ms, "
        f"{v['over_10ms']} over 10 ms" for g, v in gc_pauses.items()))
    print(f"sessions listed {live}; agent processes at the end {len(agent_pids)} (+ "
          f"{agents_alive} before the ramp), their CPU {agents_cpu:.1f} s, their RSS summed "
          f"{agents_rss / 1024:.0f} MB (shared pages counted in each)")
    print(f"processes left behind: {len(leftovers)}; elapsed {time.monotonic() - started:.1f} s")
    if args.profile is not None:
        print_profile(args.profile)
    return 0 if rss_ok and push_ok and lost_ok and not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
