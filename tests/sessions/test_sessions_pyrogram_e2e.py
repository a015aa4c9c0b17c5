"""Pyrogram 2.0 logins made against the emulator by Pyrogram itself (its .session file and its
session string) import into dcpool: home key reused (no key exchange), user id carried over,
and a download from another DC needs exactly one export.  dcpool's exported Pyrogram string is
accepted by Pyrogram (it is signed in with it)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import trio

from dcpool import open_pool, sessions, tl
from dcpool.storage import MemoryStorage
from dcpool.testing.threaded import ThreadedCluster, pyrogram_patched

pytestmark = [pytest.mark.e2e]

TIMEOUT = 60
API_ID, API_HASH = 12345, "0123456789abcdef0123456789abcdef"
PHONE, CODE = "9996631234", "33333"  # DC 3
SIZE = 400_000


def _import_pyrogram():
    async def load():  # Pyrogram wants an event loop while it is imported
        return pytest.importorskip("pyrogram")

    return asyncio.run(load())


async def _pyrogram_login(pyrogram, workdir) -> tuple[str, int]:
    app = pyrogram.Client("pyro", api_id=API_ID, api_hash=API_HASH, workdir=str(workdir))
    await app.connect()
    try:
        sent = await app.send_code(PHONE)
        user = await app.sign_in(PHONE, sent.phone_code_hash, CODE)
        return await app.export_session_string(), user.id
    finally:
        await app.disconnect()  # writes the .session file


async def _pyrogram_whoami(pyrogram, session_string: str) -> int:
    app = pyrogram.Client("again", api_id=API_ID, api_hash=API_HASH, session_string=session_string,
                          in_memory=True)
    await app.connect()
    try:
        me = await app.get_me()
        return me.id
    finally:
        await app.disconnect()


def test_pyrogram_file_and_string_import_and_download(tmp_path):
    pyrogram = _import_pyrogram()
    with ThreadedCluster(lambda c: c.add_file(5, size=SIZE), timeout=TIMEOUT * 3) as served:
        cluster, stored = served.cluster, served.setup_result
        options = dict(dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys())
        location = tl.api.InputDocumentFileLocation(id=stored.id, access_hash=stored.access_hash,
                                                    file_reference=stored.file_reference, thumb_size="")
        with pyrogram_patched(cluster):
            string, uid = asyncio.run(asyncio.wait_for(_pyrogram_login(pyrogram, tmp_path), TIMEOUT))
            from_file = sessions.load_session(tmp_path / "pyro.session")
            from_string = sessions.load_session(string=string)
            assert from_file.source == "pyrogram-sqlite" and from_string.source == "pyrogram-string"
            for s in (from_file, from_string):
                assert (s.dc_id, s.user_id, s.test_mode, s.auth_key) == (3, uid, False, from_string.auth_key)

            async def download(foreign):
                storage = MemoryStorage("prod")
                sessions.import_session(foreign, storage)
                with trio.fail_after(TIMEOUT):
                    async with open_pool(api_id=API_ID, api_hash=API_HASH, storage=storage, **options) as pool:
                        data = b"".join([c async for c in pool.download(location, dc_id=5, size=SIZE)])
                return data, sessions.export_session(storage, "pyrogram", api_id=API_ID)

            results = []
            for foreign in (from_file, from_string):
                before = served.call(cluster.statistics)
                data, exported = trio.run(download, foreign)
                after = served.call(cluster.statistics)
                results.append((data, exported, before, after))
            again = asyncio.run(asyncio.wait_for(_pyrogram_whoami(pyrogram, results[0][1]), TIMEOUT))
        sha = served.call(lambda: stored.sha256)

    for data, exported, before, after in results:
        assert hashlib.sha256(data).hexdigest() == sha
        assert after[3].handshakes == before[3].handshakes  # Pyrogram's key, reused
        assert after[3].exports - before[3].exports == 1
        assert after[3].requests.get("auth.signIn", 0) == before[3].requests.get("auth.signIn", 0)
        assert exported == string  # the same login, the same string (api_id given back)
    assert again == uid
