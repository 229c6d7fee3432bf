from datetime import UTC, datetime

from bridge.approvals import Approval
from bridge.digest import DigestGroup, render_digest, select_digest
from bridge.events import DecisionKind
from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.session import SessionState as S
from daemon.scheduler import digest_trigger, missed_since

REDACTOR = Redactor()

NOW = 100_000.0
ALL = (DecisionKind.ALLOW_ONCE, DecisionKind.DENY)


def session(sid, state, **kw):
    base = {"id": sid, "project": "api", "agent": "claude", "protocol": "claude", "cwd": "/x",
            "state": state, "created_at": 0.0, "updated_at": NOW - 10, "title": f"task {sid}"}
    return SessionView(**{**base, **kw})


def approval(sid, at):
    return Approval(id=f"ap{sid}", session_id=sid, request_id="r", tool="Bash",
                    input={"command": "make deploy"}, offered=ALL, requested_at=at)


FIXTURE = [
    session("wait01", S.WAITING_APPROVAL),
    session("park01", S.IDLE, parked="approval timed out and was denied: Bash rm", finished_at=1),
    session("done01", S.IDLE, finished_at=NOW - 3 * 3600),  # unreviewed for 3h
    session("done02", S.COMPLETED, finished_at=NOW - 3 * 3600, reviewed_at=NOW - 60),  # looked
    session("done03", S.IDLE, finished_at=NOW - 600),  # too recent
    session("run001", S.RUNNING, last_event_at=NOW - 1800),  # quiet for 30 min
    session("run002", S.RUNNING, last_event_at=NOW - 60),  # busy
    session("fail01", S.FAILED, error="the agent exited with code 3"),
    session("arch01", S.FAILED, archived=True),
]


PENDING = (approval("wait01", NOW - 300),)


def select(sessions=FIXTURE, pending=PENDING):
    return select_digest(sessions, list(pending), now=NOW, stalled_after=1200,
                         unreviewed_after=7200, redactor=REDACTOR)


def test_the_selection_groups_what_needs_a_person():
    lines = select()
    assert [(d.group, d.session.id) for d in lines] == [
        (DigestGroup.WAITING, "wait01"),  # oldest first: waiting 5 min
        (DigestGroup.WAITING, "park01"),  # parked 10 s ago
        (DigestGroup.UNREVIEWED, "done01"),
        (DigestGroup.STALLED, "run001"),
        (DigestGroup.FAILED, "fail01"),
    ]
    assert "make deploy" in lines[0].detail


def test_the_selection_is_deterministic_whatever_the_input_order():
    assert select(list(reversed(FIXTURE))) == select()


def test_an_empty_digest_renders_nothing():
    assert render_digest([], now=NOW, redactor=REDACTOR) is None
    assert select([session("ok0001", S.IDLE, finished_at=NOW - 60)], ()) == []


def test_the_heading_counts_in_words_that_agree():
    [one] = [d for d in select() if d.session.id == "fail01"]
    single = render_digest([one], now=NOW, redactor=REDACTOR)
    several = render_digest(select(), now=NOW, redactor=REDACTOR)
    assert single is not None and several is not None
    assert single.text.startswith("📋 Digest: 1 run needs you\n")
    assert several.text.startswith("📋 Digest: 5 runs need you\n")


def test_each_line_has_working_buttons_and_open_links_to_the_thread():
    card = render_digest(select(), now=NOW, links={"wait01": "https://t.me/c/1/5"},
                         redactor=REDACTOR)
    assert card is not None
    assert "Waiting on you:" in card.text and "Stalled:" in card.text
    rows = {row[0].action.target: row for row in card.buttons}
    assert rows["wait01"][0].url == "https://t.me/c/1/5"
    assert [b.label for b in rows["park01"]] == ["Open park01", "Diff", "Re-ask", "Archive",
                                                 "Stop"]
    assert [b.label for b in rows["fail01"]] == ["Open fail01", "Diff", "Resume", "Archive"]
    assert "Stop" in [b.label for b in rows["run001"]]


def test_a_digest_missed_while_down_is_caught_up_once():
    trigger = digest_trigger("0 9 * * mon-fri", "Europe/Berlin")
    monday_0700_utc = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Berlin
    tuesday_1000_utc = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert missed_since(trigger, monday_0700_utc, tuesday_1000_utc)
    just_sent = datetime(2026, 11, 24, 8, 0, 5, tzinfo=UTC)  # 09:00:05 Berlin, Tuesday
    assert not missed_since(trigger, just_sent, tuesday_1000_utc)
    assert not missed_since(trigger, None, tuesday_1000_utc)


def test_the_configured_patterns_redact_before_the_digest_cuts():
    """A secret only an extra pattern knows, placed where the digest cuts its preview: the
    configured redactor must see it whole (the built-in rules alone let its head through)."""
    extra = Redactor([r"CORP-[0-9A-F]{24}"])
    token = "CORP-" + "0123456789ABCDEF01234567"
    command = "x" * 70 + " " + token  # the preview is cut at 80 characters, mid-token
    waiting = Approval(id="apw", session_id="wait01", request_id="r", tool="Bash",
                       input={"command": command}, offered=ALL, requested_at=NOW - 300)
    lines = select_digest(FIXTURE, [waiting], now=NOW, stalled_after=1200,
                          unreviewed_after=7200, redactor=extra)
    card = render_digest(lines, now=NOW, redactor=extra)
    assert card is not None
    assert "CORP-012" not in card.text
    assert "[redacte" in lines[0].detail
    unconfigured = select_digest(FIXTURE, [waiting], now=NOW, stalled_after=1200,
                                 unreviewed_after=7200, redactor=REDACTOR)
    assert "CORP-012" in unconfigured[0].detail  # what the built-in rules alone let out
