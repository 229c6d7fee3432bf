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
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from tests.harness import Bridge, agent_bridge_argv, tagged_pids, wait_until


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
    seen = b""

    def until(text: str) -> None:
        nonlocal seen
        deadline = time.monotonic() + 30
        while text.encode() not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} in the demo's output: {seen.decode()}"
            ready, _, _ = select.select([process.stdout], [], [], left)
            if ready:
                chunk = os.read(process.stdout.fileno(), 4096)
                assert chunk, f"the demo ended before {text!r}: {seen.decode()}"
                seen += chunk

    def type_line(line: str) -> None:
        assert process.stdin is not None
        process.stdin.write(line.encode() + b"\n")
        process.stdin.flush()

    try:
        until("allow? [y]es / [n]o: ")
        assert b"Bash git log --oneline -1" in seen
        type_line("maybe")  # not an answer: asked again, nothing decided
        until("not an answer: 'maybe'")
        type_line("y")
        until("answer [1-2]: ")
        assert b"Allowed once." in seen
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
    out = seen.decode()
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
