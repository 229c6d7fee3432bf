"""`agent-bridge` as a bench runs it when it needs more than the plain CLI (bench only).

- `$BENCH_RAISE_LIMITS=N`: the Telegram surface's own message budget raised to N a minute.
  The daemon paces each chat itself (bots/telegram.py: 20 messages and edits a minute and
  one a second in a group, one a second in a private chat), so with 100 sessions in one
  chat the budget, not the daemon, decides when a card goes out. To measure the daemon
  under that load, bench/scale.py raises the budget here, in this process only, and turns
  the fake Bot API's limits off to match.
- `$BENCH_PROFILE=PATH`: the daemon runs under cProfile (standard library) and writes its
  statistics to PATH when it exits (`python -m pstats PATH` reads them).
- `$BENCH_GC_LOG=PATH`: the garbage collector's pauses, timed by a `gc.callbacks` hook, are
  summed up per generation (count, total, max, how many over 10 ms) into PATH (JSON) at exit.

Nothing in the product is changed.
"""

from __future__ import annotations

import cProfile
import dataclasses
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bots.telegram as telegram_surface
from bridge.surface import Rate
from daemon.cli import main

budget = int(os.environ.get("BENCH_RAISE_LIMITS", "0"))
if budget > 0:
    raised = (Rate(budget, 60.0),)
    telegram_surface.GROUP_RATES = telegram_surface.PRIVATE_RATES = raised
    telegram_surface.LIMITS = dataclasses.replace(telegram_surface.LIMITS, overall=raised)


def log_gc_pauses(path: str) -> None:
    import atexit
    import gc
    import json
    import time

    started: list[float] = []
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def hook(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            pauses[info["generation"]].append(time.perf_counter() - started[0])

    def write() -> None:
        summary = {str(g): {"count": len(v), "total_ms": sum(v) * 1000,
                            "max_ms": max(v, default=0.0) * 1000,
                            "over_10ms": sum(x > 0.010 for x in v)} for g, v in pauses.items()}
        Path(path).write_text(json.dumps(summary))

    gc.callbacks.append(hook)
    atexit.register(write)


if os.environ.get("BENCH_GC_LOG"):
    log_gc_pauses(os.environ["BENCH_GC_LOG"])

if __name__ == "__main__":
    profile = os.environ.get("BENCH_PROFILE")
    if not profile:
        sys.exit(main())
    profiler = cProfile.Profile()
    try:
        code = profiler.runcall(main)
    finally:
        profiler.dump_stats(profile)
    sys.exit(code)
