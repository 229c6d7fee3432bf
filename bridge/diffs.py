"""Diff summaries and delivery: what changed in a turn, and how the diff reaches the chat.

Theory of operation: the daemon hands over the raw bytes of a git diff (see `daemon/gitdiff.py`,
which pins the diff's shape). `summarize_diff()` turns them into a `DiffSummary` of frozen
`FileChange`s with unidiff and never raises: when unidiff gives up (non-UTF-8 is decoded
with replacement, but a truncated hunk or a hunk without file headers still fails) a plain
line scan of the `diff --git` sections still tells the user which files changed, and
`parse_error` says why the numbers may be rough. `render_diff_summary()` makes the short
text block of a turn summary. `package_diff()` decides how the diff itself travels: inline,
as a `.diff` document, as a `.zip`, or not at all (too large, with the local command to get
it). Attachments always carry the original bytes: `str(PatchSet)` is not byte-identical.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from unidiff.patch import PatchedFile, PatchSet

__all__ = [
    "DeliveryKind",
    "DiffPackage",
    "DiffSummary",
    "FileChange",
    "FileStatus",
    "package_diff",
    "render_diff_summary",
    "summarize_diff",
]

_DEV_NULL = "/dev/null"
_PREFIX = re.compile(r"[abciow12]/")  # a/ b/, mnemonic prefixes, --no-index 1/ 2/
_ERROR_CHARS = 200
# A fixed timestamp keeps the zip reproducible and the core off the clock.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class FileStatus(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    REMOVED = "removed"
    RENAMED = "renamed"
    MODE_CHANGED = "mode_changed"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileChange:
    """One file of a diff. `old_path` is set for renames only; modes are git's (`100644`)."""

    path: str
    old_path: str | None = None
    status: FileStatus
    added: int = 0
    removed: int = 0
    binary: bool = False
    old_mode: str | None = None
    new_mode: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffSummary:
    """All files of a diff with their line counts; `parse_error` is set when unidiff failed
    and the files come from the fallback line scan (counts are then best effort)."""

    files: tuple[FileChange, ...] = ()
    added: int = 0
    removed: int = 0
    parse_error: str | None = None

    @property
    def is_empty(self) -> bool:
        return not self.files

    @property
    def by_status(self) -> dict[FileStatus, int]:
        """Number of files per status; every status is present, zero included."""
        counts = Counter(f.status for f in self.files)
        return {status: counts[status] for status in FileStatus}

    def count(self, status: FileStatus) -> int:
        return sum(1 for f in self.files if f.status is status)

    @property
    def files_added(self) -> int:
        return self.count(FileStatus.ADDED)

    @property
    def files_modified(self) -> int:
        return self.count(FileStatus.MODIFIED)

    @property
    def files_removed(self) -> int:
        return self.count(FileStatus.REMOVED)

    @property
    def files_renamed(self) -> int:
        return self.count(FileStatus.RENAMED)

    @property
    def files_mode_changed(self) -> int:
        return self.count(FileStatus.MODE_CHANGED)

    @property
    def files_binary(self) -> int:
        return sum(1 for f in self.files if f.binary)


# --- summarize -------------------------------------------------------------------------------


def summarize_diff(raw: bytes) -> DiffSummary:
    """Summarize a git diff. Never raises: any input gives a summary."""
    if not raw.strip():
        return DiffSummary()
    try:
        patch = PatchSet.from_string(raw, encoding="utf-8", errors="replace", metadata_only=True)
        files = tuple(_file_change(f) for f in patch)
    # unidiff raises UnidiffParseError for malformed input, but also assertion and value
    # errors on some inputs; whatever it is, the user still gets the line scan.
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        return _summary(_scan_sections(raw), _clip(error))
    if not files:
        return _summary((), "no file headers found in the diff")
    return _summary(files, None)


def _summary(files: Iterable[FileChange], error: str | None) -> DiffSummary:
    files = tuple(files)
    return DiffSummary(
        files=files,
        added=sum(f.added for f in files),
        removed=sum(f.removed for f in files),
        parse_error=error,
    )


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def _file_change(f: PatchedFile) -> FileChange:
    info = [str(line).rstrip("\n") for line in f.patch_info or ()]
    rename_from = _info_path(info, "rename from ")
    rename_to = _info_path(info, "rename to ")
    added_file = f.source_file == _DEV_NULL
    removed_file = f.target_file == _DEV_NULL
    if added_file:
        path = _strip_prefix(f.target_file)
    elif removed_file:
        path = _strip_prefix(f.source_file)
    else:
        path = rename_to or _strip_prefix(f.target_file)
    old_path = None
    if not added_file and not removed_file:
        source = rename_from or _strip_prefix(f.source_file)
        old_path = source if source != path else None
    added, removed = f.added, f.removed
    return FileChange(
        path=path,
        old_path=old_path,
        status=_status(
            added_file=added_file,
            removed_file=removed_file,
            renamed=old_path is not None,
            mode_only=(
                f.source_mode is not None
                and f.target_mode is not None
                and f.source_mode != f.target_mode
                and not f.is_binary_file
                and added == removed == 0
            ),
        ),
        added=added,
        removed=removed,
        binary=f.is_binary_file,
        old_mode=f.source_mode,
        new_mode=f.target_mode,
    )


