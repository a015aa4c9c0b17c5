"""Wire primitives of spec §2: pack_* helpers and the Reader (incl. every error path)."""

from __future__ import annotations

import gzip
import struct

import pytest

from dcpool import tl
from dcpool.errors import LocalProtocolError, TLDecodeError
from dcpool.tl import _binary, ids


# --------------------------------------------------------------------------- §19 V15


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\xaa\xbb", bytes.fromhex("02aabb00")),
        (b"", bytes.fromhex("00000000")),
        (b"\x01", bytes.fromhex("01010000")),
        (b"abc", bytes.fromhex("03616263")),
        (b"abcd", bytes.fromhex("0461626364000000")),
    ],
)
def test_bytes_short_form_vectors(payload: bytes, expected: bytes) -> None:
    assert tl.pack_bytes(payload) == expected
    assert tl.Reader(expected).read_bytes() == payload


def test_bytes_253_is_short_form_with_two_padding_bytes() -> None:
    data = bytes(range(253))
    enc = tl.pack_bytes(data)
    assert enc[0] == 0xFD and enc[1:254] == data and enc[254:] == b"\x00\x00" and len(enc) == 256


def test_bytes_396_long_form() -> None:
    data = b"\x5a" * 396
    enc = tl.pack_bytes(data)
    assert enc[:4] == bytes.fromhex("fe8c0100") and len(enc) == 400
    r = tl.Reader(enc)
    assert r.read_bytes() == data and r.remaining == 0


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 63, 64, 65, 252, 253, 254, 255, 256, 257, 1000, 70000])
def test_bytes_all_lengths_roundtrip_and_alignment(n: int) -> None:
    data = bytes(i % 251 for i in range(n))
    enc = tl.pack_bytes(data)
    assert len(enc) % 4 == 0
    out: list[bytes] = []
    tl.put_bytes(out, data)
    assert b"".join(out) == enc
    r = tl.Reader(enc + b"tail")
    assert r.read_bytes() == data
    assert r.read_raw(4) == b"tail"


def test_big_payload_is_appended_uncopied() -> None:
    # Hot path (spec: file parts up to 512 KiB): the payload object itself is one of the parts.
    payload = b"x" * 524288
    out: list[bytes] = []
    tl.put_bytes(out, payload)
    assert any(part is payload for part in out)


def test_bytes_too_long_rejected() -> None:
    with pytest.raises(LocalProtocolError):
        tl.pack_bytes(memoryview(bytearray(1 << 24)))


def test_string_utf8_and_replacement() -> None:
    assert tl.pack_string("hé") == b"\x03h\xc3\xa9"
    assert tl.Reader(tl.pack_string("hé")).read_string() == "hé"
    assert tl.Reader(tl.pack_bytes(b"\xff\xfe")).read_string() == "\ufffd\ufffd"


# --------------------------------------------------------------------------- numbers


def test_ints_and_longs() -> None:
    assert tl.pack_int(-1) == b"\xff\xff\xff\xff"
    assert tl.pack_int(0xFFFFFFFF) == b"\xff\xff\xff\xff"  # unsigned accepted
    assert tl.pack_uint(0x05162463) == bytes.fromhex("63241605")  # §2.6: ids go out LE
    assert tl.pack_long(-2) == struct.pack("<q", -2)
    assert tl.pack_long(2**64 - 1) == b"\xff" * 8
    assert tl.pack_ulong(2**63) == struct.pack("<Q", 2**63)
    r = tl.Reader(tl.pack_int(-5) + tl.pack_uint(2**32 - 1) + tl.pack_long(-7) + tl.pack_double(1.5))
    assert (r.read_int(), r.read_uint(), r.read_long(), r.read_double()) == (-5, 2**32 - 1, -7, 1.5)
    assert r.remaining == 0 and r.pos == 24
    assert tl.Reader(tl.pack_long(-1)).read_ulong() == 2**64 - 1


