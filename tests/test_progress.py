"""The progress message, in the pure core: what it shows of a turn's events, and when a
session has one."""

from __future__ import annotations

from bridge.config import load_config
from bridge.model import SessionView
from bridge.progress import progress_on, render_progress
from bridge.redact import Redactor
from bridge.session import SessionState
from daemon.progress import enabled_on


def view(**fields: object) -> SessionView:
    base: dict = {"id": "abcd12", "project": "demo", "agent": "claude", "protocol": "claude",
                  "cwd": "/w", "state": SessionState.RUNNING, "created_at": 0.0,
                  "updated_at": 0.0, "turns": 2}
    return SessionView(**(base | fields))


def started(n: int, command: str) -> tuple[str, dict]:
    return "tool_started", {"tool_use_id": f"t{n}", "tool": "Bash", "input": {"command": command}}


def finished(n: int, *, error: bool = False, code: int | None = None) -> tuple[str, dict]:
    return "tool_finished", {"tool_use_id": f"t{n}", "is_error": error, "output": "",
                             "exit_code": code}


def test_the_last_tool_calls_with_how_they_ended_and_the_latest_text():
    events = [started(i, f"step {i}") for i in range(1, 8)]
    events += [finished(i) for i in range(1, 6)]
    events += [finished(6, error=True, code=2), ("assistant_text", {"text": "first"}),
               ("assistant_text", {"text": "now the token sk-ant-api03-" + "b" * 90})]
    card = render_progress(view(), events, redactor=Redactor())
    assert card is not None
    lines = card.text.splitlines()
    assert lines[0] == "🛠 abcd12 at work: turn 3"
    assert lines[1] == "… 2 earlier tool call(s)"
    assert lines[2].startswith("✅ Bash") and "step 3" in lines[2] and lines[2].endswith("ok")
    assert lines[-3].startswith("❌ Bash") and lines[-3].endswith("exit 2")
    assert lines[-2].startswith("▶️ Bash") and lines[-2].endswith("running")
    assert lines[-1].startswith("💬 now the token") and "bbbb" not in lines[-1]
    assert "first" not in card.text
    assert render_progress(view(), [], redactor=Redactor()) is None


def test_who_gets_a_progress_message():
    assert progress_on(view(), None, private_chat=True)
    assert not progress_on(view(), None, private_chat=False)
    assert progress_on(view(), True, private_chat=False)
    assert not progress_on(view(verbose=False), True, private_chat=True)
    assert progress_on(view(verbose=True), False, private_chat=False)
    group = load_config('[telegram]\nchat_id = -100123\n[slack]\nchannel = "C1"\n'
                        '[[projects]]\nname = "demo"\npath = "/tmp"\n')
    assert not enabled_on("telegram", group, lambda s, v: None)(view())
    assert enabled_on("telegram", group, lambda s, v: "4242")(view())  # routed to a person
    assert not enabled_on("slack", group, lambda s, v: None)(view())
    assert enabled_on("slack", group, lambda s, v: "D0123")(view())
