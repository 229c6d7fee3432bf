"""Terminal sessions through the agents' hooks (issue 19): `agent-bridge hook` run the way the
agents run it (its JSON on stdin), against the real daemon with the fake Telegram; away mode;
no decision whenever nobody answers. The real binaries' side: test_real_terminal_hooks.py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from daemon import hook
from daemon.client import call
from daemon.errors import ApiError
from tests.harness import Bridge, agent_bridge_argv, wait_until
from tests.telegram_harness import ALICE, CHAT

ALLOW = {"hookSpecificOutput": {"hookEventName": "PermissionRequest",
                                "decision": {"behavior": "allow"}}}


def claude_request(bridge: Bridge, command: str = "touch made.txt",
                   session: str = "11111111-2222-3333-4444-555555555555") -> dict[str, Any]:
    """A PermissionRequest input as Claude Code 2.1.331 sends it (docs/terminal-hooks.md)."""
    return {
        "session_id": session, "transcript_path": "/dev/null", "cwd": str(bridge.project),
        "prompt_id": "p1", "permission_mode": "default", "effort": {"level": "medium"},
        "hook_event_name": "PermissionRequest", "tool_name": "Bash",
        "tool_input": {"command": command, "description": "make a file"},
        "permission_suggestions": [],
    }


def sock(bridge: Bridge) -> Path:
    return bridge.tmp / "state" / "agent-bridge.sock"


def start_hook(bridge: Bridge, payload: dict[str, Any], kind: str = "permission-request",
               *extra: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*agent_bridge_argv(), "hook", kind, "--agent", "claude", "--socket", str(sock(bridge)),
         *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=bridge.env)
    assert process.stdin is not None
    process.stdin.write(json.dumps(payload))
    process.stdin.close()
    return process


def finish(process: subprocess.Popen[str], timeout: float = 15) -> tuple[int, str]:
    assert process.stdout is not None
    out = process.stdout.read()
    return process.wait(timeout), out


def git_project(bridge: Bridge) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(bridge.project), *args], check=True,
                       capture_output=True, env={**bridge.env, "GIT_AUTHOR_NAME": "t",
                       "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@e"})
    git("init", "-q", "-b", "main")
    (bridge.project / "README").write_text("hello\n")
    git("add", "README")
    git("commit", "-qm", "first")


@pytest.fixture
def chat(make_bridge, tg):
    bridge = make_bridge(extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    git_project(bridge)
    bridge.start()
    tg.wait_for("setMyCommands")
    tg.wait_for("getUpdates", ok=None)
    return bridge


# -- no decision: not away, daemon down, timeout -----------------------------------------------


def test_not_away_the_hook_returns_no_decision_at_once(bridge):
    assert "Not away" in bridge.cli("away").stdout
    started = time.monotonic()
    code, out = finish(start_hook(bridge, claude_request(bridge)))
    elapsed = time.monotonic() - started
    print(f"not away: the hook answered in {elapsed * 1000:.0f} ms (process start included)")
    assert (code, out) == (0, "")
    assert elapsed < 5
    assert bridge.json("sessions") == []  # nothing was opened for it


def test_away_takes_only_true_or_false(bridge):
    """`{"set": "off"}` is a mistake, not a switch on (bool("off") is True)."""
    for wrong in ("off", "false", 0, "no"):
        with pytest.raises(ApiError, match="set must be true or false"):
            call(sock(bridge), "away", set=wrong)
    assert call(sock(bridge), "away")["away"] is False
    assert call(sock(bridge), "away", set=True)["away"] is True


def test_daemon_down_no_decision_within_100_ms(tmp_path, capsys):
    payload = json.dumps({"tool_name": "Bash", "tool_input": {"command": "x"},
                          "session_id": "s"})
    missing = tmp_path / "state" / "agent-bridge.sock"
    # a socket file left by a daemon that died: it refuses, it does not hang
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))
    timings = []
    for path in (missing, stale):
        import io
        out = io.StringIO()
        started = time.monotonic()
        code = hook.run(["permission-request", "--agent", "claude", "--socket", str(path)],
                        stdin=io.StringIO(payload), stdout=out)
        timings.append(time.monotonic() - started)
        assert (code, out.getvalue()) == (0, "")
    started = time.monotonic()
    result = subprocess.run([*agent_bridge_argv(), "hook", "permission-request", "--agent",
                             "codex", "--socket", str(missing)], input=payload,
                            capture_output=True, text=True, timeout=30)
    whole = time.monotonic() - started
    with capsys.disabled():
        print(f"\ndaemon down: hook decided 'no decision' in {timings[0] * 1000:.1f} ms "
              f"(no socket), {timings[1] * 1000:.1f} ms (stale socket); the whole "
              f"`agent-bridge hook` process took {whole * 1000:.0f} ms")
    assert (result.returncode, result.stdout) == (0, "")
    assert max(timings) < 0.1
    assert whole < 1.0  # generous for a loaded machine; ~50 ms when idle


def test_timeout_is_no_decision_and_the_card_says_so(chat, tg):
    chat.cli("away", "on")
    process = start_hook(chat, claude_request(chat), "permission-request", "--timeout", "2")
    card = tg.message_with("Approval needed")
    code, out = finish(process)
    assert (code, out) == (0, "")  # the terminal asks: never an allow on timeout
    sid = chat.json("sessions")[0]["id"]
    approvals = chat.session(sid)["approvals"]
    wait_until(lambda: chat.session(sid)["approvals"][0]["state"] == "withdrawn",
               what="the approval withdrawn once the hook gave up")
    assert approvals[0]["decision"] is None
    tg.wait_for("editMessageText", lambda c: c.params.get("message_id") == card.message_id)


def test_the_daemons_approval_timeout_never_denies_a_terminal_it_asks(make_bridge):
    """`[approvals] on_timeout = "deny"` denies a daemon session's request; a terminal's gets
    no decision instead (the terminal asks), and its card says nothing was approved."""
    bridge = make_bridge(extra='[approvals]\ntimeout = "1s"\non_timeout = "deny"\n')
    bridge.start()
    bridge.cli("away", "on")
    started = time.monotonic()
    assert finish(start_hook(bridge, claude_request(bridge)), timeout=30) == (0, "")
    assert time.monotonic() - started < 20  # the timer released it, not the hook's 590 s
    sid = bridge.json("sessions")[0]["id"]
    [approval] = bridge.session(sid)["approvals"]
    assert approval["state"] in ("withdrawn", "expired") and approval["decision"] is None


def test_the_daemons_own_agents_hooks_make_no_second_card(bridge):
    """With the hooks installed in the person's settings, the agents the daemon runs would
    call them too: they are left to the daemon's own protocol."""
    bridge.cli("away", "on")
    sid = bridge.json("new", "demo", "please run a command")["id"]
    bridge.wait_approval(sid)
    own = bridge.session(sid)["agent_session_id"]
    assert own
    # by its environment (the daemon sets AGENT_BRIDGE_SESSION for its agents)...
    process = subprocess.run(
        [*agent_bridge_argv(), "hook", "permission-request", "--socket", str(sock(bridge))],
        input=json.dumps(claude_request(bridge, session="someone-else")), capture_output=True,
        text=True, timeout=30, env={**bridge.env, "AGENT_BRIDGE_SESSION": sid})
    assert (process.returncode, process.stdout) == (0, "")
    # ...and, should the environment not say, by its session id
    assert finish(start_hook(bridge, claude_request(bridge, session=own))) == (0, "")
    assert [s["id"] for s in bridge.json("sessions")] == [sid]


