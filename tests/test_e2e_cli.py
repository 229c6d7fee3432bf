"""End to end: `agent-bridge run` as a subprocess, driven only through the CLI."""

from __future__ import annotations

import json

from tests.harness import Bridge, wait_until

ORIGINAL_INPUT = {"command": "echo hi > out.txt", "description": "write a file"}


def new(bridge: Bridge, *args: str) -> str:
    return bridge.json("new", "demo", "please run a command", *args)["id"]


def test_new_approve_and_the_agent_receives_allow_with_the_original_input(bridge):
    sid = new(bridge)
    (pending,) = bridge.wait_approval(sid)
    assert pending["tool"] == "Bash"
    assert pending["input"] == ORIGINAL_INPUT
    listed = {s["id"]: s for s in bridge.json("sessions")}
    assert listed[sid]["state"] == "waiting_approval"
    assert listed[sid]["pending_approvals"][0]["id"] == pending["id"]
    for key in ("id", "project", "agent", "state", "archived", "agent_session_id", "cwd",
                "created_at", "updated_at", "pending_approvals"):
        assert key in listed[sid]
    assert 6 <= len(sid) <= 8 and 6 <= len(pending["id"]) <= 8

    out = bridge.cli("approve", pending["id"])
    assert "Allowed once" in out.stdout
    session = bridge.wait_state(sid, "idle")
    (answer,) = bridge.answers()
    assert answer["response"] == {"behavior": "allow", "updatedInput": ORIGINAL_INPUT}
    assert (bridge.project / "out.txt").read_text().strip() == "hi"
    kinds = [e["kind"] for e in session["events"]]
    assert kinds.index("approval_requested") < kinds.index("decision") < kinds.index(
        "turn_completed")
    assert session["turns"] == 1
    assert session["cost_usd"] > 0
    assert session["agent_session_id"]
    assert session["approvals"][0]["decided_by"] == "local CLI"


def test_deny_with_a_reason_reaches_the_agent_and_nothing_runs(bridge):
    sid = new(bridge)
    (pending,) = bridge.wait_approval(sid)
    bridge.cli("deny", pending["id"], "--reason", "not in this repo")
    session = bridge.wait_state(sid, "idle")
    (answer,) = bridge.answers()
    assert answer["response"]["behavior"] == "deny"
    assert answer["response"]["message"] == "not in this repo"
    assert not (bridge.project / "out.txt").exists()
    results = [e["data"] for e in session["events"] if e["kind"] == "tool_finished"]
    assert results == [{"tool_use_id": results[0]["tool_use_id"], "is_error": True,
                        "output": "not in this repo", "exit_code": None}]


def test_unknown_and_already_decided_approvals_change_nothing(bridge):
    result = bridge.cli("approve", "zzzzzz", check=False)
    assert result.returncode == 1
    assert "no approval 'zzzzzz'" in result.stderr
    sid = new(bridge)
    (pending,) = bridge.wait_approval(sid)
    bridge.cli("deny", pending["id"])
    again = bridge.cli("approve", pending["id"], check=False)
    assert again.returncode == 1
    assert "Already denied by local CLI" in again.stderr
    bridge.wait_state(sid, "idle")
    assert len(bridge.answers()) == 1
    assert bridge.answers()[0]["response"]["behavior"] == "deny"
    unknown = bridge.cli("stop", "nosuch", check=False)
    assert unknown.returncode == 1 and "no session 'nosuch'" in unknown.stderr


def test_stop_while_waiting_denies_interrupts_and_ends_the_process(bridge):
    sid = new(bridge)
    bridge.wait_approval(sid)
    session = bridge.json("stop", sid)
    assert session["state"] == "stopped"
    answer = bridge.answers()[0]["response"]
    assert answer["behavior"] == "deny" and answer["interrupt"] is True
    interrupts = [m for m in bridge.recorded() if m.get("type") == "control_request"
                  and m["request"]["subtype"] == "interrupt"]
    assert interrupts
    shown = bridge.session(sid)
    assert shown["approvals"][0]["state"] == "denied"
    wait_until(lambda: not bridge.leftovers() or bridge.leftovers() == [bridge.process.pid],
               what="the agent to exit")


def test_resume_after_a_restart_continues_the_agent_session(make_bridge):
    bridge = make_bridge()
    bridge.start()
    sid = new(bridge)
    (pending,) = bridge.wait_approval(sid)
    bridge.cli("approve", pending["id"])
    first = bridge.wait_state(sid, "idle")
    bridge.stop()
    bridge.start()
    after = bridge.session(sid)
    assert after["state"] == "completed"
    assert after["agent_session_id"] == first["agent_session_id"]
    bridge.cli("resume", sid, "and once more")
    (again,) = bridge.wait_approval(sid)
    bridge.cli("approve", again["id"])
    resumed = bridge.wait_state(sid, "idle")
    assert resumed["agent_session_id"] == first["agent_session_id"]
    texts = [e["data"].get("result_text") for e in resumed["events"]
             if e["kind"] == "turn_completed"]
    assert "turn 2 of session" in texts[-1]


