"""The git modules with any path git can hold (issue 14, item 8's root cause): a newline in the
project's path made `git rev-parse` output two paths on three lines (ValueError in every
diff). Paths come back from git NUL-separated, or one per call, and go in after `--`.

Real git, real repositories in temporary directories; the helpers are test_git's."""

from __future__ import annotations

import os
from pathlib import Path

from bridge.diffs import FileStatus, summarize_diff
from daemon.gitdiff import diff_since, numstat_since
from daemon.gitrun import LocalRunner
from daemon.gitstate import RepoState, inspect_repo
from daemon.worktrees import create_worktree, main_worktree, remove_worktree
from tests import test_git
from tests.test_git import Env, apply_onto_fresh_checkout, commit_all, init_repo, tree, write

env = test_git.env  # the fixture: a clean git configuration and scratch directory

# A directory name with everything a line- or space-separated parse trips on; the bytes
# \xff\xfe are not UTF-8 (a Linux path is bytes).
ODD_DIR = os.fsdecode(b"pro\nject \t\"q'\\ \xc3\xa9 \xff\xfe\n")

# File names, each a trap for some parse: by newline, tab, quote, space, dash (an option),
# or a non-UTF-8 byte.
ODD_FILES = [
    "new\nline.txt",
    "tab\there.txt",
    'double"quote.txt',
    "single'quote.txt",
    "back\\slash.txt",
    " leading and trailing space ",
    "caf\u00e9 \u65e5\u672c.txt",
    "-rf",
    "--output=oops",
    "-",
    os.fsdecode(b"latin1-caf\xe9.txt"),
    "trailing newline\n",
]


def _shown(name: str) -> str:
    """How the summary shows a name: undecodable bytes as U+FFFD."""
    return os.fsencode(name).decode("utf-8", "replace")


async def test_a_repository_at_an_odd_path_with_odd_files_diffs_whole(
    env: Env, tmp_path: Path
) -> None:
    repo = init_repo(env, tmp_path / ODD_DIR)
    write(repo / "-rf", "modify me\n")
    write(repo / "tab\there.txt", "rename me\n" * 20)
    write(repo / 'double"quote.txt', "delete me\n")
    base = commit_all(env, repo, "start")
    write(repo / "-rf", "modified\n")
    (repo / "tab\there.txt").rename(repo / "renamed\nto\there.txt")
    (repo / 'double"quote.txt').unlink()
    added = [n for n in ODD_FILES if n not in ("-rf", "tab\there.txt", 'double"quote.txt')]
    for name in added:
        write(repo / name, f"{name!r}\n")
    runner = LocalRunner()

    state = await inspect_repo(runner, str(repo))
    assert isinstance(state, RepoState)
    assert state.root == str(repo)
    assert state.dirty

    raw = await diff_since(runner, str(repo), base)
    fresh = apply_onto_fresh_checkout(env, repo, base, raw)
    assert tree(fresh) == tree(repo)

    summary = summarize_diff(raw)
    assert summary.parse_error is None
    by_path = {f.path: f for f in summary.files}
    assert by_path.keys() == {_shown(n) for n in [*added, "-rf", "renamed\nto\there.txt",
                                                  'double"quote.txt']}
    assert by_path["-rf"].status is FileStatus.MODIFIED
    assert by_path["renamed\nto\there.txt"].status is FileStatus.RENAMED
    assert by_path["renamed\nto\there.txt"].old_path == "tab\there.txt"
    assert by_path['double"quote.txt'].status is FileStatus.REMOVED
    assert all(by_path[_shown(n)].status is FileStatus.ADDED for n in added)

    numstat = {path: (a, r) for a, r, path in await numstat_since(runner, str(repo), base)}
    assert numstat == {
        **dict.fromkeys(added, (1, 0)),
        "-rf": (1, 1),
        "renamed\nto\there.txt": (0, 0),
        'double"quote.txt': (0, 1),
    }


async def test_worktrees_of_a_repository_at_an_odd_path(env: Env, tmp_path: Path) -> None:
    repo = init_repo(env, tmp_path / ODD_DIR)
    write(repo / "a.txt", "a\n")
    commit_all(env, repo, "start")
    runner = LocalRunner()

    wt = await create_worktree(runner, str(repo), "s1")
    assert Path(wt.path, "a.txt").read_text() == "a\n"
    assert await main_worktree(runner, wt.path) == str(repo)
    assert await main_worktree(runner, str(repo)) == str(repo)
    write(Path(wt.path) / "-n", "b\n")
    commit_all(env, Path(wt.path), "first line\rstill the subject")

    refused = await remove_worktree(runner, str(repo), wt.path, wt.branch, into="main")
    assert not refused.removed
    assert refused.unmerged == 1
    assert len(refused.unmerged_log) == 1
    assert refused.unmerged_log[0].endswith(" first line\rstill the subject")

    forced = await remove_worktree(runner, str(repo), wt.path, wt.branch, into="main",
                                   force=True)
    assert forced.removed
    assert not Path(wt.path).exists()


async def test_main_worktree_of_nothing_is_none(env: Env, tmp_path: Path) -> None:
    assert await main_worktree(LocalRunner(), str(tmp_path / "gone")) is None
    (tmp_path / "plain").mkdir()
    assert await main_worktree(LocalRunner(), str(tmp_path / "plain")) is None
