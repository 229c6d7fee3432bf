"""Terminal sessions made by the REAL Claude Code and Codex binaries (run as a person would in
a terminal, `claude -p` / `codex exec`, offline against the mock model API) are found by
`agent-bridge sessions --local`, and `adopt` continues them in the daemon with their history:
the mock model sees the earlier turn in its next request. A terminal process still holding a
session makes adopting it need --force."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.model_api import ANTHROPIC, OPENAI, ModelRequest, Reply, Text, ThreadedModelAPI
from tests.harness import Bridge, wait_until
from tests.real_binaries import CLAUDE, CODEX, START, use_real_claude, use_real_codex

pytestmark = pytest.mark.real_agents
FIRST = "terminal prompt: find the flaky test"
REPLY = "The flaky test is test_checkout; it sleeps."


def answer(request: ModelRequest) -> Reply:
    return Text(text=REPLY if len(request.prompts()) <= 1 else "Continuing from chat.")


@pytest.fixture
def model() -> Iterator[ThreadedModelAPI]:
    api = ThreadedModelAPI(answer)
    yield api
    api.close()
    assert not api.api.errors, api.api.errors


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on branch feature/flaky with one commit and one untracked file."""
    path = tmp_path / "term repo"
    path.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "feature/flaky"], cwd=path, check=True)
    (path / "README").write_text("hello\n")
    subprocess.run([*git, "add", "README"], cwd=path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "start"], cwd=path, check=True)
    (path / "notes.txt").write_text("untracked\n")
    return path


def agent_env(bridge: Bridge, agent: str) -> dict[str, str]:
    """The environment the daemon gives `agent` (from its config), for a terminal run."""
    import tomllib

    table = tomllib.loads(bridge.config.read_text())["agents"][agent]
    return {**bridge.env, **table["env"]}


