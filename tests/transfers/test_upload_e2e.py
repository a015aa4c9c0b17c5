"""pool.upload end to end over loopback sockets (issue 15): byte-identical round trips
(upload -> messages.sendMedia through the pool -> download from the document's dc_id) at the
part-size and small/big boundaries, with connections killed mid-transfer; paths and async
iterables with bounded memory; FILE_PART_X_MISSING re-sent; precise local errors; cancellation
leaves nothing behind."""

from __future__ import annotations

import hashlib
import os

import pytest
import trio

import dcpool
from dcpool import tl
from dcpool.errors import (
    BadRequest,
    EmptyUpload,
    LocalProtocolError,
    UploadPartMissing,
    UploadSourceMismatch,
    UploadTooBig,
)
from dcpool.testing import Cluster
from dcpool.testing import uploads as U

pytestmark = pytest.mark.e2e

api = tl.api
KiB = 1024
MiB = 1024 * KiB
PHONE, CODE = "9996621234", "22222"  # reserved test number of DC 2
TIMEOUT = 60


def pool_args(cluster: Cluster, **kw):
    return dict(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(), **kw)


def send_media(input_file, name: str = "f.bin"):
    media = api.InputMediaUploadedDocument(
        file=input_file, mime_type="application/octet-stream",
        attributes=[api.DocumentAttributeFilename(file_name=name)])
    return api.messages.SendMedia(peer=api.InputPeerSelf(), media=media, message="",
                                  random_id=int.from_bytes(os.urandom(7), "little"))


def document_of(updates):
    new = next(u for u in updates.updates if isinstance(u, api.UpdateNewMessage))
    return new.message.media.document


async def download(pool, document) -> bytes:
    location = api.InputDocumentFileLocation(
        id=document.id, access_hash=document.access_hash,
        file_reference=document.file_reference, thumb_size="")
    out = bytearray()
    async with pool.download(location, dc_id=document.dc_id, size=document.size) as chunks:
        async for chunk in chunks:
            out += chunk
    return bytes(out)


def assert_clean(pool) -> None:
    stats = pool.statistics()
    assert stats.in_flight == 0, stats
    for state in pool.dc_states():
        for conn in state.connections():
            assert not conn.calls and not conn.backlog, conn


SIZES = [1, 128 * KiB - 1, 128 * KiB, 128 * KiB + 1, 512 * KiB, 512 * KiB + 1,
         10 * MiB - 1, 10 * MiB, 10 * MiB + 1]


@pytest.mark.parametrize("size", SIZES)
async def test_upload_send_download_round_trip(cluster: Cluster, size: int) -> None:
    data = os.urandom(size)
    part = 512 * KiB if size > MiB else 128 * KiB
    seen: list[tuple[int, int]] = []
    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            input_file = await pool.upload(data, part_size=part, file_name="r.bin",
                                           progress=lambda done, total: seen.append((done, total)))
            parts = -(-size // part)
            big = size > 10 * MiB
            assert input_file.parts == parts and input_file.name == "r.bin"
            if big:
                assert isinstance(input_file, api.InputFileBig)
            else:
                assert isinstance(input_file, api.InputFile)
                assert input_file.md5_checksum == hashlib.md5(data).hexdigest()
            document = document_of(await pool.send_uploaded(send_media(input_file), data, part_size=part))
            assert document.dc_id == 2 and document.size == size
            assert await download(pool, document) == data
            assert_clean(pool)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1] == (size, size)
    assert len(seen) == parts
    s2 = cluster.statistics()[2]
    method = "upload.saveBigFilePart" if big else "upload.saveFilePart"
    other = "upload.saveFilePart" if big else "upload.saveBigFilePart"
    assert s2.requests[method] == parts and s2.requests.get(other, 0) == 0


@pytest.mark.parametrize("size", [3 * MiB + 5, 10 * MiB + 1])
async def test_connections_killed_mid_upload(cluster: Cluster, size: int) -> None:
    """The DC drops the upload connections a few packets in (twice), and the client drops them
    from a progress callback: every part still arrives, the file round-trips."""
    data = os.urandom(size)
    killed = 0
    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            cluster.faults(2).drop_connections(after_messages=4, count=2)

            def progress(done: int, total: int) -> None:
                nonlocal killed
                if killed < 2 and done >= (killed + 1) * total // 3:
                    killed += 1
                    pool.drop_connections(2)

            input_file = await pool.upload(data, part_size=128 * KiB, parallel=4, progress=progress)
            document = document_of(await pool.send_uploaded(send_media(input_file), data,
                                                             part_size=128 * KiB))
            assert await download(pool, document) == data
            assert_clean(pool)
    assert killed == 2
    s2 = cluster.statistics()[2]
    saved = s2.requests.get("upload.saveFilePart", 0) + s2.requests.get("upload.saveBigFilePart", 0)
    assert saved >= input_file.parts  # re-sent parts counted again


