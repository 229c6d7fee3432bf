"""Files sent in a session's thread: downloaded, saved where the agent runs, given to it.

A photo or document is fetched from the surface (at most `[uploads] max_bytes`), saved in
`<cwd>/.agent-bridge/uploads/` on the session's host (this machine, or over SSH through the
host's runner) under a safe, unique name, with `.agent-bridge/` in the repository's
`.git/info/exclude` so that it never shows in a diff or a commit; then the agent gets the
caption as its prompt, each file's path in it, and the images as image content
(`bridge/uploads.py` makes the names and the prompt). A voice note is transcribed by the
local program `[voice] command` names, and its text is the prompt; without one, the
person is told how to set it up. Nothing is saved or sent when any file is refused.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import posixpath
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bridge.approvals import Actor
from bridge.config import Config
from bridge.events import ImageInput
from bridge.model import SessionView
from bridge.surface import (
    Downloaded,
    FileKind,
    FileTooBig,
    IncomingFile,
    Reply,
    SurfaceError,
)
from bridge.uploads import (
    EXCLUDE_LINE,
    UPLOADS_DIR,
    VOICE_HOWTO,
    SavedFile,
    fallback_name,
    image_type,
    safe_name,
    too_big,
    upload_prompt,
)
from daemon.errors import DaemonError
from daemon.gitrun import CommandRunner, FileDrop, GitError, LocalRunner
from daemon.hosts import Hosts
from daemon.sessions import in_a_terminal
from daemon.store import Store

log = logging.getLogger(__name__)

# appends EXCLUDE_LINE to the repository's exclude file unless a line already says it (a
# worktree's `--git-path` is the main repository's file); outside a repository: nothing
_EXCLUDE_SCRIPT = (
    'f=$(git rev-parse --git-path info/exclude 2>/dev/null) || exit 0; '
    'mkdir -p "$(dirname "$f")" || exit 1; '
    'grep -qxF "$1" "$f" 2>/dev/null && exit 0; '
    'if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then echo >> "$f"; fi; '
    'printf "%s\\n" "$1" >> "$f"'
)

# makes the uploads directory ($1, relative to the session's cwd) unless one of its parts is
# a symbolic link: a repository may carry `.agent-bridge/uploads` as a link to ~/.ssh or a
# hooks folder, and a file sent from chat must not land where it points
_MKDIR_SCRIPT = (
    'p=; for part in $(printf "%s" "$1" | tr "/" " "); do p="${p:+$p/}$part"; '
    'if [ -L "$p" ]; then echo "$p is a symbolic link: files are only saved in a real '
    'folder (remove the link, then send the file again)" >&2; exit 3; fi; done; '
    'mkdir -p -- "$1"'
)


class Fetch(Protocol):
    """A surface's `fetch_file`."""

    async def __call__(self, file: IncomingFile, *, limit: int) -> Downloaded: ...


Send = Callable[..., Awaitable[SessionView]]


class UploadRefused(DaemonError):
    code = "upload"


