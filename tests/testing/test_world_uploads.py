"""The emulator's uploads and CDN DCs (dcpool.testing.uploads), through World.call/handle."""

from __future__ import annotations

import hashlib
import random

import pytest

from dcpool import tl
from dcpool.crypto import cdn
from dcpool.errors import CdnHashMismatch, FileMigrate, RpcError
from dcpool.testing import World
from dcpool.testing import uploads as U

api = tl.api
KiB, MiB = 1 << 10, 1 << 20
K2, K4 = 21, 41  # auth keys of the user on DC 2 (home) and DC 4


@pytest.fixture
def world():
    w = World(rng=random.Random(7).randbytes, require_init_connection=False)
    w.strict = True
    U.enable_cdn_dc(w, 203)
    me = w.add_user("15550001", 2)
    w.authorize(2, K2, me.id)
    w.authorize(4, K4, me.id)
    return w


def me(w):
    return w.user_by_phone("15550001")


def save(w, dc, key, file_id, data, part_size=512 * KiB, big=False):
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    for i, p in enumerate(parts):
        if big:
            q = api.upload.SaveBigFilePart(file_id=file_id, file_part=i, file_total_parts=len(parts), bytes=p)
        else:
            q = api.upload.SaveFilePart(file_id=file_id, file_part=i, bytes=p)
        assert w.call(dc, key, q) is True
    return len(parts)


def err(w, dc, key, q) -> str:
    with pytest.raises(RpcError) as info:
        w.call(dc, key, q)
    return info.value.message


def doc_media(input_file, name="f.bin"):
    return api.InputMediaUploadedDocument(
        file=input_file, mime_type="application/x-test",
        attributes=[api.DocumentAttributeFilename(file_name=name)],
    )


def download(w, dc, key, doc, limit=MiB) -> bytes:
    out = b""
    while True:
        r = w.call(dc, key, api.upload.GetFile(location=doc.input_location(), offset=len(out), limit=limit))
        out += r.bytes
        if len(r.bytes) < limit:
            return out


@pytest.mark.parametrize("size,part", [(1, 1 * KiB), (512 * KiB, 512 * KiB), (512 * KiB + 1, 512 * KiB),
                                       (3 * 128 * KiB - 5, 128 * KiB)])
def test_small_upload_becomes_a_document_on_that_dc(world, size, part):
    data = random.Random(size).randbytes(size)
    n = save(world, 2, K2, 99, data, part)
    f = api.InputFile(id=99, parts=n, name="x.bin", md5_checksum=hashlib.md5(data).hexdigest())
    media = world.call(2, K2, api.messages.UploadMedia(peer=api.InputPeerSelf(), media=doc_media(f)))
    document = media.document
    assert document.dc_id == 2 and document.size == size and document.mime_type == "application/x-test"
    stored = world.files[document.id]
    assert download(world, 2, K2, stored) == data
    # another DC answers FILE_MIGRATE_2 (spec §11.3)
    with pytest.raises(FileMigrate) as info:
        world.call(4, K4, api.upload.GetFile(location=stored.input_location(), offset=0, limit=4096))
    assert info.value.message == "FILE_MIGRATE_2"


def test_big_upload_and_parts_are_per_dc_and_key(world):
    data = random.Random(1).randbytes(10 * MiB + 1)
    n = save(world, 2, K2, 5, data, big=True)
    big = api.InputFileBig(id=5, parts=n, name="big.bin")
    # the same file_id through another key, or on another DC, sees no parts
    world.authorize(2, 22, me(world).id)
    assert err(world, 2, 22, api.messages.UploadMedia(peer=api.InputPeerSelf(), media=doc_media(big))) == "FILE_PART_0_MISSING"
    media = world.call(2, K2, api.messages.UploadMedia(peer=api.InputPeerSelf(), media=doc_media(big)))
    assert hashlib.sha256(download(world, 2, K2, world.files[media.document.id])).digest() == hashlib.sha256(data).digest()
    # a small inputFile for parts saved as big ones, or a wrong total
    assert err(world, 2, K2, api.messages.UploadMedia(peer=api.InputPeerSelf(), media=doc_media(
        api.InputFile(id=5, parts=n, name="x", md5_checksum="")))) == "FILE_PARTS_INVALID"
    assert err(world, 2, K2, api.messages.UploadMedia(peer=api.InputPeerSelf(), media=doc_media(
        api.InputFileBig(id=5, parts=n - 1, name="x")))) == "FILE_PARTS_INVALID"