async def test_path_and_async_iterable_sources_memory_bounded(cluster: Cluster, tmp_path) -> None:
    data = os.urandom(5 * MiB + 333)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    part, parallel = 64 * KiB, 3
    produced = acked = 0
    ahead: list[int] = []

    async def chunks():
        nonlocal produced
        for at in range(0, len(data), 10_000):  # chunks unrelated to the part size
            produced += len(data[at : at + 10_000])
            ahead.append(produced - acked)
            yield data[at : at + 10_000]

    def progress(done: int, total: int) -> None:
        nonlocal acked
        acked = done

    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            from_path = await pool.upload(path, part_size=part)
            assert from_path.name == "blob.bin"
            from_iter = await pool.upload(chunks(), size=len(data), part_size=part,
                                          parallel=parallel, progress=progress)
            assert from_iter.md5_checksum == from_path.md5_checksum == hashlib.md5(data).hexdigest()
            assert from_iter.id != from_path.id
            for f in (from_path, from_iter):
                document = document_of(await pool.invoke(send_media(f)))
                assert await download(pool, document) == data
    # read ahead of what the DC acknowledged: the parts in flight plus the one being re-chunked
    assert max(ahead) <= (parallel + 1) * part + 10_000


async def test_missing_part_is_resent(cluster: Cluster) -> None:
    data = os.urandom(700 * KiB)
    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            input_file = await pool.upload(data, part_size=128 * KiB)
            assert U.lose_upload_parts(cluster.world, 2, [1, 4], file_id=input_file.id) == 2
            with pytest.raises(BadRequest) as info:  # what a plain invoke gets
                await pool.invoke(send_media(input_file))
            assert info.value.name == "FILE_PART_X_MISSING" and info.value.value == 1
            document = document_of(await pool.send_uploaded(send_media(input_file), data,
                                                             part_size=128 * KiB))
            assert await download(pool, document) == data
            # a source that is not the file: the part stays missing -> a typed error
            U.lose_upload_parts(cluster.world, 2, [2], file_id=input_file.id)

            async def stream():
                yield data

            with pytest.raises(UploadPartMissing):
                await pool.send_uploaded(send_media(input_file), stream(), part_size=128 * KiB)
    assert cluster.statistics()[2].requests["upload.saveFilePart"] == 6 + 2


async def test_bad_sources_fail_locally_before_sending(cluster: Cluster, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")

    async def short():
        yield b"abc"

    async def long():
        yield b"abcdef"

    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            for source in (b"", empty):
                with pytest.raises(EmptyUpload):
                    await pool.upload(source)
            with pytest.raises(LocalProtocolError):
                await pool.upload(short())  # no size
            with pytest.raises(LocalProtocolError):
                await pool.upload(b"x", part_size=1000)
            with pytest.raises(UploadTooBig):
                await pool.upload(os.urandom(4001 * KiB), part_size=KiB)
            with pytest.raises(UploadSourceMismatch):
                await pool.upload(b"abc", size=4)
            with pytest.raises(UploadSourceMismatch):
                await pool.upload(short(), size=4)
            with pytest.raises(UploadSourceMismatch):
                await pool.upload(long(), size=4)
            assert_clean(pool)
    s2 = cluster.statistics()[2]
    assert s2.requests.get("upload.saveFilePart", 0) <= 1  # only `long`'s first part went out
    assert s2.requests.get("upload.saveBigFilePart", 0) == 0


async def test_cancellation_leaves_nothing_running(cluster: Cluster) -> None:
    data = os.urandom(4 * MiB)
    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            with trio.CancelScope() as scope:

                def progress(done: int, total: int) -> None:
                    if done >= MiB:
                        scope.cancel()

                await pool.upload(data, part_size=64 * KiB, parallel=8, progress=progress)
            assert scope.cancelled_caught
            assert_clean(pool)
            sent = cluster.statistics()[2].requests["upload.saveFilePart"]
            assert 16 <= sent < 64
            # the pool goes on working
            input_file = await pool.upload(data[:1000])
            document = document_of(await pool.invoke(send_media(input_file)))
            assert await download(pool, document) == data[:1000]


@pytest.mark.slow
async def test_100_mib_from_a_path_with_connections_killed(cluster: Cluster, tmp_path) -> None:
    """100 MiB (200 big parts of 512 KiB) from a file, the DC dropping upload connections
    three times; the download is hashed on the fly (nothing this size held by the test)."""
    size = 100 * MiB
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for _ in range(size // MiB):
            block = os.urandom(MiB)
            digest.update(block)
            f.write(block)
    with trio.fail_after(300):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            cluster.faults(2).drop_connections(after_messages=20, count=3)
            input_file = await pool.upload(path, parallel=8)
            assert isinstance(input_file, api.InputFileBig) and input_file.parts == 200
            document = document_of(await pool.send_uploaded(send_media(input_file), path))
            assert document.size == size and document.dc_id == 2
            location = api.InputDocumentFileLocation(
                id=document.id, access_hash=document.access_hash,
                file_reference=document.file_reference, thumb_size="")
            back = hashlib.sha256()
            async with pool.download(location, dc_id=2, size=size, parallel=8) as chunks:
                async for chunk in chunks:
                    back.update(chunk)
            assert back.digest() == digest.digest()
            assert_clean(pool)
    assert cluster.statistics()[2].requests["upload.saveBigFilePart"] >= 200
