"""World: stored files and upload.getFile (offset/limit rules of spec §13.2, errors, encoding)."""

from __future__ import annotations

import hashlib
import random

import pytest

from dcpool import tl
from dcpool.errors import AuthKeyUnregistered, BadRequest, FileMigrate, LocalProtocolError, RpcError
from dcpool.testing.files import check_offset_limit, serialize_file_part
from dcpool.testing.world import World

api = tl.api
MiB = 1 << 20


def make_world() -> World:
    w = World.test_cluster(rng=random.Random(5).randbytes, require_init_connection=False)
    uid = w.user_by_phone(w.test_phone(2, 1)).id
    for dc in w.dc_ids:
        w.authorize(dc, 1, uid)
    return w


def get_file(w: World, dc: int, location, offset: int, limit: int, precise: bool = False, key: int = 1):
    return w.call(dc, key, api.upload.GetFile(precise=precise, location=location, offset=offset, limit=limit))


# (offset, limit, precise) -> expected error or None
CASES = [
    # non-precise: offset % 4096, limit % 4096, 1 MiB % limit
    (0, 4096, False, None),
    (0, 512 * 1024, False, None),
    (0, MiB, False, None),
    (MiB, MiB, False, None),
    (4096, 4096, False, None),
    (3 * MiB + 512 * 1024, 512 * 1024, False, None),
    (0, 64 * 1024, False, None),
    (1024, 4096, False, "OFFSET_INVALID"),
    (100, 4096, False, "OFFSET_INVALID"),
    (-4096, 4096, False, "OFFSET_INVALID"),
    (0, 1024, False, "LIMIT_INVALID"),
    (0, 12288, False, "LIMIT_INVALID"),  # multiple of 4096 but does not divide 1 MiB
    (0, 0, False, "LIMIT_INVALID"),
    (0, -4096, False, "LIMIT_INVALID"),
    (0, 2 * MiB, False, "LIMIT_INVALID"),
    (512 * 1024 + 4096, 512 * 1024, False, "LIMIT_INVALID"),  # crosses the 1 MiB boundary
    (MiB - 4096, 8192, False, "LIMIT_INVALID"),
    # precise: offset % 1024, limit % 1024, limit <= 1 MiB, same 1 MiB block
    (1024, 1024, True, None),
    (3072, 5120, True, None),
    (0, MiB, True, None),
    (MiB - 1024, 1024, True, None),
    (512, 1024, True, "OFFSET_INVALID"),
    (0, 1000, True, "LIMIT_INVALID"),
    (0, MiB + 1024, True, "LIMIT_INVALID"),
    (MiB - 1024, 2048, True, "LIMIT_INVALID"),
    (0, 0, True, "LIMIT_INVALID"),
]


@pytest.mark.parametrize("offset,limit,precise,expected", CASES)
def test_offset_limit_table(offset, limit, precise, expected):
    assert check_offset_limit(offset, limit, precise) == expected
    w = make_world()
    f = w.add_file(2, size=5 * MiB)
    if expected is None:
        part = get_file(w, 2, f.input_location(), offset, limit, precise)
        assert part.bytes == f.data[offset : offset + limit]
    else:
        with pytest.raises(BadRequest) as info:
            get_file(w, 2, f.input_location(), offset, limit, precise)
        assert (info.value.code, info.value.message) == (400, expected)


def test_served_part_shape_and_end_of_file():
    w = make_world()
    data = bytes(range(256)) * 40  # 10240 bytes
    f = w.add_file(2, data=data)
    assert (f.size, f.sha256) == (10240, hashlib.sha256(data).hexdigest())
    part = get_file(w, 2, f.input_location(), 0, 4096)
    assert type(part) is api.upload.File
    assert type(part.type) is api.storage.FilePartial
    assert part.bytes == data[:4096]
    # the last part is short, a part past the end is empty
    assert get_file(w, 2, f.input_location(), 8192, 4096).bytes == data[8192:]
    assert get_file(w, 2, f.input_location(), 12288, 4096).bytes == b""
    assert w.stats(2).bytes_served == 4096 + 2048


def test_reassembled_download_matches_sha256():
    w = make_world()
    f = w.add_file(3, size=3 * MiB + 12345)
    chunks, offset = [], 0
    while True:
        part = get_file(w, 3, f.input_location(), offset, 512 * 1024).bytes
        chunks.append(part)
        offset += len(part)
        if len(part) < 512 * 1024:
            break
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == f.sha256
    assert offset == f.size


