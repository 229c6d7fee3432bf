"""How the daemon's log lines look: text for a person, or JSON for a log shipper.

`--log-format json` writes one JSON object per line: `ts` (ISO 8601, UTC), `level`,
`logger`, `message`, the fields a session event carries (`session`, `event`, `approval`,
`cost_usd`, …, see `daemon/sessionlog.py`) and `exception` when there is one. The secret
filter has run on the message by then; the whole line passes it once more, so that no
configured secret reaches the log through a field either.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# what every LogRecord has: anything else on a record came from `extra=`
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, scrub: Callable[[str], str] = lambda s: s) -> None:
        super().__init__()
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return self.scrub(json.dumps(line, ensure_ascii=False, default=str))


def formatter(kind: LogFormat, scrub: Callable[[str], str]) -> logging.Formatter:
    return JsonFormatter(scrub) if kind == "json" else logging.Formatter(TEXT_FORMAT)
