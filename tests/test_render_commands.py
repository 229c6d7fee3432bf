from dataclasses import replace
from functools import partial

from bridge import render
from bridge.actions import MAX_PAYLOAD_BYTES, ButtonAction, Verb, decode_button
from bridge.approvals import Approval, ApprovalState
from bridge.commands import Command, CommandError, CommandName, parse_command
from bridge.events import DecisionKind
from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render import TurnSummary, compact, split_text
from bridge.session import SessionState

# the renderers as the daemon calls them, with the built-in rules
REDACTOR = Redactor()
render_approval_card = partial(render.render_approval_card, redactor=REDACTOR)
render_status_card = partial(render.render_status_card, redactor=REDACTOR)
render_summary_card = partial(render.render_summary_card, redactor=REDACTOR)
tool_preview = partial(render.tool_preview, redactor=REDACTOR)

SESSION = SessionView(id="abc234", project="api", agent="claude", protocol="claude", cwd="/src/api",
                      state=SessionState.WAITING_APPROVAL, title="fix the test", created_at=0.0,
                      updated_at=0.0, branch="main")
ALL = (DecisionKind.ALLOW_ONCE, DecisionKind.ALLOW_SESSION, DecisionKind.DENY, DecisionKind.STOP)


def approval(**kw):
    base = {"id": "xyz789", "session_id": "abc234", "request_id": "r", "tool": "Bash",
            "input": {"command": "rm -rf build"}, "offered": ALL, "requested_at": 0.0}
    return Approval(**{**base, **kw})


def test_approval_card_shows_the_exact_command_cwd_and_five_buttons():
    card = render_approval_card(approval(), SESSION)
    assert "$ rm -rf build" in card.text and "/src/api" in card.text and "api@main" in card.text
    labels = [b.label for row in card.buttons for b in row]
    assert labels == ["Allow once", "Allow for session", "Deny", "Deny with reason…", "Stop"]
    for row in card.buttons:
        for button in row:
            assert len(button.action.encode().encode()) <= MAX_PAYLOAD_BYTES
            assert decode_button(button.action.encode()) == button.action


def test_only_offered_decisions_get_buttons_and_decided_cards_none():
    card = render_approval_card(approval(offered=(DecisionKind.ALLOW_ONCE, DecisionKind.DENY)),
                                SESSION)
    assert [b.label for row in card.buttons for b in row] == ["Allow once", "Deny",
                                                               "Deny with reason…"]
    done = render_approval_card(approval(state=ApprovalState.DENIED, decision=DecisionKind.DENY,
                                         decided_by="ana (telegram)", decided_at=60.0,
                                         reason="no"), SESSION)
    assert done.buttons == ()
    assert "Denied by ana (telegram) at 1970-01-01 00:01 UTC: no" in done.text


def test_file_previews_show_the_path_and_the_start_of_the_content():
    preview = tool_preview("Write", {"file_path": "/x/a.py", "content": "print(1)\n" * 500})
    assert preview.startswith("/x/a.py\nprint(1)") and preview.endswith("…")
    assert len(preview) < 700


def test_status_and_summary_cards():
    status = render_status_card(SESSION, now=3700.0, pending=2)
    assert "waiting for approval" in status.text and "1h 01m" in status.text
    assert "2 approvals waiting" in status.text
    assert "as of 01:01:40 UTC" in status.text  # how fresh it is, when an edit is held back
    assert "1 question waiting" in render_status_card(SESSION, now=0.0, questions=1).text
    summary = render_summary_card(SESSION, TurnSummary(final_text="Done.", is_error=False,
                                                       cost_usd=0.5, duration_ms=61000,
                                                       num_turns=3,
                                                       resume_command="claude --resume u"))
    assert "Done." in summary.text and "$0.5000" in summary.text
    assert "cd /src/api && claude --resume u" in summary.text


def test_agents_that_count_tokens_show_tokens_where_others_show_a_cost():
    codex = replace(SESSION, agent="codex", cost_usd=None, tokens=12_345)
    assert "12.3k tokens" in render_status_card(codex, now=3700.0, pending=0).text
    summary = render_summary_card(codex, TurnSummary(final_text="Done.", is_error=False))
    assert "12.3k tokens so far" in summary.text
    priced = replace(SESSION, cost_usd=0.25, tokens=900)
    assert "tokens" not in render_status_card(priced, now=3700.0, pending=0).text
    assert [compact(n) for n in (950, 1000, 12_345, 4_100_000)] == ["950", "1k", "12.3k", "4.1M"]


def test_split_text_respects_the_limit_and_loses_nothing():
    text = "\n".join(f"line {i} " + "x" * (i % 50) for i in range(2000))
    pieces = split_text(text, 4000)
    assert all(0 < len(p) <= 4000 for p in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert split_text("", 10) == [""]
    assert split_text("a" * 25, 10) == ["a" * 10, "a" * 10, "a" * 5]


def test_foreign_or_forged_payloads_are_not_actions():
    for payload in ("", "ao", "zz:abc234", "ao:ABC", "ao:abc234:extra", "ao:" + "a" * 40):
        assert decode_button(payload) is None
    assert decode_button("ss:abc234") == ButtonAction(Verb.STOP, "abc234")


def test_commands_parse_with_clear_errors():
    assert parse_command("/new api fix the test --agent codex") == Command(
        name=CommandName.NEW, project="api", prompt="fix the test", agent="codex")
    assert parse_command("/new@fake_bot api go", bot_username="fake_bot").project == "api"
    assert parse_command("/new@other_bot api go", bot_username="fake_bot") is None
    assert parse_command("/resume abc234 carry on") == Command(
        name=CommandName.RESUME, session_id="abc234", prompt="carry on")
    assert parse_command("/stop", thread_session="abc234") == Command(
        name=CommandName.STOP, session_id="abc234")
    assert parse_command("/sessions all").include_archived
    assert parse_command("hello") is None
    for text, words in (("/new", "Usage: /new"), ("/new api", "Usage: /new"),
                        ("/stop", "Usage: /stop"), ("/zap", "Unknown command /zap"),
                        ("/stop abc234 now", "takes only a session id")):
        result = parse_command(text)
        assert isinstance(result, CommandError) and words in result.message, text


def test_diff_takes_a_turn():
    whole = parse_command("/diff abc234")
    assert whole == Command(name=CommandName.DIFF, session_id="abc234")
    one = parse_command("/diff abc234 turn 3")
    assert one == Command(name=CommandName.DIFF, session_id="abc234", turn=3)
    # inside the session's thread the id may be left out ("turn" is no session id)
    assert parse_command("/diff turn 2", thread_session="abc234") == Command(
        name=CommandName.DIFF, session_id="abc234", turn=2)
    assert parse_command("/diff", thread_session="abc234") == Command(
        name=CommandName.DIFF, session_id="abc234")
    for bad in ("/diff abc234 turn", "/diff abc234 turn 0", "/diff abc234 turn x",
                "/diff abc234 now", "/diff turn 2"):
        error = parse_command(bad)
        assert isinstance(error, CommandError), bad
        assert "/diff" in error.message
