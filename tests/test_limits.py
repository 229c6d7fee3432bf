"""Usage limits and notices, in the pure core: each agent's limit messages in their exact
shapes, what a session makes of them, and how they are shown."""

from __future__ import annotations

import json

import pytest

from bridge.codecs.acp import AcpCodec
from bridge.codecs.claude import ClaudeCodec
from bridge.codecs.codex import CodexCodec
from bridge.digest import DigestGroup, render_digest, select_digest
from bridge.errors import ProtocolError
from bridge.events import AssistantText, Notice, UsageLimit
from bridge.limits import LimitWatch, ShownNotice, render_limit_notice, resume_time
from bridge.machine import SessionMachine
from bridge.model import SessionView
from bridge.redact import Redactor
from bridge.render import render_session_list, render_status_card
from bridge.session import SessionState
from tests.test_codex_codec import feed, open_thread

RESET = 1796193292
# what the real Claude Code 2.1.331 printed against the mock model API's
# `anthropic-ratelimit-unified-status: rejected` (session and uuid shortened)
CLAUDE_REJECTED = {"type": "rate_limit_event", "rate_limit_info": {
    "status": "rejected", "resetsAt": RESET, "rateLimitType": "five_hour",
    "isUsingOverage": False}, "uuid": "05eae6bb", "session_id": "1ef7b541"}


def claude(*messages: dict) -> list:
    codec = ClaudeCodec()
    return codec.receive(b"".join(json.dumps(m).encode() + b"\n" for m in messages))


def test_claude_rate_limit_event_in_its_real_shape():
    assert claude(CLAUDE_REJECTED) == [
        UsageLimit(hit=True, resets_at=float(RESET), limit="five_hour")]
    allowed = {**CLAUDE_REJECTED, "rate_limit_info": {"status": "allowed", "resetsAt": RESET,
                                                      "rateLimitType": "five_hour",
                                                      "isUsingOverage": False}}
    assert claude(allowed) == [UsageLimit(resets_at=float(RESET), limit="five_hour")]
    warning = {**CLAUDE_REJECTED, "rate_limit_info": {"status": "allowed_warning",
                                                      "utilization": 0.92}}
    assert claude(warning) == [UsageLimit(warning=True)]


@pytest.mark.parametrize("info", [None, {"resetsAt": RESET}, {"status": "exhausted"}])
def test_a_rate_limit_event_without_its_status_is_a_protocol_error(info):
    with pytest.raises(ProtocolError):
        claude({**CLAUDE_REJECTED, "rate_limit_info": info})


def test_claude_message_refused_for_the_limit_says_so():
    text = "You've hit your limit · resets 3pm (UTC)"
    events = claude({"type": "assistant", "error": "rate_limit", "session_id": "s",
                     "message": {"id": "m", "role": "assistant", "model": "<synthetic>",
                                 "content": [{"type": "text", "text": text}]}})
    assert events == [AssistantText(text=text), UsageLimit(hit=True, text=text)]


def codex() -> CodexCodec:
    codec = CodexCodec(cwd="/w", approval_policy="untrusted")
    open_thread(codec)
    return codec


def codex_limits(**limits: object) -> dict:
    base = {"limitId": "codex", "limitName": None, "primary": None, "secondary": None,
            "credits": None, "planType": "plus", "rateLimitReachedType": None}
    return {"method": "account/rateLimits/updated", "params": {"rateLimits": base | limits}}


def test_codex_rate_limits_updated():
    window = {"usedPercent": 100, "windowDurationMins": 300, "resetsAt": RESET}
    weekly = {"usedPercent": 40, "windowDurationMins": 10080, "resetsAt": RESET + 86400}
    assert feed(codex(), codex_limits(primary=window, secondary=weekly)) == [
        UsageLimit(hit=True, resets_at=float(RESET), limit="primary")]
    near = {**window, "usedPercent": 93}
    assert feed(codex(), codex_limits(primary=near)) == [UsageLimit(warning=True)]
    assert feed(codex(), codex_limits(primary=weekly)) == [UsageLimit()]
    reached = codex_limits(secondary=weekly, rateLimitReachedType="rate_limit_reached")
    assert feed(codex(), reached) == [UsageLimit(hit=True, resets_at=float(RESET + 86400),
                                                 limit="rate_limit_reached")]
    # what 0.169.0 sends after every turn without an account says nothing
    assert feed(codex(), codex_limits()) == []


def test_codex_usage_limit_error_and_failed_turn():
    message = "You've hit your usage limit. Try again at 3:00 PM."
    error = {"message": message, "codexErrorInfo": "usageLimitExceeded",
             "additionalDetails": None}
    codec = codex()
    assert feed(codec, {"method": "error", "params": {
        "error": error, "willRetry": False, "threadId": "t1", "turnId": "u1"}}) == [
        UsageLimit(hit=True, text=message)]
    events = feed(codec, {"method": "turn/completed", "params": {"threadId": "t1", "turn": {
        "id": "u1", "status": "failed", "error": error, "items": []}}})
    assert events[0] == UsageLimit(hit=True, text=message)
    assert events[-1].is_error and events[-1].error == message