def test_part_errors(world):
    sfp = api.upload.SaveFilePart
    assert err(world, 2, K2, sfp(file_id=1, file_part=0, bytes=b"")) == "FILE_PART_EMPTY"
    assert err(world, 2, K2, sfp(file_id=1, file_part=0, bytes=bytes(512 * KiB + 1))) == "FILE_PART_TOO_BIG"
    assert err(world, 2, K2, sfp(file_id=1, file_part=-1, bytes=b"x")) == "FILE_PART_INVALID"
    assert err(world, 2, K2, sfp(file_id=1, file_part=4000, bytes=b"x")) == "FILE_PART_INVALID"
    # a part below the highest one must have a valid size; all of them the same size
    assert world.call(2, K2, sfp(file_id=2, file_part=1, bytes=bytes(100)))
    assert err(world, 2, K2, sfp(file_id=2, file_part=2, bytes=bytes(100))) == "FILE_PART_SIZE_INVALID"
    assert world.call(2, K2, sfp(file_id=3, file_part=0, bytes=bytes(64 * KiB)))
    assert world.call(2, K2, sfp(file_id=3, file_part=2, bytes=bytes(10)))
    assert err(world, 2, K2, sfp(file_id=3, file_part=1, bytes=bytes(128 * KiB))) == "FILE_PART_SIZE_CHANGED"
    assert err(world, 2, K2, sfp(file_id=3, file_part=1, bytes=bytes(3 * KiB))) == "FILE_PART_SIZE_INVALID"
    # big parts: the total must be stable and bound the part number
    sbp = api.upload.SaveBigFilePart
    assert err(world, 2, K2, sbp(file_id=4, file_part=0, file_total_parts=0, bytes=b"x")) == "FILE_PARTS_INVALID"
    assert err(world, 2, K2, sbp(file_id=4, file_part=3, file_total_parts=3, bytes=b"x")) == "FILE_PART_INVALID"
    assert world.call(2, K2, sbp(file_id=4, file_part=0, file_total_parts=3, bytes=bytes(4 * KiB)))
    assert err(world, 2, K2, sbp(file_id=4, file_part=1, file_total_parts=4, bytes=bytes(4 * KiB))) == "FILE_PARTS_INVALID"
    assert err(world, 2, K2, sbp(file_id=4, file_part=1, file_total_parts=3, bytes=bytes(3 * KiB))) == "FILE_PART_SIZE_INVALID"
    # mixing saveFilePart into a big file
    assert err(world, 2, K2, sfp(file_id=4, file_part=1, bytes=bytes(4 * KiB))) == "FILE_PARTS_INVALID"
    # saving needs an authorized key
    with pytest.raises(RpcError) as info:
        world.call(2, 999, sfp(file_id=1, file_part=0, bytes=b"x"))
    assert info.value.message == "AUTH_KEY_UNREGISTERED"


def test_missing_part_and_md5(world):
    data = bytes(range(256)) * 1024  # 256 KiB
    save(world, 2, K2, 8, data, 64 * KiB)
    upload = lambda f: api.messages.UploadMedia(peer=api.InputPeerSelf(), media=doc_media(f))  # noqa: E731
    assert err(world, 2, K2, upload(api.InputFile(id=8, parts=5, name="a", md5_checksum=""))) == "FILE_PART_4_MISSING"
    assert err(world, 2, K2, upload(api.InputFile(id=8, parts=4, name="a", md5_checksum="00" * 16))) == "MD5_CHECKSUM_INVALID"
    assert err(world, 2, K2, upload(api.InputFile(id=8, parts=0, name="a", md5_checksum=""))) == "FILE_PARTS_INVALID"
    ok = world.call(2, K2, upload(api.InputFile(id=8, parts=4, name="a", md5_checksum=hashlib.md5(data).hexdigest())))
    assert ok.document.size == len(data)
    # a re-sent part fills the hole of FILE_PART_X_MISSING
    world.call(2, K2, api.upload.SaveFilePart(file_id=8, file_part=4, bytes=b"tail"))
    ok = world.call(2, K2, upload(api.InputFile(id=8, parts=5, name="a", md5_checksum="")))
    assert download(world, 2, K2, world.files[ok.document.id]) == data + b"tail"


