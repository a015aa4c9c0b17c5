"""Auth keys and exported-authorization tokens never reach logs, exception messages or reprs.

A whole pool session runs against the emulator with every logger at DEBUG (caplog): key
creation on several DCs, sign-in, authorization transfers (export tokens), downloads, a key
forgotten by a DC (-404 → a new key), and a handful of induced errors.  Then everything a user
could paste into a bug report is gathered — the log text (with the arguments of each record),
reprs/strs of the pool, its statistics and events, the connections and sessions, the storage and
its records, every AuthKey, and the message, repr and chained causes of every error — and
scanned for every secret that existed during the run:

* every auth key the emulated DCs ever accepted (including keys the client later dropped), and
  the keys in storage: their bytes as hex (either case), as ``bytes`` repr, as base64, as a
  decimal integer, any 8-byte window of them in hex or repr, and their aux_hash;
* every export token the world issued (hex, repr, base64).
"""

from __future__ import annotations

import base64
import logging

import pytest
import trio

from dcpool import errors, tl
from dcpool.mtproto import AuthKey
from dcpool.pool import open_pool
from dcpool.testing import open_cluster

pytestmark = pytest.mark.e2e

PHONE = "9996621234"


def _forms(secret: bytes) -> set[str]:
    """Ways a secret could be spelled in text."""
    out = {
        secret.hex(),
        secret.hex().upper(),
        repr(secret)[2:-1],
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        str(int.from_bytes(secret, "big")),
        str(int.from_bytes(secret, "little")),
    }
    for i in range(0, len(secret) - 7, 4):
        window = secret[i : i + 8]
        out |= {window.hex(), window.hex().upper(), repr(window)[2:-1]}
    return {f for f in out if len(f) >= 12}


def _exception_texts(exc: BaseException) -> list[str]:
    texts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        texts += [str(exc), repr(exc), repr(exc.args)]
        for note in getattr(exc, "__notes__", ()):
            texts.append(note)
        exc = exc.__cause__ or exc.__context__
    return texts


async def test_no_key_or_token_in_logs_reprs_or_errors(caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    induced: list[BaseException] = []

    async def expect_error(coro, kinds) -> None:
        try:
            await coro
        except kinds as exc:
            induced.append(exc)
        else:  # pragma: no cover
            raise AssertionError(f"{kinds} not raised")

    with trio.fail_after(40):
        async with open_cluster() as cluster:
            world = cluster.world
            files = {dc: cluster.add_file(dc, size=3 * 4096 + 5) for dc in (1, 3, 4, 5)}
            async with open_pool(api_id=1, api_hash="secret-scan", storage=str(tmp_path / "s.session"),
                                 dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                                 home_dc=1) as pool:
                async with pool.events(buffer=100_000) as events:
                    user = await pool.sign_in(PHONE, "22222")  # PHONE_MIGRATE_2: home moves to 2
                    for dc in (1, 3, 4):  # three authorization transfers
                        async for chunk in pool.download(files[dc].input_location(), dc_id=dc,
                                                         part_size=4096):
                            assert chunk
                    # DC 4 forgets our key (-404): a new one is created, the transfer repeated
                    cluster.faults(4).transport_error(-404, count=1)
                    loc = files[4].input_location()
                    for offset in (0, 4096):
                        try:
                            await pool.invoke(tl.api.upload.GetFile(location=loc, offset=offset,
                                                                    limit=4096), dc_id=4, timeout=10)
                        except errors.DcPoolError as exc:
                            induced.append(exc)
                    # induced errors, each with its message checked below
                    await expect_error(pool.invoke(tl.api.upload.GetFile(location=loc, offset=1,
                                                                         limit=4096), dc_id=4),
                                       errors.BadRequest)
                    cluster.faults(2).flood_wait("auth.exportAuthorization", 120, count=1)  # > flood_sleep_threshold
                    await expect_error(pool.invoke(tl.api.upload.GetFile(
                        location=files[5].input_location(), offset=0, limit=4096), dc_id=5),
                        errors.FloodWait)
                    cluster.faults(3).auth_bytes_invalid(count=2)
                    cluster.faults(3).transport_error(-404, count=1)
                    for _ in range(3):
                        try:
                            await pool.invoke(tl.api.upload.GetFile(
                                location=files[3].input_location(), offset=0, limit=4096),
                                dc_id=3, timeout=10)
                        except errors.DcPoolError as exc:
                            induced.append(exc)
                    await expect_error(pool.invoke(tl.api.help.GetNearestDc(), dc_id=99),
                                       errors.UnknownDc)
                    await expect_error(pool.invoke(tl.api.InputUserSelf()), errors.LocalProtocolError)
                    await expect_error(pool.invoke(tl.api.help.GetNearestDc(), dc_id=5, timeout=0),
                                       errors.RequestTimeout)
                    await expect_error(pool.invoke(tl.api.users.GetFullUser(id=tl.api.InputUser(
                        user_id=user.id, access_hash=1))), errors.BadRequest)

                    # everything a user could print
                    texts += [repr(pool), str(pool), repr(pool.statistics()), repr(pool.storage)]
                    for state in pool.dc_states():
                        texts += [repr(state), repr(state.auth_key), str(state.auth_key)]
                        for conn in state.connections():
                            texts += [repr(conn), repr(conn.statistics()), repr(conn.session)]
                    await pool.flush_storage()  # (writes happen off the event loop)
                    texts += [repr(r) for r in pool.storage.list_dcs()]
                    await pool.flush_storage()  # (writes happen off the event loop)
                    texts += [repr(pool.storage.get_config())]
                    while True:
                        try:
                            texts.append(repr(events.receive_nowait()))
                        except trio.WouldBlock:
                            break

            # every key any emulated DC ever accepted, and every token the world issued
            keys = [server.core.get_key(k).key for server in cluster.servers.values()
                    for k in server.core.key_ids()]
            tokens = list(world.tokens)
            assert len(keys) >= 5 and len(tokens) >= 3, (len(keys), len(tokens))
            texts += [repr(AuthKey(k)) for k in keys]

    for exc in induced:
        texts += _exception_texts(exc)
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), str(record.exc_text or "")]
    texts.append(caplog.text)
    haystack = "\n".join(texts)
    assert "bytes hidden" in haystack  # the scan really saw key reprs

    # the scan would see a partial leak (8 bytes from the middle of a key, in any spelling)
    probe = keys[0][100:108]
    for spelling in (f"..{probe.hex()}..", f"..{repr(probe)}..", probe.hex().upper()):
        assert any(f in spelling for f in _forms(keys[0])), spelling

    secrets = {f"auth key {k[:2].hex()}..": k for k in keys}
    secrets |= {f"aux hash of {k[:2].hex()}..": AuthKey(k).aux_hash for k in keys}
    secrets |= {f"export token {t[:2].hex()}..": t for t in tokens}
    leaks = [
        f"{label} as {form[:24]}..."
        for label, secret in secrets.items()
        for form in _forms(secret)
        if form in haystack
    ]
    assert not leaks, leaks
    assert {type(e).__name__ for e in induced} >= {
        "BadRequest", "FloodWait", "UnknownDc", "LocalProtocolError", "RequestTimeout"}
