"""A turn's own change from two snapshots of the session's diff (`gitdiff.diff_between`),
against real git: edits, new, binary, renamed and deleted files, and nothing written in the
repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bridge.diffs import FileStatus, summarize_diff
from daemon.gitdiff import diff_between, diff_since
from daemon.gitrun import LocalRunner

RUNNER = LocalRunner()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout


def tree_state(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.parts}


async def test_a_turn_is_the_difference_between_two_snapshots(tmp_path: Path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "keep.py").write_text("".join(f"line {i}\n" for i in range(20)))
    (root / "old_name.txt").write_text("".join(f"row {i}\n" for i in range(30)))
    (root / "doomed.txt").write_text("bye\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    base = git(root, "rev-parse", "HEAD").strip()
    # turn 1: an edit and a new file
    (root / "keep.py").write_text((root / "keep.py").read_text().replace("line 3", "LINE 3"))
    (root / "one.txt").write_text("from turn one\n")
    first = await diff_since(RUNNER, str(root), base)
    after_one = tree_state(root)
    # turn 2: another edit to the same file, a binary file, a rename, a deletion
    (root / "keep.py").write_text((root / "keep.py").read_text().replace("line 9", "LINE 9"))
    (root / "blob.bin").write_bytes(bytes(range(256)) * 4)
    git(root, "mv", "old_name.txt", "new_name.txt")
    (root / "doomed.txt").unlink()
    second = await diff_since(RUNNER, str(root), base)
    index_before = (root / ".git" / "index").read_bytes()

    turn = await diff_between(RUNNER, str(root), base, first, second)

    files = {f.path: f for f in summarize_diff(turn).files}
    assert set(files) == {"keep.py", "blob.bin", "new_name.txt", "doomed.txt"}
    assert files["blob.bin"].binary and files["doomed.txt"].status is FileStatus.REMOVED
    assert files["new_name.txt"].status is FileStatus.RENAMED
    assert (files["keep.py"].added, files["keep.py"].removed) == (1, 1)
    assert b"-line 9\n+LINE 9" in turn
    assert b"-line 3" not in turn and b"+LINE 3" not in turn  # turn 1's edit is not repeated
    assert b"one.txt" not in turn  # turn 1's file is not turn 2's change
    # it applies onto the tree as turn 1 left it, giving the tree as turn 2 left it
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(root), str(checkout))
    git(checkout, "checkout", "-q", base)
    (checkout / "first.diff").write_bytes(first)
    git(checkout, "apply", "--binary", "first.diff")
    (checkout / "first.diff").unlink()
    assert tree_state(checkout) == after_one
    (checkout / "turn.diff").write_bytes(turn)
    git(checkout, "apply", "--binary", "turn.diff")
    (checkout / "turn.diff").unlink()
    assert tree_state(checkout) == tree_state(root)
    # nothing in the user's repository was written
    assert (root / ".git" / "index").read_bytes() == index_before


async def test_from_an_empty_snapshot_a_turn_is_all_of_the_later_one(tmp_path: Path):
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "a.txt").write_text("a\n")
    patch = await diff_since(RUNNER, str(root), None)  # no commit yet: against the empty tree
    turn = await diff_between(RUNNER, str(root), None, b"", patch)
    assert [f.path for f in summarize_diff(turn).files] == ["a.txt"]
