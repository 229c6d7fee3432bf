"""Agents that misbehave: the daemon stays up, the session ends with the reason, no process
is left behind."""

from __future__ import annotations

import time

import pytest

from tests.harness import wait_until

FAULTS = {
    "garbage": ["garbage"],
    "truncated": ["truncated"],
    "huge": ["huge_line"],
    "unknown": ["unknown_type"],
    "crash": ["crash_mid_approval"],
    "hang": ["hang"],
    "noise": ["noise"],
}


@pytest.fixture
def faulty(make_bridge):
    bridge = make_bridge(agents=FAULTS)
    bridge.start()
    return bridge


def start(bridge, agent: str) -> str:
    return bridge.json("new", "demo", "please run a command", "--agent", agent)["id"]


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        ("garbage", "corrupt JSON line"),
        ("truncated", "middle of a line"),
        ("huge", "exceeds"),
    ],
)
def test_protocol_breakage_fails_the_session_with_the_reason(faulty, agent, reason):
    sid = start(faulty, agent)
    session = faulty.wait_state(sid, "failed")
    assert "broke its protocol" in session["error"]
    assert reason in session["error"]
    assert faulty.json("sessions")  # the daemon is still up and answering
    wait_until(lambda: not [p for p in faulty.leftovers() if p != faulty.process.pid],
               what="the agent to be gone")


def test_an_unknown_message_type_is_stored_and_changes_nothing(faulty):
    sid = start(faulty, "unknown")
    session = faulty.wait_state(sid, "idle")
    unknown = [e for e in session["events"] if e["kind"] == "unknown"]
    assert unknown and unknown[0]["data"]["type"] == "brand_new_thing"
    assert session["error"] is None


def test_stray_non_json_output_is_kept_as_a_notice(faulty):
    sid = start(faulty, "noise")
    session = faulty.wait_state(sid, "idle")
    notices = [e["data"]["text"] for e in session["events"] if e["kind"] == "notice"]
    assert any("SandboxDebug" in n for n in notices)


def test_a_crash_mid_approval_fails_the_session_and_expires_the_approval(faulty):
    sid = start(faulty, "crash")
    session = faulty.wait_state(sid, "failed")
    assert "exited with code 3" in session["error"]
    assert "fake crash" in session["error"]
    (approval,) = session["approvals"]
    assert approval["state"] == "expired"
    late = faulty.cli("approve", approval["id"], check=False)
    assert late.returncode == 1
    assert faulty.answers() == []  # nothing was ever sent to the agent


def test_an_agent_that_ignores_eof_and_sigterm_is_killed_within_the_bound(faulty):
    sid = start(faulty, "hang")
    faulty.wait_approval(sid)
    began = time.monotonic()
    session = faulty.json("stop", sid)
    assert session["state"] == "stopped"
    assert time.monotonic() - began < 10  # grace 1s: EOF → 1s → SIGTERM → 1s → SIGKILL
    wait_until(lambda: faulty.leftovers() == [faulty.process.pid], what="the hung agent killed")


def test_a_hung_agent_left_by_a_killed_daemon_is_cleaned_up_on_restart(faulty):
    sid = start(faulty, "hang")
    faulty.wait_approval(sid)
    faulty.kill()
    assert faulty.leftovers()  # the hung agent outlived the daemon...
    faulty.start()
    wait_until(lambda: faulty.leftovers() == [faulty.process.pid],
               what="the leftover agent to be killed")  # ...until the restart swept it
    assert faulty.session(sid)["state"] == "failed"