@pytest.mark.parametrize("bad", [2**32, -(2**31) - 1, "1", None])
def test_pack_int_out_of_range(bad: object) -> None:
    with pytest.raises(LocalProtocolError):
        tl.pack_int(bad)  # type: ignore[arg-type]


def test_int128_int256_raw_bytes() -> None:
    nonce = bytes(range(16))
    assert tl.pack_int128(nonce) == nonce
    assert tl.pack_int128(-1) == b"\xff" * 16  # an int is LE signed (§19 V15)
    assert tl.pack_int256(bytes(32)) == bytes(32)
    with pytest.raises(LocalProtocolError):
        tl.pack_int128(b"short")
    r = tl.Reader(nonce + bytes(range(32)))
    assert r.read_int128() == nonce and r.read_int256() == bytes(range(32))


def test_bool_and_vectors() -> None:
    assert tl.pack_bool(True) == bytes.fromhex("b5757299")
    assert tl.pack_bool(False) == bytes.fromhex("379779bc")
    vec = tl.pack_vector([1, 2], tl.pack_long)
    assert vec == bytes.fromhex("15c4b51c02000000") + struct.pack("<qq", 1, 2)
    r = tl.Reader(vec)
    assert r.read_vector(r.read_long, 8) == [1, 2]
    bare = tl.pack_bare_vector([7], tl.pack_int)
    r = tl.Reader(bare)
    assert r.read_bare_vector(r.read_int) == [7]
    r = tl.Reader(tl.pack_bool(True) + tl.pack_bool(False))
    assert r.read_bool() is True and r.read_bool() is False


def test_read_raw_is_a_view_and_bytearray_is_copied() -> None:
    buf = bytearray(b"abcdefgh")
    r = tl.Reader(buf)
    view = r.read_raw(4)
    assert isinstance(view, memoryview) and view == b"abcd"
    buf.extend(b"more")  # the reader must not pin the caller's bytearray (BufferError)
    assert bytes(view) == b"abcd"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "method",
    ["read_int", "read_uint", "read_long", "read_ulong", "read_double", "read_int128", "read_int256",
     "read_bytes", "read_string", "read_bool", "read_object"],
)
def test_truncated_raises_tl_decode_error(method: str) -> None:
    for data in (b"", b"\x01", b"\x01\x02\x03"):
        with pytest.raises(TLDecodeError):
            getattr(tl.Reader(data), method)()


def test_bytes_errors() -> None:
    with pytest.raises(TLDecodeError):
        tl.Reader(b"\x05abc").read_bytes()  # declares 5, has 3
    with pytest.raises(TLDecodeError):
        tl.Reader(b"\x03abc"[:3]).read_bytes()
    with pytest.raises(TLDecodeError):
        tl.Reader(b"\x02ab").read_bytes()  # padding missing
    with pytest.raises(TLDecodeError):
        tl.Reader(b"\xfe\x00\x01").read_bytes()  # long-form header truncated
    with pytest.raises(TLDecodeError):
        tl.Reader(b"\xfe\x00\x01\x00" + b"x" * 10).read_bytes()
    with pytest.raises(TLDecodeError, match="0xff"):
        tl.Reader(b"\xff\x00\x00\x00").read_bytes()
    with pytest.raises(TLDecodeError):
        tl.Reader(b"abc").read_raw(4)


def test_vector_errors() -> None:
    r = tl.Reader(bytes.fromhex("15c4b51c") + struct.pack("<i", 1000) + bytes(8))
    with pytest.raises(TLDecodeError, match="cannot fit"):
        r.read_vector(r.read_long, 8)
    r = tl.Reader(bytes.fromhex("15c4b51c") + struct.pack("<i", -1))
    with pytest.raises(TLDecodeError):
        r.read_vector(r.read_int)
    r = tl.Reader(tl.pack_bool(True) + bytes(4))
    with pytest.raises(TLDecodeError, match="expected Vector"):
        r.read_vector(r.read_int)
    r = tl.Reader(struct.pack("<i", 2**30))
    with pytest.raises(TLDecodeError):
        r.read_bare_vector(r.read_int)