def test_unparsable_input_and_other_hook_kinds_are_no_decision(bridge):
    process = subprocess.run(
        [*agent_bridge_argv(), "hook", "permission-request", "--socket", str(sock(bridge))],
        input="not json", capture_output=True, text=True, timeout=30)
    assert (process.returncode, process.stdout) == (0, "")
    assert "not JSON" in process.stderr
    bridge.cli("away", "on")
    question = {**claude_request(bridge), "tool_name": "AskUserQuestion",
                "tool_input": {"questions": []}}  # malformed: no questions
    assert finish(start_hook(bridge, question)) == (0, "")
    # a plan review: Claude's terminal UI ignores a hook's answer to it (see
    # test_real_terminal_hooks.py), so it is never turned into a card
    plan = {**claude_request(bridge), "tool_name": "ExitPlanMode",
            "tool_input": {"plan": "# Plan"}}
    assert finish(start_hook(bridge, plan)) == (0, "")
    assert bridge.json("sessions") == []


# -- away: the card answers the hook ------------------------------------------------------------


def test_away_says_where_requests_go_and_that_hooks_are_missing(bridge):
    """A first `away on`, with no chat configured and no hooks installed, neither claims
    that anything comes to chat nor keeps quiet about the missing hooks."""
    out = bridge.cli("away", "on").stdout
    assert "come to chat" not in out
    assert "wait here, as no chat is configured" in out and "agent-bridge approve" in out
    assert "hooks are not installed for this daemon; run `agent-bridge hooks install`" in out
    assert bridge.json("away")["hooks"] == []
    bridge.cli("hooks", "install", "--claude", "--yes")
    out = bridge.cli("away", "on").stdout
    assert "hooks are not installed" not in out
    assert bridge.json("away")["hooks"] == ["claude"]
    assert "Not away" in bridge.cli("away", "off").stdout


