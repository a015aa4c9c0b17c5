"""dcpool.integrations: a Telethon app (and a Pyrogram one) downloads media through dcpool's
routed parallel downloads, sharing the client's login: no new key or sign-in at home, one
authorization transfer to the file's DC."""

from __future__ import annotations

import asyncio
import hashlib
import types

import pytest
import trio

from dcpool import open_pool, sessions
from dcpool.storage import MemoryStorage
from dcpool.testing.threaded import ThreadedCluster, telethon_patched

pytestmark = [pytest.mark.e2e]

TIMEOUT = 60
API_ID, API_HASH = 12345, "0123456789abcdef0123456789abcdef"
PHONE, CODE = "9996621234", "22222"
SIZE = 1_300_000


def test_telethon_download_media_through_dcpool(tmp_path):
    pytest.importorskip("telethon")
    from telethon.tl import types as tt

    from dcpool.integrations.telethon import download_media, open_pool_from

    with ThreadedCluster(lambda c: c.add_file(4, size=SIZE), timeout=TIMEOUT * 2) as served:
        cluster, stored = served.cluster, served.setup_result
        options = dict(dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys())
        message = tt.Message(
            id=1, peer_id=tt.PeerUser(1), date=None, message="",
            media=tt.MessageMediaDocument(document=tt.Document(
                id=stored.id, access_hash=stored.access_hash, file_reference=stored.file_reference,
                date=None, mime_type="application/octet-stream", size=SIZE, dc_id=4, attributes=[])))

        with telethon_patched(cluster) as make_client:
            async def app():
                client = make_client(None, dc_id=2, api_id=API_ID, api_hash=API_HASH,
                                     receive_updates=False, retry_delay=0)
                await client.connect()
                try:
                    await client.send_code_request(PHONE)
                    me = await client.sign_in(PHONE, code=CODE)
                    before = served.call(cluster.statistics)
                    async with open_pool_from(client, **options) as pool:
                        n1 = await download_media(client, message, tmp_path / "a.bin", pool=pool)
                        n2 = await download_media(client, message.media, tmp_path / "b.bin", pool=pool)
                    after = served.call(cluster.statistics)
                    return me.id, before, after, (n1, n2)
                finally:
                    await client.disconnect()

            uid, before, after, sizes = asyncio.run(asyncio.wait_for(app(), TIMEOUT))
        sha = served.call(lambda: stored.sha256)

    assert sizes == (SIZE, SIZE)
    for name in ("a.bin", "b.bin"):
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == sha
    delta = {dc: (after[dc].handshakes - before[dc].handshakes, after[dc].exports - before[dc].exports,
                  after[dc].imports - before[dc].imports) for dc in (2, 4)}
    # home DC 2: Telethon's key, no new handshake, one export; DC 4: its own key, one import
    assert delta == {2: (0, 1, 0), 4: (1, 0, 1)}
    assert after[2].errors.get("AUTH_KEY_UNREGISTERED", 0) == before[2].errors.get("AUTH_KEY_UNREGISTERED", 0)


def test_pyrogram_download_media_through_dcpool(tmp_path):
    async def import_pyrogram():  # Pyrogram wants an event loop while it is imported
        return pytest.importorskip("pyrogram")

    pyrogram = asyncio.run(import_pyrogram())
    Client = pyrogram.Client
    from pyrogram.file_id import FileId, FileType

    from dcpool.integrations.pyrogram import download_media, media_location

    with ThreadedCluster(lambda c: c.add_file(3, size=SIZE), timeout=TIMEOUT * 2) as served:
        cluster, stored = served.cluster, served.setup_result
        options = dict(dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys())

        # a Pyrogram login: made by dcpool, exported as a Pyrogram session string
        async def login() -> str:
            storage = MemoryStorage("prod")
            with trio.fail_after(TIMEOUT):
                async with open_pool(api_id=API_ID, api_hash=API_HASH, storage=storage, **options) as pool:
                    await pool.sign_in(PHONE, CODE)
            return sessions.export_session(storage, "pyrogram", api_id=API_ID)

        session_string = trio.run(login)
        file_id = FileId(file_type=FileType.DOCUMENT, dc_id=3, media_id=stored.id,
                         access_hash=stored.access_hash, file_reference=stored.file_reference).encode()
        message = types.SimpleNamespace(document=types.SimpleNamespace(file_id=file_id, file_size=SIZE))
        loc, dc_id, size = media_location(message)
        assert (dc_id, size, loc.id) == (3, SIZE, stored.id)

        async def app():
            client = Client("app", api_id=API_ID, api_hash=API_HASH, session_string=session_string,
                            in_memory=True)
            await client.storage.open()
            try:
                before = served.call(cluster.statistics)
                n = await download_media(client, message, tmp_path / "p.bin", **options)
                return n, before, served.call(cluster.statistics)
            finally:
                await client.storage.close()

        n, before, after = asyncio.run(asyncio.wait_for(app(), TIMEOUT))
        sha = served.call(lambda: stored.sha256)

    assert n == SIZE and hashlib.sha256((tmp_path / "p.bin").read_bytes()).hexdigest() == sha
    assert after[2].handshakes == before[2].handshakes  # the Pyrogram login's key, reused
    assert (after[2].exports - before[2].exports, after[3].imports - before[3].imports) == (1, 1)
