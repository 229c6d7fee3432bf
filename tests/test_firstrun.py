"""A new user's first minutes: `--version`, and `agent-bridge demo` from end to end.

The demo runs as a person runs it (the installed `agent-bridge`, a real terminal's stdin
replaced by a pipe), with TMPDIR pointed at a directory of the test's own: that it is empty
afterwards, and that no process carrying the test's tag lives on, is what "cleans up after
itself" means. A daemon "of the user" runs beside it the whole time and must not notice.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Bridge, agent_bridge_argv, tagged_pids, wait_until
from tests.telegram_harness import CHAT

TOKEN = "123456:TEST-token"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A TMPDIR of the test's own, short enough for the demo's socket to live in it."""
    path = Path(tempfile.mkdtemp(prefix="abt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def demo_env(tmp: Path, temp: Path) -> tuple[dict[str, str], Path, str]:
    tag = uuid.uuid4().hex
    env = {**os.environ, "TMPDIR": str(temp), "AGENT_BRIDGE_TEST_TAG": tag,
           "HOME": str(tmp / "home"), "XDG_STATE_HOME": str(tmp / "xdg-state"),
           "XDG_CONFIG_HOME": str(tmp / "xdg-config")}
    env.pop("AGENT_BRIDGE_CONFIG", None)
    return env, temp, tag


def assert_nothing_left(temp: Path, tag: str) -> None:
    assert list(temp.iterdir()) == [], "the demo left files behind"
    wait_until(lambda: not tagged_pids(tag), timeout=5, what="the demo's processes to exit")


class Output:
    """What a running demo prints, read as it comes (its prompts end without a newline)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.seen = b""

    @property
    def text(self) -> str:
        return self.seen.decode()

    def until(self, text: str, timeout: float = 30) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} in the demo's output: {self.text}"
            ready, _, _ = select.select([stdout], [], [], left)
            if ready:
                chunk = os.read(stdout.fileno(), 4096)
                assert chunk, f"the demo ended before {text!r}: {self.text}"
                self.seen += chunk

    def type_line(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()


def test_version_is_the_installed_package_version(tmp_path):
    expected = f"agent-bridge {metadata.version('agent-bridge')}"
    for argv in (agent_bridge_argv(), [sys.executable, "-m", "daemon.cli"]):
        done = subprocess.run([*argv, "--version"], capture_output=True, text=True,
                              timeout=30, cwd=tmp_path, check=False)
        assert (done.returncode, done.stdout.strip()) == (0, expected), done.stderr


def test_demo_with_yes_runs_to_the_end_and_leaves_nothing_behind(make_bridge, tmp_path,
                                                                   short_tmp):
    users = make_bridge()  # the person's own daemon, which the demo must leave alone
    users.start()
    before = users.json("sessions", "--all")
    env, temp, tag = demo_env(tmp_path, short_tmp)
    started = time.monotonic()
    done = subprocess.run([*agent_bridge_argv(), "demo", "--yes"], env=env, cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, check=False)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.count("→ Allowed once.") == 2  # git log, then the file
    assert "Which greeting should hello.txt hold?" in out
    assert "→ Answered: Hello, world." in out
    assert "agent: Done: hello.txt now says 'Hello, world'" in out
    assert "+Hello, world" in out and "A hello.txt +1" in out  # the diff
    assert "is idle" in out and "agent-bridge setup telegram" in out
    assert elapsed < 60, f"the demo took {elapsed:.1f}s"
    assert_nothing_left(temp, tag)
    assert not (tmp_path / "xdg-state").exists()  # no state of the person's was made
    assert users.json("sessions", "--all") == before
    assert users.process is not None and users.process.poll() is None


def test_demo_asks_in_the_terminal_and_follows_one_allow_and_one_deny(tmp_path, short_tmp):
    env, temp, tag = demo_env(tmp_path, short_tmp)
    process = subprocess.Popen([*agent_bridge_argv(), "demo"], env=env, cwd=tmp_path,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    assert process.stdin is not None and process.stdout is not None
    output = Output(process)
    until, type_line = output.until, output.type_line

    try:
        until("allow? [y]es / [n]o: ")
        assert "Bash git log --oneline -1" in output.text
        type_line("maybe")  # not an answer: asked again, nothing decided
        until("not an answer: 'maybe'")
        type_line("y")
        until("answer [1-2]: ")
        assert "Allowed once." in output.text
        type_line("2")
        until("hello.txt\n    content: Hi from agent-bridge")
        until("allow? [y]es / [n]o: ")
        type_line("n")
        process.stdin.close()
        until("That is the loop")
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        process.stdout.close()
    out = output.text
    assert "→ Answered: Hi from agent-bridge." in out
    assert "→ Denied." in out
    assert "agent: Understood: I did not write hello.txt." in out
    assert "What changed: No changes." in out  # the denied write wrote nothing
    assert_nothing_left(temp, tag)


def test_demo_stops_cleanly_when_its_input_ends(tmp_path, short_tmp):
    env, temp, tag = demo_env(tmp_path, short_tmp)
    done = subprocess.run([*agent_bridge_argv(), "demo"], env=env, cwd=tmp_path, input="",
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "End of input: the demo stops here." in done.stdout
    assert "Allowed" not in done.stdout  # nothing is approved by a closed input
    assert_nothing_left(temp, tag)


def test_the_demo_agent_ships_in_the_package_not_in_tests():
    from daemon import demo_agent

    here = Path(demo_agent.__file__).resolve()
    assert here.parent.name == "daemon" and "tests" not in here.parts
    assert Bridge is not None  # the harness's daemon is only the "user's" daemon above


def test_demo_under_a_deep_tmpdir_keeps_its_socket_short_and_removes_it(tmp_path):
    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    env, temp, tag = demo_env(tmp_path, deep)
    before = set(Path("/tmp").glob("ab-demo-*"))
    done = subprocess.run([*agent_bridge_argv(), "demo", "--yes"], env=env, cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_nothing_left(temp, tag)
    assert set(Path("/tmp").glob("ab-demo-*")) <= before


def test_a_clone_holds_no_node_modules_of_its_own():
    """tests/real_agents/node_modules is installed (scripts/install-real-agents), never
    committed: a worktree's symlink to it, once committed, came with every clone, and a
    checkout of it over the ignored directory replaced the installed agents by a link."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "-C", str(root), "ls-files", "tests/real_agents"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert tracked == ["tests/real_agents/package.json"]


def test_an_installed_agent_bridge_has_every_package_of_the_source():
    """`pipx install .` / `uv tool install .` build a wheel from pyproject's package list:
    a subpackage missing there (daemon.store once was) is missing in the installed tool,
    which then cannot start, though the editable install of a clone works."""
    import tomllib

    from setuptools import find_packages

    root = Path(__file__).resolve().parent.parent
    find = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    installed = set(find_packages(where=str(root), include=find["packages"]["find"]["include"]))
    in_source = {".".join(p.parent.relative_to(root).parts)
                 for top in ("bridge", "daemon", "bots") for p in (root / top).rglob("__init__.py")}
    assert in_source <= installed
    assert {"daemon.store", "bridge.codecs"} <= installed


def test_demo_shows_its_cards_in_the_configured_telegram_and_follows_taps_there(tmp_path,
                                                                                short_tmp, tg):
    env, temp, tag = demo_env(tmp_path, short_tmp)
    config = tmp_path / "xdg-config" / "agent-bridge" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n' + tg.config())
    env["TELEGRAM_BOT_TOKEN"] = TOKEN
    process = subprocess.Popen([*agent_bridge_argv(), "demo"], env=env, cwd=tmp_path,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    output = Output(process)

    def card(*texts: str) -> Any:
        found: list[Any] = []

        def check() -> bool:
            found[:] = [m for m in tg.fake.messages_in(CHAT) if m.callback_data
                        and all(t in (m.text or "") for t in texts)]
            return bool(found)

        tg.wait_until(check, timeout=30)
        return found[-1]

    def button(message: Any, label: str) -> str:
        return next(b["callback_data"] for b in message.buttons if b["text"] == label)

    try:
        output.until("tap there or answer here")
        first = card("Approval needed", "git log --oneline -1")
        assert "Allowed once" in tg.answer(tg.tap(first, f"ao:{approval_of(first)}")).text
        question = card("Which greeting should hello.txt hold?")
        tg.answer(tg.tap(question, button(question, "Hi from agent-bridge")))
        write = card("Approval needed", "hello.txt")
        tg.answer(tg.tap(write, f"dn:{approval_of(write)}"))
        output.until("That is the loop", timeout=60)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        process.stdout.close()
    out = output.text
    # each decision made there: a prompt here gave way to it, or (when the tap was quicker
    # than the demo's look) it is shown as made there
    assert settled_in_chat(out) == 3, out
    assert "    → " not in out  # nothing was decided in the terminal
    assert "agent: Understood: I did not write hello.txt." in out
    assert "What changed: No changes." in out
    assert tg.fake.topics  # the session had its topic in the person's group
    assert_nothing_left(temp, tag)
    assert not (tmp_path / "state").exists()  # the person's own state was never made


def settled_in_chat(out: str) -> int:
    return out.count("(settled elsewhere)") + out.count("\n  ✓ ")


def approval_of(card: Any) -> str:
    return str(card.callback_data[0].split(":")[1])


def test_the_demo_stays_in_the_terminal_while_the_persons_daemon_holds_the_bot(
        make_bridge, tmp_path, short_tmp, tg):
    users = make_bridge(extra=tg.config())
    users.env["TELEGRAM_BOT_TOKEN"] = TOKEN
    users.start()
    env, temp, tag = demo_env(tmp_path, short_tmp)
    env["TELEGRAM_BOT_TOKEN"] = TOKEN
    done = subprocess.run([*agent_bridge_argv(), "--config", str(users.config), "demo"],
                          env=env, cwd=tmp_path, input="y\n1\ny\n", capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("your agent-bridge daemon is running and uses the same bot")
    assert "A hello.txt +1" in done.stdout
    assert not tg.fake.topics  # nothing of the demo reached the chat
    assert_nothing_left(temp, tag)


def test_a_demo_ended_by_sigterm_midway_still_cleans_up(tmp_path, short_tmp):
    env, temp, tag = demo_env(tmp_path, short_tmp)
    process = subprocess.Popen([*agent_bridge_argv(), "demo"], env=env, cwd=tmp_path,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    output = Output(process)
    try:
        output.until("allow? [y]es / [n]o: ")  # its daemon and agent are up, waiting
        assert tagged_pids(tag)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        process.stdout.close()
    assert "Allowed" not in output.text
    assert_nothing_left(temp, tag)


def test_demo_shows_its_cards_in_the_configured_slack_channel_too(tmp_path, short_tmp):
    from tests.slack_harness import ThreadedSlack

    slack = ThreadedSlack()
    env, temp, tag = demo_env(tmp_path, short_tmp)
    config = tmp_path / "xdg-config" / "agent-bridge" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n' + slack.config())
    env.update(slack.env())
    process = subprocess.Popen([*agent_bridge_argv(), "demo"], env=env, cwd=tmp_path,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    output = Output(process)
    try:
        output.until("tap there or answer here")
        slack.connected()
        thread = slack.new_thread(timeout=30).ts
        first = slack.message_with("git log --oneline -1", thread, timeout=30)
        slack.tap(first, first.values[0])  # Allow once
        question = slack.message_with("Which greeting should hello.txt hold?", thread)
        slack.tap(question, question.values[question.labels.index("Hello, world")])
        output.until("content: Hello, world")
        output.until("allow? [y]es / [n]o: ")
        output.type_line("y")  # the last one from the terminal: both count
        output.until("That is the loop", timeout=60)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        process.stdout.close()
        slack.close()
    out = output.text
    assert settled_in_chat(out) == 2, out
    assert out.count("→ Allowed once.") == 1  # the one typed here
    assert "A hello.txt +1" in out and "+Hello, world" in out
    assert_nothing_left(temp, tag)