def test_away_card_in_a_terminal_thread_tap_allows(chat, tg):
    on = chat.cli("away", "on").stdout
    assert on.startswith("Away: terminal sessions' permission requests come to Telegram ")
    process = start_hook(chat, claude_request(chat, "touch made.txt"))
    topic = tg.wait_for("createForumTopic")
    assert f"terminal · {socket.gethostname()}:project@main" in topic.params["name"]
    thread = topic.result["message_thread_id"]
    card = tg.message_with("Approval needed", thread)
    assert "touch made.txt" in card.text
    assert [b["text"] for b in card.buttons] == [
        "Allow once", "Allow for session", "Deny", "Deny with reason…"]
    assert process.poll() is None  # it waits for the tap
    aid = card.callback_data[0].split(":")[1]
    assert "Allowed once" in tg.answer(tg.tap(card, f"ao:{aid}")).text
    code, out = finish(process)
    assert code == 0 and json.loads(out) == ALLOW
    session = chat.json("sessions")[0]
    assert session["agent_session_id"] == "11111111-2222-3333-4444-555555555555"
    assert session["title"].startswith("terminal · ")
    # the same terminal session's next request: same thread, denied with a reason
    process = start_hook(chat, claude_request(chat, "rm -rf build"))
    card = tg.message_with("rm -rf build", thread)
    aid = card.callback_data[0].split(":")[1]
    tg.answer(tg.tap(card, f"dn:{aid}"))
    code, out = finish(process)
    decision = json.loads(out)["hookSpecificOutput"]["decision"]
    assert decision["behavior"] == "deny" and "alice" in decision["message"]
    assert len([c for c in tg.fake.calls if c.method == "createForumTopic"]) == 1
    # a reply in the thread does not start a second process on the terminal's session
    tg.say("carry on please", thread=thread)
    refusal = tg.message_with("is a session running in a terminal", thread)
    assert "agent-bridge adopt 11111111-2222-3333-4444-555555555555" in refusal.text


def test_a_file_sent_in_a_terminal_thread_is_refused_and_not_saved(chat, tg):
    """The terminal's session is not the daemon's to prompt: a file sent in its thread is
    refused before anything is downloaded or written into the terminal's project."""
    chat.cli("away", "on")
    process = start_hook(chat, claude_request(chat, "touch made.txt"))
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    card = tg.message_with("Approval needed", thread)
    tg.answer(tg.tap(card, f"ao:{card.callback_data[0].split(':')[1]}"))
    finish(process)
    tg.on(tg.fake.inject_file, CHAT, ALICE, "document", b"notes\n", thread_id=thread,
          file_name="notes.txt", caption="read this")
    refusal = tg.message_with("is a session running in a terminal", thread)
    assert "adopt" in refusal.text
    assert not (chat.project / ".agent-bridge").exists()
    assert tg.fake.calls_to("getFile") == []


def test_the_cli_decides_a_terminal_approval_too_and_allow_for_session_is_kept(chat, tg):
    chat.cli("away", "on")
    process = start_hook(chat, claude_request(chat, "make test"))
    sid = wait_until(lambda: chat.json("sessions"), what="the terminal session")[0]["id"]
    aid = chat.wait_approval(sid)[0]["id"]
    chat.cli("approve", aid, "--for-session")
    assert json.loads(finish(process)[1]) == ALLOW
    # the rule the person made answers the same call again, without a card
    assert json.loads(finish(start_hook(chat, claude_request(chat, "make test")))[1]) == ALLOW


def test_back_releases_a_waiting_hook_and_away_survives_a_restart(chat, tg):
    tg.say("/away")
    tg.message_with("Away: permission requests of terminal sessions")
    process = start_hook(chat, claude_request(chat))
    tg.message_with("Approval needed")
    chat.stop()
    assert finish(process) == (0, "")  # the daemon went away: no decision
    chat.start()
    assert "Away:" in chat.cli("away").stdout  # persisted
    process = start_hook(chat, claude_request(chat, "touch again"))
    tg.message_with("touch again")
    tg.say("/back")
    tg.message_with("Back: terminal sessions ask in their terminal again.")
    assert finish(process) == (0, "")
    assert finish(start_hook(chat, claude_request(chat))) == (0, "")  # not away: at once


