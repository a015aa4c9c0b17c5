"""File locations over real sockets: photos (inputPhotoFileLocation with thumb_size), profile
and channel photos (inputPeerPhotoFileLocation), document thumbnails, each served only by the DC
that stores it (FILE_MIGRATE_X elsewhere), and upload.getFileHashes."""

from __future__ import annotations

import hashlib
import os
from contextlib import asynccontextmanager

import pytest
import trio
from _raw_client import login, open_session

from dcpool import tl
from dcpool.errors import BadRequest, FileMigrate

pytestmark = pytest.mark.e2e

api = tl.api
TIMEOUT = 15
PHONE = "9996621234"  # reserved test number of DC 2; code 22222


@asynccontextmanager
async def signed_in(cluster):
    async with open_session(cluster, 2) as home:
        user = await login(home, PHONE, "22222")
        yield home, user


@asynccontextmanager
async def on_dc(cluster, home, dc_id: int):
    """A session on ``dc_id`` authorised by export (from ``home``) + import."""
    exported = await home.call(api.auth.ExportAuthorization(dc_id=dc_id))
    async with open_session(cluster, dc_id) as raw:
        await raw.call(api.auth.ImportAuthorization(id=exported.id, bytes=exported.bytes))
        yield raw


async def download(raw, location, size: int) -> bytes:
    out = b""
    offset = 0
    while offset < size:
        part = await raw.call(api.upload.GetFile(location=location, offset=offset, limit=65536))
        out += bytes(part.bytes)
        if len(part.bytes) < 65536:
            break
        offset += 65536
    return out


async def test_photo_sizes_are_served_by_their_dc_only(cluster):
    m = os.urandom(70_000)
    photo = cluster.world.add_photo(3, {"s": os.urandom(900), "m": m})
    with trio.fail_after(TIMEOUT):
        async with signed_in(cluster) as (home, _):
            with pytest.raises(FileMigrate) as info:
                await home.call(api.upload.GetFile(location=photo.input_location("m"), offset=0, limit=4096))
            assert info.value.dc_id == 3
            async with on_dc(cluster, home, 3) as dc3:
                assert await download(dc3, photo.input_location("m"), len(m)) == m
                with pytest.raises(BadRequest) as bad:
                    await dc3.call(api.upload.GetFile(location=photo.input_location("y"), offset=0, limit=4096))
                assert bad.value.message == "LOCATION_INVALID"
    sent = photo.to_tl()
    assert sent.dc_id == 3 and {s.type: s.size for s in sent.sizes} == {"s": 900, "m": 70_000}


async def test_document_thumbnail_comes_from_the_document_dc(cluster):
    thumb = os.urandom(5000)
    doc = cluster.world.add_file(4, size=100_000, thumbs={"m": thumb}, file_name="a.bin")
    with trio.fail_after(TIMEOUT):
        async with signed_in(cluster) as (home, _):
            with pytest.raises(FileMigrate) as info:
                await home.call(api.upload.GetFile(location=doc.input_location("m"), offset=0, limit=4096))
            assert info.value.dc_id == 4
            async with on_dc(cluster, home, 4) as dc4:
                assert await download(dc4, doc.input_location("m"), len(thumb)) == thumb
                assert await download(dc4, doc.input_location(), doc.size) == doc.data
    described = doc.to_tl()
    assert described.dc_id == 4 and [t.type for t in described.thumbs] == ["m"]


async def test_profile_photo_names_its_dc_and_downloads_there(cluster):
    with trio.fail_after(TIMEOUT):
        async with signed_in(cluster) as (home, user):
            photo = cluster.world.set_profile_photo(user.id, dc_id=1)
            [me] = await home.call(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert (me.photo.photo_id, me.photo.dc_id) == (photo.id, 1)
            big = photo.peer_location(api.InputPeerSelf(), big=True)
            with pytest.raises(FileMigrate) as info:
                await home.call(api.upload.GetFile(location=big, offset=0, limit=4096))
            assert info.value.dc_id == me.photo.dc_id
            async with on_dc(cluster, home, 1) as dc1:
                assert await download(dc1, big, 1 << 20) == photo.sizes["c"].data
                by_user = photo.peer_location(
                    api.InputPeerUser(user_id=user.id, access_hash=me.access_hash), big=False)
                assert await download(dc1, by_user, 1 << 20) == photo.sizes["a"].data
                stale = api.InputPeerPhotoFileLocation(peer=api.InputPeerSelf(), photo_id=photo.id + 1)
                with pytest.raises(BadRequest) as bad:
                    await dc1.call(api.upload.GetFile(location=stale, offset=0, limit=4096))
                assert bad.value.message == "LOCATION_INVALID"
                wrong = api.InputPeerPhotoFileLocation(
                    peer=api.InputPeerUser(user_id=user.id, access_hash=me.access_hash + 1),
                    photo_id=photo.id)
                with pytest.raises(BadRequest) as bad:
                    await dc1.call(api.upload.GetFile(location=wrong, offset=0, limit=4096))
                assert bad.value.message == "PEER_ID_INVALID"


async def test_channel_photo_downloads_from_its_dc(cluster):
    channel = cluster.world.add_channel(2, title="news")
    photo = cluster.world.set_chat_photo(channel.id, 5, {"a": os.urandom(3000), "c": os.urandom(20_000)})
    peer = api.InputPeerChannel(channel_id=channel.id, access_hash=channel.access_hash)
    with trio.fail_after(TIMEOUT):
        async with signed_in(cluster) as (home, _):
            with pytest.raises(FileMigrate) as info:
                await home.call(api.upload.GetFile(location=photo.peer_location(peer, big=False), offset=0, limit=4096))
            assert info.value.dc_id == 5
            async with on_dc(cluster, home, 5) as dc5:
                got = await download(dc5, photo.peer_location(peer, big=False), 1 << 20)
    assert got == photo.sizes["a"].data
    assert photo.chat_photo().dc_id == 5


async def test_get_file_hashes(cluster):
    doc = cluster.world.add_file(2, size=300 * 1024)
    with trio.fail_after(TIMEOUT):
        async with signed_in(cluster) as (home, _):
            hashes = await home.call(api.upload.GetFileHashes(location=doc.input_location(), offset=0))
            later = await home.call(api.upload.GetFileHashes(location=doc.input_location(), offset=140_000))
            past = await home.call(api.upload.GetFileHashes(location=doc.input_location(), offset=400 * 1024))
            elsewhere = cluster.world.add_file(3, size=10)
            with pytest.raises(FileMigrate):
                await home.call(api.upload.GetFileHashes(location=elsewhere.input_location(), offset=0))
    part = 128 * 1024
    assert [(h.offset, h.limit) for h in hashes] == [(0, part), (part, part), (2 * part, part)]
    for h in hashes:
        assert bytes(h.hash) == hashlib.sha256(doc.data[h.offset:h.offset + part]).digest()
    assert [h.offset for h in later] == [part, 2 * part]
    assert past == []
