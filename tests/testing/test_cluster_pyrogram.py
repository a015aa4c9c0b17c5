"""Unmodified Pyrogram 2.0.106 (layer 158) against the emulated cluster, over abridged and full.

Pyrogram is asyncio, the cluster trio: as in ``test_cluster_telethon``, the cluster runs in a
helper thread (:class:`ClusterThread`) and Pyrogram under ``asyncio.run`` in the test thread,
bounded by ``asyncio.wait_for``.  Pyrogram has no settings for servers or keys, so the test
uses its patch points (README, "Pointing clients at the emulator"), undone by ``monkeypatch``:

* ``pyrogram.connection.connection.DataCenter``: the ``(dc_id, test_mode, ipv6, media) ->
  (host, port)`` table every connection (main, auth, media) asks;
* ``pyrogram.connection.connection.TCPAbridged``: the transport class ``Connection.connect``
  instantiates (abridged is hard-wired; ``TCPFull`` is swapped in for the full transport);
* ``pyrogram.crypto.rsa.server_public_keys``: ``{signed fingerprint: PublicKey(n, e)}``.

Scenario: Pyrogram always starts on DC 2 (key exchange, ``invokeWithLayer(158,
initConnection(help.getConfig))``); ``send_code`` for the reserved number of DC 1 gets
``PHONE_MIGRATE_1`` and Pyrogram moves home by itself (new key on DC 1); ``sign_in``; a
``help.getConfig``; then ``get_file`` of a document on DC 4 (Pyrogram exports from DC 1 and
imports on a new media session of DC 4), checked by SHA-256.  The emulator's statistics must
show exactly the handshakes, exports and imports that takes, and every key must have announced
layer 158 — a user written in layer 228 would not even parse in Pyrogram.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from dcpool.testing.threaded import ThreadedCluster as ClusterThread

pyrogram = pytest.importorskip("pyrogram")
import pyrogram.connection.connection as pyro_connection  # noqa: E402
from pyrogram import raw as pyro_raw  # noqa: E402
from pyrogram.connection.transport import TCPAbridged, TCPFull  # noqa: E402
from pyrogram.crypto import rsa as pyro_rsa  # noqa: E402
from pyrogram.file_id import FileId, FileType  # noqa: E402

pytestmark = [pytest.mark.e2e]

TIMEOUT = 60
API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
PHONE = "9996611234"  # reserved test number of DC 1 (spec §12.3); Pyrogram starts on DC 2
CODE = "11111"
FILE_SIZE = 1_300_001  # two of Pyrogram's 1 MiB parts, the last one short


def patch_pyrogram(monkeypatch: pytest.MonkeyPatch, cluster: Any, transport: type) -> None:
    endpoints = {dc: cluster.endpoint(dc) for dc in cluster.servers}

    def data_center(dc_id: int, test_mode: bool, ipv6: bool, media: bool) -> tuple[str, int]:
        return endpoints[dc_id]

    monkeypatch.setattr(pyro_connection, "DataCenter", data_center)
    monkeypatch.setattr(pyro_connection, "TCPAbridged", transport)
    key = cluster.rsa_public_key()
    monkeypatch.setitem(pyro_rsa.server_public_keys, key.fingerprint, pyro_rsa.PublicKey(key.n, key.e))


async def pyrogram_scenario(stored: Any, test_mode: bool) -> dict[str, Any]:
    client = pyrogram.Client(
        "dcpool-interop", api_id=API_ID, api_hash=API_HASH, in_memory=True,
        test_mode=test_mode, no_updates=True,
    )
    authorized_before = await client.connect()  # DC 2: key exchange, layer 158, help.getConfig
    try:
        sent = await client.send_code(PHONE)  # PHONE_MIGRATE_1: Pyrogram moves to DC 1
        me = await client.sign_in(PHONE, sent.phone_code_hash, CODE)
        config = await client.invoke(pyro_raw.functions.help.GetConfig())
        file_id = FileId(
            file_type=FileType.DOCUMENT, dc_id=4, media_id=stored.id,
            access_hash=stored.access_hash, file_reference=stored.file_reference,
        )
        chunks = [chunk async for chunk in client.get_file(file_id, file_size=stored.size)]
        return {
            "authorized_before": authorized_before,
            "me": me,
            "home_dc": await client.storage.dc_id(),
            "config": config,
            "data": b"".join(chunks),
        }
    finally:
        await client.disconnect()
        client.executor.shutdown(wait=False)


@pytest.mark.parametrize("transport", [TCPAbridged, TCPFull], ids=["abridged", "full"])
def test_pyrogram_signs_in_follows_migrations_and_downloads(transport, monkeypatch):
    with ClusterThread(lambda c: c.add_file(4, size=FILE_SIZE), timeout=TIMEOUT) as served:
        cluster, stored = served.cluster, served.setup_result
        patch_pyrogram(monkeypatch, cluster, transport)
        expected_sha = served.call(lambda: stored.sha256)
        result = asyncio.run(
            asyncio.wait_for(pyrogram_scenario(stored, cluster.test_mode), TIMEOUT)
        )
        stats = served.call(cluster.statistics)
        user_id = served.call(lambda: cluster.world.phones[PHONE])
        layers = served.call(
            lambda: {dc: set(cluster.world.dc(dc).key_layers.values()) for dc in cluster.servers}
        )

    assert result["authorized_before"] is False
    assert result["me"].id == user_id and result["me"].is_self
    assert result["me"].phone_number == PHONE
    assert result["home_dc"] == 1
    assert isinstance(result["config"], pyro_raw.types.Config)
    assert {o.id for o in result["config"].dc_options} >= {1, 2, 3, 4, 5}
    assert len(result["data"]) == FILE_SIZE
    assert hashlib.sha256(result["data"]).hexdigest() == expected_sha

    assert layers == {1: {158}, 2: {158}, 3: set(), 4: {158}, 5: set()}
    assert stats[2].requests["help.getConfig"] == 1
    assert stats[2].errors["PHONE_MIGRATE_1"] == 1
    assert stats[1].requests["auth.signIn"] == 1
    assert stats[4].bytes_served == FILE_SIZE
    handshakes = {dc: stats[dc].handshakes for dc in (1, 2, 3, 4, 5)}
    assert handshakes == {1: 1, 2: 1, 3: 0, 4: 1, 5: 0}
    expected = {1: (1, 0), 2: (0, 0), 3: (0, 0), 4: (0, 1), 5: (0, 0)}
    assert {dc: (stats[dc].exports, stats[dc].imports) for dc in expected} == expected
    assert not stats.duplicates()