def test_send_media_is_a_real_message_with_pts(world):
    from dcpool.testing import messaging as M

    other = world.add_user("15550002", 2)
    pushed = []
    world.set_update_sink(lambda handle, payload: pushed.append(tl.loads(payload)))
    world.register_session(other.id, "other-session", layer=tl.LAYER)
    data = b"hello document"
    save(world, 2, K2, 77, data)
    pts_before = me(world).pts
    res = world.call(2, K2, api.messages.SendMedia(
        peer=api.InputPeerUser(user_id=other.id, access_hash=other.access_hash),
        media=doc_media(api.InputFile(id=77, parts=1, name="d.txt", md5_checksum="")),
        message="caption", random_id=12345))
    assert type(res) is api.Updates
    msg_id, new = res.updates
    assert type(msg_id) is api.UpdateMessageID and msg_id.random_id == 12345
    assert type(new) is api.UpdateNewMessage and new.pts == pts_before + 1 == me(world).pts
    document = new.message.media.document
    assert new.message.message == "caption" and document.dc_id == 2
    # the receiver's box has the same media
    got = M.messaging(world).box(other.id).messages[1]
    assert got.media.document.id == document.id
    # the receiver gets the message with its media (updateShortMessage cannot carry media)
    (push,) = pushed
    assert type(push) is api.Updates and push.seq == other.seq
    (upd,) = push.updates
    assert type(upd) is api.UpdateNewMessage and upd.message.media.document.id == document.id
    assert upd.pts == other.pts
    # a photo
    save(world, 2, K2, 78, b"\xff\xd8jpeg")
    res = world.call(2, K2, api.messages.SendMedia(
        peer=api.InputPeerSelf(), media=api.InputMediaUploadedPhoto(
            file=api.InputFile(id=78, parts=1, name="p.jpg", md5_checksum="")),
        message="", random_id=1))
    photo = res.updates[1].message.media.photo
    r = world.call(2, K2, api.upload.GetFile(location=world.photos[photo.id].input_location("x"), offset=0, limit=4096))
    assert r.bytes == b"\xff\xd8jpeg"


# --------------------------------------------------------------------------- CDN


def cdn_setup(world, size=300_000):
    f = world.add_file(2, random.Random(3).randbytes(size))
    U.serve_from_cdn(world, f.id, 203)
    return f


def redirect(world, f, offset=0):
    return world.call(2, K2, api.upload.GetFile(cdn_supported=True, location=f.input_location(), offset=offset, limit=128 * KiB))


def cdn_get(world, token, offset, limit=128 * KiB):
    return world.call(203, 5, api.upload.GetCdnFile(file_token=token, offset=offset, limit=limit))


def test_cdn_config_dc_options_and_redirect(world):
    cfg = world.call(2, K2, api.help.GetCdnConfig())
    (key,) = cfg.public_keys
    assert key.dc_id == 203 and key.public_key.startswith("-----BEGIN RSA PUBLIC KEY-----")
    assert U.cdn_private_key(world, 203).public_key.to_pkcs1_pem() == key.public_key
    opts = [o for o in world.dc_options() if o.id == 203]
    assert opts == [] or all(o.cdn for o in opts)  # no endpoint yet in a socket-less world
    world.set_endpoint(203, "127.0.0.1", 1)
    assert [o.cdn for o in world.dc_options() if o.id == 203] == [True]
    f = cdn_setup(world)
    # without cdn_supported: the file itself
    plain = world.call(2, K2, api.upload.GetFile(location=f.input_location(), offset=0, limit=4096))
    assert plain.bytes == f.data[:4096]
    r = redirect(world, f)
    assert type(r) is api.upload.FileCdnRedirect and r.dc_id == 203
    assert [h.offset for h in r.file_hashes] == [0, 131072, 262144]
    # on DC 4, the redirect's location check still says FILE_MIGRATE_2
    with pytest.raises(FileMigrate):
        world.call(4, K4, api.upload.GetFile(cdn_supported=True, location=f.input_location(), offset=0, limit=4096))