@dataclass
class Uploads:
    config: Config
    store: Store
    hosts: Hosts
    send: Send  # `Sessions.send`
    local: CommandRunner | None = None  # runs the speech-to-text program (default: here)

    async def receive(self, session_id: str, files: tuple[IncomingFile, ...], caption: str,
                      *, actor: Actor, fetch: Fetch) -> Reply:
        """Save and hand over `files` sent in `session_id`'s thread with `caption`; the
        reply says what was done, or why nothing was (too big, voice not set up)."""
        session = await self.store.session(session_id)
        if session.through_hooks:  # nothing is the daemon's to give it: not even a file
            raise in_a_terminal(session)
        limit = self.config.uploads.max_bytes
        for file in files:
            if file.size is not None and file.size > limit:
                return Reply(text=too_big(file.name, file.size, limit))
        if any(f.kind is FileKind.VOICE for f in files) and not self.config.voice.command:
            return Reply(text=VOICE_HOWTO)
        try:
            fetched = [await fetch(f, limit=limit) for f in files]
        except FileTooBig as e:
            return Reply(text=too_big("", e.size, limit))
        except SurfaceError as e:
            raise UploadRefused(f"Could not download the file: {e}. Send it again.") from e
        if any(d.file.kind is FileKind.VOICE for d in fetched) and not self.config.voice.command:
            return Reply(text=VOICE_HOWTO)  # what the platform told at the download
        heard = [await self._transcribe(d.data) for d in fetched
                 if d.file.kind is FileKind.VOICE]
        saved, images = await self._save(
            session, [d for d in fetched if d.file.kind is not FileKind.VOICE])
        words = "\n\n".join(part for part in (caption.strip(), *heard) if part)
        text = words if heard and not saved else upload_prompt(words, saved)
        await self.send(session_id, text, actor=actor, images=tuple(images))
        told = []
        if saved:
            names = ", ".join(posixpath.basename(f.path) for f in saved)
            told.append(f"Saved {names} in {UPLOADS_DIR}/ and sent to {session_id}.")
        if heard:
            told.append(f"Heard: {' '.join(heard)}")  # redacted, then cut, by the caller
        return Reply(text=" ".join(told))

    async def _save(self, session: SessionView, fetched: list[Downloaded]
                    ) -> tuple[list[SavedFile], list[ImageInput]]:
        if not fetched:
            return [], []
        runner = self.hosts.runner_for(session.host)
        if not isinstance(runner, FileDrop):
            raise UploadRefused(f"files cannot be written on host {session.host}")
        directory = posixpath.join(session.cwd, UPLOADS_DIR)
        try:
            taken = await self._prepare(runner, session.cwd, directory)
            saved: list[SavedFile] = []
            images: list[ImageInput] = []
            for number, downloaded in enumerate(fetched, start=1):
                file, data = downloaded.file, downloaded.data
                media = image_type(file.kind, file.name, file.mime)
                fallback = fallback_name(file.kind, media, f"{session.id}-{len(taken) + number}")
                name = safe_name(file.name, taken=taken, fallback=fallback)
                taken.add(name)
                path = posixpath.join(directory, name)
                await runner.write_file(path, data)
                saved.append(SavedFile(path=path, name=name, media_type=media or file.mime,
                                       size=len(data)))
                if media is not None:
                    images.append(ImageInput(path=path, media_type=media,
                                             data=base64.b64encode(data).decode("ascii")))
        except GitError as e:
            raise UploadRefused(f"Could not save the file on {session.host}: {e.message}") from e
        return saved, images

    async def _prepare(self, runner: CommandRunner, cwd: str, directory: str) -> set[str]:
        """Make the uploads directory, keep it out of git, and list the names it holds."""
        made = await runner.run(["sh", "-c", _MKDIR_SCRIPT, "sh", UPLOADS_DIR], cwd=cwd)
        if made.returncode != 0:
            raise UploadRefused(f"Could not make {directory}: "
                                f"{made.stderr.decode(errors='replace').strip()}")
        excluded = await runner.run(["sh", "-c", _EXCLUDE_SCRIPT, "sh", EXCLUDE_LINE], cwd=cwd)
        if excluded.returncode != 0:
            raise UploadRefused("Could not add .agent-bridge/ to .git/info/exclude: "
                                f"{excluded.stderr.decode(errors='replace').strip()}")
        listed = await runner.run(["ls", "-A", "--", directory], cwd=cwd)
        return set(listed.stdout.decode(errors="replace").splitlines())

    async def _transcribe(self, data: bytes) -> str:
        """The text of a voice note, from the configured speech-to-text program."""
        settings = self.config.voice
        runner = self.local or LocalRunner()
        scratch = await asyncio.to_thread(tempfile.mkdtemp, prefix="agent-bridge-voice-")
        try:
            path = str(Path(scratch) / "voice.ogg")
            await asyncio.to_thread(Path(path).write_bytes, data)
            try:
                result = await runner.run([*settings.command, path], cwd=scratch,
                                          timeout=settings.timeout)
            except GitError as e:
                raise UploadRefused(f"The speech-to-text program ([voice] command) failed: "
                                    f"{e.message}") from e
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, True)
        text = result.stdout.decode(errors="replace").strip()
        if result.returncode != 0 or not text:
            why = result.stderr.decode(errors="replace").strip()[-300:] or "it printed nothing"
            raise UploadRefused(f"The speech-to-text program ([voice] command) gave no text "
                                f"(exit {result.returncode}: {why}). Type the message instead.")
        return text
