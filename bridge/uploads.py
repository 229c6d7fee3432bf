"""Files people send in a session's thread: their names, their kinds, and the prompt.

A photo or file sent in a thread is saved in the session's working directory, under
`UPLOADS_DIR`, with a name made safe here (`safe_name`): no path separators, no leading
dots, no control characters, and unique in that directory. Images the agents can read
inline go to them as image content as well; every saved file is named by its path in the
prompt (`upload_prompt`), whose words are the message's caption or `DEFAULT_PROMPT`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from bridge.surface import FileKind

UPLOADS_DIR = ".agent-bridge/uploads"
EXCLUDE_LINE = ".agent-bridge/"  # the line that keeps the bridge's files out of git
# the image types every agent here reads inline (Claude's image blocks take exactly these)
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_BY_SUFFIX = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".gif": "image/gif", ".webp": "image/webp"}
_SUFFIX_OF = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif",
              "image/webp": ".webp"}
MAX_NAME = 120  # characters of a saved file's name
DEFAULT_PROMPT = "Have a look at the attached file."
DEFAULT_IMAGE_PROMPT = "Have a look at the attached image."
VOICE_HOWTO = ("Voice notes are not transcribed on this bridge: set [voice] command in its "
               "config to a local speech-to-text program (it gets the file's path and prints "
               "the text), or type the message.")


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedFile:
    """A file saved for the agent: its path on the agent's host and what it is."""

    path: str
    name: str
    media_type: str  # an `IMAGE_TYPES` member when it goes to the agent as an image
    size: int

    @property
    def is_image(self) -> bool:
        return self.media_type in IMAGE_TYPES


def image_type(kind: FileKind, name: str, mime: str) -> str | None:
    """The image media type a file is sent as, or None: it goes by path only. Telegram
    photos come without a type and are JPEG; a document counts by its type or suffix."""
    if kind is FileKind.VOICE:
        return None
    declared = mime.split(";")[0].strip().lower()
    if declared in IMAGE_TYPES:
        return declared
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    by_suffix = _BY_SUFFIX.get(suffix)
    if by_suffix is not None and declared in ("", "application/octet-stream"):
        return by_suffix
    if kind is FileKind.IMAGE and not declared:
        return "image/jpeg"
    return None


def safe_name(name: str, *, taken: Collection[str], fallback: str) -> str:
    """`name` as a plain file name in the uploads directory: the last path component only,
    control and separator characters replaced, no leading dots or dashes, at most
    `MAX_NAME` characters with the suffix kept, and not one of `taken` (a `-2`, `-3`, …
    before the suffix). `fallback` (itself plain) stands in for a name that is left empty."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = []
    for char in unicodedata.normalize("NFC", base):
        category = unicodedata.category(char)
        if category.startswith(("L", "N")) or char in "._-+()@,=":
            kept.append(char)
        elif char == " " or category.startswith("Z"):
            kept.append(" ")
        else:
            kept.append("_")
    cleaned = " ".join("".join(kept).split()).lstrip(".-_ ")
    if not cleaned.strip("._- "):
        cleaned = fallback
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot or not stem or len(suffix) > 16:
        stem, suffix = cleaned, ""
    suffix = f".{suffix}" if suffix else ""
    stem = stem[: MAX_NAME - len(suffix)].rstrip(". ") or "file"
    candidate = stem + suffix
    n = 1
    while candidate in taken:
        n += 1
        tail = f"-{n}{suffix}"
        candidate = stem[: MAX_NAME - len(tail)] + tail
    return candidate


def fallback_name(kind: FileKind, media_type: str | None, number: str) -> str:
    """A name for a file sent without one (Telegram photos and voice notes)."""
    if kind is FileKind.VOICE:
        return f"voice-{number}.ogg"
    suffix = _SUFFIX_OF.get(media_type or "", "")
    return f"{'photo' if kind is FileKind.IMAGE else 'file'}-{number}{suffix}"


def upload_prompt(caption: str, saved: Sequence[SavedFile]) -> str:
    """The prompt for files sent with `caption`: the caption (or a default), then each
    file's path, images marked as shown."""
    words = caption.strip()
    if not words:
        words = DEFAULT_IMAGE_PROMPT if saved and all(f.is_image for f in saved) \
            else DEFAULT_PROMPT
    if not saved:
        return words
    lines = [words, "", "Sent from chat, saved in the project:"]
    for f in saved:
        what = "image, attached" if f.is_image else f"{format_size(f.size)}"
        lines.append(f"- {f.path} ({what})")
    return "\n".join(lines)


def format_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def too_big(name: str, size: int | None, limit: int) -> str:
    """The reply when a file is over the limit: what, how big, and what to do."""
    shown = f"{name} " if name else "The file "
    told = f"is {format_size(size)}, " if size is not None else "is "
    return (f"{shown}{told}over the {format_size(limit)} the bridge takes "
            f"([uploads] max_bytes): nothing was sent to the agent. Send a smaller file, or "
            f"put it on the host and name its path in a message.")
