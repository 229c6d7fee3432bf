"""Files people send to the Telegram bot: what a message holds, and its download."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot, Message

from bridge.surface import Downloaded, FileKind, FileTooBig, IncomingFile


async def fetch(bot: Bot, file: IncomingFile, *, limit: int,
                call: Callable[[Awaitable[Any]], Awaitable[Any]]) -> Downloaded:
    """getFile, then the download through `base_file_url` (the Bot API serves bots files up
    to 20 MB; getFile refuses larger ones). `call` turns PTB's errors into the port's."""
    if file.size is not None and file.size > limit:
        raise FileTooBig(file.size, limit)
    found = await call(bot.get_file(file.ref))
    if found.file_size is not None and found.file_size > limit:
        raise FileTooBig(found.file_size, limit)
    data = bytes(await call(found.download_as_bytearray()))
    if len(data) > limit:
        raise FileTooBig(len(data), limit)
    return Downloaded(file=file, data=data)


def files_of(message: Message) -> tuple[IncomingFile, ...]:
    """A message's photo (its largest size), document or voice note, as the port sees it."""
    if message.photo:
        photo = message.photo[-1]
        return (IncomingFile(ref=photo.file_id, kind=FileKind.IMAGE, size=photo.file_size),)
    if message.document is not None:
        doc = message.document
        mime = doc.mime_type or ""
        kind = FileKind.IMAGE if mime.startswith("image/") else FileKind.DOCUMENT
        return (IncomingFile(ref=doc.file_id, kind=kind, name=doc.file_name or "", mime=mime,
                             size=doc.file_size),)
    if message.voice is not None:
        voice = message.voice
        return (IncomingFile(ref=voice.file_id, kind=FileKind.VOICE,
                             mime=voice.mime_type or "audio/ogg", size=voice.file_size),)
    return ()
