"""Recorded real transcripts (tests/fixtures/transcripts), replayed through the codecs."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"


def load(name: str) -> list[tuple[str, dict[str, Any]]]:
    lines = []
    for raw in (FIXTURES / name).read_text().splitlines():
        entry = json.loads(raw)
        lines.append((entry["dir"], entry["line"]))
    return lines


def agent_bytes(lines: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(
        json.dumps(line).encode() + b"\n" for direction, line in lines if direction == "from_agent"
    )


def chunks(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        size = rng.choice([1, 2, 3, 7, 64, 500, 4096, 100_000])
        out.append(data[i : i + size])
        i += size
    return out
