"""Issue 15 over real loopback sockets with the raw client: uploads turned into documents on the
DC that received them, CDN DCs (own RSA key from help.getCdnConfig, encrypted chunks, hashes,
reupload, corruption), and temp keys bound with auth.bindTempAuthKey (PFS, expiry -> -404)."""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import asynccontextmanager

import pytest
import trio
from _raw_client import login, open_session

from dcpool import tl
from dcpool.crypto import cdn
from dcpool.crypto.rsa import RsaPublicKey
from dcpool.errors import (
    BadRequest,
    CdnHashMismatch,
    FileMigrate,
    Unauthorized,
    UnknownFingerprint,
)
from dcpool.mtproto.session import RpcErrorReceived, RpcResult
from dcpool.testing import open_cluster, pfs
from dcpool.testing import uploads as U
from dcpool.transport import TransportErrorFrame

pytestmark = pytest.mark.e2e

api = tl.api
TIMEOUT = 20
PHONE = "9996621234"  # reserved test number of DC 2; code 22222
KiB = 1 << 10


@asynccontextmanager
async def signed_in(cluster, dc: int = 2):
    async with open_session(cluster, dc) as home:
        user = await login(home, PHONE, "22222")
        yield home, user


async def download(raw, location, limit: int = 128 * KiB) -> bytes:
    out = b""
    while True:
        part = await raw.call(api.upload.GetFile(location=location, offset=len(out), limit=limit))
        out += bytes(part.bytes)
        if len(part.bytes) < limit:
            return out


async def upload(raw, data: bytes, file_id: int, part_size: int, *, big: bool = False) -> int:
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    for i, chunk in enumerate(parts):
        if big:
            q = api.upload.SaveBigFilePart(file_id=file_id, file_part=i, file_total_parts=len(parts), bytes=chunk)
        else:
            q = api.upload.SaveFilePart(file_id=file_id, file_part=i, bytes=chunk)
        assert await raw.call(q) is True
    return len(parts)


# --------------------------------------------------------------------------- uploads


@pytest.mark.parametrize("size", [1, 512 * KiB, 512 * KiB + 1])
async def test_upload_send_media_download_round_trip(cluster, size):
    data = os.urandom(size)
    with trio.fail_after(TIMEOUT):
        async with signed_in(cluster) as (home, user):
            n = await upload(home, data, 1234, 512 * KiB)
            media = api.InputMediaUploadedDocument(
                file=api.InputFile(id=1234, parts=n, name="r.bin", md5_checksum=hashlib.md5(data).hexdigest()),
                mime_type="application/octet-stream",
                attributes=[api.DocumentAttributeFilename(file_name="r.bin")],
            )
            res = await home.call(api.messages.SendMedia(peer=api.InputPeerSelf(), media=media, message="", random_id=9))
            new = res.updates[1]
            document = new.message.media.document
            assert document.dc_id == 2 and document.size == size and new.pts == user_pts(cluster, user)
            location = api.InputDocumentFileLocation(
                id=document.id, access_hash=document.access_hash,
                file_reference=document.file_reference, thumb_size="")
            assert await download(home, location) == data
            # stored on DC 2 only: another DC sends the client back there
            exported = await home.call(api.auth.ExportAuthorization(dc_id=4))
            async with open_session(cluster, 4) as other:
                await other.call(api.auth.ImportAuthorization(id=exported.id, bytes=exported.bytes))
                with pytest.raises(FileMigrate) as info:
                    await other.call(api.upload.GetFile(location=location, offset=0, limit=4096))
                assert info.value.dc_id == 2
    assert cluster.statistics()[2].requests["upload.saveFilePart"] == (size + 512 * KiB - 1) // (512 * KiB)


def user_pts(cluster, user) -> int:
    return cluster.world.user(user.id).pts


async def test_missing_part_is_named_and_resent(cluster):
    data = os.urandom(300 * KiB)
    with trio.fail_after(TIMEOUT):
        async with signed_in(cluster) as (home, _):
            for i in (0, 2):
                await home.call(api.upload.SaveFilePart(file_id=7, file_part=i, bytes=data[i * 128 * KiB : (i + 1) * 128 * KiB]))
            media = api.InputMediaUploadedDocument(
                file=api.InputFile(id=7, parts=3, name="x", md5_checksum=""), mime_type="a/b", attributes=[])
            with pytest.raises(BadRequest) as info:
                await home.call(api.messages.UploadMedia(peer=api.InputPeerSelf(), media=media))
            assert info.value.message == "FILE_PART_1_MISSING"
            await home.call(api.upload.SaveFilePart(file_id=7, file_part=1, bytes=data[128 * KiB : 256 * KiB]))
            got = await home.call(api.messages.UploadMedia(peer=api.InputPeerSelf(), media=media))
            stored = cluster.world.files[got.document.id]
            assert stored.data == data and stored.dc_id == 2


# --------------------------------------------------------------------------- CDN


@pytest.fixture
async def cdn_cluster():
    async with open_cluster(cdn_dcs=[203]) as c:
        yield c


async def cdn_keys(raw) -> dict:
    config = await raw.call(api.help.GetCdnConfig())
    keys = {}
    for k in config.public_keys:
        pub = RsaPublicKey.from_pem(k.public_key)
        keys[pub.fingerprint] = pub
    return keys


