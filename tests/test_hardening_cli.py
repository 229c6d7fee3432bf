"""Issue 14, the front door: what a person types into a shell and what they paste from it.

The CLI and the daemon run as real processes (tests/harness.py); the pasted line runs in a
real shell."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from bridge.config import ConfigError, load_config
from bridge.redact import Redactor
from bridge.render import TurnSummary, render_summary_card
from bridge.session import SessionState
from daemon.agents import resume_command
from daemon.hub import Hub
from daemon.store import Store
from tests.harness import Bridge, agent_bridge_argv, wait_until

REDACTOR = Redactor()


def run_cli(bridge: Bridge, *args: str, cwd: Path | None = None, config_first: bool = True,
            env: dict[str, str] | None = None, stdout: int | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The CLI as a person runs it, from `cwd`; the config given before the subcommand, or
    after it (`config_first=False`)."""
    config = ["--config", str(bridge.config)]
    argv = [*agent_bridge_argv(), *config, *args] if config_first else \
        [*agent_bridge_argv(), *args, *config]
    return subprocess.run(argv, env=env or bridge.env, cwd=cwd or bridge.tmp, text=True,
                          stdout=subprocess.PIPE if stdout is None else stdout,
                          stderr=subprocess.PIPE, timeout=timeout, check=False)


def set_config(bridge: Bridge, old: str, new: str) -> None:
    text = bridge.config.read_text()
    assert old in text
    bridge.config.write_text(text.replace(old, new))


# -- 5: the "at your desk" line is pasted into a shell -----------------------------------

