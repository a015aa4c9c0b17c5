"""A dcpool pool sharing a Telethon client's login, for routed parallel downloads.

::

    from dcpool.integrations.telethon import open_pool_from, download_media

    async with open_pool_from(client) as pool:              # client: connected, signed in
        await download_media(client, message, "out.bin", pool=pool)
    await download_media(client, message, "out.bin")        # a pool just for this call

The pool starts from the client's home DC, its auth key and its user (``get_me``): no key
exchange and no sign-in at home; foreign DCs get their own keys and one authorization transfer
each (spec §11.3), then every part of a file is fetched from its own DC over parallel
connections.  Only Telethon's public API is used (``client.session`` ``dc_id``/``auth_key``/
``server_address``/``port``, ``client.api_id``/``api_hash``, ``get_me``); nothing is written
back to the Telethon session.  The pool runs on :mod:`dcpool.aio` (its own trio thread).
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


async def _login_of(client: Any) -> ForeignSession:
    session = client.session
    key = getattr(session.auth_key, "key", None)
    if not key:
        raise LocalProtocolError("the Telethon client has no auth key: connect it first")
    me = await client.get_me(input_peer=True)
    if me is None:
        raise LocalProtocolError("the Telethon client is not signed in")
    return ForeignSession(source=Source.TELETHON_CLIENT, dc_id=session.dc_id, auth_key=key,
                          user_id=me.user_id, server_address=session.server_address,
                          port=session.port)


@contextlib.asynccontextmanager
async def open_pool_from(client: Any, *, test_mode: bool = False, **pool_options: Any) -> AsyncIterator[aio.AioPool]:
    """An asyncio dcpool pool (:class:`dcpool.aio.AioPool`) sharing ``client``'s login.

    ``pool_options`` go to :func:`dcpool.open_pool` (``dc_list``, ``rsa_keys``,
    ``download_connections``...); the storage is in memory (the Telethon session stays the
    owner of the login).
    """
    login = await _login_of(client)
    storage = MemoryStorage("test" if test_mode else "prod")
    import_session(login, storage)
    async with aio.open_pool(api_id=client.api_id, api_hash=client.api_hash, storage=storage,
                             test_mode=test_mode, **pool_options) as pool:
        yield pool


def media_location(media: Any) -> tuple[Any, int, int | None]:
    """``(dcpool InputFileLocation, dc_id, size)`` of a Telethon message, its media, a
    ``Document`` or a ``Photo`` (the largest size)."""
    media = getattr(media, "media", media)  # a Message
    document = getattr(media, "document", None)
    photo = getattr(media, "photo", None)
    if document is None and photo is None:
        if type(media).__name__ == "Document":
            document = media
        elif type(media).__name__ == "Photo":
            photo = media
    if document is not None:
        # inputDocumentFileLocation#bad07584 id:long access_hash:long file_reference:bytes thumb_size:string
        loc: Any = tl.api.InputDocumentFileLocation(id=document.id, access_hash=document.access_hash,
                                               file_reference=document.file_reference, thumb_size="")
        return loc, document.dc_id, document.size
    if photo is not None:
        sizes = [s for s in photo.sizes if hasattr(s, "size") or hasattr(s, "sizes")]
        if not sizes:
            raise LocalProtocolError("the photo has no downloadable size")
        best = max(sizes, key=lambda s: getattr(s, "size", 0) or max(getattr(s, "sizes", [0])))
        # inputPhotoFileLocation#40181ffe id:long access_hash:long file_reference:bytes thumb_size:string
        loc = tl.api.InputPhotoFileLocation(id=photo.id, access_hash=photo.access_hash,
                                            file_reference=photo.file_reference, thumb_size=best.type)
        size = getattr(best, "size", None) or max(getattr(best, "sizes", [0])) or None
        return loc, photo.dc_id, size
    raise LocalProtocolError(f"no downloadable document or photo in {type(media).__name__}")


async def download_media(client: Any, message: Any, path: str | os.PathLike[str], *,
                         pool: aio.AioPool | None = None, parallel: int = 8,
                         progress: Callable[[int, int | None], None] | None = None,
                         **pool_options: Any) -> int:
    """Download the media of ``message`` to ``path`` through dcpool's routed parallel
    downloads; returns the number of bytes written.  Without ``pool``, one is opened from
    ``client`` for this call (see :func:`open_pool_from`)."""
    location, dc_id, size = media_location(message)
    if pool is None:
        async with open_pool_from(client, **pool_options) as own:
            return await own.download_to(location, path, dc_id=dc_id, size=size,
                                         parallel=parallel, progress=progress)
    return await pool.download_to(location, path, dc_id=dc_id, size=size, parallel=parallel,
                                  progress=progress)