def test_turn_end_posts_the_summary_with_the_diff(chat, tg):
    chat.cli("away", "on")
    process = start_hook(chat, claude_request(chat, "echo changed > README"))
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    card = tg.message_with("Approval needed", thread)
    tg.answer(tg.tap(card, f"ao:{card.callback_data[0].split(':')[1]}"))
    finish(process)
    (chat.project / "README").write_text("changed\n")  # what the terminal's agent did
    stop = {"session_id": "11111111-2222-3333-4444-555555555555", "cwd": str(chat.project),
            "hook_event_name": "Stop", "stop_hook_active": False,
            "last_assistant_message": "Changed the README as asked."}
    assert finish(start_hook(chat, stop, "stop")) == (0, "")
    summary = tg.message_with("Turn finished", thread)
    assert "Changed the README as asked." in summary.text
    assert "M README +1 −1" in summary.text
    diff = tg.message_with("diff --git a/README b/README", thread)  # short: inline
    assert "+changed" in diff.text
    # not away: a turn end posts nothing
    chat.cli("away", "off")
    assert finish(start_hook(chat, stop, "stop")) == (0, "")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_another_user_is_refused_even_with_the_socket_opened_up(bridge):
    sock(bridge).chmod(0o666)
    # a second name for the socket where another user can reach it (the test's own
    # directories are private to root)
    opened = Path(tempfile.mkdtemp(prefix="ab-uid-"))
    try:
        opened.chmod(0o755)
        path = opened / "s"
        os.link(sock(bridge), path)
        request = json.dumps({"op": "away"}) + "\n"
        # the daemon refuses at once and closes: the send may meet the closed socket (EPIPE);
        # the refusal is still there to read
        script = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
                  "s.connect(sys.argv[1])\n"
                  "try:\n    s.sendall(sys.argv[2].encode())\nexcept OSError:\n    pass\n"
                  "print(s.makefile().readline())")
        result = subprocess.run(
            ["python3", "-c", script, str(path), request], capture_output=True, text=True,
            timeout=30, user=65534, group=65534, extra_groups=[], cwd="/",
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    finally:
        shutil.rmtree(opened)
    assert result.stdout, result.stderr
    answer = json.loads(result.stdout)
    assert answer["ok"] is False and answer["code"] == "refused", result
    assert "serves only uid 0" in answer["error"]


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_the_hook_trusts_no_socket_another_user_serves(tmp_path):
    """With the daemon down, whoever can put a socket at its path (a state_dir in /tmp
    after a reboot) would answer the user's hooks: an "allow" from a socket another user
    serves is no decision; the same answer from this user's own socket is obeyed."""
    opened = Path(tempfile.mkdtemp(prefix="ab-hook-"))
    opened.chmod(0o1777)
    script = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\n"
              "s.listen(1)\nprint('ready',flush=True)\nc,_=s.accept()\n"
              "c.makefile('rb').readline()\n"
              "c.sendall(b'{\"ok\": true, \"result\": {\"behavior\": \"allow\"}}\\n')\n"
              "c.close()\n")
    payload = json.dumps({"tool_name": "Bash", "tool_input": {"command": "rm -rf ~"},
                          "session_id": "s"})
    printed = {}
    try:
        for who, uid in (("stranger", 65534), ("mine", os.getuid())):
            path = opened / f"{who}.sock"
            server = subprocess.Popen(
                ["python3", "-c", script, str(path)], stdout=subprocess.PIPE, text=True,
                user=uid, group=uid, extra_groups=[], cwd="/",
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
            try:
                assert server.stdout is not None and server.stdout.readline() == "ready\n"
                import io
                out = io.StringIO()
                hook.run(["permission-request", "--agent", "claude", "--socket", str(path),
                          "--timeout", "10"], stdin=io.StringIO(payload), stdout=out)
                printed[who] = out.getvalue()
            finally:
                server.kill()
                server.wait()
    finally:
        shutil.rmtree(opened)
    assert printed["stranger"] == ""
    assert '"behavior": "allow"' in printed["mine"]


def test_what_the_hook_prints_for_each_answer():
    """The one shape both agents accept (docs/terminal-hooks.md); nothing for no decision."""
    out = hook.hook_output
    assert json.loads(out("permission-request", {"behavior": "allow"})) == ALLOW
    deny = json.loads(out("permission-request", {"behavior": "deny", "message": None}))
    assert deny["hookSpecificOutput"]["decision"] == {
        "behavior": "deny", "message": "Denied from agent-bridge."}
    answered = json.loads(out("permission-request", {
        "behavior": "allow", "updated_input": {"questions": [], "answers": {"Q?": "A"}}}))
    assert answered["hookSpecificOutput"]["decision"]["updatedInput"]["answers"] == {"Q?": "A"}
    for nothing in ({"behavior": None}, {}, {"behavior": "ask"}, {"behavior": "approve"}):
        assert out("permission-request", nothing) == ""
    assert out("stop", {"behavior": "allow"}) == ""  # a turn end is never answered
