"""Encrypted message envelope (spec §3.2, §4.2, §4.5) and msg_id helpers (§3.3)."""

from __future__ import annotations

import gzip
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcpool import errors
from dcpool.mtproto import envelope
from dcpool.mtproto.authkey import AuthKey
from dcpool.mtproto.msgid import (
    ClientMsgIdGenerator,
    ReplayWindow,
    ServerMsgIdGenerator,
    check_window,
    msg_id_time,
    time_to_msg_id,
)
from dcpool.tl import ids

V10_KEY = AuthKey(bytes(range(256)))
V10_OUT = bytes.fromhex(
    "32D1586EA457DFC8A81729D46DB54019A2BFD7F744F9B96C4F716CFDC4477DB2A2C15F6DDB85235FB9552F1D8407C6AA"
    "EA00CC844C5A1BF6AC44B79B5EDC2A23868B3D6073A590992C0F2975243D563EA180D218EE757C9A"
)
V11_KEY = AuthKey(
    bytes.fromhex(
        "5D2E7D65F49EC28BD029A88761EA27B8A4C79F12226525443E7D7C596EF3303530DB2107E89AA997C7A0164AB694187A"
        "DEFF156BD6EF7118A1962347753C0E7E89A0354B8EC364F9997E71BC6923FB86E8E43491E010606A6CE845E2FA019409"
        "77EF0AA32ADF5A97DBF6D428EC0434D717A2D3AD19622CC05887642113C7965FFB862A3E3CCB0AB95ADDDA57F89245DB"
        "D76B492348F8E94BD5A7C0E0B84808523CFD1EA80B32FE9AD198BC2E103FCEB7D52492ECC0273A28674BC923EEE59265"
        "AB17A002DF1F4AA2C59B819A5E5E1D105EC117336F5C76C6B187037D4B4270CEE9CC21071D97E9BCA220C6D7B01B998C"
        "F2E5CDB9A50ECDA1852A36E635690C8E"
    )
)
V11_IN = bytes.fromhex(
    "7A7183C2C10E4F4DF945FA9A9ABD35E7C3840B61F045304F39674C19C0E209784F50F6226A073529D675C92CBF0BFA8C"
    "99A79B3F39C72A5D9A026D431AB7407CA04ECC55187D6C45F17871524EDD90CEA02ED728E14D7CB18AEA2A636158F094"
    "59A9437710D894C79F368C4E8164B7647EA98612AEFE942C5D92121ACB8DB02DCCCEB66D0F8720AC12A06DB0582BFD95"
    "5BE34F365118E3BAB8CD080CE6B45B28EAC56DCD2A29374E"
)
V11_PLAIN = bytes.fromhex(
    "FC826A02248B28FD60F2C4822443AD6801F0C1C2918B305E0200000058000000DCF8F1730200000001A8C1C2918B305E"
    "010000001C0000000809C29EC4FD33AD918B305E18A88EA607EE5816FC826A02248B28FD01CCC1C2918B305E02000000"
    "14000000C5737734C4FD33AD918B305E6408300000000000FCE66704A3CD8EE9D0AE6FAB672C60C04A3F1FD4490E51F6"
)

KEY = AuthKey(os.urandom(256))


def zeros(n: int) -> bytes:
    return bytes(n)


# --------------------------------------------------------------------------- known answers


def test_v10_encrypt_client_to_server():
    data = b"Hello, world! This data should remain secure!"
    assert envelope.encrypt(V10_KEY, data, x=0, rng=zeros) == V10_OUT


def test_v11_decrypt_server_to_client():
    plain = envelope.decrypt(V11_KEY, V11_IN, x=8)
    # decrypt strips the padding: header (32) + message_data (0x58 bytes)
    assert plain == V11_PLAIN[: 32 + 0x58]
    msg = envelope.parse_plaintext(plain)
    assert msg.seq_no == 2 and msg.msg_id % 4 == 1
    items = envelope.unpack_container(msg.body)
    assert [i.seq_no for i in items] == [1, 2]
    assert all(i.msg_id < msg.msg_id for i in items)
    assert envelope.constructor_of(items[0].body) == ids.NEW_SESSION_CREATED
    assert envelope.constructor_of(items[1].body) == ids.PONG


def test_v11_wrong_direction_is_msg_key_mismatch():
    with pytest.raises(errors.MsgKeyMismatch):
        envelope.decrypt(V11_KEY, V11_IN, x=0)


# --------------------------------------------------------------------------- round trips


