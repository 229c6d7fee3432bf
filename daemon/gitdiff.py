"""A session's diff: the working tree against a start commit, untracked files included.

`diff_since()` must leave the user's repository exactly as it was, index included. It works
in a scratch directory on the runner's host: a copy of the user's index (with its mtime, so
git still re-reads files changed in the second the index was written; or, without an index,
the base tree) becomes a temporary index (`GIT_INDEX_FILE`), `git add -A` brings the working
tree into it (untracked files included, ignored ones not), and `git diff --cached <base>`
gives the patch. New blobs go to a temporary object directory (`GIT_OBJECT_DIRECTORY`) with
the repository's objects as an alternate, so not one file under `.git` is written. The
scratch directory is removed afterwards, whatever happens.

Every git call goes through `daemon/gitrun.py`; errors are its `GitError` tree.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Sequence

from daemon.gitrun import (
    CommandRunner,
    first_line,
    git,
    git_stdout,
    one_value,
    scratch_space,
)
from daemon.gitstate import head_commit

__all__ = ["DIFF_FLAGS", "DIFF_TIMEOUT", "diff_between", "diff_since", "numstat_since"]

log = logging.getLogger(__name__)

# The shape of every diff we produce: with `_PATCH_FLAGS` (`diff_since()` only; they would
# turn `--numstat` into a patch too) it applies with `git apply` and parses with unidiff.
DIFF_FLAGS: tuple[str, ...] = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--find-renames",
    "--full-index",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--no-relative",
    "--diff-algorithm=myers",
    "--indent-heuristic",
    "--ignore-submodules=none",
    "--submodule=short",
)

# Flags that imply `--patch`, so only for the patch itself.
_PATCH_FLAGS = ("--patch", "--binary", "--unified=3", "--inter-hunk-context=0")

DIFF_TIMEOUT = 120.0


async def diff_since(
    runner: CommandRunner, root: str, base: str | None, *, timeout: float = DIFF_TIMEOUT
) -> bytes:
    """The working tree against `base` (HEAD at session start; None: the empty tree) as a
    binary git patch, untracked files included, ignored files not. Applies with
    `git apply --binary` onto a checkout of `base`. Touches nothing in the repository."""
    return await _diff_working_tree(runner, root, base, _PATCH_FLAGS, timeout=timeout)


async def numstat_since(
    runner: CommandRunner, root: str, base: str | None, *, timeout: float = DIFF_TIMEOUT
) -> list[tuple[int | None, int | None, str]]:
    """`(added, removed, path)` per file for the same change as `diff_since()`; counts are
    None for binary files, `path` is the new path of a rename."""
    out = await _diff_working_tree(runner, root, base, ("--numstat", "-z"), timeout=timeout)
    return _parse_numstat_z(out)


def _parse_numstat_z(out: bytes) -> list[tuple[int | None, int | None, str]]:
    rows: list[tuple[int | None, int | None, str]] = []
    fields = out.split(b"\0")
    i = 0
    while i < len(fields):
        record = fields[i]
        i += 1
        if not record.strip(b"\n"):
            continue
        added, removed, path = record.lstrip(b"\n").split(b"\t", 2)
        if not path:  # a rename: the old and the new path follow as their own fields
            path = fields[i + 1] if i + 1 < len(fields) else b""
            i += 2
        rows.append((_count(added), _count(removed), os.fsdecode(path)))
    return rows


def _count(field: bytes) -> int | None:
    return None if field == b"-" else int(field)


async def _diff_working_tree(
    runner: CommandRunner, root: str, base: str | None, output: Sequence[str], *, timeout: float
) -> bytes:
    # One path per call: rev-parse has no -z, and a path may hold a newline.
    index_path = await _git_path(runner, root, "index")
    objects_dir = await _git_path(runner, root, "objects")
    against = base or await _empty_tree(runner, root)
    scratch = scratch_space(runner, root)
    tmp = await scratch.make_temp_dir("agent-bridge-diff-")
    try:
        env = {
            "GIT_INDEX_FILE": posixpath.join(tmp, "index"),
            # The scratch directory itself holds the new objects (git wants the object
            # directory to exist; the index file beside the fan-out dirs is ignored).
            "GIT_OBJECT_DIRECTORY": tmp,
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects_dir,
        }
        if not await scratch.copy_file(index_path, env["GIT_INDEX_FILE"]):
            # No index yet (fresh repository): start from the last commit, if any, so that
            # tracked files that match .gitignore still count.
            seed = base or await head_commit(runner, root)
            await git_stdout(runner, root, ["read-tree", seed or "--empty"], env=env)
        added = await git(
            runner, root, ["add", "--all", "--ignore-errors"], env=env, timeout=timeout
        )
        if added.returncode != 0:
            log.warning("git add in %s: %s", root, first_line(added.stderr))
        return await git_stdout(
            runner,
            root,
            ["diff", "--cached", *DIFF_FLAGS, *output, against, "--"],
            env=env,
            timeout=timeout,
        )
    finally:
        await scratch.remove_tree(tmp)


async def diff_between(
    runner: CommandRunner, root: str, base: str | None, before: bytes, after: bytes, *,
    timeout: float = DIFF_TIMEOUT,
) -> bytes:
    """What changed from one `diff_since()` patch to a later one (both against `base`): a
    turn's own change, from the snapshot at the end of the turn before to its own. Each
    patch is applied onto `base` in a scratch index (`git apply --cached`), and the two
    trees are diffed; as in `diff_since()`, nothing in the repository is written."""
    objects_dir = await _git_path(runner, root, "objects")
    against = base or await _empty_tree(runner, root)
    scratch = scratch_space(runner, root)
    tmp = await scratch.make_temp_dir("agent-bridge-turn-")
    try:
        env = {
            "GIT_INDEX_FILE": posixpath.join(tmp, "index"),
            "GIT_OBJECT_DIRECTORY": tmp,
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects_dir,
        }

        async def tree_of(patch: bytes) -> str:
            await git_stdout(runner, root, ["read-tree", against], env=env)
            if patch.strip():
                await git_stdout(runner, root, ["apply", "--cached", "--binary",
                                                "--whitespace=nowarn", "-"],
                                 env=env, timeout=timeout, input=patch)
            return one_value(await git_stdout(runner, root, ["write-tree"], env=env))

        old, new = await tree_of(before), await tree_of(after)
        return await git_stdout(runner, root, ["diff", *DIFF_FLAGS, *_PATCH_FLAGS, old, new,
                                               "--"], env=env, timeout=timeout)
    finally:
        await scratch.remove_tree(tmp)


async def _git_path(runner: CommandRunner, root: str, name: str) -> str:
    return one_value(
        await git_stdout(runner, root, ["rev-parse", "--path-format=absolute", "--git-path", name])
    )


async def _empty_tree(runner: CommandRunner, cwd: str) -> str:
    """The empty tree's id in this repository's hash (sha1 or sha256)."""
    return one_value(await git_stdout(runner, cwd, ["hash-object", "-t", "tree", "/dev/null"]))
