"""What delivery shows for an intent (bridge/render_outbox.py): plain, synchronous."""

from __future__ import annotations

from dataclasses import replace

from bridge.approvals import Approval
from bridge.diffs import summarize_diff
from bridge.events import DecisionKind
from bridge.model import SessionView
from bridge.outbox import PostSummary
from bridge.redact import Redactor
from bridge.render import render_approval_card
from bridge.render_outbox import (
    FINAL_MESSAGES,
    changes_text,
    final_attachment,
    render_diff_reply,
    render_reminder,
    turn_summary,
    without_clock,
)
from bridge.session import SessionState

REDACTOR = Redactor()
SESSION = SessionView(id="abc234", project="api", agent="claude", protocol="claude",
                      cwd="/src/api", state=SessionState.WAITING_APPROVAL, title="fix it",
                      created_at=0.0, updated_at=0.0, branch="main")
APPROVAL = Approval(id="xyz789", session_id="abc234", request_id="r", tool="Bash",
                    input={"command": "make test"},
                    offered=(DecisionKind.ALLOW_ONCE, DecisionKind.DENY), requested_at=100.0)
DIFF = (b"diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1,2 @@\n a\n+b\n")


def test_a_reminder_says_when_a_timer_will_deny_and_keeps_the_card_buttons():
    card = render_reminder(APPROVAL, SESSION, now=160.0, timeout=300.0, on_timeout="deny",
                           redactor=REDACTOR)
    assert card.text == ("⏰ Still waiting for you: Bash $ make test (request xyz789); "
                         "it will be denied in 4m 00s.")
    assert card.buttons == render_approval_card(APPROVAL, SESSION, redactor=REDACTOR).buttons
    quiet = render_reminder(APPROVAL, SESSION, now=160.0, timeout=None, on_timeout="deny",
                            redactor=REDACTOR)
    assert quiet.text.endswith("(request xyz789).")


def test_a_turn_summary_is_what_the_turn_reported_and_what_delivery_read():
    intent = PostSummary(final_text="done", interrupted=True, stopped_by="alice",
                         cost_usd=0.5, num_turns=2)
    summary = turn_summary(intent, changes="1 file", verification="$ make → exit 0",
                           resume_command="claude --resume s")
    assert (summary.final_text, summary.interrupted, summary.stopped_by, summary.cost_usd,
            summary.num_turns) == ("done", True, "alice", 0.5, 2)
    assert (summary.changes, summary.verification, summary.resume_command) == (
        "1 file", "$ make → exit 0", "claude --resume s")


def test_changes_text_is_the_summary_and_the_note():
    assert changes_text(summarize_diff(b""), None) is None
    assert changes_text(summarize_diff(b""), "no git") == "(no git)"
    text = changes_text(summarize_diff(DIFF), "untracked files included")
    assert text is not None and "x.py" in text and text.endswith("(untracked files included)")


def test_a_long_final_message_goes_as_a_file_named_for_the_turn():
    assert final_attachment(SESSION, "x" * (FINAL_MESSAGES * 100), 100) is None
    assert final_attachment(replace(SESSION, turns=3), "x" * (FINAL_MESSAGES * 100 + 1),
                            100) == "reply-abc234-3.md"


def test_a_diff_that_could_not_be_read_is_said_and_not_attached():
    card, follows = render_diff_reply(SESSION, summarize_diff(b""), "could not read it")
    assert not follows and card.text.endswith(": could not read it.")
    card, follows = render_diff_reply(SESSION, summarize_diff(DIFF), None)
    assert follows and card.text.startswith("Diff of abc234") and "x.py" in card.text


def test_the_clock_alone_is_not_a_change_of_the_status_card():
    assert without_clock("running · elapsed 3s · $0.10") == without_clock(
        "running · elapsed 4m 2s · $0.10")
    assert without_clock("elapsed 3s · as of 10:00:01 UTC") == without_clock(
        "elapsed 4s · as of 10:00:09 UTC")