async def test_cdn_download_over_sockets(cdn_cluster):
    cluster = cdn_cluster
    data = os.urandom(600 * KiB + 123)
    stored = cluster.world.add_file(2, data)
    cluster.serve_from_cdn(stored.id, 203)
    (opt,) = [o for o in cluster.world.dc_options() if o.id == 203]
    assert opt.cdn
    with trio.fail_after(TIMEOUT):
        async with signed_in(cluster) as (home, _):
            keys = await cdn_keys(home)
            assert set(keys) == {U.cdn_private_key(cluster.world, 203).fingerprint}
            assert not set(keys) & set(cluster.rsa_keys())  # its own key, not the cluster's
            r = await home.call(api.upload.GetFile(cdn_supported=True, location=stored.input_location(), offset=0, limit=128 * KiB))
            assert type(r) is api.upload.FileCdnRedirect and r.dc_id == 203
            known = cdn.hash_table(r.file_hashes)
            # the cluster's key does not open the CDN DC
            with pytest.raises(UnknownFingerprint):
                async with open_session(cluster, 203):
                    pass
            async with open_session(cluster, 203, rsa_keys=keys) as edge:
                # no authorization there, and nothing but getCdnFile
                with pytest.raises(BadRequest) as info:
                    await edge.call(api.help.GetConfig())
                assert info.value.message == "CDN_METHOD_INVALID"
                out = b""
                while True:
                    for offset in cdn.hashes_needed(len(out), 128 * KiB, known):
                        known.update(cdn.hash_table(await home.call(
                            api.upload.GetCdnFileHashes(file_token=r.file_token, offset=offset))))
                    enc = (await edge.call(api.upload.GetCdnFile(file_token=r.file_token, offset=len(out), limit=128 * KiB))).bytes
                    out += cdn.open_chunk(enc, len(out), r.encryption_key, r.encryption_iv, known,
                                          at_end=len(enc) < 128 * KiB)
                    if len(enc) < 128 * KiB:
                        break
                assert out == data
                # a corrupted chunk never passes
                U.corrupt_cdn_chunks(cluster.world, 203)
                enc = (await edge.call(api.upload.GetCdnFile(file_token=r.file_token, offset=0, limit=128 * KiB))).bytes
                with pytest.raises(CdnHashMismatch):
                    cdn.open_chunk(enc, 0, r.encryption_key, r.encryption_iv, known)
                # reupload
                U.require_reupload(cluster.world, stored.id)
                need = await edge.call(api.upload.GetCdnFile(file_token=r.file_token, offset=0, limit=128 * KiB))
                assert type(need) is api.upload.CdnFileReuploadNeeded
                await home.call(api.upload.ReuploadCdnFile(file_token=r.file_token, request_token=need.request_token))
                enc = (await edge.call(api.upload.GetCdnFile(file_token=r.file_token, offset=0, limit=128 * KiB))).bytes
                assert cdn.open_chunk(enc, 0, r.encryption_key, r.encryption_iv, known) == data[: 128 * KiB]
                # revoked tokens: fall back to the master
                U.revoke_cdn_tokens(cluster.world, stored.id)
                with pytest.raises(BadRequest) as info:
                    await edge.call(api.upload.GetCdnFile(file_token=r.file_token, offset=0, limit=4096))
                assert info.value.message == "FILE_TOKEN_INVALID"
    stats = cluster.statistics()[203]
    assert stats.handshakes == 1 and stats.requests["upload.getCdnFile"] >= 6


# --------------------------------------------------------------------------- PFS


async def test_temp_key_bind_use_and_expiry(cluster):
    with trio.fail_after(TIMEOUT):
        async with signed_in(cluster) as (home, user):
            perm = home.session.auth_key
            async with open_session(cluster, 2, temp_expires_in=3600) as temp:
                temp_id = temp.session.auth_key.key_id
                # before binding: config yes, account no
                assert (await temp.call(api.help.GetConfig())).this_dc == 2
                with pytest.raises(Unauthorized) as info:
                    await temp.call(api.users.GetUsers(id=[api.InputUserSelf()]))
                assert info.value.message == "AUTH_KEY_PERM_EMPTY"
                expires_at = int(time.time()) + 600
                # the server checks the sealed fields
                bad = await temp.bind_temp_key(perm, expires_at, msg_id=4)
                assert isinstance(bad, RpcErrorReceived) and bad.error.message == "ENCRYPTED_MESSAGE_INVALID"
                bad = await temp.bind_temp_key(perm, expires_at, temp_session_id=1)
                assert isinstance(bad, RpcErrorReceived) and bad.error.message == "ENCRYPTED_MESSAGE_INVALID"
                ok = await temp.bind_temp_key(perm, expires_at)
                assert isinstance(ok, RpcResult) and tl.loads(ok.body) is True
                (me,) = await temp.call(api.users.GetUsers(id=[api.InputUserSelf()]))
                assert me.id == user.id
                assert pfs.key_registry(cluster.world).bound_perm(2, temp_id) == perm.key_id
                # expiry: the next packet on the temp key gets -404, the permanent key lives on
                assert pfs.expire_temp_key(cluster.world, 2, temp_id) == 1
                temp.send(api.help.GetNearestDc())
                event = await temp.until(lambda e: isinstance(e, TransportErrorFrame))
                assert event.code == -404
            assert not cluster.knows_key(2, temp_id)
            assert cluster.knows_key(2, perm.key_id)
            (me,) = await home.call(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert me.id == user.id