def test_sigkill_with_a_pending_approval_expires_it_and_resume_continues(make_bridge):
    bridge = make_bridge()
    bridge.start()
    sid = new(bridge)
    (pending,) = bridge.wait_approval(sid)
    before = bridge.session(sid)
    bridge.kill()
    bridge.start()
    after = bridge.session(sid)
    assert after["state"] == "failed"
    assert "resume to continue" in after["error"]
    assert after["pending_approvals"] == []
    (approval,) = after["approvals"]
    assert approval["state"] == "expired"
    assert "Nothing was approved" in approval["reason"]
    assert [e["kind"] for e in after["events"]][: len(before["events"])] == [
        e["kind"] for e in before["events"]]
    assert all(a["response"]["behavior"] != "allow" for a in bridge.answers())
    late = bridge.cli("approve", pending["id"], check=False)
    assert late.returncode == 1 and "Expired" in late.stderr
    bridge.cli("resume", sid, "go on")
    (again,) = bridge.wait_approval(sid)
    bridge.cli("approve", again["id"])
    assert bridge.wait_state(sid, "idle")["agent_session_id"] == before["agent_session_id"]


def test_archive_hides_a_session_until_unarchived(bridge):
    sid = new(bridge)
    bridge.wait_approval(sid)
    bridge.cli("archive", sid)
    assert sid not in [s["id"] for s in bridge.json("sessions")]
    assert sid in [s["id"] for s in bridge.json("sessions", "--all")]
    assert bridge.session(sid)["archived"] is True
    bridge.cli("unarchive", sid)
    assert sid in [s["id"] for s in bridge.json("sessions")]


def test_a_reply_continues_an_idle_session_in_the_same_process(make_bridge):
    bridge = make_bridge(agents={"chat": ["text"]})
    bridge.start()
    sid = bridge.json("new", "demo", "hello", "--agent", "chat")["id"]
    first = bridge.wait_state(sid, "idle")
    bridge.cli("send", sid, "again")
    wait_until(lambda: bridge.session(sid)["turns"] == 2, what="a second turn")
    second = bridge.session(sid)
    assert second["agent_session_id"] == first["agent_session_id"]
    prompts = [m["message"]["content"] for m in bridge.recorded() if m.get("type") == "user"]
    assert prompts == ["hello", "again"]


def test_a_project_can_be_a_path_and_unknown_projects_are_explained(bridge, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    sid = bridge.json("new", str(other), "please run a command")["id"]
    assert bridge.session(sid)["cwd"] == str(other)
    missing = bridge.cli("new", "nope", "x", check=False)
    assert missing.returncode == 1
    assert "no project 'nope'" in missing.stderr and "demo" in missing.stderr


def test_a_bad_config_refuses_to_start_and_names_the_key(make_bridge):
    bridge = make_bridge()
    bridge.config.write_text(bridge.config.read_text() + '\n[approvals]\ntimeout = "later"\n')
    result = bridge.cli("run", check=False)
    assert result.returncode == 2
    assert "approvals.timeout" in result.stderr
    bridge.config.write_text(bridge.config.read_text().replace('timeout = "later"', "timout = 1"))
    result = bridge.cli("run", check=False)
    assert result.returncode == 2 and "approvals.timout: unknown key" in result.stderr


def test_the_cli_says_how_to_start_the_daemon_when_it_is_not_running(make_bridge):
    bridge = make_bridge()
    result = bridge.cli("sessions", check=False)
    assert result.returncode == 1
    assert "agent-bridge run" in result.stderr


def test_a_second_daemon_on_the_same_state_refuses(bridge):
    result = bridge.cli("run", check=False)
    assert result.returncode == 1
    assert "already running" in result.stderr


def test_show_json_has_the_transcript(bridge):
    sid = new(bridge)
    bridge.wait_approval(sid)
    shown = bridge.session(sid)
    assert shown["events"][0]["kind"] == "prompt"
    assert json.dumps(shown)  # serialisable as is


def test_allow_for_session_allows_the_same_call_again_without_asking(make_bridge):
    bridge = make_bridge(agents={"chat": ["approve"]})
    bridge.start()
    sid = bridge.json("new", "demo", "please run a command", "--agent", "chat")["id"]
    (pending,) = bridge.wait_approval(sid)
    out = bridge.cli("approve", pending["id"], "--for-session")
    assert "for the session" in out.stdout
    bridge.wait_state(sid, "idle")
    first = bridge.answers()[0]["response"]
    assert first["behavior"] == "allow" and first["updatedPermissions"]
    bridge.cli("send", sid, "once more")  # the agent asks for the same command again
    wait_until(lambda: len(bridge.answers()) == 2, what="the rule to answer the second request")
    assert bridge.answers()[1]["response"]["behavior"] == "allow"
    approvals = bridge.session(sid)["approvals"]
    assert approvals[1]["decided_by"] == "the session rule local CLI made"
    assert bridge.wait_state(sid, "idle")["turns"] == 2
    # the rule outlives the daemon: resumed after a restart, the same call is not asked again
    bridge.stop()
    bridge.start()
    bridge.cli("resume", sid, "and again")
    wait_until(lambda: len(bridge.answers()) == 3, what="the kept rule to answer")
    assert bridge.answers()[2]["response"]["behavior"] == "allow"
    assert bridge.session(sid)["approvals"][2]["decided_by"] == "the session rule local CLI made"
