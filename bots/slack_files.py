"""Files people share in Slack (`message` events of subtype `file_share`): what an event
holds, and the download from `url_private_download` with the bot token (`files:read`).

The token goes only to Slack: an external file (a Google Drive link, a remote file an app
added) carries a URL on another server, and sending the token there would hand it over."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from yarl import URL

from bridge.surface import (
    Downloaded,
    FileKind,
    FileTooBig,
    IncomingFile,
    SurfaceError,
    SurfaceUnavailable,
)

DOWNLOAD_TIMEOUT = 120.0
_CHUNK = 64 * 1024


def files_of(event: dict[str, Any]) -> tuple[IncomingFile, ...]:
    """The files of a `file_share` message. Socket Mode may send a file as just its id
    (`"file_access": "check_file_info"`): its details are then read by `fetch`."""
    return tuple(_described(file) for file in event.get("files") or ()
                 if isinstance(file, dict) and file.get("id"))


def _described(file: dict[str, Any]) -> IncomingFile:
    """A Slack file object as the port sees it (its URL kept in the reference)."""
    mime = str(file.get("mimetype") or "")
    kind = (FileKind.IMAGE if mime.startswith("image/")
            else FileKind.VOICE if mime.startswith("audio/") else FileKind.DOCUMENT)
    size = file.get("size")
    url = file.get("url_private_download") or file.get("url_private")
    return IncomingFile(ref=json.dumps({"id": file["id"], "url": url}), kind=kind,
                        name=str(file.get("name") or file.get("title") or ""), mime=mime,
                        size=size if isinstance(size, int) else None)


async def fetch(client: AsyncWebClient, file: IncomingFile, *, limit: int,
                call: Callable[[Awaitable[AsyncSlackResponse]], Awaitable[AsyncSlackResponse]]
                ) -> Downloaded:
    """The file's bytes: files.info when the event did not carry its URL, then a GET of
    the private URL with the bot token, read no further than `limit` bytes."""
    if file.size is not None and file.size > limit:
        raise FileTooBig(file.size, limit)
    ref = json.loads(file.ref)
    url = ref.get("url")
    if not url:  # only the id came with the event: files.info tells the rest
        info = (await call(client.files_info(file=ref["id"]))).get("file") or {}
        file = _described({**info, "id": ref["id"]})
        if file.size is not None and file.size > limit:
            raise FileTooBig(file.size, limit)
        url = json.loads(file.ref).get("url")
        if not url:
            raise SurfaceError(f"Slack gave no download URL for file {ref['id']}")
    target = URL(url)
    if not on_slack(target, URL(client.base_url)):
        raise SurfaceError(f"the file's URL is not on Slack ({target.host}): nothing was "
                           "downloaded. Upload the file itself to Slack (not a link to it)")
    headers = {"Authorization": f"Bearer {client.token}"}
    timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(target, headers=headers) as response:
            if response.status >= 500:
                raise SurfaceUnavailable(f"Slack file download: HTTP {response.status}")
            if response.status != 200:
                raise SurfaceError(f"Slack refused the file download (HTTP {response.status})")
            if response.content_type == "text/html":
                # what Slack serves a request without a valid token: its sign-in page
                raise SurfaceError("Slack answered the file download with a web page: the "
                                   "bot token lacks the files:read scope")
            if response.content_length is not None and response.content_length > limit:
                raise FileTooBig(response.content_length, limit)
            data = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                data.extend(chunk)
                if len(data) > limit:
                    raise FileTooBig(None, limit)
            return Downloaded(file=file, data=bytes(data))
    except (aiohttp.ClientError, TimeoutError) as e:
        raise SurfaceUnavailable(f"Slack file download failed: {e}") from e


def on_slack(url: URL, api: URL) -> bool:
    """Whether `url` is Slack's, so that the bot token may go with it: on the Web API's
    origin, or over https on a subdomain of its host or of slack.com (files.slack.com,
    whatever the workspace's API host). A redirect elsewhere loses the token (aiohttp drops
    it across origins)."""
    if not url.host or not api.host:
        return False
    if url.origin() == api.origin():
        return True
    host = url.host.lower()
    return url.scheme == "https" and (
        host.endswith(".slack.com")
        or (api.scheme == "https" and host.endswith("." + api.host.lower())))
