"""The git modules (daemon/gitrun, gitstate, gitdiff, worktrees) against real git
repositories in temporary directories.

The daemon's runner reads the process environment, where `GIT_CONFIG_GLOBAL` points at a
config file each test controls (empty by default, hostile in the config test). The test's
own git calls always use a clean config, so they see the repository as git really has it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.diffs import FileStatus, summarize_diff
from daemon.gitdiff import diff_since, numstat_since
from daemon.gitrun import (
    CommandNotFound,
    CommandResult,
    CommandTimeout,
    GitError,
    LocalRunner,
    WorkdirNotFound,
)
from daemon.gitstate import NotARepo, RepoState, inspect_repo
from daemon.worktrees import create_worktree, default_worktree_path, remove_worktree

# --- helpers ---------------------------------------------------------------------------------


@dataclass
class Env:
    home: Path
    clean_config: Path
    user_config: Path  # what the daemon's runner sees as the global config

    def git(self, cwd: Path, *args: str, check: bool = True) -> bytes:
        env = {
            **os.environ,
            "GIT_CONFIG_GLOBAL": str(self.clean_config),
            "GIT_OPTIONAL_LOCKS": "0",
        }
        for name in ("GIT_EXTERNAL_DIFF", "GIT_DIFF_OPTS", "GIT_DIR", "GIT_INDEX_FILE"):
            env.pop(name, None)
        result = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@e", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"git {args} failed: {result.stderr.decode(errors='replace')}")
        return result.stdout


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    home = tmp_path / "home"
    home.mkdir()
    clean = home / "clean.gitconfig"
    clean.write_text("")
    user = home / "user.gitconfig"
    user.write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(user))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_EXTERNAL_DIFF"):
        monkeypatch.delenv(name, raising=False)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return Env(home=home, clean_config=clean, user_config=user)


def write(path: Path, data: bytes | str, *, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    if mode is not None:
        path.chmod(mode)


def exists(path: str | Path) -> bool:
    return Path(path).exists()


def lines(n: int, word: str = "line") -> str:
    return "".join(f"{word} {i}\n" for i in range(n))


def init_repo(env: Env, path: Path) -> Path:
    path.mkdir(parents=True)
    env.git(path, "init", "-q", "-b", "main")
    return path


def commit_all(env: Env, repo: Path, message: str = "c") -> str:
    env.git(repo, "add", "-A")
    env.git(repo, "commit", "-q", "-m", message)
    return env.git(repo, "rev-parse", "HEAD").decode().strip()


def snapshot_git_dir(repo: Path) -> dict[str, str]:
    """Every file under .git with a hash of its content."""
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((repo / ".git").rglob("*"))
        if p.is_file()
    }


def tree(root: Path, skip: Sequence[str] = ()) -> dict[str, tuple[str, bytes, bool]]:
    """Files below `root` (not .git, not `skip`): kind, content or link target, exec bit."""
    out: dict[str, tuple[str, bytes, bool]] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if (
            rel == ".git"
            or rel.startswith(".git/")
            or any(rel == s or rel.startswith(s + "/") for s in skip)
        ):
            continue
        if p.is_symlink():
            out[rel] = ("link", str(p.readlink()).encode(), False)
        elif p.is_file():
            out[rel] = ("file", p.read_bytes(), bool(p.stat().st_mode & stat.S_IXUSR))
    return out


def numstat_z(out: bytes) -> dict[str, tuple[int | None, int | None]]:
    result: dict[str, tuple[int | None, int | None]] = {}
    fields = out.split(b"\0")
    i = 0
    while i < len(fields):
        if not fields[i]:
            i += 1
            continue
        added, removed, path = fields[i].split(b"\t", 2)
        i += 1
        if not path:
            path = fields[i + 1]
            i += 2
        result[path.decode()] = (
            None if added == b"-" else int(added),
            None if removed == b"-" else int(removed),
        )
    return result


def apply_onto_fresh_checkout(env: Env, repo: Path, base: str | None, diff: bytes) -> Path:
    fresh = repo.parent / (repo.name + "-fresh")
    if base is None:
        init_repo(env, fresh)
    else:
        env.git(repo.parent, "clone", "-q", "--no-checkout", str(repo), str(fresh))
        env.git(fresh, "checkout", "-q", base)
    patch = repo.parent / (repo.name + ".patch")
    patch.write_bytes(diff)
    env.git(fresh, "apply", "--binary", "--whitespace=nowarn", str(patch))
    return fresh


RANDOM_PNG = b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)) * 8
IGNORED = ("debug.log", "build")


def make_session(env: Env, repo: Path) -> str:
    """A repository, its start commit, then an agent's work: a commit and many edits."""
    init_repo(env, repo)
    write(repo / ".gitignore", "*.log\nbuild/\n")
    write(repo / "a.txt", lines(10))
    write(repo / "old.txt", lines(30, "rename me"))
    write(repo / "gone.txt", "bye\n")
    write(repo / "script.sh", "#!/bin/sh\necho hi\n", mode=0o644)
    write(repo / "logo.png", RANDOM_PNG)
    write(repo / "latin1.txt", b"caf\xe9\n")
    write(repo / "with space.txt", "x\n")
    write(repo / "café.txt", "x\n")
    write(repo / "sub/dir/mod.py", lines(5, "def f"))
    write(repo / "crlf.txt", b"one\r\ntwo\r\n")
    write(repo / "no-newline.txt", b"last line")
    base = commit_all(env, repo, "start")

    # The agent commits once ...
    write(repo / "sub/dir/mod.py", lines(6, "def f"))
    commit_all(env, repo, "agent commit")
    # ... and leaves a lot uncommitted, some of it staged in the user's index.
    write(repo / "a.txt", lines(10).replace("line 3\n", "line three\n"))
    env.git(repo, "add", "a.txt")
    write(repo / "a.txt", lines(12).replace("line 3\n", "line three\n"))
    (repo / "old.txt").rename(repo / "renamed.txt")
    (repo / "gone.txt").unlink()
    (repo / "script.sh").chmod(0o755)
    write(repo / "logo.png", RANDOM_PNG[::-1])
    write(repo / "new.bin", b"\x00\x01\x02binary\xff" * 50)
    write(repo / "new.txt", "brand new\n")
    write(repo / "empty.txt", b"")
    write(repo / "latin1.txt", b"caf\xe8\n\xff\xfe\n")
    write(repo / "with space.txt", "y\n")
    write(repo / "café.txt", "y\n")
    write(repo / "crlf.txt", b"one\r\ntwo\r\nthree\r\n")
    write(repo / "no-newline.txt", b"last line changed")
    (repo / "link").symlink_to("a.txt")
    write(repo / "debug.log", "ignored\n")
    write(repo / "build/out.txt", "ignored\n")
    return base


