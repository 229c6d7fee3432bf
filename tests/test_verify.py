from bridge.redact import Redactor
from bridge.verify import is_check, last_check

REDACTOR = Redactor()


def test_checks_are_recognised_and_ordinary_commands_are_not():
    for command in ("pytest -q", "cd api && npm test", "cargo test --all", "make", "go test ./...",
                    "python -m pytest tests/x.py", "uv run mypy bridge", "scripts/test"):
        assert is_check(command), command
    for command in ("ls -la", "echo hi > out.txt", "git status", "cat Makefile", "rm -rf build"):
        assert not is_check(command), command


def test_the_last_check_of_the_turn_with_its_outcome():
    events = [
        ("tool_started", {"tool_use_id": "1", "tool": "Bash", "input": {"command": "pytest -q"}}),
        ("tool_finished", {"tool_use_id": "1", "is_error": True, "exit_code": None}),
        ("tool_started", {"tool_use_id": "2", "tool": "Bash", "input": {"command": "ls"}}),
        ("tool_finished", {"tool_use_id": "2", "is_error": False, "exit_code": 0}),
        ("tool_started", {"tool_use_id": "3", "tool": "Bash",
                          "input": {"command": ["bash", "-lc", "cargo test"]}}),
        ("tool_finished", {"tool_use_id": "3", "is_error": False, "exit_code": 0}),
    ]
    assert last_check(events, redactor=REDACTOR) == "$ bash -lc cargo test → passed (exit 0)"
    assert last_check(events[:2], redactor=REDACTOR) == "$ pytest -q → failed"
    assert last_check(events[2:4], redactor=REDACTOR) is None
