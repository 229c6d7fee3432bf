"""`agent-bridge` as a bench runs it when it needs more than the plain CLI (bench only).

- `$BENCH_RAISE_LIMITS=N`: the Telegram surface's own message budget raised to N a minute.
  The daemon paces each chat itself (bots/telegram.py: 20 messages and edits a minute and
  one a second in a group, one a second in a private chat), so with 100 sessions in one
  chat the budget, not the daemon, decides when a card goes out. To measure the daemon
  under that load, bench/scale.py raises the budget here, in this process only, and turns
  the fake Bot API's limits off to match.
- `$BENCH_PROFILE=PATH`: the daemon runs under cProfile (standard library) and writes its
  statistics to PATH when it exits (`python -m pstats PATH` reads them).

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