# --- diff_since ------------------------------------------------------------------------------


async def test_diff_since_reproduces_the_tree_and_touches_nothing(env: Env, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = make_session(env, repo)
    git_before = snapshot_git_dir(repo)
    status_before = env.git(repo, "status", "--porcelain=v1", "-z")
    cached_before = env.git(repo, "diff", "--cached", "--binary")

    diff = await diff_since(LocalRunner(), str(repo), base)

    assert snapshot_git_dir(repo) == git_before  # not one byte written under .git
    assert env.git(repo, "status", "--porcelain=v1", "-z") == status_before
    assert env.git(repo, "diff", "--cached", "--binary") == cached_before
    assert cached_before  # the user really had something staged
    assert list((tmp_path / "scratch").iterdir()) == []  # the temporary index is gone

    fresh = apply_onto_fresh_checkout(env, repo, base, diff)
    assert tree(fresh) == tree(repo, skip=IGNORED)

    summary = summarize_diff(diff)
    assert summary.parse_error is None
    by_path = {f.path: f for f in summary.files}
    assert "debug.log" not in by_path
    assert not any(p.startswith("build/") for p in by_path)
    assert by_path["a.txt"].status is FileStatus.MODIFIED
    assert by_path["renamed.txt"].status is FileStatus.RENAMED
    assert by_path["renamed.txt"].old_path == "old.txt"
    assert by_path["gone.txt"].status is FileStatus.REMOVED
    assert by_path["script.sh"].status is FileStatus.MODE_CHANGED
    assert (by_path["script.sh"].old_mode, by_path["script.sh"].new_mode) == (
        "100644",
        "100755",
    )
    assert by_path["logo.png"].binary
    assert by_path["new.bin"].binary
    assert by_path["new.bin"].status is FileStatus.ADDED
    assert by_path["new.txt"].status is FileStatus.ADDED
    assert by_path["empty.txt"].status is FileStatus.ADDED
    assert by_path["link"].new_mode == "120000"
    assert by_path["sub/dir/mod.py"].added == 1  # the agent's own commit is in there
    assert {"café.txt", "with space.txt", "latin1.txt"} <= by_path.keys()

    # The summary agrees with git's own count, taken independently in the fresh copy.
    env.git(fresh, "add", "-A")
    independent = numstat_z(env.git(fresh, "diff", "--cached", "--numstat", "-z", "-M", base))
    ours = await numstat_since(LocalRunner(), str(repo), base)
    assert {path: (a, r) for a, r, path in ours} == independent
    assert {
        f.path: (None, None) if f.binary else (f.added, f.removed) for f in summary.files
    } == independent
    assert summary.added == sum(a or 0 for a, _ in independent.values())
    assert summary.removed == sum(r or 0 for _, r in independent.values())


async def test_hostile_user_config_changes_nothing(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    base = make_session(env, repo)
    runner = LocalRunner()
    clean = await diff_since(runner, str(repo), base)
    clean_numstat = await numstat_since(runner, str(repo), base)
    clean_state = await inspect_repo(runner, str(repo))

    shout = env.home / "shout.sh"
    write(shout, "#!/bin/sh\necho EXTERNAL DIFF WAS USED\n", mode=0o755)
    attributes = env.home / "attributes"
    write(attributes, "*.txt diff=shout\n")
    env.user_config.write_text(
        f"""\
[diff]
    noprefix = true
    mnemonicPrefix = true
    relative = true
    external = {shout}
    renames = copies
    suppressBlankEmpty = true
    context = 10
    interHunkContext = 10
    algorithm = patience
    indentHeuristic = false
    submodule = log
[diff "shout"]
    textconv = tr a-z A-Z
[color]
    ui = always
    diff = always
    status = always
[core]
    quotepath = true
    pager = /nonexistent/pager
    fsmonitor = /nonexistent/fsmonitor-hook
    attributesFile = {attributes}
[pager]
    diff = /nonexistent/pager
[status]
    showUntrackedFiles = no
"""
    )
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", str(shout))
    monkeypatch.setenv("GIT_DIFF_OPTS", "--unified=7")
    monkeypatch.setenv("GIT_PAGER", "/nonexistent/pager")

    hostile = await diff_since(runner, str(repo), base)
    assert hostile == clean
    assert b"EXTERNAL" not in hostile
    assert b"\x1b[" not in hostile
    assert await numstat_since(runner, str(repo), base) == clean_numstat
    assert await inspect_repo(runner, str(repo)) == clean_state
    apply_onto_fresh_checkout(env, repo, base, hostile)


async def test_diff_in_a_repository_without_commits(env: Env, tmp_path: Path) -> None:
    repo = init_repo(env, tmp_path / "repo")
    write(repo / "a.txt", "a\n")
    write(repo / "bin", b"\x00\x01")
    write(repo / "x.log", "ignored\n")
    write(repo / ".gitignore", "*.log\n")
    runner = LocalRunner()

    state = await inspect_repo(runner, str(repo))
    assert state == RepoState(root=str(repo), branch="main", head=None, dirty=True)

    diff = await diff_since(runner, str(repo), None)
    summary = summarize_diff(diff)
    assert sorted(f.path for f in summary.files) == [".gitignore", "a.txt", "bin"]
    assert all(f.status is FileStatus.ADDED for f in summary.files)
    assert not (repo / ".git" / "index").exists()  # still no index of the user's
    fresh = apply_onto_fresh_checkout(env, repo, None, diff)
    assert tree(fresh) == tree(repo, skip=["x.log"])


async def test_no_changes_is_an_empty_diff(env: Env, tmp_path: Path) -> None:
    repo = init_repo(env, tmp_path / "repo")
    write(repo / "a.txt", "a\n")
    base = commit_all(env, repo)
    runner = LocalRunner()
    assert await diff_since(runner, str(repo), base) == b""
    assert await numstat_since(runner, str(repo), base) == []
    assert summarize_diff(b"").is_empty


async def test_five_megabyte_diff(env: Env, tmp_path: Path) -> None:
    repo = init_repo(env, tmp_path / "repo")
    write(repo / "small.txt", "a\n")
    base = commit_all(env, repo)
    n = 120_000
    write(repo / "big.txt", lines(n, "a fairly long line of generated text, number"))

    diff = await diff_since(LocalRunner(), str(repo), base)
    assert len(diff) > 5_000_000
    summary = summarize_diff(diff)
    assert summary.parse_error is None
    assert (summary.added, summary.removed) == (n, 0)
    assert await numstat_since(LocalRunner(), str(repo), base) == [(n, 0, "big.txt")]


async def test_diff_against_head_when_the_agent_only_committed(env: Env, tmp_path: Path) -> None:
    repo = init_repo(env, tmp_path / "repo")
    write(repo / "a.txt", "a\n")
    base = commit_all(env, repo)
    write(repo / "a.txt", "b\n")
    commit_all(env, repo)
    diff = await diff_since(LocalRunner(), str(repo), base)
    assert [(f.path, f.added, f.removed) for f in summarize_diff(diff).files] == [("a.txt", 1, 1)]


class ShellOnlyRunner:
    """A runner with nothing but `run()`, like a remote one: scratch space via mktemp."""

    def __init__(self) -> None:
        self.inner = LocalRunner()
        self.argv0: list[str] = []

    async def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> CommandResult:
        self.argv0.append(argv[0])
        return await self.inner.run(argv, cwd=cwd, env=env, timeout=timeout)


async def test_runner_without_scratch_space_uses_mktemp(env: Env, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = make_session(env, repo)
    expected = await diff_since(LocalRunner(), str(repo), base)
    runner = ShellOnlyRunner()
    assert await diff_since(runner, str(repo), base) == expected
    assert {"mktemp", "cp", "rm"} <= set(runner.argv0)
    assert list((tmp_path / "scratch").iterdir()) == []


@pytest.mark.parametrize("make_runner", [LocalRunner, ShellOnlyRunner])
async def test_a_same_size_edit_in_the_second_of_the_index_is_seen(
    env: Env, tmp_path: Path, make_runner: type[LocalRunner] | type[ShellOnlyRunner]
) -> None:
    """Racy git: a file rewritten with the same size in the second its index entry was
    written has the entry's stat data; only the index file's own mtime tells git to look at
    the content. The diff runs on a copy of the index, taken a second later."""
    repo = init_repo(env, tmp_path / "repo")
    write(repo / "a.txt", "x\n")
    base = commit_all(env, repo)
    for _ in range(5):
        await asyncio.sleep(1.02 - time.time() % 1)  # just after a second boundary
        write(repo / "a.txt", "x\n")
        entry = (repo / "a.txt").stat()
        env.git(repo, "add", "a.txt")  # the entry takes this stat data
        write(repo / "a.txt", "y\n")  # same size, same inode
        edited = (repo / "a.txt").stat()
        index = (repo / ".git" / "index").stat()
        seconds = {
            int(t) for t in (entry.st_mtime, entry.st_ctime, edited.st_mtime, edited.st_ctime)
        }
        if seconds == {int(index.st_mtime)}:
            break
    else:
        pytest.skip("could not write the file and the index within one second")
    await asyncio.sleep(1.05 - time.time() % 1)  # the copy of the index is made in a later second

    assert env.git(repo, "status", "--porcelain=v1", "-z") == b" M a.txt\0"
    runner = make_runner()
    assert await numstat_since(runner, str(repo), base) == [(1, 1, "a.txt")]
    diff = await diff_since(runner, str(repo), base)
    assert [(f.path, f.added, f.removed) for f in summarize_diff(diff).files] == [("a.txt", 1, 1)]


# --- inspect_repo ----------------------------------------------------------------------------


async def test_inspect_repo_states(env: Env, tmp_path: Path) -> None:
    repo = init_repo(env, tmp_path / "repo")
    write(repo / "a.txt", "a\n")
    head = commit_all(env, repo)
    runner = LocalRunner()

    clean = await inspect_repo(runner, str(repo))
    assert clean == RepoState(root=str(repo), branch="main", head=head, dirty=False)

    (repo / "sub").mkdir()
    from_sub = await inspect_repo(runner, str(repo / "sub"))
    assert isinstance(from_sub, RepoState)
    assert from_sub.root == str(repo)

    write(repo / "untracked.txt", "u\n")
    assert await inspect_repo(runner, str(repo)) == RepoState(
        root=str(repo), branch="main", head=head, dirty=True
    )
    (repo / "untracked.txt").unlink()
    write(repo / "ignored.log", "x\n")
    write(repo / ".git/info/exclude", "*.log\n")
    assert (await inspect_repo(runner, str(repo))) == clean

    env.git(repo, "checkout", "-q", "--detach")
    detached = await inspect_repo(runner, str(repo))
    assert isinstance(detached, RepoState)
    assert (detached.branch, detached.head) == (None, head)


async def test_inspect_repo_leaves_the_index_alone(env: Env, tmp_path: Path) -> None:
    repo = init_repo(env, tmp_path / "repo")
    write(repo / "a.txt", "a\n")
    commit_all(env, repo)
    write(repo / "a.txt", "changed\n")
    before = snapshot_git_dir(repo)
    await inspect_repo(LocalRunner(), str(repo))
    assert snapshot_git_dir(repo) == before


async def test_not_a_repo(env: Env, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = await inspect_repo(LocalRunner(), str(plain))
    assert isinstance(result, NotARepo)
    assert result.path == str(plain)
    assert "not a git repository" in result.reason

    missing = await inspect_repo(LocalRunner(), str(tmp_path / "nope"))
    assert missing == NotARepo(path=str(tmp_path / "nope"), reason="no such directory")


class MissingGitRunner(LocalRunner):
    async def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> CommandResult:
        return await super().run(
            ["git-is-not-installed-here", *argv[1:]], cwd=cwd, env=env, timeout=timeout
        )


async def test_git_missing_is_not_a_repo(env: Env, tmp_path: Path) -> None:
    result = await inspect_repo(MissingGitRunner(), str(tmp_path))
    assert result == NotARepo(path=str(tmp_path), reason="git is not installed")


# --- LocalRunner -----------------------------------------------------------------------------

SPAWNER = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1], "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
time.sleep(60)
"""


def read_pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def wait_until_gone(pids: Sequence[int], deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while any(alive(p) for p in pids):
        assert time.monotonic() < end, f"still running: {[p for p in pids if alive(p)]}"
        await asyncio.sleep(0.02)


async def test_runner_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    with pytest.raises(CommandTimeout):
        await LocalRunner().run(
            [sys.executable, "-c", SPAWNER, str(pid_file)], cwd=str(tmp_path), timeout=1.0
        )
    pids = read_pids(pid_file)
    assert len(pids) == 2
    await wait_until_gone(pids)


async def test_runner_cancellation_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    task = asyncio.create_task(
        LocalRunner().run([sys.executable, "-c", SPAWNER, str(pid_file)], cwd=str(tmp_path))
    )
    end = time.monotonic() + 10
    while len(read_pids(pid_file)) < 2:
        assert time.monotonic() < end
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until_gone(read_pids(pid_file))


async def test_runner_env_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/somewhere/else")
    monkeypatch.setenv("KEEP_ME", "kept")
    script = "import os; print(os.environ['FOO'], os.environ.get('GIT_DIR'), os.environ['KEEP_ME'])"
    result = await LocalRunner().run(
        [sys.executable, "-c", script], cwd=str(tmp_path), env={"FOO": "bar"}
    )
    assert result == CommandResult(0, b"bar None kept\n", b"")

    failed = await LocalRunner().run(
        [sys.executable, "-c", "import sys; sys.stderr.write('x'); sys.exit(3)"], cwd=str(tmp_path)
    )
    assert (failed.returncode, failed.stderr) == (3, b"x")

    with pytest.raises(CommandNotFound):
        await LocalRunner().run(["no-such-program-here"], cwd=str(tmp_path))
    with pytest.raises(WorkdirNotFound):
        await LocalRunner().run([sys.executable, "-V"], cwd=str(tmp_path / "missing"))


# --- worktrees -------------------------------------------------------------------------------


def branches(env: Env, repo: Path) -> set[str]:
    out = env.git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads")
    return set(out.decode().split())


@pytest.fixture
def repo(env: Env, tmp_path: Path) -> Path:
    repo = init_repo(env, tmp_path / "projects" / "api")
    write(repo / "a.txt", "a\n")
    commit_all(env, repo, "start")
    return repo


async def test_create_and_remove_a_clean_worktree(env: Env, repo: Path) -> None:
    runner = LocalRunner()
    head = env.git(repo, "rev-parse", "HEAD").decode().strip()
    wt = await create_worktree(runner, str(repo), "s1")
    assert wt.path == str(repo.parent / ".agent-bridge-worktrees" / "api-s1")
    assert wt.path == default_worktree_path(str(repo), "s1")
    assert (wt.branch, wt.start_branch, wt.base) == ("agent/s1", "main", head)
    assert (Path(wt.path) / "a.txt").read_text() == "a\n"
    state = await inspect_repo(runner, wt.path)
    assert isinstance(state, RepoState)
    assert (state.branch, state.head, state.dirty) == ("agent/s1", head, False)

    result = await remove_worktree(runner, str(repo), wt.path, wt.branch, into="main")
    assert result.removed
    assert result.branch_deleted
    assert not exists(wt.path)
    assert branches(env, repo) == {"main"}


async def test_remove_refuses_unmerged_commits_then_force_keeps_the_branch(
    env: Env, repo: Path
) -> None:
    runner = LocalRunner()
    wt = await create_worktree(runner, str(repo), "s2")
    write(Path(wt.path) / "b.txt", "b\n")
    commit_all(env, Path(wt.path), "agent work")

    refused = await remove_worktree(runner, str(repo), wt.path, wt.branch, into="main")
    assert not refused.removed
    assert refused.reason == "agent/s2 has 1 commit not merged into main"
    assert refused.unmerged == 1
    assert refused.unmerged_log[0].endswith(" agent work")
    assert exists(wt.path)

    forced = await remove_worktree(runner, str(repo), wt.path, wt.branch, into="main", force=True)
    assert forced.removed
    assert not forced.branch_deleted
    assert forced.note is not None
    assert "kept branch agent/s2" in forced.note
    assert not exists(wt.path)
    assert "agent/s2" in branches(env, repo)  # the commit is still reachable
    assert env.git(repo, "log", "-1", "--format=%s", "agent/s2") == b"agent work\n"


async def test_remove_refuses_a_dirty_worktree(env: Env, repo: Path) -> None:
    runner = LocalRunner()
    wt = await create_worktree(runner, str(repo), "s3")
    write(Path(wt.path) / "scratch.txt", "not committed\n")

    refused = await remove_worktree(runner, str(repo), wt.path, wt.branch)
    assert not refused.removed
    assert refused.dirty
    assert refused.reason == "the worktree has uncommitted changes"

    forced = await remove_worktree(runner, str(repo), wt.path, wt.branch, force=True)
    assert forced.removed
    assert forced.branch_deleted  # nothing unmerged: the branch can go
    assert not exists(wt.path)


async def test_merged_work_lets_the_branch_go(env: Env, repo: Path) -> None:
    runner = LocalRunner()
    wt = await create_worktree(runner, str(repo), "s4")
    write(Path(wt.path) / "c.txt", "c\n")
    commit_all(env, Path(wt.path), "done")
    env.git(repo, "merge", "-q", "--ff-only", "agent/s4")

    result = await remove_worktree(runner, str(repo), wt.path, wt.branch, into=wt.start_branch)
    assert result.removed
    assert result.branch_deleted
    assert branches(env, repo) == {"main"}


async def test_remove_refuses_strangers_and_the_main_worktree(
    env: Env, repo: Path, tmp_path: Path
) -> None:
    runner = LocalRunner()
    main = await remove_worktree(runner, str(repo), str(repo), "main")
    assert not main.removed
    assert main.reason == "refusing to remove the main worktree"
    other = tmp_path / "elsewhere"
    other.mkdir()
    stranger = await remove_worktree(runner, str(repo), str(other), "agent/x")
    assert not stranger.removed
    assert stranger.reason is not None
    assert "not a worktree" in stranger.reason
    assert exists(repo)


async def test_remove_a_worktree_whose_directory_is_gone(env: Env, repo: Path) -> None:
    runner = LocalRunner()
    wt = await create_worktree(runner, str(repo), "s5")
    shutil.rmtree(wt.path)
    result = await remove_worktree(runner, str(repo), wt.path, wt.branch)
    assert result.removed
    assert b"s5" not in env.git(repo, "worktree", "list", "--porcelain")


async def test_worktree_in_a_chosen_directory_and_odd_ids(
    env: Env, repo: Path, tmp_path: Path
) -> None:
    runner = LocalRunner()
    wt = await create_worktree(runner, str(repo), "abc/../def ghi", base_dir=str(tmp_path / "wt"))
    assert wt.path == str(tmp_path / "wt" / "api-abc-def-ghi")
    assert wt.branch == "agent/abc-def-ghi"
    assert exists(Path(wt.path, "a.txt"))


async def test_worktree_needs_a_commit(env: Env, tmp_path: Path) -> None:
    repo = init_repo(env, tmp_path / "empty")
    with pytest.raises(GitError, match="no commits"):
        await create_worktree(LocalRunner(), str(repo), "s1")
