"""bridge.diffs: summaries that never raise, the rendered block, and delivery choices."""

from __future__ import annotations

import io
import random
import zipfile

import pytest

from bridge.diffs import (
    DeliveryKind,
    DiffSummary,
    FileChange,
    FileStatus,
    package_diff,
    render_diff_summary,
    summarize_diff,
)

MODIFIED = b"""\
diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,3 +1,4 @@
 import os
-print("a")
+print("b")
+print("c")
 x = 1
"""

ADDED = b"""\
diff --git a/new.py b/new.py
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/new.py
@@ -0,0 +1,2 @@
+one
+two
"""

REMOVED = b"""\
diff --git a/gone.py b/gone.py
deleted file mode 100644
index 4444444..0000000
--- a/gone.py
+++ /dev/null
@@ -1,3 +0,0 @@
-a
-b
-c
"""

RENAMED = b"""\
diff --git a/old name.py b/new name.py
similarity index 100%
rename from old name.py
rename to new name.py
"""

RENAMED_EDITED = b"""\
diff --git a/lib/a.py b/lib/b.py
similarity index 80%
rename from lib/a.py
rename to lib/b.py
index 5555555..6666666 100644
--- a/lib/a.py
+++ b/lib/b.py
@@ -1,2 +1,2 @@
 keep
-old
+new
"""

MODE_ONLY = b"""\
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
"""

MODE_AND_EDIT = b"""\
diff --git a/tool.sh b/tool.sh
old mode 100644
new mode 100755
index 7777777..8888888
--- a/tool.sh
+++ b/tool.sh
@@ -1 +1 @@
-echo a
+echo b
"""

BINARY = b"""\
diff --git a/logo.png b/logo.png
index 9999999999999999999999999999999999999999..aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 100644
GIT binary patch
literal 4
LcmZQzWMXCj00IC2

literal 3
KcmZQzWMT#Y01N;E

"""

BINARY_NO_PATCH = b"""\
diff --git a/data.bin b/data.bin
new file mode 100644
index 0000000..bbbbbbb
Binary files /dev/null and b/data.bin differ
"""

EMPTY_NEW_FILE = b"""\
diff --git a/empty.txt b/empty.txt
new file mode 100644
index 0000000..e69de29
"""

QUOTED = (
    b'diff --git "a/caf\\303\\251 \\"x\\".txt" "b/caf\\303\\251 \\"x\\".txt"\n'
    b"index 1111111..2222222 100644\n"
    b'--- "a/caf\\303\\251 \\"x\\".txt"\n'
    b'+++ "b/caf\\303\\251 \\"x\\".txt"\n'
    b"@@ -1 +1 @@\n"
    b"-a\n"
    b"+b\n"
)

NON_UTF8 = b"""\
diff --git a/latin1.txt b/latin1.txt
index 1111111..2222222 100644
--- a/latin1.txt
+++ b/latin1.txt
@@ -1,2 +1,2 @@
-caf\xe9
+caf\xe8 \xff\xfe
 \x80\x81 context
"""


def one(raw: bytes) -> FileChange:
    summary = summarize_diff(raw)
    assert summary.parse_error is None, summary.parse_error
    assert len(summary.files) == 1
    return summary.files[0]


def test_modified_file() -> None:
    f = one(MODIFIED)
    assert f == FileChange(
        path="src/app.py",
        status=FileStatus.MODIFIED,
        added=2,
        removed=1,
        old_mode="100644",
        new_mode="100644",
    )


def test_added_and_removed_files() -> None:
    added = one(ADDED)
    assert (added.path, added.status, added.added, added.removed) == (
        "new.py",
        FileStatus.ADDED,
        2,
        0,
    )
    assert added.new_mode == "100644"
    removed = one(REMOVED)
    assert (removed.path, removed.status, removed.added, removed.removed) == (
        "gone.py",
        FileStatus.REMOVED,
        0,
        3,
    )


def test_pure_rename_with_spaces() -> None:
    f = one(RENAMED)
    assert (f.path, f.old_path, f.status, f.added, f.removed) == (
        "new name.py",
        "old name.py",
        FileStatus.RENAMED,
        0,
        0,
    )