def _status(*, added_file: bool, removed_file: bool, renamed: bool, mode_only: bool) -> FileStatus:
    if added_file:
        return FileStatus.ADDED
    if removed_file:
        return FileStatus.REMOVED
    if renamed:
        return FileStatus.RENAMED
    if mode_only:
        return FileStatus.MODE_CHANGED
    return FileStatus.MODIFIED


def _info_path(info: list[str], prefix: str) -> str | None:
    for line in info:
        if line.startswith(prefix):
            return _unquote(line[len(prefix) :])
    return None


def _strip_prefix(name: str) -> str:
    name = _unquote(name)
    return name[2:] if _PREFIX.match(name) else name


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(name: str) -> str:
    """Undo git's C-style quoting (`"a/caf\\303\\251"`); anything else is returned as is."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 == len(body):
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        nxt = body[i + 1]
        octal = body[i + 1 : i + 4]
        if len(octal) == 3 and all(c in "01234567" for c in octal):
            out.append(int(octal, 8) & 0xFF)
            i += 4
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out += ch.encode()
            i += 1
    return out.decode("utf-8", "replace")


# --- fallback scan ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Section:
    header: str
    minus: str | None = None
    plus: str | None = None
    rename_from: str | None = None
    rename_to: str | None = None
    new_file: bool = False
    deleted_file: bool = False
    old_mode: str | None = None
    new_mode: str | None = None
    binary: bool = False
    in_hunk: bool = False
    added: int = 0
    removed: int = 0


def _scan_sections(raw: bytes) -> list[FileChange]:
    """Which files a diff touches, from its `diff --git` sections alone (tolerates anything)."""
    sections: list[_Section] = []
    current: _Section | None = None
    for bline in raw.split(b"\n"):
        line = bline.decode("utf-8", "replace").rstrip("\r")
        if line.startswith("diff --git "):
            current = _Section(header=line[len("diff --git ") :])
            sections.append(current)
            continue
        if current is None:
            continue
        if current.in_hunk:
            if line.startswith("+"):
                current.added += 1
            elif line.startswith("-"):
                current.removed += 1
            continue
        if line.startswith("@@"):
            current.in_hunk = True
        elif line.startswith("--- "):
            current.minus = line[4:].split("\t")[0]
        elif line.startswith("+++ "):
            current.plus = line[4:].split("\t")[0]
        elif line.startswith("rename from "):
            current.rename_from = _unquote(line[len("rename from ") :])
        elif line.startswith("rename to "):
            current.rename_to = _unquote(line[len("rename to ") :])
        elif line.startswith("new file mode "):
            current.new_file, current.new_mode = True, line.rsplit(" ", 1)[-1]
        elif line.startswith("deleted file mode "):
            current.deleted_file, current.old_mode = True, line.rsplit(" ", 1)[-1]
        elif line.startswith("old mode "):
            current.old_mode = line.rsplit(" ", 1)[-1]
        elif line.startswith("new mode "):
            current.new_mode = line.rsplit(" ", 1)[-1]
        elif line.startswith(("GIT binary patch", "Binary files ")):
            current.binary = True
    return [_section_change(s) for s in sections]


def _section_change(s: _Section) -> FileChange:
    old_header, new_header = _split_git_header(s.header)
    new_path = s.rename_to or _path_of(s.plus) or new_header
    old_path = s.rename_from or _path_of(s.minus) or old_header
    if s.deleted_file:
        new_path = old_path
    renamed = not s.new_file and not s.deleted_file and old_path != new_path
    return FileChange(
        path=new_path,
        old_path=old_path if renamed else None,
        status=_status(
            added_file=s.new_file,
            removed_file=s.deleted_file,
            renamed=renamed,
            mode_only=(
                s.old_mode is not None
                and s.new_mode is not None
                and s.old_mode != s.new_mode
                and not s.binary
                and s.added == s.removed == 0
            ),
        ),
        added=s.added,
        removed=s.removed,
        binary=s.binary,
        old_mode=s.old_mode,
        new_mode=s.new_mode,
    )


def _path_of(name: str | None) -> str | None:
    if name is None or name == _DEV_NULL:
        return None
    return _strip_prefix(name)


def _split_git_header(rest: str) -> tuple[str, str]:
    """Split `a/x b/y` of a `diff --git` line. Unquoted names with spaces are ambiguous;
    when both halves name the same file (the usual case) the split is exact."""
    quoted = re.fullmatch(r'("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)', rest)
    if quoted:
        return _strip_prefix(quoted.group(1)), _strip_prefix(quoted.group(2))
    half = len(rest) // 2
    if len(rest) % 2 == 1 and rest[half] == " ":
        left, right = _strip_prefix(rest[:half]), _strip_prefix(rest[half + 1 :])
        if left == right:
            return left, right
    at = rest.rfind(" b/")
    if at > 0:
        return _strip_prefix(rest[:at]), _strip_prefix(rest[at + 1 :])
    return rest, rest


# --- render ----------------------------------------------------------------------------------


def render_diff_summary(summary: DiffSummary, max_files: int = 15) -> str:
    """A compact block for a turn summary:

    3 files changed, +12 −4
    M src/app.py +10 −2
    A new.py +5
    R old.py → new.py
    … and 2 more files
    """
    lines: list[str] = []
    n = len(summary.files)
    if n == 0:
        lines.append("No changes.")
    else:
        lines.append(f"{n} {_plural(n, 'file')} changed, +{summary.added} −{summary.removed}")
        shown = summary.files[: max(max_files, 0)]
        lines.extend(_render_file(f) for f in shown)
        if n > len(shown):
            rest = n - len(shown)
            lines.append(f"… and {rest} more {_plural(rest, 'file')}")
    if summary.parse_error:
        lines.append(f"(diff only partly read: {summary.parse_error})")
    return "\n".join(lines)


_LETTERS = {
    FileStatus.ADDED: "A",
    FileStatus.MODIFIED: "M",
    FileStatus.REMOVED: "D",
    FileStatus.RENAMED: "R",
    FileStatus.MODE_CHANGED: "M",
}


def _render_file(f: FileChange) -> str:
    name = f"{f.old_path} → {f.path}" if f.old_path else f.path
    if f.binary:
        note = (
            "binary"
            if f.status in (FileStatus.MODIFIED, FileStatus.RENAMED)
            else (f"binary, {f.status.value}")
        )
        return f"B {name} ({note})"
    parts = [_LETTERS[f.status], name]
    if f.added:
        parts.append(f"+{f.added}")
    if f.removed:
        parts.append(f"−{f.removed}")
    if (
        f.status in (FileStatus.MODE_CHANGED, FileStatus.MODIFIED, FileStatus.RENAMED)
        and f.old_mode
        and f.new_mode
        and f.old_mode != f.new_mode
    ):
        parts.append(f"(mode {f.old_mode} → {f.new_mode})")
    return " ".join(parts)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


# --- package ---------------------------------------------------------------------------------


class DeliveryKind(StrEnum):
    EMPTY = "empty"
    INLINE = "inline"
    DOCUMENT = "document"
    ZIP = "zip"
    TOO_LARGE = "too_large"


@dataclass(frozen=True, slots=True, kw_only=True)
class DiffPackage:
    """How a diff is delivered.

    - `inline`: `text` is the diff itself, short enough for a message;
    - `document` / `zip`: send `data` as a file named `filename`;
    - `empty` / `too_large`: nothing to send, `message` says why (and, when too large,
      the command that gets the diff on the machine).
    `size` is the length of the raw diff in bytes.
    """

    kind: DeliveryKind
    size: int
    text: str | None = None
    filename: str | None = None
    data: bytes | None = None
    message: str | None = None


def package_diff(
    raw: bytes, *, name: str, inline_limit: int, file_limit: int, ref: str | None = None
) -> DiffPackage:
    """Choose how `raw` travels: inline (valid UTF-8 and at most `inline_limit` bytes), as
    `<name>.diff` (at most `file_limit` bytes), as `<name>.zip` holding `<name>.diff` (when
    the zip fits in `file_limit`), else too large. `ref` is the id for
    `agent-bridge diff <ref>` in the too-large message; it defaults to `name`."""
    size = len(raw)
    if not raw.strip():
        return DiffPackage(kind=DeliveryKind.EMPTY, size=size, message="No changes.")
    if size <= inline_limit:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass  # not text a chat can show faithfully: send it as a file
        else:
            return DiffPackage(kind=DeliveryKind.INLINE, size=size, text=text)
    stem = _safe_name(name)
    if size <= file_limit:
        return DiffPackage(kind=DeliveryKind.DOCUMENT, size=size, filename=f"{stem}.diff", data=raw)
    zipped = _zip_one(f"{stem}.diff", raw)
    if len(zipped) <= file_limit:
        return DiffPackage(kind=DeliveryKind.ZIP, size=size, filename=f"{stem}.zip", data=zipped)
    return DiffPackage(
        kind=DeliveryKind.TOO_LARGE,
        size=size,
        message=(
            f"The diff is {_human(size)} ({_human(len(zipped))} zipped), over the "
            f"{_human(file_limit)} limit for files here. "
            f"Get it on the machine with: agent-bridge diff {ref or name}"
        ),
    )


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "changes"


def _zip_one(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    info = zipfile.ZipInfo(member, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(info, data)
    return buffer.getvalue()


def _human(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.1f} KB"
    return f"{n / 1_000_000:.1f} MB"
