"""End to end: an agent that hits its usage limit. The notice reaches the session's thread
with the reset time; `/sessions`, `sessions --json` and the digest say "limit hit"; "Resume
at reset" schedules the resume, which fires at the reset (the fake agent's reset time is the
test's clock), survives a daemon restart, and can be cancelled. Telegram and Slack."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import Bridge, FakeAgent, wait_until
from tests.slack_harness import ThreadedSlack

RESUMED = "Picking up where I left off."


@pytest.fixture
def slack() -> Iterator[ThreadedSlack]:
    fake = ThreadedSlack()
    yield fake
    fake.close()


def telegram_bridge(make_bridge: Any, tg: Any, reset_in: float) -> Bridge:
    bridge: Bridge = make_bridge(agents={"claude": ["rate_limit"]}, extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.env["FAKE_CLAUDE_RESET_IN"] = str(reset_in)
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    return bridge


def only_session(bridge: Bridge) -> dict[str, Any]:
    return wait_until(lambda: (s := bridge.json("sessions")) and s[0], what="a session")


def test_limit_notice_shows_everywhere_and_resume_at_reset_fires(make_bridge, tg):
    bridge = telegram_bridge(make_bridge, tg, reset_in=20)
    before = time.time()
    tg.say("/new demo do the long task")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    notice = tg.message_with("hit its usage limit", thread)
    assert "It resets" in notice.text and "UTC" in notice.text
    assert [b["text"] for b in notice.buttons] == ["Resume at reset"]
    session = only_session(bridge)
    sid = session["id"]
    wait_until(lambda: bridge.json("sessions")[0]["limit_hit"], what="the limit in the store")
    listed = bridge.json("sessions")[0]
    assert before + 19 <= listed["limit_reset_at"] <= time.time() + 21
    assert listed["resume_at"] is None
    assert "limit hit, resets" in bridge.cli("show", sid).stdout
    bridge.wait_state(sid, "idle")
    tg.say("/sessions")
    listing = tg.message_with(f"{sid}  idle")
    assert listing.thread_id is None and "[limit hit, resets" in listing.text
    tg.say("/digest")
    digest = tg.message_with("📋 Digest")
    assert "Usage limit hit" in digest.text and sid in digest.text
    assert any(b["text"] == "Resume at reset" for b in digest.buttons)

    answer = tg.answer(tg.tap(notice, f"rr:{sid}"))
    assert f"{sid} resumes" in answer.text
    scheduled = bridge.json("sessions")[0]
    assert scheduled["resume_at"] == pytest.approx(scheduled["limit_reset_at"], abs=1)
    card = tg.message_with("It resumes", thread)
    assert [b["text"] for b in card.buttons] == ["Cancel scheduled resume"]

    # the reset comes: the session is continued, the limit is gone
    tg.message_with("resuming as scheduled", thread, timeout=40)
    summary = tg.message_with(RESUMED, thread)
    assert summary.date >= int(scheduled["resume_at"]) - 1  # not before the reset time
    prompts = [m for m in bridge.recorded() if m.get("type") == "user"]
    assert "has reset" in prompts[-1]["message"]["content"]
    cleared = bridge.json("sessions")[0]
    assert not cleared["limit_hit"] and cleared["resume_at"] is None


def test_resume_at_reset_survives_a_restart_and_cancel_works(make_bridge, tg):
    bridge = telegram_bridge(make_bridge, tg, reset_in=20)
    tg.say("/new demo do the long task")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    tg.message_with("hit its usage limit", thread)
    sid = only_session(bridge)["id"]
    tg.say(f"/atreset {sid}", thread=thread)
    tg.message_with(f"{sid} resumes", None)
    resume_at = bridge.json("sessions")[0]["resume_at"]
    assert resume_at is not None
    bridge.kill()  # a crash: only what is in the store is left
    assert "resuming as scheduled" not in "".join(m.text or "" for m in tg.messages(thread))
    bridge.start()  # only the store knows of the resume now
    tg.message_with(RESUMED, thread, timeout=40)
    assert time.time() >= resume_at
    assert bridge.json("sessions")[0]["resume_at"] is None

    # a second limit, scheduled and cancelled: nothing is resumed
    tg.say("/resume " + sid + " go on", thread=thread)
    wait_until(lambda: bridge.json("sessions")[0]["limit_hit"], what="the limit again")
    tg.say(f"/atreset {sid}", thread=thread)
    wait_until(lambda: bridge.json("sessions")[0]["resume_at"], what="the resume scheduled")
    tg.say(f"/atreset {sid} cancel", thread=thread)
    tg.message_with(f"Cancelled the scheduled resume of {sid}", None)
    assert bridge.json("sessions")[0]["resume_at"] is None
    tg.say(f"/atreset {sid} cancel", thread=thread)
    tg.message_with(f"{sid} has no scheduled resume")


def test_slack_limit_notice_resume_at_reset_and_cancel_buttons(make_bridge, slack):
    bridge: Bridge = make_bridge(agents={"claude": ["rate_limit"]}, extra=slack.config())
    bridge.env.update(slack.env())
    bridge.env["FAKE_CLAUDE_RESET_IN"] = "3600"
    bridge.start()
    slack.connected()
    slack.command("new demo do the long task")
    thread = slack.new_thread().ts
    notice = slack.message_with("hit its usage limit", thread)
    sid = only_session(bridge)["id"]
    assert notice.values == [f"rr:{sid}"] and "It resets" in notice.shown

    before = slack.ephemeral_count()
    slack.tap(notice, f"rr:{sid}")
    assert f"{sid} resumes" in slack.ephemeral_after(before).shown
    card = slack.message_with("It resumes", thread)
    assert card.values == [f"rc:{sid}"]
    assert bridge.json("sessions")[0]["resume_at"] is not None
    before = slack.ephemeral_count()
    slack.tap(card, f"rc:{sid}")
    assert "Cancelled the scheduled resume" in slack.ephemeral_after(before).shown
    assert bridge.json("sessions")[0]["resume_at"] is None
    slack.message_with("cancelled the resume", thread)


def test_a_refused_agent_request_is_a_notice_in_the_thread(make_bridge, tg):
    bridge: Bridge = make_bridge(agents={"acp": FakeAgent(protocol="acp", scenario="fs_request")},
                                 extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.wait_for("getUpdates", ok=None)
    tg.say("/new demo read a file --agent acp")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    notice = tg.message_with("refused agent request fs/read_text_file", thread)
    assert notice.text.startswith("⚠️")