def test_rename_with_edits() -> None:
    f = one(RENAMED_EDITED)
    assert (f.path, f.old_path, f.status, f.added, f.removed) == (
        "lib/b.py",
        "lib/a.py",
        FileStatus.RENAMED,
        1,
        1,
    )


def test_mode_only_change() -> None:
    f = one(MODE_ONLY)
    assert f.status is FileStatus.MODE_CHANGED
    assert (f.old_mode, f.new_mode, f.added, f.removed) == ("100644", "100755", 0, 0)


def test_mode_change_with_edit_is_modified() -> None:
    f = one(MODE_AND_EDIT)
    assert f.status is FileStatus.MODIFIED
    assert (f.old_mode, f.new_mode, f.added, f.removed) == ("100644", "100755", 1, 1)


def test_binary_files() -> None:
    f = one(BINARY)
    assert (f.path, f.status, f.binary, f.added, f.removed) == (
        "logo.png",
        FileStatus.MODIFIED,
        True,
        0,
        0,
    )
    g = one(BINARY_NO_PATCH)
    assert (g.path, g.status, g.binary) == ("data.bin", FileStatus.ADDED, True)


def test_empty_new_file() -> None:
    f = one(EMPTY_NEW_FILE)
    assert (f.path, f.status, f.added) == ("empty.txt", FileStatus.ADDED, 0)


def test_quoted_path_is_unquoted() -> None:
    assert one(QUOTED).path == 'café "x".txt'


def test_non_utf8_content_is_counted() -> None:
    f = one(NON_UTF8)
    assert (f.path, f.added, f.removed) == ("latin1.txt", 1, 1)


def test_whole_patch_totals_and_status_counts() -> None:
    raw = MODIFIED + ADDED + REMOVED + RENAMED + MODE_ONLY + BINARY + EMPTY_NEW_FILE
    summary = summarize_diff(raw)
    assert summary.parse_error is None
    assert [f.path for f in summary.files] == [
        "src/app.py",
        "new.py",
        "gone.py",
        "new name.py",
        "run.sh",
        "logo.png",
        "empty.txt",
    ]
    assert (summary.added, summary.removed) == (4, 4)
    assert summary.by_status == {
        FileStatus.ADDED: 2,
        FileStatus.MODIFIED: 2,
        FileStatus.REMOVED: 1,
        FileStatus.RENAMED: 1,
        FileStatus.MODE_CHANGED: 1,
    }
    assert summary.files_added == 2
    assert summary.files_modified == 2
    assert summary.files_removed == 1
    assert summary.files_renamed == 1
    assert summary.files_mode_changed == 1
    assert summary.files_binary == 1
    assert summary.count(FileStatus.REMOVED) == 1


def test_empty_input() -> None:
    for raw in (b"", b"\n", b"  \n\t"):
        summary = summarize_diff(raw)
        assert summary == DiffSummary()
        assert summary.is_empty
        assert summary.parse_error is None


def test_hunk_without_file_header_falls_back_to_nothing_but_an_error() -> None:
    summary = summarize_diff(b"@@ -1 +1 @@\n-a\n+b\n")
    assert summary.files == ()
    assert summary.parse_error is not None


def test_text_without_headers_is_flagged() -> None:
    summary = summarize_diff(b"hello world\nthis is not a diff\n")
    assert summary.files == ()
    assert summary.parse_error == "no file headers found in the diff"


def test_truncated_diff_falls_back_to_line_scan() -> None:
    # The second file's hunk promises 5 lines and delivers 1: unidiff raises.
    raw = (
        MODIFIED
        + RENAMED
        + b"diff --git a/cut.py b/cut.py\n"
        + b"index 1..2 100644\n--- a/cut.py\n+++ b/cut.py\n@@ -1,5 +1,5 @@\n-x\n"
    )
    summary = summarize_diff(raw)
    assert summary.parse_error is not None
    assert "Hunk" in summary.parse_error
    assert [(f.path, f.status, f.added, f.removed) for f in summary.files] == [
        ("src/app.py", FileStatus.MODIFIED, 2, 1),
        ("new name.py", FileStatus.RENAMED, 0, 0),
        ("cut.py", FileStatus.MODIFIED, 0, 1),
    ]
    assert summary.files[1].old_path == "old name.py"
    assert (summary.added, summary.removed) == (2, 2)