def test_cdn_download_decrypts_and_checks(world):
    f = cdn_setup(world)
    r = redirect(world, f)
    known = cdn.hash_table(r.file_hashes)
    out = b""
    for offset in range(0, f.size, 128 * KiB):
        enc = cdn_get(world, r.file_token, offset).bytes
        out += cdn.open_chunk(enc, offset, r.encryption_key, r.encryption_iv, known, at_end=len(enc) < 128 * KiB)
    assert out == f.data
    # hashes from the master as well
    hashes = world.call(2, K2, api.upload.GetCdnFileHashes(file_token=r.file_token, offset=131072))
    assert [h.offset for h in hashes] == [131072, 262144]
    # a corrupted chunk fails its hash and is never returned
    U.corrupt_cdn_chunks(world, 203)
    enc = cdn_get(world, r.file_token, 0).bytes
    with pytest.raises(CdnHashMismatch):
        cdn.open_chunk(enc, 0, r.encryption_key, r.encryption_iv, known)


def test_cdn_dc_refuses_everything_else(world):
    for q in (api.help.GetConfig(), api.help.GetCdnConfig(),
              api.upload.GetFile(location=api.InputDocumentFileLocation(id=1, access_hash=1, file_reference=b"", thumb_size=""), offset=0, limit=4096),
              api.auth.ExportAuthorization(dc_id=2)):
        assert err(world, 203, 5, q) == "CDN_METHOD_INVALID"


def test_cdn_reupload_and_token_errors(world):
    f = cdn_setup(world)
    r = redirect(world, f)
    U.require_reupload(world, f.id)
    need = cdn_get(world, r.file_token, 0)
    assert type(need) is api.upload.CdnFileReuploadNeeded
    assert err(world, 2, K2, api.upload.ReuploadCdnFile(file_token=r.file_token, request_token=b"nope")) == "RSA_DECRYPT_FAILED"
    with pytest.raises(FileMigrate):
        world.call(4, K4, api.upload.ReuploadCdnFile(file_token=r.file_token, request_token=need.request_token))
    hashes = world.call(2, K2, api.upload.ReuploadCdnFile(file_token=r.file_token, request_token=need.request_token))
    assert hashes[0].offset == 0
    assert type(cdn_get(world, r.file_token, 0)) is api.upload.CdnFile
    # bad tokens, bad offsets, a token on the wrong DC
    assert err(world, 203, 5, api.upload.GetCdnFile(file_token=b"x" * 32, offset=0, limit=4096)) == "FILE_TOKEN_INVALID"
    assert err(world, 203, 5, api.upload.GetCdnFile(file_token=r.file_token, offset=100, limit=4096)) == "OFFSET_INVALID"
    assert err(world, 203, 5, api.upload.GetCdnFile(file_token=r.file_token, offset=0, limit=1000)) == "LIMIT_INVALID"
    U.revoke_cdn_tokens(world, f.id)
    assert err(world, 203, 5, api.upload.GetCdnFile(file_token=r.file_token, offset=0, limit=4096)) == "FILE_TOKEN_INVALID"
    # re-marking issues a fresh token
    U.serve_from_cdn(world, f.id, 203)
    assert redirect(world, f).file_token != r.file_token


def test_lost_parts_are_named_missing(world):
    data = bytes(range(256)) * 1536  # 384 KiB = 3 parts of 128 KiB
    save(world, 2, K2, 31, data, 128 * KiB)
    assert U.lose_upload_parts(world, 2, [1], file_id=31) == 1
    assert U.lose_upload_parts(world, 4) == 0
    media = doc_media(api.InputFile(id=31, parts=3, name="l", md5_checksum=""))
    assert err(world, 2, K2, api.messages.UploadMedia(peer=api.InputPeerSelf(), media=media)) == "FILE_PART_1_MISSING"
    world.call(2, K2, api.upload.SaveFilePart(file_id=31, file_part=1, bytes=data[128 * KiB : 256 * KiB]))
    got = world.call(2, K2, api.messages.UploadMedia(peer=api.InputPeerSelf(), media=media))
    assert world.files[got.document.id].data == data