def test_size_only_content_is_deterministic_and_pseudo_random():
    a = World.test_cluster(rng=random.Random(11).randbytes, require_init_connection=False).add_file(1, size=100_000)
    b = World.test_cluster(rng=random.Random(11).randbytes, require_init_connection=False).add_file(1, size=100_000)
    c = World.test_cluster(rng=random.Random(12).randbytes, require_init_connection=False).add_file(1, size=100_000)
    assert a.data == b.data and a.sha256 == b.sha256
    assert a.data != c.data
    assert len(set(a.data[:4096])) > 200  # not a constant fill
    # an explicit rng argument wins over the world's
    w = World.test_cluster(rng=random.Random(0).randbytes, require_init_connection=False)
    d = w.add_file(1, size=100_000, rng=random.Random(11).randbytes)
    assert d.data == a.data


def test_64_mib_file_is_cheap():
    w = make_world()
    f = w.add_file(1, size=64 * MiB)
    part = get_file(w, 1, f.input_location(), 63 * MiB, MiB)
    assert len(part.bytes) == MiB
    assert len(f.sha256) == 64


def test_add_file_argument_checks():
    w = make_world()
    with pytest.raises(LocalProtocolError):
        w.add_file(1)
    with pytest.raises(LocalProtocolError):
        w.add_file(1, data=b"abc", size=4)
    with pytest.raises(LocalProtocolError):
        w.add_file(1, size=-1)
    assert w.add_file(1, data=b"abc", size=3).size == 3
    assert w.add_file(1, size=0).data == b""


def test_wrong_dc_is_file_migrate():
    w = make_world()
    f = w.add_file(3, size=8192)
    for dc in (1, 2):
        with pytest.raises(FileMigrate) as info:
            get_file(w, dc, f.input_location(), 0, 4096)
        assert (info.value.code, info.value.message, info.value.dc_id) == (303, "FILE_MIGRATE_3", 3)


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda f: api.InputDocumentFileLocation(id=f.id + 1, access_hash=f.access_hash, file_reference=f.file_reference, thumb_size=""), "FILE_ID_INVALID"),
        (lambda f: api.InputDocumentFileLocation(id=f.id, access_hash=f.access_hash + 1, file_reference=f.file_reference, thumb_size=""), "FILE_ID_INVALID"),
        (lambda f: api.InputDocumentFileLocation(id=f.id, access_hash=f.access_hash, file_reference=b"old", thumb_size=""), "FILE_REFERENCE_EXPIRED"),
        (lambda f: api.InputPhotoFileLocation(id=f.id, access_hash=f.access_hash, file_reference=f.file_reference, thumb_size="x"), "FILE_ID_INVALID"),
        (lambda f: api.InputDocumentFileLocation(id=f.id, access_hash=f.access_hash, file_reference=f.file_reference, thumb_size="m"), "LOCATION_INVALID"),
        (lambda f: api.InputEncryptedFileLocation(id=f.id, access_hash=f.access_hash), "LOCATION_INVALID"),
    ],
    ids=["unknown-id", "wrong-hash", "stale-reference", "document-as-photo", "no-such-thumb", "other-kind"],
)
def test_bad_locations(mutate, expected):
    w = make_world()
    f = w.add_file(2, size=8192)
    with pytest.raises(RpcError) as info:
        get_file(w, 2, mutate(f), 0, 4096)
    assert (info.value.code, info.value.message) == (400, expected)


def test_get_file_needs_an_authorized_key():
    w = make_world()
    f = w.add_file(2, size=8192)
    with pytest.raises(AuthKeyUnregistered):
        get_file(w, 2, f.input_location(), 0, 4096, key=999)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 252, 253, 254, 255, 1000, 4096, 65537])
def test_hand_serialized_upload_file_matches_the_tl_writer(n):
    chunk = bytes(i % 251 for i in range(n))
    expected = api.upload.File(type=api.storage.FilePartial(), mtime=1234, bytes=chunk).to_bytes()
    assert serialize_file_part(chunk, 1234) == expected
    assert serialize_file_part(memoryview(chunk), 1234) == expected
    assert tl.loads(expected).bytes == chunk
