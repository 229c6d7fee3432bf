"""Which command of a turn was the agent checking its work with, and did it pass?

Deterministic and conservative: a shell command whose words name a test runner, a build
or a linter counts; the last one in the turn is the one a person wants to see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from bridge.redact import Redactor
from bridge.render import shorten

_CHECKS = re.compile(
    r"(^|[\s;&|(/])("
    r"pytest|py\.test|tox|nox|unittest|mypy|ruff|flake8|pylint|black --check|"
    r"npm (run )?(test|build|lint)|yarn (test|build|lint)|pnpm (test|build|lint)|"
    r"npx (jest|vitest|tsc|eslint)|jest|vitest|tsc|eslint|"
    r"cargo (test|build|check|clippy)|go (test|build|vet)|make( |$)|ctest|"
    r"mvn |gradle|\./gradlew|dotnet (test|build)|rspec|rake test|bundle exec|"
    r"phpunit|swift (test|build)|bazel (test|build)|scripts/test"
    r")"
)


def is_check(command: str) -> bool:
    return bool(_CHECKS.search(command))


def last_check(events: Iterable[tuple[str, Mapping[str, Any]]], *,
               redactor: Redactor) -> str | None:
    """`"$ pytest -q → passed"` for the last checking command among stored events
    `(kind, data)`: `tool_started` (tool, input, tool_use_id) and `tool_finished`
    (tool_use_id, is_error, exit_code)."""
    commands: dict[str, str] = {}
    last: str | None = None
    for kind, data in events:
        if kind == "tool_started":
            tool_input = data.get("input") or {}
            command = tool_input.get("command") if isinstance(tool_input, Mapping) else None
            if isinstance(command, list):
                command = " ".join(str(c) for c in command)
            if isinstance(command, str) and is_check(command):
                commands[str(data.get("tool_use_id"))] = command
        elif kind == "tool_finished":
            command = commands.get(str(data.get("tool_use_id")))
            if command is None:
                continue
            code = data.get("exit_code")
            if code is not None:
                outcome = "passed (exit 0)" if code == 0 else f"failed (exit {code})"
            else:
                outcome = "failed" if data.get("is_error") else "passed"
            shown = shorten(command, 120, redactor)  # redacted before it is cut
            last = f"$ {shown} → {outcome}"
    return last
