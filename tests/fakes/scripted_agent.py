#!/usr/bin/env python3
"""An agent that says exactly what a test scripts, for misbehaviour no real agent shows
(a reused request id, a lone surrogate, a patch that grows a file): the hostile agent.

    scripted_agent.py --script PATH --record PATH

The script is a JSON list of steps, run in order:
  {"send": {...}}         write this object as one JSON line
  {"raw": "text"}         write this text as it is (a newline is added)
  {"wait": {...}}         wait until a line read from stdin has all these top-level members
  {"wait_file": "PATH"}   wait until PATH exists (the test says "now")
After the last step the agent reads stdin until it ends, then exits 0. Every stdin line is
appended to the record file as it arrives. Standard library only.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

from jsonl_stdin import Eof, stdin_reader  # a script: its own directory is on sys.path


def main(argv: list[str]) -> int:
    options = dict(zip(argv[::2], argv[1::2], strict=False))
    script: list[dict[str, Any]] = json.loads(Path(options["--script"]).read_text())
    lines: queue.Queue[dict[str, Any] | Eof] = queue.Queue()
    threading.Thread(target=stdin_reader, args=(lines, options.get("--record"), "scripted"),
                     daemon=True).start()
    seen: list[dict[str, Any]] = []
    for step in script:
        if "send" in step:
            sys.stdout.write(json.dumps(step["send"]) + "\n")
        elif "raw" in step:
            sys.stdout.write(step["raw"] + "\n")
        elif "wait_file" in step:
            while not Path(step["wait_file"]).exists():
                time.sleep(0.01)
        elif "wait" in step:
            want = step["wait"]
            while not any(all(m.get(k) == v for k, v in want.items()) for m in seen):
                message = lines.get()
                if isinstance(message, Eof):
                    return 0
                seen.append(message)
            seen = [m for m in seen if not all(m.get(k) == v for k, v in want.items())]
        sys.stdout.flush()
    while not isinstance(lines.get(), Eof):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
