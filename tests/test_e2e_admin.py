"""The control socket, doctor and the idle reaper, as a user meets them."""

from __future__ import annotations

import json
import stat

from tests.harness import wait_until


def test_the_control_socket_and_state_dir_are_private(bridge):
    state = bridge.tmp / "state"
    sock = state / "agent-bridge.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) & 0o077 == 0


def test_doctor_reports_agents_state_tokens_and_the_daemon(make_bridge):
    # the Bot API at a loopback port nobody serves: doctor tries the token, never the internet
    bridge = make_bridge(extra='[telegram]\nchat_id = -1\nallowed_user_ids = [1]\n'
                               'base_url = "http://127.0.0.1:9/bot"\n')
    result = bridge.cli("doctor", "--json", check=False)
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["config"]["status"] == "ok"
    assert checks["agent claude"]["status"] == "ok"
    assert checks["state dir"]["status"] == "ok"
    assert checks["telegram token"]["status"] == "fail"
    assert "TELEGRAM_BOT_TOKEN" in checks["telegram token"]["detail"]
    assert checks["daemon"]["status"] == "warn"
    assert result.returncode == 1
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123:secret-value"
    result = bridge.cli("doctor", check=False)
    assert "secret-value" not in result.stdout + result.stderr  # never echo a secret
    assert "[warn] telegram bot: could not check $TELEGRAM_BOT_TOKEN" in result.stdout


def test_doctor_names_a_missing_agent_binary(make_bridge):
    bridge = make_bridge()
    bridge.config.write_text(bridge.config.read_text().replace(
        "[agents.claude]", "[agents.ghost]\nprotocol = \"claude\"\ncommand = "
        "[\"no-such-agent-binary\"]\n[agents.claude]"))
    out = bridge.cli("doctor", check=False).stdout
    assert "no-such-agent-binary" in out and "not on PATH" in out


def test_a_missing_agent_binary_fails_the_session_with_a_hint(make_bridge):
    bridge = make_bridge()
    bridge.config.write_text(bridge.config.read_text() + '\n[agents.ghost]\nprotocol = "claude"\n'
                             'command = ["no-such-agent-binary"]\n')
    bridge.start()
    result = bridge.cli("new", "demo", "hi", "--agent", "ghost", check=False)
    assert result.returncode == 1
    assert "not found on PATH" in result.stderr
    (session,) = bridge.json("sessions")
    assert session["state"] == "failed" and "not found" in session["error"]


def test_an_idle_agent_is_closed_after_idle_exit_and_a_reply_resumes_it(make_bridge):
    bridge = make_bridge(agents={"chat": ["text"]})
    bridge.config.write_text(bridge.config.read_text().replace(
        'shutdown_grace = "1s"', 'shutdown_grace = "1s"\nidle_exit = "0.3s"'))
    bridge.start()
    sid = bridge.json("new", "demo", "hello", "--agent", "chat")["id"]
    first = bridge.wait_state(sid, "completed")
    assert [e["kind"] for e in first["events"]][-1] == "exited"
    bridge.cli("send", sid, "again")
    wait_until(lambda: bridge.session(sid)["turns"] == 2, what="the resumed turn")
    assert bridge.session(sid)["agent_session_id"] == first["agent_session_id"]
