"""SIGHUP reloads the config: what may change live is applied at once, what needs a restart
is named in the log, and a bad file is logged with its key while the old config runs on.
A SIGHUP from a terminal that closed still stops the daemon, as cleanly as SIGTERM."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import termios
from pathlib import Path

import pytest

from daemon.client import call
from daemon.errors import ApiError
from tests.harness import Bridge, agent_bridge_argv, wait_until


def hup_and_wait(bridge: Bridge, text: str, count: int = 1) -> str:
    """SIGHUP the daemon; the log once it has said `text` `count` times."""
    assert bridge.process is not None
    bridge.process.send_signal(signal.SIGHUP)
    return wait_until(lambda: (log := bridge.log.read_text()).count(text) >= count and log,
                      what=f"{text!r} in the daemon's log")


def socket_of(bridge: Bridge) -> Path:
    return bridge.tmp / "state" / "agent-bridge.sock"


def test_sighup_applies_live_changes_and_names_those_that_need_a_restart(make_bridge):
    bridge = make_bridge()
    bridge.start()
    sid = bridge.json("new", "demo", "please run a command")["id"]
    (approval,) = bridge.wait_approval(sid)
    second = bridge.tmp / "second"
    second.mkdir()
    original = bridge.config.read_text()
    assert 'shutdown_grace = "1s"' in original
    bridge.config.write_text(
        original.replace('shutdown_grace = "1s"', 'shutdown_grace = "3s"')
        + f'[[projects]]\nname = "second"\npath = "{second}"\n'
        + '[approvals]\ntimeout = "1s"\n')
    refused = bridge.cli("new", "second", "hello", check=False)
    assert refused.returncode == 1 and "no project 'second'" in refused.stderr  # not yet

    log = hup_and_wait(bridge, "config reloaded from")
    assert f"config reloaded from {bridge.config}: projects, approvals" in log
    assert ("config: daemon.shutdown_grace changed; these apply only after a restart of "
            "agent-bridge (until then the old values stay)") in log
    # projects: a session starts in the new one, without a restart
    started = bridge.json("new", "second", "please run a command")
    assert started["project"] == "second" and started["cwd"] == str(second)
    # approvals: the new timeout applies to what already waited (denied, never allowed)
    expired = wait_until(
        lambda: [a for a in bridge.session(sid)["approvals"]
                 if a["id"] == approval["id"] and a["state"] != "pending"],
        what="the waiting approval to time out under the reloaded timeout")
    assert (expired[0]["state"], expired[0]["decided_by"]) == ("denied", "timeout")
    assert bridge.process is not None and bridge.process.poll() is None
    assert "received SIGHUP: stopping" not in log


def test_a_bad_config_on_reload_is_logged_with_its_key_and_the_old_one_kept(make_bridge):
    bridge = make_bridge()
    bridge.start()
    third = bridge.tmp / "third"
    third.mkdir()
    original = bridge.config.read_text()
    with_third = original + f'[[projects]]\nname = "third"\npath = "{third}"\n'
    bridge.config.write_text(with_third + '[approvals]\ntimeout = "soon"\n')

    log = hup_and_wait(bridge, "config reload failed")
    assert ("config reload failed, the running config is kept: approvals.timeout: "
            "expected a duration like") in log
    sock = socket_of(bridge)  # the CLI would refuse the bad file; the socket answers
    with pytest.raises(ApiError, match="no project 'third'"):
        call(sock, "new", project="third", prompt="hello", agent=None, worktree=False,
             plan=False)  # nothing of the bad file was applied, not even its good part
    kept = call(sock, "new", project="demo", prompt="please run a command", agent=None,
                worktree=False, plan=False)
    assert kept["project"] == "demo"

    bridge.config.write_text(with_third)  # fixed: the next SIGHUP takes it
    hup_and_wait(bridge, "config reloaded from")
    assert bridge.json("new", "third", "please run a command")["project"] == "third"
    assert bridge.process is not None and bridge.process.poll() is None


def test_a_reload_that_would_need_a_restart_to_work_is_refused(make_bridge):
    """A project on a host added in the same file: hosts connect only at start, so the
    project could not run; the reload says so and keeps the old config."""
    bridge = make_bridge()
    bridge.start()
    bridge.config.write_text(
        bridge.config.read_text()
        + '[[projects]]\nname = "far"\npath = "/srv/far"\nhost = "box"\n'
        + '[hosts.box]\naddress = "127.0.0.1"\n')
    log = hup_and_wait(bridge, "config reload")
    assert ("config reload failed, the running config is kept: projects[1].host: host "
            "'box' is not one the daemon connected at start") in log


def _controlling_terminal() -> None:  # runs in the child, after setsid
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.mark.parametrize("output", ["terminal", "file"])
def test_the_terminal_closing_still_stops_the_daemon_cleanly(make_bridge, output):
    """`agent-bridge run` in a terminal, its log there or in a file (`run 2>log`): the
    window closes, the kernel hangs the terminal up and sends SIGHUP."""
    bridge = make_bridge()
    master, slave = os.openpty()
    log = bridge.log.open("ab")
    out = slave if output == "terminal" else log.fileno()
    try:
        bridge.process = subprocess.Popen(
            [*agent_bridge_argv(), "--config", str(bridge.config), "run"], env=bridge.env,
            stdin=slave, stdout=out, stderr=out, cwd=bridge.tmp, start_new_session=True,
            preexec_fn=_controlling_terminal)
        log.close()
        os.close(slave)
        slave = -1

        def drain() -> None:  # keep the terminal's buffer from filling up
            with contextlib.suppress(OSError):
                os.set_blocking(master, False)
                while os.read(master, 65536):
                    pass

        wait_until(lambda: (drain(), bridge.cli("sessions", check=False).returncode == 0)[1],
                   what="the daemon on a terminal to answer")
        sid = bridge.json("new", "demo", "please run a command")["id"]
        bridge.wait_approval(sid)
        os.close(master)  # the terminal window closes: the kernel hangs it up (SIGHUP)
        master = -1
        assert bridge.process.wait(20) == 0
    finally:
        log.close()
        for fd in (master, slave):
            if fd >= 0:
                os.close(fd)
    bridge.process = None
    if output == "file":
        assert "received SIGHUP: stopping" in bridge.log.read_text()
    wait_until(lambda: not bridge.leftovers(), what="the agents to exit")
    bridge.start()
    shown = bridge.session(sid)
    assert (shown["state"], shown["error"]) == (
        "failed", "the daemon stopped while this session was waiting approval; resume to "
                  "continue")
