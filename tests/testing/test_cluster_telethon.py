"""Unmodified Telethon against the emulated cluster: the emulator is proven by a real client.

Telethon runs on asyncio and the cluster on trio, so the cluster runs with ``trio.run`` in a
helper thread (test-only: the library itself uses no threads) and Telethon with
``asyncio.run`` in the test thread.  The only patch points are Telethon's documented ones
(spec §17.3): the emulator's RSA key is added with ``rsa.add_key(pem, old=False)``, the first
DC is set with ``session.set_dc``, and the class-level config cache is reset between clusters.

Scenario, per transport: key exchange and ``help.getConfig`` on DC 1, sign-in with the
reserved number 9996621234 (Telethon follows ``PHONE_MIGRATE_2``), then ``download_file`` of a
document stored on DC 4 (Telethon exports the authorization from DC 2 and imports it on DC 4
by itself), checked by SHA-256; and the emulator's statistics must show exactly the
handshakes, exports and imports that scenario needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import pytest
import trio

from dcpool.testing.threaded import ThreadedCluster as ClusterThread

telethon = pytest.importorskip("telethon")
from telethon import TelegramClient  # noqa: E402
from telethon import connection as tconn  # noqa: E402
from telethon.crypto import rsa as telethon_rsa  # noqa: E402
from telethon.tl import types as ttypes  # noqa: E402

pytestmark = [pytest.mark.telethon, pytest.mark.e2e]

TIMEOUT = 30
API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
PHONE = "9996621234"  # reserved test number of DC 2 (spec §12.3)
CODE = "22222"
FILE_SIZE = 300_001  # three of Telethon's 128 KiB parts, the last one short


async def telethon_scenario(
    endpoint: tuple[str, int], pem: str, stored: Any, connection: type
) -> dict[str, Any]:
    """Sign in from DC 1 and download the DC 4 document; returns what the test checks."""
    telethon_rsa.add_key(pem, old=False)
    TelegramClient._config = None  # a class-level cache: never let it leak between clusters
    client = TelegramClient(
        None,  # a memory session: a fresh auth key per DC
        API_ID,
        API_HASH,
        connection=connection,
        receive_updates=False,
        retry_delay=0,
    )
    client.session.set_dc(1, *endpoint)
    await client.connect()  # handshake with DC 1, invokeWithLayer(initConnection(help.getConfig))
    try:
        authorized_before = await client.is_user_authorized()
        await client.send_code_request(PHONE)  # PHONE_MIGRATE_2: Telethon moves home to DC 2
        me = await client.sign_in(PHONE, code=CODE)
        location = ttypes.InputDocumentFileLocation(
            id=stored.id,
            access_hash=stored.access_hash,
            file_reference=stored.file_reference,
            thumb_size="",
        )
        # On DC 4: Telethon exports from DC 2 and imports on DC 4 by itself.
        data = await client.download_file(location, file=bytes, dc_id=4, file_size=stored.size)
        return {
            "authorized_before": authorized_before,
            "me": me,
            "home_dc": client.session.dc_id,
            "data": data,
        }
    finally:
        await client.disconnect()


CONNECTIONS = [
    tconn.ConnectionTcpFull,  # Telethon's default
    tconn.ConnectionTcpAbridged,
    tconn.ConnectionTcpIntermediate,
    tconn.ConnectionTcpObfuscated,
]


@pytest.mark.parametrize("connection", CONNECTIONS, ids=lambda c: c.__name__)
def test_telethon_signs_in_follows_migrations_and_downloads(connection, caplog):
    caplog.set_level(logging.WARNING, logger="telethon")
    with ClusterThread(lambda c: c.add_file(4, size=FILE_SIZE)) as served:
        cluster, stored = served.cluster, served.setup_result
        endpoint, pem = cluster.endpoint(1), cluster.rsa_public_pem()
        expected_sha = served.call(lambda: stored.sha256)
        result = asyncio.run(
            asyncio.wait_for(telethon_scenario(endpoint, pem, stored, connection), TIMEOUT)
        )
        stats = served.call(cluster.statistics)
        user_id = served.call(lambda: cluster.world.phones[PHONE])

    assert result["authorized_before"] is False
    assert result["me"].id == user_id
    assert result["home_dc"] == 2
    assert len(result["data"]) == FILE_SIZE
    assert hashlib.sha256(result["data"]).hexdigest() == expected_sha

    assert stats[1].requests["help.getConfig"] >= 1
    assert stats[1].errors["PHONE_MIGRATE_2"] == 1
    assert stats[4].bytes_served == FILE_SIZE
    # Telethon 1.45 builds its key from the minimal big-endian bytes of g^ab: once in ~200
    # handshakes (a leading zero byte) its key differs from the spec's, it rejects the
    # server's new_nonce_hash1 and redoes the handshake (spec §17.2).  The emulator counts
    # both; each such retry is logged by Telethon, so the count stays exact.
    retried = sum("at new auth_key failed" in r.getMessage() for r in caplog.records)
    handshakes = {dc: stats[dc].handshakes for dc in (1, 2, 3, 4, 5)}
    assert sum(handshakes.values()) == 3 + retried
    assert all(handshakes[dc] in range(1, 2 + retried) for dc in (1, 2, 4)), handshakes
    expected = {1: (0, 0), 2: (1, 0), 3: (0, 0), 4: (0, 1), 5: (0, 0)}
    assert {dc: (stats[dc].exports, stats[dc].imports) for dc in expected} == expected
    for idle in (3, 5):
        s = stats[idle]
        assert (s.handshakes, s.connections_total, s.total_requests) == (0, 0, 0)
    assert not stats.duplicates()