def test_bool_error() -> None:
    with pytest.raises(TLDecodeError, match="0x12345678"):
        tl.Reader(struct.pack("<I", 0x12345678)).read_bool()


def test_unknown_id_message_has_hex() -> None:
    with pytest.raises(TLDecodeError, match="0xdeadbeef"):
        tl.loads(struct.pack("<I", 0xDEADBEEF))


# --------------------------------------------------------------------------- gzip_packed (§2.7)


def _gz(inner: bytes) -> bytes:
    return struct.pack("<I", ids.GZIP_PACKED) + tl.pack_bytes(gzip.compress(inner))


def test_gzip_packed_is_unpacked_transparently() -> None:
    inner = tl.mtproto.Pong(msg_id=4, ping_id=5)
    assert tl.loads(_gz(inner.to_bytes())) == inner
    assert tl.loads(tl.gzip_pack(inner)) == inner
    assert tl.loads(tl.mtproto.GzipPacked.pack(inner).to_bytes()) == inner
    assert tl.Reader(_gz(tl.pack_bool(True))).read_bool() is True
    # inside an Object field
    res = tl.mtproto.RpcResult(req_msg_id=1, result=tl.Raw(_gz(inner.to_bytes())))
    assert tl.loads(res.to_bytes()) == tl.mtproto.RpcResult(req_msg_id=1, result=inner)


def test_gzip_errors() -> None:
    with pytest.raises(TLDecodeError, match="gzip"):
        tl.loads(struct.pack("<I", ids.GZIP_PACKED) + tl.pack_bytes(b"not gzip at all"))
    truncated = gzip.compress(b"x" * 1000)[:-12]
    with pytest.raises(TLDecodeError, match="gzip"):
        tl.loads(struct.pack("<I", ids.GZIP_PACKED) + tl.pack_bytes(truncated))
    nested = _gz(_gz(_gz(_gz(_gz(tl.pack_bool(True))))))
    with pytest.raises(TLDecodeError, match="nested"):
        tl.loads(nested)


def test_gzip_bomb_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_binary, "MAX_GZIP_UNPACKED", 1000)
    with pytest.raises(TLDecodeError, match="more than"):
        tl.loads(_gz(tl.pack_bytes(b"\x00" * 5000)))


# --------------------------------------------------------------------------- Raw


def test_raw_writes_verbatim() -> None:
    ping = tl.mtproto.Ping(ping_id=9).to_bytes()
    raw = tl.Raw(ping)
    assert raw.to_bytes() == bytes(raw) == ping
    assert raw.constructor_id == ids.PING
    assert "ping" in repr(raw)
    assert raw == tl.Raw(bytearray(ping))
    wrapped = tl.api.InvokeWithLayer(layer=228, query=raw)
    assert wrapped.to_bytes() == struct.pack("<Ii", ids.INVOKE_WITH_LAYER, 228) + ping
    assert tl.dumps(wrapped) == wrapped.to_bytes()


def test_vector_long_expect_and_rest_for_the_session_layer():
    from dcpool.tl import ids

    data = (tl.pack_uint(ids.MSGS_ACK) + tl.pack_uint(ids.VECTOR) + tl.pack_int(2)
            + tl.pack_long(-1) + tl.pack_long(2**62) + b"tail")
    r = tl.Reader(data)
    r.expect(ids.MSGS_ACK)
    assert r.read_vector_long() == [-1, 2**62]
    rest = r.rest()
    assert isinstance(rest, memoryview) and bytes(rest) == b"tail" and r.remaining == 0
    bare = tl.Reader(tl.pack_int(1) + tl.pack_long(7))
    assert bare.read_vector_long(boxed=False) == [7]
    with pytest.raises(TLDecodeError):
        tl.Reader(tl.pack_uint(ids.VECTOR) + tl.pack_int(3) + tl.pack_long(1)).read_vector_long()
    with pytest.raises(TLDecodeError):
        tl.Reader(tl.pack_uint(ids.PING)).expect(ids.PONG)