def test_refused_requests_are_notices_people_see():
    codec = codex()
    (notice,) = feed(codec, {"id": 7, "method": "item/tool/call", "params": {}})
    assert notice.shown and "item/tool/call" in notice.text
    (refused,) = claude({"type": "control_request", "request_id": "r1",
                         "request": {"subtype": "brand_new_request"}})
    assert refused.shown and "brand_new_request" in refused.text
    acp = AcpCodec(cwd="/w")
    acp.start("x")
    (unknown,) = acp.receive(b'{"jsonrpc":"2.0","id":9,"method":"fs/read_text_file",'
                             b'"params":{"path":"/etc/passwd"}}\n')
    assert unknown == Notice(text="refused agent request fs/read_text_file: agent-bridge "
                                  "does not handle it", shown=True)


# -- what a session makes of it ----------------------------------------------------------------


def test_a_limit_is_one_notice_until_it_says_something_new():
    watch = LimitWatch()
    changes, notice = watch.fold(UsageLimit(hit=True), now=10.0)
    assert changes == {"limit_hit_at": 10.0, "limit_reset_at": None}
    assert notice == ShownNotice(text="", limit=True)
    assert watch.fold(UsageLimit(hit=True, text="again"), now=11.0)[1] is None
    changes, notice = watch.fold(UsageLimit(hit=True, resets_at=99.0), now=12.0)
    assert changes == {"limit_hit_at": 12.0, "limit_reset_at": 99.0} and notice is not None
    # a refusal that does not name the reset keeps the time already known
    assert watch.fold(UsageLimit(hit=True), now=13.0) == ({"limit_reset_at": 99.0}, None)
    assert watch.fold(UsageLimit(), now=14.0) == (
        {"limit_hit_at": None, "limit_reset_at": None}, None)
    assert watch.fold(UsageLimit(), now=15.0) == ({}, None)
    _, warned = watch.fold(UsageLimit(warning=True, limit="five_hour"), now=16.0)
    assert warned is not None and "close to its usage limit (five_hour)" in warned.text
    assert watch.fold(UsageLimit(warning=True), now=17.0)[1] is None


def test_the_machine_records_the_limit_and_the_notices():
    machine = SessionMachine(session_id="s1", state=SessionState.RUNNING, cwd="/w",
                             new_id=lambda: "a1")
    facts = machine.received([UsageLimit(hit=True, resets_at=500.0, text="hit"),
                              Notice(text="stray output"),
                              Notice(text="refused X", shown=True)], now=100.0)
    assert facts.changes["limit_hit_at"] == 100.0 and facts.changes["limit_reset_at"] == 500.0
    assert facts.notices == (ShownNotice(text="The agent says: hit", limit=True),
                             ShownNotice(text="refused X"))


# -- how it is shown ---------------------------------------------------------------------------


def view(**fields: object) -> SessionView:
    base: dict = {"id": "abcd12", "project": "demo", "agent": "claude", "protocol": "claude",
                  "cwd": "/w", "state": SessionState.IDLE, "created_at": 0.0,
                  "updated_at": 0.0, "title": "long task"}
    return SessionView(**(base | fields))


def test_the_limit_notice_and_its_buttons():
    r = Redactor()
    hit = view(limit_hit_at=100.0, limit_reset_at=3700.0)
    card = render_limit_notice(hit, "The agent says: token sk-ant-api03-" + "a" * 90,
                               now=100.0, redactor=r)
    assert "hit its usage limit" in card.text and "(in 1h 00m)" in card.text
    assert "sk-ant-api03-aaaa" not in card.text  # redacted
    assert [[b.action.encode() for b in row] for row in card.buttons] == [["rr:abcd12"]]
    scheduled = view(limit_hit_at=100.0, limit_reset_at=3700.0, resume_at=3700.0)
    card = render_limit_notice(scheduled, "", now=100.0, redactor=r)
    assert "It resumes" in card.text
    assert [[b.label for b in row] for row in card.buttons] == [["Cancel scheduled resume"]]
    unknown = render_limit_notice(view(limit_hit_at=100.0), "", now=100.0, redactor=r)
    assert "did not say when it resets" in unknown.text and unknown.buttons == ()
    assert resume_time(hit, now=5000.0) == 5000.0  # passed already: at once
    assert resume_time(view(limit_hit_at=1.0), now=5.0) is None


def test_limit_hit_shows_in_the_list_the_status_card_and_the_digest():
    r = Redactor()
    hit = view(limit_hit_at=100.0, limit_reset_at=3700.0)
    assert "[limit hit, resets" in render_session_list([hit], now=200.0, redactor=r)
    assert "⛔ limit hit, resets" in render_status_card(hit, now=200.0, redactor=r).text
    lines = select_digest([hit, view(id="other1")], [], now=200.0, stalled_after=60,
                          unreviewed_after=60, redactor=r)
    assert [(d.session.id, d.group) for d in lines] == [("abcd12", DigestGroup.LIMITED)]
    digest = render_digest(lines, now=200.0, links={}, redactor=r)
    assert digest is not None and "Usage limit hit" in digest.text
    assert "Resume at reset" in [b.label for row in digest.buttons for b in row]
