"""A dcpool pool sharing a Pyrogram (kurigram, pyrofork) client's login.

::

    from dcpool.integrations.pyrogram import open_pool_from, download_media

    async with open_pool_from(app) as pool:                  # app: a started Client
        await download_media(app, message, "out.bin", pool=pool)

What Pyrogram's public API allows: the login comes from the client's storage accessors
(``await app.storage.dc_id()``, ``auth_key()``, ``user_id()``, ``test_mode()``), which every
Pyrogram-family storage implements; the file from the media's ``file_id``, decoded with
``pyrogram.file_id.FileId`` (its dc_id, id, access_hash, file_reference).  Photos are fetched
by their ``thumbnail_size``; every other media type as a document.  Nothing is written back to
the Pyrogram storage.  The pool runs on :mod:`dcpool.aio`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from .. import aio, tl
from ..errors import LocalProtocolError
from ..sessions.formats import ForeignSession, Source
from ..sessions.transfer import import_session
from ..storage import MemoryStorage

__all__ = ["open_pool_from", "download_media", "media_location"]

_MEDIA_ATTRIBUTES = ("document", "photo", "video", "audio", "voice", "animation", "video_note", "sticker")


async def _login_of(client: Any) -> ForeignSession:
    storage = client.storage
    key = await storage.auth_key()
    user_id = await storage.user_id()
    if not key or not user_id:
        raise LocalProtocolError("the Pyrogram client is not signed in (no auth key or user id)")
    return ForeignSession(source=Source.PYROGRAM_CLIENT, dc_id=await storage.dc_id(), auth_key=key,
                          user_id=user_id, test_mode=bool(await storage.test_mode()))


@contextlib.asynccontextmanager
async def open_pool_from(client: Any, **pool_options: Any) -> AsyncIterator[aio.AioPool]:
    """An asyncio dcpool pool sharing ``client``'s login (see the module docstring)."""
    login = await _login_of(client)
    storage = MemoryStorage("test" if login.test_mode else "prod")
    import_session(login, storage)
    async with aio.open_pool(api_id=client.api_id, api_hash=client.api_hash, storage=storage,
                             test_mode=bool(login.test_mode), **pool_options) as pool:
        yield pool


def media_location(media: Any) -> tuple[Any, int, int | None]:
    """``(dcpool InputFileLocation, dc_id, size)`` of a Pyrogram message or media object
    (anything with a ``file_id``), or of a ``file_id`` string."""
    from pyrogram.file_id import FileId, FileType

    if not isinstance(media, str):
        for name in _MEDIA_ATTRIBUTES:  # a Message: its first media
            inner = getattr(media, name, None)
            if inner is not None and getattr(inner, "file_id", None):
                media = inner
                break
    file_id_text = media if isinstance(media, str) else getattr(media, "file_id", None)
    if not file_id_text:
        raise LocalProtocolError(f"no file_id in {type(media).__name__}")
    size = None if isinstance(media, str) else getattr(media, "file_size", None)
    fid = FileId.decode(file_id_text)
    if fid.file_type == FileType.PHOTO:
        # inputPhotoFileLocation#40181ffe id:long access_hash:long file_reference:bytes thumb_size:string
        loc: Any = tl.api.InputPhotoFileLocation(id=fid.media_id, access_hash=fid.access_hash,
                                            file_reference=fid.file_reference,
                                            thumb_size=fid.thumbnail_size or "")
    elif fid.file_type in (FileType.THUMBNAIL, FileType.CHAT_PHOTO):
        raise LocalProtocolError(f"{fid.file_type.name} files are not supported by dcpool downloads yet")
    else:
        # inputDocumentFileLocation#bad07584 id:long access_hash:long file_reference:bytes thumb_size:string
        loc = tl.api.InputDocumentFileLocation(id=fid.media_id, access_hash=fid.access_hash,
                                               file_reference=fid.file_reference, thumb_size="")
    return loc, fid.dc_id, size


async def download_media(client: Any, message: Any, path: str | os.PathLike[str], *,
                         pool: aio.AioPool | None = None, parallel: int = 8,
                         progress: Callable[[int, int | None], None] | None = None,
                         **pool_options: Any) -> int:
    """Download the media of ``message`` to ``path`` through dcpool; returns bytes written."""
    location, dc_id, size = media_location(message)
    if pool is None:
        async with open_pool_from(client, **pool_options) as own:
            return await own.download_to(location, path, dc_id=dc_id, size=size,
                                         parallel=parallel, progress=progress)
    return await pool.download_to(location, path, dc_id=dc_id, size=size, parallel=parallel,
                                  progress=progress)
