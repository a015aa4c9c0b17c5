"""Unmodified Telethon uploads to the emulated cluster (issue 15): ``send_file`` of a small
(``saveFilePart`` + ``inputFile`` with md5) and a big (``saveBigFilePart`` + ``inputFileBig``)
document to Saved Messages, then ``download_media`` of the message it got back, byte-identical.
The emulator must have stored both on the sender's home DC (DC 2) with that ``dc_id``."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from typing import Any

import pytest
from test_cluster_telethon import API_HASH, API_ID, CODE, PHONE, ClusterThread

from dcpool.testing import uploads

telethon = pytest.importorskip("telethon")
from telethon import TelegramClient  # noqa: E402
from telethon.crypto import rsa as telethon_rsa  # noqa: E402

pytestmark = [pytest.mark.telethon, pytest.mark.e2e]

TIMEOUT = 60
SIZES = (300_001, 10 * 1024 * 1024 + 1)  # small (3 parts), big (81 parts of 128 KiB)


async def upload_scenario(endpoint: tuple[str, int], pem: str, blobs: list[bytes]) -> dict[str, Any]:
    telethon_rsa.add_key(pem, old=False)
    TelegramClient._config = None
    client = TelegramClient(None, API_ID, API_HASH, receive_updates=False, retry_delay=0)
    client.session.set_dc(2, *endpoint)
    await client.connect()
    try:
        await client.send_code_request(PHONE)
        await client.sign_in(PHONE, code=CODE)
        out = []
        for i, blob in enumerate(blobs):
            f = io.BytesIO(blob)
            f.name = f"blob{i}.bin"
            msg = await client.send_file("me", f, force_document=True, caption=f"file {i}")
            back = await client.download_media(msg, file=bytes)
            out.append(
                {
                    "dc_id": msg.media.document.dc_id,
                    "document_id": msg.media.document.id,
                    "size": msg.media.document.size,
                    "caption": msg.message,
                    "back": back,
                }
            )
        return {"files": out}
    finally:
        await client.disconnect()


def test_telethon_send_file_round_trips():
    blobs = [os.urandom(n) for n in SIZES]
    with ClusterThread(timeout=TIMEOUT) as served:
        cluster = served.cluster
        endpoint, pem = cluster.endpoint(2), cluster.rsa_public_pem()
        result = asyncio.run(asyncio.wait_for(upload_scenario(endpoint, pem, blobs), TIMEOUT))
        stats = served.call(cluster.statistics)
        stored = served.call(
            lambda: {i: (f.dc_id, hashlib.sha256(f.data).digest()) for i, f in cluster.world.files.items()}
        )
        uploaded = served.call(lambda: list(uploads.transfers(cluster.world).uploaded))

    for i, (blob, got) in enumerate(zip(blobs, result["files"], strict=True)):
        assert got["back"] == blob, f"file {i} did not round-trip"
        assert got["dc_id"] == 2 and got["size"] == len(blob) and got["caption"] == f"file {i}"
        assert stored[got["document_id"]] == (2, hashlib.sha256(blob).digest())
    assert uploaded == [f["document_id"] for f in result["files"]]
    s2 = stats[2]
    assert s2.requests["upload.saveFilePart"] == 3  # 300_001 B in 128 KiB parts
    assert s2.requests["upload.saveBigFilePart"] == 81
    assert s2.requests["messages.sendMedia"] == 2
    assert not stats.duplicates()


async def dcpool_downloads(args: dict[str, Any], documents: list[dict[str, Any]]) -> list[bytes]:
    """dcpool, homed on DC 4, signs in to the same account (PHONE_MIGRATE_2 moves it home) and
    downloads each document Telethon uploaded: once with the document's dc_id, once with a
    wrong hint (DC 4 answers FILE_MIGRATE_2, which the pool follows)."""
    import trio

    import dcpool
    from dcpool import tl

    api = tl.api
    out = []
    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=4, **args) as pool:
            await pool.sign_in(PHONE, CODE)
            assert pool.home_dc == 2
            for doc in documents:
                location = api.InputDocumentFileLocation(
                    id=doc["document_id"], access_hash=doc["access_hash"],
                    file_reference=doc["file_reference"], thumb_size="")
                for hint in (doc["dc_id"], 4):
                    got = bytearray()
                    async for chunk in pool.download(location, dc_id=hint, size=doc["size"]):
                        got += chunk
                    out.append(bytes(got))
    return out


def test_telethon_send_file_then_dcpool_downloads_from_the_right_dc():
    """An independent client on the upload side: Telethon's send_file stores the document on
    its home DC (2); dcpool finds it there."""
    blobs = [os.urandom(n) for n in (200_003, 10 * 1024 * 1024 + 7)]

    with ClusterThread(timeout=TIMEOUT) as served:
        cluster = served.cluster
        endpoint, pem = cluster.endpoint(2), cluster.rsa_public_pem()
        result = asyncio.run(asyncio.wait_for(upload_scenario(endpoint, pem, blobs), TIMEOUT))
        docs = served.call(lambda: [
            {"document_id": f["document_id"], "dc_id": cluster.world.files[f["document_id"]].dc_id,
             "access_hash": cluster.world.files[f["document_id"]].access_hash,
             "file_reference": cluster.world.files[f["document_id"]].file_reference,
             "size": f["size"]} for f in result["files"]])
        before = served.call(cluster.statistics)
        args = served.call(lambda: dict(api_id=API_ID, api_hash=API_HASH, dc_list=cluster.dc_list(),
                                        rsa_keys=cluster.rsa_keys()))
        import trio

        got = trio.run(dcpool_downloads, args, docs)
        after = served.call(cluster.statistics)

    assert [d["dc_id"] for d in docs] == [2, 2]
    assert got == [blobs[0], blobs[0], blobs[1], blobs[1]]
    served_bytes = {dc: after[dc].bytes_served - before[dc].bytes_served for dc in (1, 2, 3, 4, 5)}
    assert served_bytes == {1: 0, 2: 2 * sum(len(b) for b in blobs), 3: 0, 4: 0, 5: 0}
    # the wrong hint cost one FILE_MIGRATE per file, answered by DC 4
    assert after[4].requests.get("upload.getFile", 0) - before[4].requests.get("upload.getFile", 0) >= 1