@settings(max_examples=40, deadline=None)
@given(
    body=st.binary(max_size=600).map(lambda b: b + bytes(-len(b) % 4)),
    x=st.sampled_from([0, 8]),
    extra=st.integers(0, 60),
)
def test_round_trip_any_padding(body, x, extra):
    plain = envelope.pack_plaintext(1, 2, 4, 1, body)
    pad = envelope.minimal_padding(len(plain)) + 16 * extra
    data = envelope.encrypt(KEY, plain, x=x, rng=os.urandom, padding=pad)
    assert (len(data) - 24) % 16 == 0
    msg = envelope.decrypt_message(KEY, data, x=x)
    assert msg == envelope.InnerMessage(1, 2, 4, 1, body)


def test_minimal_padding_range():
    for n in range(0, 64):
        p = envelope.minimal_padding(n)
        assert 12 <= p <= 27 and (n + p) % 16 == 0


def test_encrypt_rejects_illegal_padding():
    with pytest.raises(errors.LocalProtocolError):
        envelope.encrypt(KEY, bytes(32), x=0, rng=os.urandom, padding=0)
    with pytest.raises(errors.LocalProtocolError):
        envelope.encrypt(KEY, bytes(32), x=0, rng=os.urandom, padding=1040)
    with pytest.raises(errors.LocalProtocolError):
        envelope.encrypt(KEY, bytes(32), x=0, rng=os.urandom, padding=13)


# --------------------------------------------------------------------------- §4.5 checks


def _padded(body_len_field: int, body: bytes, pad: int) -> bytes:
    header = struct.pack("<qqqii", 1, 2, 5, 1, body_len_field)
    return header + body + os.urandom(pad)


def test_auth_key_id_mismatch():
    data = envelope.encrypt(KEY, envelope.pack_plaintext(1, 2, 5, 1, b"abcd"), x=8, rng=os.urandom)
    other = AuthKey(os.urandom(256))
    with pytest.raises(errors.AuthKeyIdMismatch):
        envelope.decrypt(other, data, x=8)


def test_msg_key_mismatch_on_any_flipped_bit():
    data = bytearray(envelope.encrypt(KEY, envelope.pack_plaintext(1, 2, 5, 1, b"abcd"), x=8, rng=os.urandom))
    for pos in (8, 23, 24, len(data) - 1):
        bad = bytearray(data)
        bad[pos] ^= 1
        with pytest.raises(errors.MsgKeyMismatch):
            envelope.decrypt(KEY, bytes(bad), x=8)


@pytest.mark.parametrize("n", [0, 7, 8, 23, 24, 40, 24 + 32, 24 + 49, 24 + 63])
def test_short_or_unaligned_lengths(n):
    data = envelope.encrypt(KEY, envelope.pack_plaintext(1, 2, 5, 1, bytes(40)), x=8, rng=os.urandom)
    assert len(data) > n
    with pytest.raises((errors.BadMessageLength, errors.AuthKeyIdMismatch)) as info:
        envelope.decrypt(KEY, data[:n], x=8)
    if n >= 8:
        assert isinstance(info.value, errors.BadMessageLength)


def test_length_not_multiple_of_16():
    data = envelope.encrypt(KEY, envelope.pack_plaintext(1, 2, 5, 1, bytes(40)), x=8, rng=os.urandom)
    with pytest.raises(errors.BadMessageLength):
        envelope.decrypt(KEY, data + b"\x00" * 4, x=8)


def test_too_little_padding():
    plain = _padded(8, bytes(8), 8)  # 32 + 8 + 8 = 48, padding 8 < 12
    with pytest.raises(errors.BadPadding):
        envelope.decrypt(KEY, envelope.encrypt_padded(KEY, plain, x=8), x=8)


def test_too_much_padding():
    plain = _padded(4, bytes(4), 1036)  # 32 + 4 + 1036 = 1072 = 67 * 16
    with pytest.raises(errors.BadPadding):
        envelope.decrypt(KEY, envelope.encrypt_padded(KEY, plain, x=8), x=8)


def test_max_padding_is_accepted():
    plain = _padded(4, b"abcd", 1020) + os.urandom(0)
    assert (len(plain)) % 16 == 0
    msg = envelope.decrypt_message(KEY, envelope.encrypt_padded(KEY, plain, x=8), x=8)
    assert msg.body == b"abcd"


