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