async def test_the_at_your_desk_line_pastes_as_one_cd_and_one_resume(tmp_path):
    """A crafted directory name runs nothing when the line is pasted; an agent-chosen session
    id that is not a plain token, or a line that redaction would cut into, is not shown."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    argv_file = tmp_path / "argv.json"
    for agent in ("claude", "codex"):  # stand-ins that record how they were called
        stub = bin_dir / agent
        stub.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                        f"open({str(argv_file)!r}, 'w').write(json.dumps([os.getcwd(), "
                        "*sys.argv[1:]]))\n")
        stub.chmod(0o755)
    crafted = tmp_path / "it's $(touch pwned-by-path) `touch pwned-too`; touch pwned-semi"
    # redacting `--password "ab'"` would take the closing quote with it
    secretive = tmp_path / "w --password \"ab'\" ; touch pwned-by-redaction; #"
    plain_id = "0b6f2c1e-6a4d-4f5e-9a51-2f1d2c3b4a59"
    cases = [  # (cwd, agent's session id, whether the line is shown)
        (crafted, plain_id, True),
        (crafted, "x'; touch pwned-by-id; echo '$(touch pwned-sub)", False),
        (crafted, "x --token \"ab'\" ; touch pwned-token; #", False),
        (secretive, plain_id, False),
    ]
    store = await Store.open(tmp_path / "state" / "db.sqlite")
    hub = Hub(config=load_config(""), store=store)
    try:
        for cwd, agent_session, shown in cases:
            cwd.mkdir(exist_ok=True)
            for protocol, expected in (("claude", ["--resume"]), ("codex", ["resume"])):
                session = await store.create_session(
                    project="p", agent=protocol, protocol=protocol, cwd=str(cwd), host="local",
                    title="t", now=1.0, owner="cli:me")
                await store.update_session(session.id, agent_session_id=agent_session,
                                           state=SessionState.IDLE)
                session = await store.session(session.id)
                card = render_summary_card(session, TurnSummary(
                    final_text="Done.", is_error=False,
                    resume_command=resume_command(session)), redactor=REDACTOR)
                lines = [x for x in card.text.splitlines() if x.startswith("at your desk: ")]
                assert bool(lines) is shown, (cwd.name, agent_session, card.text)
                if not lines:
                    continue
                pasted = lines[0].removeprefix("at your desk: ")
                shell = await asyncio.create_subprocess_exec(
                    "/bin/sh", "-c", pasted, cwd=tmp_path, stderr=asyncio.subprocess.PIPE,
                    env={**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"})
                _, stderr = await asyncio.wait_for(shell.communicate(), 20)
                assert shell.returncode == 0, stderr
                assert json.loads(argv_file.read_text()) == [str(cwd), *expected, agent_session]
        assert not [p.name for p in tmp_path.rglob("pwned*") if p.is_file()], \
            "a pasted line ran a command"
    finally:
        await hub.shutdown()
        await store.close()


# -- 17: relative paths mean where the person typing them is ------------------------------

def test_new_with_a_relative_path_runs_where_the_person_is(make_bridge, tmp_path):
    bridge = make_bridge()
    bridge.start()
    here = tmp_path / "work" / "repo"
    (here / "sub").mkdir(parents=True)
    demo_dir = here / "demo"  # a directory with a configured project's name
    demo_dir.mkdir()
    elsewhere_home = tmp_path / "other-home"
    (elsewhere_home / "proj").mkdir(parents=True)

    def started_in(project: str, **kwargs) -> str:
        result = run_cli(bridge, "new", project, "hello", "--json", cwd=here, **kwargs)
        assert result.returncode == 0, result.stderr
        return str(bridge.session(json.loads(result.stdout)["id"])["cwd"])

    assert started_in(".") == str(here)
    assert started_in("./sub") == str(here / "sub")
    assert started_in("sub") == str(here / "sub")  # a directory here, not a project
    assert started_in("sub/..") == str(here)
    assert started_in("..") == str(here.parent)
    # ~ is the home of the person typing, even when the daemon has another
    assert started_in("~/proj", env={**bridge.env, "HOME": str(elsewhere_home)}) == \
        str(elsewhere_home / "proj")
    assert started_in("demo") == str(bridge.project)  # a configured project stays a name
    missing = run_cli(bridge, "new", "./nope", "hello", cwd=here)
    assert missing.returncode == 1 and str(here / "nope") in missing.stderr


# -- 18: every config error stops `run` at once, and `doctor` finds the same ones ---------

BAD_CONFIGS = [
    ('[digest]\ncron = "every morning"\n', "digest.cron"),
    ('[digest]\ntimezone = "Mars/Olympus"\n', "digest.timezone"),
    ('[digest]\ncron = "61 9 * * *"\n', "digest.cron"),
    ('[archive]\nauto_after = inf\n', "archive.auto_after"),
    ('[approvals]\ntimeout = nan\n', "approvals.timeout"),
    ('[[projects]]\nname = "rel"\npath = "src/rel"\n', "projects[1].path"),
    ('[hosts.box]\naddress = "box; rm -rf ~"\n', "hosts.box.address"),
    ('[hosts.box]\naddress = "box"\nknown_hosts = "known"\n', "hosts.box.known_hosts"),
    ('[hosts.box]\naddress = "box"\nport = 70000\n', "hosts.box.port"),
]


@pytest.mark.parametrize(("extra", "key"), BAD_CONFIGS)
def test_run_refuses_a_bad_config_at_once_and_doctor_finds_it(make_bridge, extra, key):
    bridge = make_bridge(extra=extra)
    run = run_cli(bridge, "run", timeout=30)  # hung before: the lock held, nothing serving
    assert run.returncode == 2, run.stderr
    assert f"config error: {key}" in run.stderr and "Traceback" not in run.stderr
    doctor = run_cli(bridge, "doctor", "--json")
    assert doctor.returncode == 1
    (config,) = [c for c in json.loads(doctor.stdout) if c["name"] == "config"]
    assert config["status"] == "fail" and config["detail"].startswith(f"{key}:")


def test_a_state_dir_too_long_for_the_socket_is_a_config_error(make_bridge, tmp_path):
    bridge = make_bridge()
    long_dir = tmp_path / ("s" * 120)
    set_config(bridge, f'state_dir = "{tmp_path / "state"}"', f'state_dir = "{long_dir}"')
    run = run_cli(bridge, "run")
    assert run.returncode == 2 and "daemon.state_dir" in run.stderr
    assert "Traceback" not in run.stderr
    doctor = run_cli(bridge, "doctor")
    assert "[FAIL] config: daemon.state_dir" in doctor.stdout
    sessions = run_cli(bridge, "sessions")
    assert sessions.returncode == 1 and "shorter path" in sessions.stderr
    assert "Traceback" not in sessions.stderr


def test_durations_are_finite_and_paths_absolute():
    for text, key in BAD_CONFIGS[3:]:
        with pytest.raises(ConfigError) as info:
            load_config('[[projects]]\nname = "a"\npath = "/a"\n' + text)
        assert info.value.key == key
    assert load_config('[[projects]]\nname = "a"\npath = "~/a"\n').projects[0].path == "~/a"
    with pytest.raises(ConfigError, match="up to 10 years"):
        load_config('[archive]\nauto_after = "99999999999d"\n')


# -- 19: a state dir that cannot be used, a reader that left, a daemon that is not there --

def test_an_unusable_state_dir_is_explained_without_a_traceback(make_bridge, tmp_path):
    bridge = make_bridge()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    state = blocker / "state"
    set_config(bridge, f'state_dir = "{tmp_path / "state"}"', f'state_dir = "{state}"')
    run = run_cli(bridge, "run")
    assert run.returncode == 1
    assert f"cannot write the state directory {state}: Not a directory" in run.stderr
    assert "set [daemon] state_dir to a writable directory" in run.stderr
    sessions = run_cli(bridge, "sessions")
    assert sessions.returncode == 1
    assert "not a directory" in sessions.stderr and "agent-bridge run" in sessions.stderr
    for result in (run, sessions):
        assert "Traceback" not in result.stderr


def test_something_in_place_of_the_socket_is_explained(make_bridge):
    bridge = make_bridge()
    (bridge.tmp / "state" / "agent-bridge.sock" / "x").mkdir(parents=True)
    run = run_cli(bridge, "run")
    assert run.returncode == 1
    assert "where the control socket goes, and it is not a socket" in run.stderr
    assert "Traceback" not in run.stderr
    assert not bridge.leftovers()


def test_no_daemon_is_said_once_with_what_to_do(make_bridge):
    bridge = make_bridge()
    result = run_cli(bridge, "sessions")
    sock = bridge.tmp / "state" / "agent-bridge.sock"
    assert result.returncode == 1
    assert result.stderr == (f"agent-bridge: the daemon is not running (nothing listens on "
                             f"{sock}); start it with `agent-bridge run` (or `agent-bridge "
                             "service install`)\n")


@pytest.mark.parametrize("args", [("sessions",), ("doctor",)])
def test_a_reader_that_left_is_no_traceback(make_bridge, args):
    bridge = make_bridge()
    bridge.start()
    for _ in range(3):
        bridge.json("new", "demo", "please run a command")
    read, write = os.pipe()
    os.close(read)  # `| head` that has already gone
    try:
        result = run_cli(bridge, *args, stdout=write)
    finally:
        os.close(write)
    assert result.returncode in (0, 141)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


# -- 21: resume, --version, options after the subcommand, SIGHUP --------------------------

def test_resume_without_a_prompt_on_an_idle_session_says_what_to_do(make_bridge):
    bridge = make_bridge(agents={"chat": ["text"]})
    bridge.start()
    sid = bridge.json("new", "demo", "hello", "--agent", "chat")["id"]
    bridge.wait_state(sid, "idle")
    bridge.cli("archive", sid)
    result = run_cli(bridge, "resume", sid)
    assert result.returncode == 0, result.stderr
    assert "already running" not in result.stdout + result.stderr
    assert f"agent-bridge send {sid} TEXT" in result.stdout
    after = bridge.session(sid)
    assert after["state"] == "idle" and after["archived"] is False
    assert after["turns"] == 1  # no prompt was made up


def test_resume_without_a_prompt_on_a_busy_session_says_it_is_at_work(bridge):
    sid = bridge.json("new", "demo", "please run a command")["id"]
    bridge.wait_approval(sid)
    result = run_cli(bridge, "resume", sid)
    assert result.returncode == 1
    assert f"session {sid} is waiting_approval" in result.stderr


def test_version_comes_from_the_package(make_bridge):
    result = run_cli(make_bridge(), "--version", config_first=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"agent-bridge {metadata.version('agent-bridge')}"


def test_global_options_work_after_the_subcommand(make_bridge):
    bridge = make_bridge()
    bridge.start()
    listed = run_cli(bridge, "sessions", "--json", config_first=False)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    bridge.stop()
    set_config(bridge, "[[projects]]", '[digest]\ncron = "never"\n[[projects]]')
    run = run_cli(bridge, "run", config_first=False)
    assert run.returncode == 2 and "digest.cron" in run.stderr  # it read that config


def test_sigint_shuts_down_as_cleanly_as_sigterm(make_bridge):
    # SIGHUP reloads the config now; a terminal that closes still stops it: test_reload.py
    bridge = make_bridge()
    outcome = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        bridge.start()
        sid = bridge.json("new", "demo", "please run a command")["id"]
        bridge.wait_approval(sid)
        assert bridge.process is not None
        bridge.process.send_signal(sig)
        assert bridge.process.wait(20) == 0
        bridge.process = None
        wait_until(lambda: not bridge.leftovers(), what="the agents to exit")
        bridge.start()
        outcome[sig] = {k: bridge.session(sid)[k] for k in ("state", "error")}
        bridge.stop()
    assert outcome[signal.SIGINT] == outcome[signal.SIGTERM]
    assert "received SIGINT: stopping" in bridge.log_text()


def test_what_the_cli_prints_can_be_pasted_and_cannot_drive_the_terminal(bridge):
    """Titles and transcripts come from chats and agents: no control character reaches the
    terminal (OSC 52 would fill the clipboard), and every hint is a command as it is."""
    sid = bridge.json("new", "demo", "please\u202e run\u2066 a\u2069 command\u200b "
                                     "\x1b]52;c;Y3VybA==\x07\x1b[2J\r")["id"]
    (pending,) = bridge.wait_approval(sid)
    for args in (("sessions",), ("show", sid)):
        out = run_cli(bridge, *args).stdout
        assert "\x1b" not in out and "\x07" not in out and "\r" not in out
        assert "\\x1b]52;c;Y3VybA==\\x07" in out
        # text that reorders or hides itself (bidi overrides, isolates, zero width)
        assert not any(c in out for c in "\u202e\u2066\u2069\u200b")
        assert "\\u202e" in out
    hint = next(x for x in run_cli(bridge, "sessions").stdout.splitlines() if pending["id"] in x)
    assert "|" not in hint
    assert f"agent-bridge approve {pending['id']}" in hint
    assert f"agent-bridge deny {pending['id']}" in hint


def test_the_daemon_takes_no_path_relative_to_its_own_directory(bridge):
    """A chat (or any client of the socket) has no directory: `.` or `project` is refused,
    not run in whatever directory the daemon was started from."""
    from daemon.client import call
    from daemon.errors import ApiError

    (bridge.tmp / "sub").mkdir()  # the daemon runs in bridge.tmp
    sock = bridge.tmp / "state" / "agent-bridge.sock"
    for project in (".", "sub", "./sub"):
        with pytest.raises(ApiError, match="absolute path"):
            call(sock, "new", project=project, prompt="hello", agent=None, worktree=False)
    assert bridge.json("sessions") == []