@pytest.mark.parametrize("length", [1000, 44, -4, 6])
def test_bad_message_data_length(length):
    plain = _padded(length, bytes(16), 16)  # 64 bytes; room for 32 bytes of data
    with pytest.raises(errors.BadMessageLength):
        envelope.decrypt(KEY, envelope.encrypt_padded(KEY, plain, x=8), x=8)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_dcpool_errors(data):
    try:
        envelope.decrypt(KEY, KEY.key_id_bytes + data, x=8)
    except errors.MessageSecurityError:
        pass
    try:
        envelope.decrypt(KEY, data, x=8)
    except errors.MessageSecurityError:
        pass


# --------------------------------------------------------------------------- containers, gzip


def test_container_round_trip_and_errors():
    items = [(4, 1, b"\x01\x02\x03\x04"), (8, 2, bytes(8))]
    body = envelope.pack_container(items)
    got = envelope.unpack_container(body)
    assert [(i.msg_id, i.seq_no, i.body) for i in got] == items
    with pytest.raises(errors.TLDecodeError):
        envelope.unpack_container(body[:-4])
    with pytest.raises(errors.TLDecodeError):
        envelope.unpack_container(body + b"\x00" * 4)
    nested = envelope.pack_container([(12, 0, body)])
    with pytest.raises(errors.TLDecodeError):
        envelope.unpack_container(nested)
    with pytest.raises(errors.TLDecodeError):
        envelope.unpack_container(struct.pack("<Ii", ids.MSG_CONTAINER, 2000))


def test_gzip_round_trip_and_python_gzip_compat():
    obj = struct.pack("<I", 0x12345678) + b"x" * 2000
    packed = envelope.gzip_pack(obj)
    assert envelope.constructor_of(packed) == ids.GZIP_PACKED
    assert envelope.gzip_unpack(packed) == obj
    # a stream made by Python's gzip module (as servers/clients produce) is accepted
    other = struct.pack("<I", ids.GZIP_PACKED) + envelope.pack_bytes(gzip.compress(obj))
    assert envelope.maybe_gunzip(other) == obj
    assert envelope.maybe_gunzip(obj) == obj
    with pytest.raises(errors.TLDecodeError):
        envelope.gzip_unpack(struct.pack("<I", ids.GZIP_PACKED) + envelope.pack_bytes(b"not gzip"))
    with pytest.raises(errors.TLDecodeError):
        envelope.gzip_unpack(packed, limit=100)


def test_tl_helpers_match_tl_runtime():
    from dcpool import tl

    assert envelope.pack_bytes(b"abc") == tl.pack_bytes(b"abc")
    assert envelope.pack_bytes(b"z" * 300) == tl.pack_bytes(b"z" * 300)
    ack = struct.pack("<I", ids.MSGS_ACK) + envelope.pack_vector_long([1, -2, 3])
    assert tl.loads(ack).msg_ids == [1, -2, 3]
    r = envelope.Reader(envelope.pack_bytes(b"q" * 254) + envelope.pack_bytes(b"w"))
    assert r.read_bytes() == b"q" * 254 and r.read_bytes() == b"w" and r.remaining == 0


# --------------------------------------------------------------------------- msg ids


def test_client_msg_ids_monotonic_and_aligned():
    gen = ClientMsgIdGenerator()
    now = 1_700_000_000.25
    ids_ = [gen.next(now) for _ in range(100)]
    assert all(i % 4 == 0 for i in ids_)
    assert ids_ == sorted(set(ids_))
    assert abs(msg_id_time(ids_[0]) - now) < 1e-6
    assert abs(msg_id_time(gen.next(now, 100.0)) - (now + 100)) < 1e-6
    later = gen.next(now - 50)  # clock went back: still increasing
    assert later > ids_[-1]


def test_server_msg_ids_parity_and_shared_monotonicity():
    gen = ServerMsgIdGenerator()
    now = 1_700_000_000.5
    out = [gen.next(now, answer=bool(i % 3)) for i in range(200)]
    assert out == sorted(set(out))
    for i, m in enumerate(out):
        assert m % 4 == (1 if i % 3 else 3)


def test_window_and_replay():
    now = 1_700_000_000.0
    assert check_window(time_to_msg_id(now), now) == 0
    assert check_window(time_to_msg_id(now - 301), now) == 16
    assert check_window(time_to_msg_id(now + 31), now) == 17
    w = ReplayWindow(3)
    for m in (10, 20, 30):
        assert not w.is_replay(m)
        w.add(m)
    assert w.is_replay(20)
    assert w.is_replay(5)  # below the minimum of a full window
    w.add(40)
    assert w.is_replay(10)  # forgotten, but below the minimum (20) of the full window
    assert not w.is_replay(50)
