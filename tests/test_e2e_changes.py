"""Git state, summaries and diffs, end to end: what a user sees after a turn, and that the
numbers and the patch are true."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.harness import wait_until

SECRET = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout


def make_repo(path: Path) -> str:
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# demo\n")
    (path / "app.py").write_text("".join(f"line {i}\n" for i in range(50)))
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "start")
    return git(path, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo_chat(make_bridge, tg):
    bridge = make_bridge(agents={"writer": ["write"]}, extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    start = make_repo(bridge.project)
    bridge.start()
    return bridge, start


def numstat(cwd: Path) -> dict[str, tuple[int, int]]:
    git(cwd, "add", "-A", "--intent-to-add")
    out = git(cwd, "diff", "--numstat", "HEAD")
    git(cwd, "reset", "-q")
    return {p: (int(a), int(r)) for a, r, p in (line.split("\t") for line in out.splitlines())}


def test_summary_numbers_match_git_and_the_attached_diff_applies(repo_chat, tg, tmp_path):
    bridge, start = repo_chat
    # the tree is dirty before the session: a big untracked file and an edit
    (bridge.project / "notes.txt").write_text("".join(f"note {i}: {'x' * 60}\n" for i in range(80)))
    (bridge.project / "app.py").write_text("".join(f"line {i}\n" for i in range(45)) + "new\n")
    tg.say("/new demo write hello --agent writer")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    card = tg.message_with("Approval needed", thread)
    tg.tap(card, f"ao:{card.callback_data[0].split(':')[1]}")
    summary = tg.message_with("Turn finished", thread)
    assert (bridge.project / "hello.py").exists()
    expected = numstat(bridge.project)
    assert set(expected) == {"app.py", "notes.txt", "hello.py"}
    added = sum(a for a, _ in expected.values())
    removed = sum(r for _, r in expected.values())
    assert f"Since the session started: 3 files changed, +{added} −{removed}" in summary.text
    assert "uncommitted changes when the session started" in summary.text
    # the turn's own change is hello.py alone: what was there before is no turn's doing
    assert "This turn (turn 1): 1 file changed, +1 −0" in summary.text
    inline = tg.message_with("diff --git", thread)
    assert "b/hello.py" in inline.text and "notes.txt" not in inline.text
    # the whole diff, asked for: a document that applies onto the start commit
    tg.say("/diff", thread=thread)
    tg.wait_until(lambda: bool(tg.fake.documents))
    (document,) = tg.on(lambda: list(tg.fake.documents.values()))
    sid = bridge.json("sessions")[0]["id"]
    assert document.file_name == f"{sid}-1.diff"
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(bridge.project), str(checkout)], check=True)
    git(checkout, "checkout", "-q", start)
    patch = tmp_path / "p.diff"
    patch.write_bytes(document.data)
    git(checkout, "apply", "--binary", str(patch))
    for name in ("app.py", "notes.txt", "hello.py"):
        assert (checkout / name).read_text() == (bridge.project / name).read_text()


def test_secrets_are_redacted_in_chat_but_not_at_the_desk(repo_chat, tg):
    bridge, _ = repo_chat
    (bridge.project / "config.py").write_text(f'TOKEN = "{SECRET}"\n' + "pad = 1\n" * 400)
    tg.say("/new demo write hello --agent writer")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    card = tg.message_with("Approval needed", thread)
    tg.tap(card, f"ao:{card.callback_data[0].split(':')[1]}")
    tg.message_with("Turn finished", thread)
    tg.say("/diff", thread=thread)  # the whole diff: config.py was there before the turn
    tg.wait_until(lambda: bool(tg.fake.documents))
    (document,) = tg.on(lambda: list(tg.fake.documents.values()))
    assert SECRET.encode() not in document.data
    assert b"[redacted]" in document.data
    everything = tg.on(lambda: "\n".join(str(c.params) for c in tg.fake.calls))
    assert SECRET not in everything
    sid = bridge.json("sessions")[0]["id"]
    local = bridge.cli("diff", sid).stdout
    assert SECRET in local  # the owner's own terminal is not "leaving the machine"


def test_diff_on_demand_from_chat_and_cli(repo_chat, tg):
    bridge, _ = repo_chat
    tg.say("/new demo write hello --agent writer")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    tg.message_with("Approval needed", thread)
    sid = bridge.json("sessions")[0]["id"]
    (bridge.project / "README.md").write_text("# demo\nchanged\n")
    tg.say("/diff", thread=thread)
    shown = tg.message_with("Diff of", thread)
    assert "1 file changed, +1" in shown.text
    inline = tg.message_with("+changed", thread)
    assert "diff --git a/README.md b/README.md" in inline.text
    stat = bridge.json("diff", sid)
    assert stat["added"] == 1 and stat["files"][0]["path"] == "README.md"
    assert "README.md" in bridge.cli("diff", sid, "--stat").stdout


def test_not_a_repository_says_so_and_nothing_breaks(make_bridge, tg):
    bridge = make_bridge(agents={"chat": ["text"]}, extra=tg.config())
    bridge.env["TELEGRAM_BOT_TOKEN"] = "123456:TEST-token"
    bridge.start()
    tg.say("/new demo hello --agent chat")
    thread = tg.wait_for("createForumTopic").result["message_thread_id"]
    tg.message_with("Turn finished", thread)
    tg.say("/diff", thread=thread)
    tg.message_with("not a git repository", thread)
    sid = bridge.json("sessions")[0]["id"]
    assert "not a git repository" in bridge.cli("diff", sid).stdout


def test_a_worktree_session_works_on_its_own_branch_and_archive_cleans_up(make_bridge):
    bridge = make_bridge(agents={"writer": ["write"]})
    make_repo(bridge.project)
    bridge.start()
    sid = bridge.json("new", "demo", "write hello", "--agent", "writer", "--worktree")["id"]
    session = bridge.session(sid)
    worktree = Path(session["cwd"])
    assert worktree != bridge.project and worktree.name.endswith(sid)
    assert session["branch"] == f"agent/{sid}"
    (pending,) = bridge.wait_approval(sid)
    bridge.cli("approve", pending["id"])
    bridge.wait_state(sid, "idle")
    assert (worktree / "hello.py").exists() and not (bridge.project / "hello.py").exists()
    bridge.cli("stop", sid)
    bridge.cli("archive", sid)
    shown = bridge.session(sid)
    notes = [e["data"]["text"] for e in shown["events"] if e["kind"] == "worktree"]
    assert notes and "kept the worktree" in notes[0]  # uncommitted work is never thrown away
    assert worktree.exists()
    git(worktree, "add", "-A")
    git(worktree, "commit", "-q", "-m", "agent work")
    git(bridge.project, "merge", "-q", f"agent/{sid}")
    bridge.cli("unarchive", sid)
    bridge.cli("archive", sid)
    wait_until(lambda: not worktree.exists(), what="the merged worktree to be removed")
