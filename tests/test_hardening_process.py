"""Issue 14, the process side: agents that flood stderr or never speak their protocol,
leftovers of a crashed daemon, file modes of the state, and what goes into a remote shell."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.config import load_config
from bridge.errors import ConfigError
from daemon import paths
from daemon.api import ControlServer
from daemon.errors import DaemonError, LaunchError
from daemon.launch import StderrTail
from daemon.ssh import remote_command
from daemon.store import Store
from tests.harness import FAKE_CLAUDE, Bridge, wait_until

# -- 10: a stderr line over 64 KiB -------------------------------------------------------

# writes one 200 KiB stderr line and 1 MiB of ordinary ones, then becomes the fake agent
NOISY = (
    "import os, sys\n"
    "sys.stderr.buffer.write(b'x' * 200 * 1024 + b'\\n')\n"
    "for i in range(40000):\n"
    "    sys.stderr.buffer.write(b'after the long line %05d\\n' % i)\n"
    "sys.stderr.flush()\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
)


def agent_table(name: str, command: list[str], protocol: str = "claude") -> str:
    return f'[agents.{name}]\nprotocol = "{protocol}"\ncommand = {json.dumps(command)}\n'


def test_a_stderr_line_over_64_kib_does_not_stall_the_agent(make_bridge, tmp_path):
    command = [sys.executable, "-c", NOISY, str(FAKE_CLAUDE), "--record",
               str(tmp_path / "record.jsonl"), "--scenario", "text"]
    bridge = make_bridge(extra=agent_table("noisy", command))
    bridge.start()
    sid = bridge.json("new", "demo", "say something", "--agent", "noisy")["id"]
    bridge.wait_state(sid, "idle")  # without chunked draining it stays `running` forever
    bridge.json("stop", sid)
    exited = wait_until(lambda: [e for e in bridge.session(sid)["events"]
                                 if e["kind"] == "exited"], what="the exit to be recorded")
    assert "after the long line 39999" in exited[0]["data"]["stderr"]  # drained to the end


def test_the_stderr_tail_is_bounded_and_independent_of_chunking():
    data = b"first\n" + b"y" * 300_000 + b"\n" + "é line\n".encode() * 3 + b"no newline"
    texts = set()
    for seed in range(20):
        rng = random.Random(seed)
        tail = StderrTail(lines=5, line_max=100)
        i = 0
        while i < len(data):
            n = rng.randint(1, 70_000)
            tail.feed(data[i:i + n])
            i += n
        tail.finish()
        texts.add(tail.text())
    (text,) = texts
    assert text.splitlines() == [  # the last 5 lines; the long one cut, with its size
        "y" * 100 + "… (a line of 300000 bytes)", "é line", "é line", "é line", "no newline"]
    endless = StderrTail(lines=2, line_max=50)
    for _ in range(100):
        endless.feed(b"z" * 1_000_000)  # one endless line: memory stays bounded
    assert len(endless._partial) <= 200


# -- 20: an agent that exits 0 without speaking its protocol -----------------------------

@pytest.mark.parametrize(
    ("protocol", "name"),
    [("claude", "Claude Code stream-json"), ("codex", "Codex app-server"),
     ("acp", "Agent Client Protocol")],
)
def test_an_agent_that_exits_0_without_its_protocol_fails_saying_so(make_bridge, protocol,
                                                                    name):
    bridge = make_bridge(extra=agent_table("echo", ["/bin/echo", "hi"], protocol))
    bridge.start()
    sid = bridge.json("new", "demo", "hello", "--agent", "echo")["id"]
    session = bridge.wait_state(sid, "failed", "completed")
    assert session["state"] == "failed"
    assert f"exited (status 0) without speaking the {name}" in session["error"]
    assert "stdout: hi" in session["error"]


# -- 11: recovery kills the leftovers of every session with a recorded process -----------

def _set_state(bridge: Bridge, states: dict[str, str]) -> None:
    """What the crash left in the database: sessions that had failed or been stopped while
    their agent was still alive (a failed turn keeps the process; a stop cut short)."""
    db = sqlite3.connect(bridge.tmp / "state" / "agent-bridge.db")
    with db:
        for sid, state in states.items():
            db.execute("UPDATE sessions SET state = ? WHERE id = ?", (state, sid))
    db.close()


def test_a_restart_kills_the_agents_of_failed_and_stopped_sessions(make_bridge):
    bridge = make_bridge(agents={"hang": ["hang"]})
    bridge.start()
    sids = [bridge.json("new", "demo", "please run a command", "--agent", "hang")["id"]
            for _ in range(2)]
    for sid in sids:
        bridge.wait_approval(sid)
    bridge.kill()
    assert len(bridge.leftovers()) == 2  # both hung agents outlived the daemon
    _set_state(bridge, {sids[0]: "failed", sids[1]: "stopped"})
    bridge.start()
    wait_until(lambda: bridge.leftovers() == [bridge.process.pid],
               what="the agents of the failed and the stopped session to be killed")
    assert [bridge.session(s)["state"] for s in sids] == ["failed", "stopped"]
    assert "killed 2 process(es) left by the last run" in bridge.log_text()


def test_a_restart_kills_what_an_exited_agent_left_in_its_group(make_bridge, tmp_path):
    # the agent starts a long-running child (a dev server, say) and exits when its stdin
    # closes with the daemon; the child stays, in the agent's group, with its session id
    command = ["/bin/sh", "-c", 'sleep 600 & exec "$@"', "agent", sys.executable,
               str(FAKE_CLAUDE), "--record", str(tmp_path / "record.jsonl")]
    bridge = make_bridge(extra=agent_table("parent", command))
    bridge.start()
    sid = bridge.json("new", "demo", "please run a command", "--agent", "parent")["id"]
    bridge.wait_approval(sid)
    bridge.kill()
    left = wait_until(lambda: len(p := bridge.leftovers()) == 1 and p,
                      what="the agent to exit, leaving its child")
    assert b"sleep" in Path(f"/proc/{left[0]}/cmdline").read_bytes()
    bridge.start()
    wait_until(lambda: bridge.leftovers() == [bridge.process.pid],
               what="the child the agent left to be killed")
    assert bridge.session(sid)["state"] == "failed"


# -- 6: the state is private, and nothing in it is followed through a symlink -------------

def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_the_daemon_makes_its_state_private_and_says_so(make_bridge, tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)  # as an older version, or a person, left it
    bridge = make_bridge()
    bridge.start()
    sid = bridge.json("new", "demo", "please run a command")["id"]
    bridge.wait_approval(sid)  # some writes: the WAL and the shared memory exist
    assert mode(state) == 0o700
    files = ["agent-bridge.db", "agent-bridge.db-wal", "agent-bridge.db-shm",
             "agent-bridge.lock", "agent-bridge.sock"]
    assert {f: mode(state / f) for f in files} == dict.fromkeys(files, 0o600)
    assert "was open to other users (mode 755); made it 700" in bridge.log_text()


def test_a_symlinked_lock_file_is_refused_and_not_followed(make_bridge, tmp_path):
    bridge = make_bridge()
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (state / "agent-bridge.lock").symlink_to(victim)
    result = bridge.cli("run", check=False)
    assert result.returncode != 0
    assert f"{state / 'agent-bridge.lock'} is a symbolic link" in result.stderr
    assert "Remove it" in result.stderr
    assert "Traceback" not in result.stderr
    assert victim.read_text() == "precious\n"


def test_a_state_dir_of_another_user_is_refused(tmp_path):
    state = tmp_path / "theirs"
    state.mkdir(mode=0o755)
    if os.getuid() != 0:
        pytest.skip("making a directory of another user takes root")
    os.chown(state, 4242, 4242)
    with pytest.raises(DaemonError, match=r"belongs to another user .*state_dir"):
        paths.secure_state_dir(state)
    assert mode(state) == 0o755  # not touched


async def test_the_database_and_its_journals_are_made_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        old = tmp_path / "old.db"
        old.touch(mode=0o644)  # as an older version left them
        (tmp_path / "old.db-wal").touch(mode=0o644)
        store = await Store.open(old)
        assert mode(old) == mode(tmp_path / "old.db-wal") == 0o600
        await store.close()
        store = await Store.open(tmp_path / "new.db")
        files = ["new.db", "new.db-wal", "new.db-shm"]
        assert {f: mode(tmp_path / f) for f in files} == dict.fromkeys(files, 0o600)
        await store.close()
        (tmp_path / "link.db").symlink_to(tmp_path / "new.db")
        with pytest.raises(DaemonError, match="is a symbolic link"):
            await Store.open(tmp_path / "link.db")
    finally:
        os.umask(previous)


@pytest.mark.parametrize("what", ["symlink", "file"])
async def test_a_symlink_or_a_file_in_the_sockets_place_is_refused(tmp_path, what):
    target = tmp_path / "target"
    target.write_text("keep me\n")
    place = tmp_path / "agent-bridge.sock"
    if what == "symlink":
        place.symlink_to(target)
    else:
        place.write_text("keep me\n")
    server = ControlServer(None, place)  # type: ignore[arg-type]  # refused before any use
    with pytest.raises(DaemonError, match="symbolic link" if what == "symlink" else "not a socket"):
        await server.start()
    assert target.read_text() == place.read_text() == "keep me\n"


# -- 5: what goes into a remote shell command line -----------------------------------------

@pytest.mark.parametrize("table", ["hosts.build", "agents.claude"])
@pytest.mark.parametrize("name", ["FOO;rm -rf ~", "1X", "A B", "X=Y", "A\n", "$(id)"])
def test_env_names_must_be_identifiers(table, name):
    text = ('[hosts.build]\naddress = "build.example"\n'
            f"[{table}.env]\n{json.dumps(name)} = \"v\"\n")
    with pytest.raises(ConfigError) as raised:
        load_config(text)
    shown = name.encode("unicode_escape").decode()
    assert str(raised.value).startswith(
        f'{table}.env: "{shown}" is not a valid environment variable name')
    good = load_config(text.replace(json.dumps(name), "_PATH_2").replace(
        '"v"', json.dumps("$(rm -rf ~); `x` 'q'")))  # any value: it is quoted
    assert good.hosts["build"].env or good.agents["claude"].env


def test_the_remote_command_quotes_every_part_and_refuses_a_bad_name(tmp_path):
    # run through a real shell: what arrives is exactly what was given, nothing runs
    cwd = tmp_path / "a dir 'with' $(touch cwd-ran) `q`"
    cwd.mkdir()
    hostile = "$(touch value-ran); `touch tick-ran` 'q' \"d\" \\ \n;"
    command = remote_command(
        [sys.executable, "-c", "import os, sys; print(repr((os.getcwd(), sys.argv[1:], "
         "os.environ['V'])))", hostile, "a b", "*"],
        cwd=str(cwd), env={"V": hostile})
    result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True,
                            cwd=tmp_path, timeout=30, check=True)
    assert result.stdout.strip() == repr((str(cwd), [hostile, "a b", "*"], hostile))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith("-ran")]
    with pytest.raises(LaunchError, match="not a valid environment variable name"):
        remote_command(["true"], cwd="/", env={"A;touch x": "1"})
