"""Done-means of issue 19 §1: a Telethon session created against the emulator (signed in, home
DC 4) imports into dcpool and downloads from DC 2 with zero key exchanges on DC 4 and one
export; exported back, Telethon accepts it unchanged (it is signed in with it).

Telethon runs on asyncio (``asyncio.run`` in the test thread), the cluster on trio in a helper
thread (:class:`dcpool.testing.threaded.ThreadedCluster`), dcpool with ``trio.run``.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
import trio

from dcpool import open_pool, sessions
from dcpool.storage import MemoryStorage, SqliteStorage
from dcpool.testing.threaded import ThreadedCluster, telethon_patched

telethon = pytest.importorskip("telethon")
from telethon.sessions import StringSession  # noqa: E402

pytestmark = [pytest.mark.telethon, pytest.mark.e2e]

TIMEOUT = 60
API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
PHONE = "9996641234"  # reserved test number of DC 4
CODE = "44444"
FILE_SIZE = 700_001


async def telethon_sign_in(make_client, session) -> int:
    client = make_client(session, dc_id=4, receive_updates=False, retry_delay=0)
    await client.connect()
    try:
        await client.send_code_request(PHONE)
        me = await client.sign_in(PHONE, code=CODE)
        assert client.session.dc_id == 4
        return me.id
    finally:
        await client.disconnect()


async def telethon_whoami(make_client, session) -> tuple[bool, int | None]:
    client = make_client(session, receive_updates=False, retry_delay=0)
    await client.connect()
    try:
        if not await client.is_user_authorized():
            return False, None
        me = await client.get_me()
        return True, me.id
    finally:
        await client.disconnect()


async def import_and_download(served, stored, storage, foreign) -> tuple[bytes, int]:
    cluster = served.cluster
    sessions.import_session(foreign, storage)
    options = dict(dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys())
    with trio.fail_after(TIMEOUT):
        user_id = storage.get_user_id()
        if user_id is None:
            user_id = await sessions.identify_user(storage, api_id=API_ID, api_hash=API_HASH, **options)
        async with open_pool(api_id=API_ID, api_hash=API_HASH, storage=storage, **options) as pool:
            assert pool.statistics().home_dc == 4
            loc = _location(stored)
            data = b"".join([c async for c in pool.download(loc, dc_id=2, size=stored.size, parallel=4)])
    return data, user_id


def _location(stored):
    from dcpool import tl

    return tl.api.InputDocumentFileLocation(id=stored.id, access_hash=stored.access_hash,
                                            file_reference=stored.file_reference, thumb_size="")


@pytest.mark.parametrize("kind", ["sqlite", "string"])
def test_telethon_session_imports_downloads_and_exports_back(kind, tmp_path):
    with ThreadedCluster(lambda c: c.add_file(2, size=FILE_SIZE), timeout=TIMEOUT * 3) as served:
        cluster, stored = served.cluster, served.setup_result
        with telethon_patched(cluster) as make_client:
            if kind == "sqlite":
                path = tmp_path / "telethon.session"
                uid = asyncio.run(asyncio.wait_for(telethon_sign_in(make_client, str(path)), TIMEOUT))
                foreign = sessions.load_session(path)
                assert foreign.source == "telethon-sqlite" and foreign.version in ("7", "8")
            else:
                string_session = StringSession()
                uid = asyncio.run(asyncio.wait_for(telethon_sign_in(make_client, string_session), TIMEOUT))
                foreign = sessions.load_session(string=string_session.save())
                assert foreign.source == "telethon-string"
            assert foreign.dc_id == 4 and foreign.user_id is None
            before = served.call(cluster.statistics)

            storage = SqliteStorage(tmp_path / "dcpool.session", mode="prod")
            try:
                data, user_id = trio.run(import_and_download, served, stored, storage, foreign)
                after = served.call(cluster.statistics)
                exported = sessions.export_session(storage, "telethon", address=cluster.endpoint(4))
                # importing again over the same session is refused, nothing written
                with pytest.raises(sessions.SessionExists):
                    sessions.import_session(foreign, storage)
            finally:
                storage.close()

            authorized, telethon_id = asyncio.run(
                asyncio.wait_for(telethon_whoami(make_client, StringSession(exported)), TIMEOUT))
        expected_sha = served.call(lambda: stored.sha256)

    assert user_id == uid
    assert hashlib.sha256(data).hexdigest() == expected_sha
    assert after[4].handshakes - before[4].handshakes == 0  # the imported key, no new one
    assert after[4].exports - before[4].exports == 1
    assert after[2].imports - before[2].imports == 1
    assert after[2].bytes_served - before[2].bytes_served == FILE_SIZE
    # Telethon accepts the exported string unchanged: signed in as the same user
    assert (authorized, telethon_id) == (True, uid)


def test_import_into_a_session_with_a_login_is_refused(tmp_path):
    foreign = sessions.parse_session_string(
        sessions.telethon_string(4, bytes(range(256)), "127.0.0.1", 443))
    storage = MemoryStorage("prod")
    sessions.import_session(foreign, storage, user_id=7)
    with pytest.raises(sessions.SessionExists):
        sessions.import_session(foreign, storage, user_id=7)
    assert storage.get_user_id() == 7 and storage.get_home_dc() == 4
