#!/usr/bin/env python3
"""Approval latency through Telegram, both ways, next to a baseline measured in the same run.

    python bench/approval_latency.py [--approvals 15] [--rounds 4] [--gap-ms 100]
                                     [--tap-delay-ms 50] [--poll-timeout 1]

Setup: `agent-bridge run` (the real CLI, unmodified) with the fake Bot API
(tests/fakes/telegram_api.py, in a thread of this process) and bench/bench_agent.py as the
agent, all on 127.0.0.1. The chat is the private chat with the allowed user, so the fake's
group limit (20/min) does not apply. The daemon paces itself to 40 messages and edits a minute
there, and the fake counts 60 edits a minute per chat, so a round stays under both (about 2
calls per approval: the card, then its edit once decided); every round gets a fresh daemon
and a fresh fake (a new bot and chat: Telegram's budget, like the fake's, outlives a daemon
restart, so reusing one chat would end in a 429 and a pause of every call, cards included).

- push: the agent writes the `can_use_tool` request (its clock, just before write(2)) → the
  fake API has received and recorded the sendMessage that carries the approval card.
- return: the fake API hands the tap to the bot (the getUpdates long poll returns with the
  callback_query; polling at its fastest: poll_interval 0, the poll is held open and woken at
  once by a new update) → the decision line is on the agent's stdin (its clock, right after
  readline). The tap is injected `--tap-delay-ms` after the card arrived (a person is slower).
- baseline: one keep-alive HTTP round trip (POST getMe) to the same fake + one SQLite commit
  (one-row INSERT, WAL, synchronous=NORMAL) in a temp dir, medians of 300 each.

All times are time.monotonic() (CLOCK_MONOTONIC, shared by every process on Linux).
Targets (issue 9): push p99 ≤ 25 ms, return p99 ≤ 25 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    AGENT,
    USER_ID,
    Daemon,
    harness_without_gc,
    http_round_trips,
    machine,
    max_in_window,
    percentile,
    read_times,
    sqlite_commits,
    summary_ms,
    table,
    verdict,
    wait_until,
)
from _telegram import FakeThread, TappingFake

TARGET_MS = 25.0
CHAT_METHODS = {"sendMessage", "editMessageText", "editMessageReplyMarkup", "sendDocument"}


def run_round(base: Path, index: int, args: argparse.Namespace) -> dict[str, Any]:
    tg = FakeThread(lambda: TappingFake(args.tap_delay_ms / 1000))
    try:
        return _run_round(tg, base, index, args)
    finally:
        tg.close()


def _run_round(tg: FakeThread, base: Path, index: int, args: argparse.Namespace) -> dict[str, Any]:
    tmp = base / f"round{index}"
    tmp.mkdir()
    times = tmp / "times.jsonl"
    agent = [sys.executable, str(AGENT), "--times", str(times), "--approvals",
             str(args.approvals), "--gap-ms", str(args.gap_ms)]
    daemon = Daemon(tmp, agents={"bench": agent},
                    telegram=tg.config(chat=USER_ID, poll_timeout=args.poll_timeout))
    since = tg.calls_count()
    try:
        daemon.start()
        wait_until(lambda: tg.on(lambda: tg.fake.waiting_polls > 0), 30, "the bot to poll")
        session = daemon.api("new", project="demo", prompt="bench approvals", agent="bench",
                             worktree=False)
        wait_until(lambda: any(r["ev"] == "done" for r in read_times(times)), 90,
                   "the agent to finish its approvals", interval=0.05)
        time.sleep(0.3)  # let the last settled edit and the summary go out
    finally:
        leftovers = daemon.cleanup()
    records = read_times(times)
    asks = {r["i"]: r for r in records if r["ev"] == "ask"}
    answers = {r["rid"]: r for r in records if r["ev"] == "answer"}
    fake = tg.fake
    cards, delivered, injected, answered = tg.on(
        lambda: (dict(fake.cards), dict(fake.delivered), dict(fake.injected),
                 dict(fake.answered)))
    push, back, back_injected, feedback = [], [], [], []
    sid = str(session["id"])
    for i, ask in asks.items():
        step = (sid, i)
        if step in cards:
            push.append(cards[step] - ask["t"])
        answer = answers.get(ask["rid"])
        if answer is not None and step in delivered:
            back.append(answer["t"] - delivered[step])
            back_injected.append(answer["t"] - injected[step])
        if step in answered and step in injected:
            feedback.append(answered[step] - injected[step])
    chat_calls = tg.on(lambda: [c.time for c in fake.calls[since:]
                                if c.method in CHAT_METHODS and c.ok])
    return {"push": push, "return": back, "return_from_inject": back_injected,
            "feedback": feedback, "asked": len(asks), "answered": len(answers),
            "chat_calls_per_min": max_in_window(chat_calls, 60.0), "leftovers": leftovers,
            "violations": tg.on(lambda: len(fake.violations))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--approvals", type=int, default=15, help="per round (default 15)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--gap-ms", type=float, default=100.0,
                        help="the agent's pause before each request (default 100)")
    parser.add_argument("--tap-delay-ms", type=float, default=50.0,
                        help="card received → tap queued on the fake (default 50)")
    parser.add_argument("--poll-timeout", type=int, default=1,
                        help="telegram.poll_timeout, seconds (default 1)")
    args = parser.parse_args()
    harness_without_gc()
    started = time.monotonic()
    print(f"approval_latency: {machine()}")
    print(f"  {args.rounds} rounds x {args.approvals} approvals, agent gap {args.gap_ms:g} ms, "
          f"tap {args.tap_delay_ms:g} ms after the card, poll_timeout {args.poll_timeout} s")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as name:
        base = Path(name)
        tg = FakeThread(lambda: TappingFake(args.tap_delay_ms / 1000))
        try:
            http = http_round_trips(tg.fake.port)
        finally:
            tg.close()
        commit = sqlite_commits(base)
        for index in range(args.rounds):
            results.append(run_round(base, index, args))
        tg = FakeThread(lambda: TappingFake(args.tap_delay_ms / 1000))
        try:
            http_after = http_round_trips(tg.fake.port)
        finally:
            tg.close()

    def gather(key: str) -> list[float]:
        return [v for r in results for v in r[key]]

    baseline = percentile(http + http_after, 50) + percentile(commit, 50)
    asked = sum(r["asked"] for r in results)
    answered = sum(r["answered"] for r in results)
    rows = []
    ok = True
    for label, key, target in (
        ("push: agent write → card at API", "push", TARGET_MS),
        ("return: tap delivered → agent stdin", "return", TARGET_MS),
        ("  tap queued → agent stdin", "return_from_inject", None),
        ("  tap queued → answerCallbackQuery", "feedback", None),
    ):
        s = summary_ms(gather(key))
        passed = target is None or s["p99"] <= target
        ok = ok and passed and s["n"] == asked
        rows.append([label, s["n"], f"{s['p50']:.2f}", f"{s['p99']:.2f}", f"{s['max']:.2f}",
                     f"{s['p50'] / 1000 / baseline:.1f}x", f"{s['p99'] / 1000 / baseline:.1f}x",
                     f"≤ {target:g}" if target else "", verdict(passed) if target else ""])
    print()
    print(table(rows, ["latency (ms)", "n", "p50", "p99", "max", "p50/base", "p99/base",
                       "target p99", ""]))
    print()
    print("baseline (same run): loopback HTTP round trip to the fake "
          f"p50 {percentile(http + http_after, 50) * 1000:.3f} ms "
          f"(p99 {percentile(http + http_after, 99) * 1000:.3f}) + SQLite commit p50 "
          f"{percentile(commit, 50) * 1000:.3f} ms (p99 {percentile(commit, 99) * 1000:.3f}) "
          f"= {baseline * 1000:.3f} ms")
    per_min = max(r["chat_calls_per_min"] for r in results)
    violations = sum(r["violations"] for r in results)
    leftovers = [p for r in results for p in r["leftovers"]]
    print(f"requests asked {asked}, decisions received {answered}; chat calls per round at most "
          f"{per_min} in 60 s (daemon budget 40/min in a private chat); 429s: {violations}; "
          f"processes left behind: {len(leftovers)}")
    print(f"elapsed {time.monotonic() - started:.1f} s")
    ok = ok and answered == asked and violations == 0 and not leftovers
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