def test_fallback_scan_knows_statuses() -> None:
    broken = b"diff --git a/z.py b/z.py\n--- a/z.py\n+++ b/z.py\n@@ -1,9 +1,9 @@\n+x\n"
    raw = ADDED + REMOVED + MODE_ONLY + BINARY + QUOTED + broken
    summary = summarize_diff(raw)
    assert summary.parse_error is not None
    assert [(f.path, f.status, f.binary) for f in summary.files] == [
        ("new.py", FileStatus.ADDED, False),
        ("gone.py", FileStatus.REMOVED, False),
        ("run.sh", FileStatus.MODE_CHANGED, False),
        ("logo.png", FileStatus.MODIFIED, True),
        ('café "x".txt', FileStatus.MODIFIED, False),
        ("z.py", FileStatus.MODIFIED, False),
    ]


@pytest.mark.parametrize("seed", range(30))
def test_garbage_never_raises(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [MODIFIED, ADDED, RENAMED, BINARY, NON_UTF8, QUOTED, MODE_ONLY]
    raw = b"".join(rng.choice(pieces) for _ in range(4))
    # Cut it anywhere and sprinkle random bytes in.
    raw = bytearray(raw[: rng.randrange(len(raw) + 1)])
    for _ in range(rng.randrange(5)):
        raw.insert(rng.randrange(len(raw) + 1), rng.randrange(256))
    summary = summarize_diff(bytes(raw))
    assert isinstance(summary, DiffSummary)
    render_diff_summary(summary)


@pytest.mark.parametrize(
    "raw",
    [
        bytes(range(256)) * 10,
        b"\x00" * 1000,
        b"diff --git\n",
        b"diff --git a/x\n@@ -1 +1 @@\n",
        b"--- a\n+++ b\n@@ -1 +1 @@\n-a\n+b\n",
        b"+++ b/x\n",
        b"diff --git a/x b/x\nGIT binary patch\nliteral 0\n",
        b"\\ No newline at end of file\n",
        "diff --git a/é b/é\n".encode("utf-16"),
    ],
)
def test_odd_inputs_never_raise(raw: bytes) -> None:
    summary = summarize_diff(raw)
    assert isinstance(summary, DiffSummary)
    render_diff_summary(summary)


def test_huge_diff() -> None:
    lines = b"".join(b"+line %d with some text to make it longer\n" % i for i in range(130_000))
    raw = (
        b"diff --git a/big.txt b/big.txt\nnew file mode 100644\nindex 0000000..1111111\n"
        b"--- /dev/null\n+++ b/big.txt\n@@ -0,0 +1,130000 @@\n" + lines
    )
    assert len(raw) > 5_000_000
    summary = summarize_diff(raw)
    assert summary.parse_error is None
    assert summary.added == 130_000
    assert summary.files[0].status is FileStatus.ADDED


# --- render ----------------------------------------------------------------------------------


def test_render_block() -> None:
    raw = MODIFIED + ADDED + REMOVED + RENAMED + RENAMED_EDITED + MODE_ONLY + BINARY
    assert render_diff_summary(summarize_diff(raw)) == "\n".join(
        [
            "7 files changed, +5 −5",
            "M src/app.py +2 −1",
            "A new.py +2",
            "D gone.py −3",
            "R old name.py → new name.py",
            "R lib/a.py → lib/b.py +1 −1",
            "M run.sh (mode 100644 → 100755)",
            "B logo.png (binary)",
        ]
    )


def test_render_binary_added_and_mode_with_edit() -> None:
    text = render_diff_summary(summarize_diff(BINARY_NO_PATCH + MODE_AND_EDIT))
    assert text.splitlines()[1:] == [
        "B data.bin (binary, added)",
        "M tool.sh +1 −1 (mode 100644 → 100755)",
    ]


def test_render_single_file_and_truncation() -> None:
    assert render_diff_summary(summarize_diff(ADDED)).splitlines()[0] == "1 file changed, +2 −0"
    files = tuple(
        FileChange(path=f"f{i}.py", status=FileStatus.MODIFIED, added=1) for i in range(20)
    )
    summary = DiffSummary(files=files, added=20)
    lines = render_diff_summary(summary, max_files=15).splitlines()
    assert len(lines) == 1 + 15 + 1
    assert lines[-1] == "… and 5 more files"
    assert render_diff_summary(summary, max_files=19).splitlines()[-1] == "… and 1 more file"
    assert len(render_diff_summary(summary, max_files=20).splitlines()) == 21


def test_render_empty_and_error() -> None:
    assert render_diff_summary(DiffSummary()) == "No changes."
    text = render_diff_summary(summarize_diff(b"not a diff"))
    assert text == "No changes.\n(diff only partly read: no file headers found in the diff)"


# --- package ---------------------------------------------------------------------------------


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_package_empty() -> None:
    for raw in (b"", b"\n"):
        package = package_diff(raw, name="s1", inline_limit=100, file_limit=1000)
        assert package.kind is DeliveryKind.EMPTY
        assert package.data is None
        assert package.message


def test_package_inline_boundary() -> None:
    raw = MODIFIED
    at = package_diff(raw, name="s1", inline_limit=len(raw), file_limit=10_000)
    assert at.kind is DeliveryKind.INLINE
    assert at.text == raw.decode()
    over = package_diff(raw, name="s1", inline_limit=len(raw) - 1, file_limit=10_000)
    assert over.kind is DeliveryKind.DOCUMENT
    assert over.filename == "s1.diff"
    assert over.data == raw


def test_package_non_utf8_is_never_inline() -> None:
    package = package_diff(NON_UTF8, name="s1", inline_limit=10_000, file_limit=10_000)
    assert package.kind is DeliveryKind.DOCUMENT
    assert package.data is NON_UTF8  # the original bytes, untouched


def test_package_document_boundary_then_zip() -> None:
    raw = MODIFIED * 200
    at = package_diff(raw, name="turn-3", inline_limit=0, file_limit=len(raw))
    assert at.kind is DeliveryKind.DOCUMENT
    assert at.data == raw
    over = package_diff(raw, name="turn-3", inline_limit=0, file_limit=len(raw) - 1)
    assert over.kind is DeliveryKind.ZIP
    assert over.filename == "turn-3.zip"
    assert over.data is not None
    assert len(over.data) < len(raw) - 1
    assert unzip(over.data) == {"turn-3.diff": raw}
    assert over.size == len(raw)


def test_package_zip_is_reproducible() -> None:
    raw = MODIFIED * 200
    first = package_diff(raw, name="x", inline_limit=0, file_limit=1000)
    second = package_diff(raw, name="x", inline_limit=0, file_limit=1000)
    assert first.data == second.data


def test_package_zip_keeps_exact_bytes() -> None:
    raw = (NON_UTF8 + BINARY + QUOTED) * 100 + b"no newline at end"
    package = package_diff(raw, name="s", inline_limit=0, file_limit=len(raw) // 2)
    assert package.kind is DeliveryKind.ZIP
    assert package.data is not None
    assert unzip(package.data) == {"s.diff": raw}


def test_package_too_large() -> None:
    raw = random.Random(1).randbytes(50_000)  # incompressible
    package = package_diff(raw, name="abc123", inline_limit=0, file_limit=40_000)
    assert package.kind is DeliveryKind.TOO_LARGE
    assert package.data is None
    assert package.message is not None
    assert "agent-bridge diff abc123" in package.message
    assert "50.0 KB" in package.message
    with_ref = package_diff(raw, name="x", inline_limit=0, file_limit=40_000, ref="sess-9")
    assert with_ref.message is not None
    assert with_ref.message.endswith("agent-bridge diff sess-9")


def test_package_zip_boundary_exact() -> None:
    raw = MODIFIED * 300
    zipped = package_diff(raw, name="b", inline_limit=0, file_limit=len(raw) - 1).data
    assert zipped is not None
    fits = package_diff(raw, name="b", inline_limit=0, file_limit=len(zipped))
    assert fits.kind is DeliveryKind.ZIP
    too = package_diff(raw, name="b", inline_limit=0, file_limit=len(zipped) - 1)
    assert too.kind is DeliveryKind.TOO_LARGE


def test_package_name_is_sanitized() -> None:
    package = package_diff(MODIFIED, name="../etc/pass wd", inline_limit=0, file_limit=10_000)
    assert package.filename == "etc_pass_wd.diff"
    assert package_diff(MODIFIED, name="///", inline_limit=0, file_limit=10_000).filename == (
        "changes.diff"
    )
