"""What the fake JSON-RPC agents (fake_codex.py, fake_acp.py) share: their stdin, read on a
thread, one JSON object per line, each line also kept in a record file for the tests.

They run as scripts, so this is imported by its bare name (their directory is on sys.path).
"""

from __future__ import annotations

import json
import queue
import sys
from pathlib import Path
from typing import Any, BinaryIO

JSON = dict[str, Any]


class Eof:
    pass


EOF = Eof()


def stdin_reader(lines: queue.Queue[JSON | Eof], record: str | None, name: str) -> None:
    """Put each JSON object read from stdin into `lines` (and EOF at the end); a line that
    is not JSON is reported on stderr as `name` and skipped."""
    rec: BinaryIO | None = Path(record).open("ab") if record else None  # noqa: SIM115
    try:
        while True:
            raw = sys.stdin.buffer.readline()
            if not raw:
                break
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            if rec is not None:
                rec.write(line + b"\n")
                rec.flush()
            try:
                message = json.loads(line)
            except ValueError as e:
                print(f"{name}: invalid JSON on stdin: {e}", file=sys.stderr, flush=True)
                continue
            if isinstance(message, dict):
                lines.put(message)
    finally:
        if rec is not None:
            rec.close()
        lines.put(EOF)
