"""Issue 14, follow-ups: validation that a trailing newline slipped past, doctor reporting
the state dir's permissions, and a clean shutdown in the middle of a turn."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest

from bridge.config import load_config, parse_duration
from bridge.errors import ConfigError
from bridge.session import (
    DAEMON_STOPPED,
    LIVE_STATES,
    SessionState,
    Trigger,
    apply,
    closed_under,
)
from daemon import doctor as doctor_module
from daemon import paths
from daemon.doctor import Check

# -- config: every pattern matches the whole value ------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[projects]]\nname = "api\\n"\npath = "/srv/api"\n', "projects[0].name"),
        ('[agents."claude\\n"]\ncommand = ["claude"]\n', "agents.claude\n"),
        ('[hosts."box\\n"]\naddress = "box"\n', "hosts.box\n"),
        ('[hosts.box]\naddress = "box.example\\n"\n', "hosts.box.address"),
        ('[hosts.box]\naddress = "::1\\n"\n', "hosts.box.address"),
        ('[hosts.box]\naddress = "box"\nuser = "deploy\\n"\n', "hosts.box.user"),
        ('[hosts.box]\naddress = "box"\nuser = "de ploy"\n', "hosts.box.user"),
        ('[approvals]\ntimeout = "30m\\n"\n', None),  # a duration may have spaces around
    ],
)
def test_a_value_with_a_trailing_newline_is_a_config_error_naming_the_key(text, key):
    if key is None:
        assert load_config(text).approvals.timeout == 1800
        return
    with pytest.raises(ConfigError) as info:
        load_config(text)
    assert info.value.key == key


def test_plain_names_and_hosts_still_load():
    config = load_config('[[projects]]\nname = "api.v2_x-1"\npath = "/srv/api"\n'
                         '[hosts.box]\naddress = "[::1]"\nuser = "deploy@corp"\n'
                         '[hosts.b2]\naddress = "build-2.example.com"\n')
    assert config.hosts["box"].user == "deploy@corp"
    assert parse_duration(" 2h ", "k") == 7200
    with pytest.raises(ConfigError):
        parse_duration("2h\nx", "k")


# -- doctor reports the state dir's privacy, and changes nothing ----------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _state_check(state: Path) -> Check:
    return doctor_module._state(load_config(f'[daemon]\nstate_dir = "{state}"\n'))


def _open_state(tmp_path: Path) -> Path:
    """A state dir as an older version (or a person) left it: all of it readable by others."""
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)
    for name in ("agent-bridge.db", "agent-bridge.db-wal", "agent-bridge.lock"):
        (state / name).write_text("x")
        (state / name).chmod(0o644)
    return state


def test_doctor_reports_an_open_state_dir_and_files_and_changes_nothing(make_bridge, tmp_path):
    state = _open_state(tmp_path)
    bridge = make_bridge()
    result = bridge.cli("doctor", "--json", check=False)
    (check,) = [c for c in json.loads(result.stdout) if c["name"] == "state dir"]
    assert check["status"] == "warn"
    assert f"{state} is open to other users (mode 755)" in check["detail"]
    assert f"run `chmod 700 {state}`" in check["detail"]
    for name in ("agent-bridge.db", "agent-bridge.db-wal", "agent-bridge.lock"):
        assert f"{state / name} has mode 644, not 600" in check["detail"]
    assert "the daemon makes it 600 when it starts" in check["detail"]
    assert _mode(state) == 0o755  # reported, not changed
    assert {_mode(p) for p in state.iterdir()} == {0o644}
    assert sorted(p.name for p in state.iterdir()) == [
        "agent-bridge.db", "agent-bridge.db-wal", "agent-bridge.lock"]


def test_doctor_says_a_private_state_dir_is_fine(tmp_path):
    state = tmp_path / "state"
    assert _state_check(state).status == "ok"  # missing: the daemon creates it private
    assert not state.exists()
    state.mkdir(mode=0o700)
    (state / "agent-bridge.db").touch(mode=0o600)
    assert _state_check(state) == Check("state dir", "ok", str(state))


@pytest.mark.parametrize("name", ["agent-bridge.lock", "agent-bridge.db",
                                  "agent-bridge.db-shm", "agent-bridge.sock"])
def test_doctor_fails_on_a_symlink_in_the_state_dir_and_follows_none(tmp_path, name):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    (state / name).symlink_to(victim)
    check = _state_check(state)
    assert check.status == "fail"
    assert f"{state / name}" in check.detail and "is a symbolic link" in check.detail
    assert f"rm {state / name}" in check.detail
    assert "the daemon will not start until then" in check.detail
    assert (state / name).is_symlink()
    assert victim.read_text() == "precious\n" and _mode(victim) == 0o644


def test_doctor_fails_on_a_file_in_the_sockets_place(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "agent-bridge.sock").write_text("not a socket")
    check = _state_check(state)
    assert check.status == "fail"
    assert "is where the control socket goes, and it is not a socket" in check.detail


@pytest.mark.skipif(os.getuid() != 0, reason="making a file of another user takes root")
@pytest.mark.parametrize("what", ["dir", "database"])
def test_doctor_fails_on_a_state_of_another_user(tmp_path, what):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    target = state if what == "dir" else state / "agent-bridge.db"
    target.touch(mode=0o600)
    os.chown(target, 4242, 4242)
    check = _state_check(state)
    assert check.status == "fail"
    assert "belongs to another user (uid 4242)" in check.detail
    assert (target.stat().st_uid, _mode(target)) == (4242, 0o700 if what == "dir" else 0o600)


def test_the_daemon_and_doctor_judge_the_state_the_same_way(tmp_path):
    # the daemon acts on what doctor reports: after it started, doctor has nothing to say
    state = _open_state(tmp_path)
    assert paths.secure_state_dir(state) is not None
    os.close(paths.open_private(paths.lock_path(state)))
    for suffix in ("", "-wal"):
        paths.tighten_private(state / f"agent-bridge.db{suffix}")
    assert paths.inspect_state(state) == []


# -- a clean shutdown in the middle of a turn is no completed turn --------------------------


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_clean_shutdown_mid_turn_fails_the_turn_and_resume_continues(make_bridge, how):
    bridge = make_bridge(agents={"claude": ["approve"], "chat": ["text"]})
    bridge.start()
    waiting = bridge.json("new", "demo", "please run a command")["id"]
    pending = bridge.wait_approval(waiting)
    idle = bridge.json("new", "demo", "say something", "--agent", "chat")["id"]
    bridge.wait_state(idle, "idle")
    assert bridge.process is not None
    bridge.process.send_signal(how)
    assert bridge.process.wait(20) == 0
    bridge.process = None
    bridge.start()

    shown = bridge.session(waiting)
    assert shown["state"] == "failed"
    assert shown["error"] == ("the daemon stopped while this session was waiting approval; "
                              "resume to continue")
    (approval,) = [a for a in shown["approvals"] if a["id"] == pending[0]["id"]]
    assert approval["state"] == "expired"
    assert not [a for a in bridge.answers() if a.get("response", {}).get("behavior") == "allow"]
    assert (bridge.session(idle)["state"], bridge.session(idle)["error"]) == ("completed", None)

    bridge.json("resume", waiting, "go on")
    bridge.wait_approval(waiting)
    assert bridge.session(waiting)["error"] is None


@pytest.mark.parametrize("during", list(SessionState))
def test_a_session_closed_under_a_turn_failed_and_one_at_rest_exited(during):
    trigger, reason = closed_under(during, DAEMON_STOPPED)
    if during in (SessionState.STARTING, SessionState.RUNNING, SessionState.WAITING_APPROVAL):
        assert trigger is Trigger.CRASHED
        assert reason == (f"the daemon stopped while this session was "
                          f"{during.value.replace('_', ' ')}; resume to continue")
        # and the turn may have ended meanwhile: the session still fails
        assert apply(SessionState.IDLE, trigger) is SessionState.FAILED
    else:
        assert (trigger, reason) == (Trigger.EXITED, None)
    if during in LIVE_STATES:
        assert apply(during, trigger) is (SessionState.COMPLETED if during is SessionState.IDLE
                                          else SessionState.FAILED)