def in_terminal(bridge: Bridge, argv: list[str], cwd: Path, agent: str) -> str:
    """Run a real agent the way a person would, to the end; its output."""
    done = subprocess.run(argv, cwd=cwd, env=agent_env(bridge, agent), capture_output=True,
                          text=True, timeout=START, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def held_open(bridge: Bridge, argv: list[str], cwd: Path, agent: str) -> subprocess.Popen[bytes]:
    """A real agent left running in `cwd` (its stdin open: it waits), as in a terminal."""
    return subprocess.Popen(argv, cwd=cwd, env=agent_env(bridge, agent), stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def local(bridge: Bridge) -> list[dict[str, Any]]:
    return list(bridge.json("sessions", "--local")["sessions"])


@pytest.fixture
def real(make_bridge, model) -> Bridge:
    bridge = make_bridge()
    use_real_claude(bridge, CLAUDE.require(), model.base_url)
    use_real_codex(bridge, CODEX.require(), model.base_url)
    return bridge


def test_terminal_sessions_of_both_real_agents_are_listed_and_adopted(real, model, repo):
    claude, codex = CLAUDE.binary, CODEX.binary
    assert REPLY in in_terminal(real, [str(claude), "-p", FIRST, "--setting-sources="], repo,
                                "claude")
    assert REPLY in in_terminal(real, [str(codex), "exec", "--skip-git-repo-check",
                                       "codex " + FIRST], repo, "codex")
    real.start()
    found = {s["agent"]: s for s in local(real)}
    assert set(found) == {"claude", "codex"}
    for agent, s in found.items():
        assert s["host"] == "local" and s["cwd"] == str(repo), s
        assert s["attached"] == "no", s
        assert s["branch"] == "feature/flaky", s
        assert s["first_prompt"] == ("codex " if agent == "codex" else "") + FIRST
        assert s["last_prompt"] == s["first_prompt"]
    text = real.cli("sessions", "--local").stdout
    assert found["claude"]["id"] in text and "agent-bridge adopt ID" in text

    # Claude: adopted with a prompt, resumed in its own directory with its history
    adopted = real.json("adopt", found["claude"]["key"], "carry on from the chat")
    assert adopted["agent_session_id"] == found["claude"]["id"]
    assert adopted["cwd"] == str(repo) and adopted["agent"] == "claude"
    assert adopted["project"] == "term repo"  # no configured project holds it: its folder
    session = real.wait_state(adopted["id"], "idle", timeout=START)
    assert session["agent_session_id"] == found["claude"]["id"]  # the same Claude session
    latest = model.requests(ANTHROPIC)[-1]
    assert latest.prompts() == [FIRST, "carry on from the chat"]
    assert REPLY in latest.all_text()  # the terminal turn's answer, from Claude's own history
    kinds = [e["kind"] for e in session["events"]]
    assert "adopt" in kinds

    # Codex: adopted without a prompt (idle, waiting), then a reply continues the thread
    adopted = real.json("adopt", found["codex"]["id"])
    sid = adopted["id"]
    assert real.wait_state(sid, "idle", timeout=START)["agent_session_id"] == found["codex"]["id"]
    real.cli("send", sid, "and now from the bridge")
    wait_until(lambda: real.session(sid)["turns"] >= 1 and real.session(sid)["state"] == "idle",
               timeout=START, what="the adopted Codex turn")
    latest = model.requests(OPENAI)[-1]
    assert latest.prompts()[-1] == "and now from the bridge"
    assert "codex " + FIRST in latest.prompts()  # thread/resume carried the terminal turn
    assert REPLY in latest.all_text()

    # both are the bridge's now: no longer listed as terminal sessions, not adopted twice
    assert local(real) == []
    again = real.cli("adopt", found["claude"]["id"], check=False)
    assert again.returncode == 1 and "already the bridge's session" in again.stderr


def test_a_session_held_by_a_live_terminal_process_needs_force(real, model, repo):
    claude, codex = CLAUDE.binary, CODEX.binary
    in_terminal(real, [str(claude), "-p", FIRST, "--setting-sources="], repo, "claude")
    in_terminal(real, [str(codex), "exec", "--skip-git-repo-check", FIRST], repo, "codex")
    real.start()
    ids = {s["agent"]: s["id"] for s in local(real)}
    # a Claude still open on it (naming it: --resume) and a Codex still open on its thread
    holders = [
        held_open(real, [str(claude), "--resume", ids["claude"], "--input-format",
                         "stream-json", "--output-format", "stream-json", "--verbose",
                         "--setting-sources="], repo, "claude"),
        held_open(real, [str(codex), "exec", "resume", ids["codex"]], repo, "codex"),
    ]
    try:
        listed = wait_until(lambda: (s := {x["agent"]: x for x in local(real)})
                            and all(x["attached"] == "yes" for x in s.values()) and s,
                            timeout=START, what="both sessions seen as held")
        for agent, proc in zip(("claude", "codex"), holders, strict=True):
            assert listed[agent]["holder"].startswith(f"pid {proc.pid}: ")
        refused = real.cli("adopt", ids["codex"], check=False)
        assert refused.returncode == 1
        assert "still open in a terminal" in refused.stderr and "--force" in refused.stderr
        assert real.json("sessions") == []  # nothing was started
        forced = real.json("adopt", ids["claude"], "--force")
        assert real.wait_state(forced["id"], "idle", timeout=START)["agent_session_id"] == \
            ids["claude"]
    finally:
        for proc in holders:
            os.killpg(proc.pid, 9)
            proc.wait(10)
    # once the terminal is gone, it is no longer held
    (codex_left,) = wait_until(lambda: [x for x in local(real) if x["attached"] == "no"],
                               timeout=START, what="the codex session released")
    assert codex_left["id"] == ids["codex"]


def test_a_plain_claude_in_the_directory_holds_only_its_newest_session(real, model, repo):
    claude = str(CLAUDE.binary)
    in_terminal(real, [claude, "-p", "the older one", "--setting-sources="], repo, "claude")
    in_terminal(real, [claude, "-p", "the newer one", "--setting-sources="], repo, "claude")
    real.start()
    # `claude` started in that directory, naming no session: it works on the newest
    terminal = held_open(real, [claude, "-p", "--input-format", "stream-json",
                                "--output-format", "stream-json", "--verbose",
                                "--setting-sources="], repo, "claude")
    try:
        listed = wait_until(lambda: (s := {x["first_prompt"]: x for x in local(real)})
                            and s["the newer one"]["attached"] == "yes" and s,
                            timeout=START, what="the newest session seen as held")
        assert listed["the older one"]["attached"] == "no"
        refused = real.cli("adopt", listed["the newer one"]["key"], check=False)
        assert refused.returncode == 1 and f"pid {terminal.pid}" in refused.stderr
        adopted = real.json("adopt", listed["the older one"]["key"], "the older, again")
        real.wait_state(adopted["id"], "idle", timeout=START)
        assert model.requests(ANTHROPIC)[-1].prompts() == ["the older one", "the older, again"]
    finally:
        os.killpg(terminal.pid, 9)
        terminal.wait(10)
