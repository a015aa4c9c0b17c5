"""AuthKey (spec §4.1) and the unencrypted message envelope (spec §3.1) used by the handshake."""

from __future__ import annotations

import copy
import pickle
import struct

import pytest

from dcpool.errors import LocalProtocolError, RemoteProtocolError, TLDecodeError
from dcpool.mtproto import AuthKey
from dcpool.mtproto.plain import (
    PlainMessage,
    is_plain,
    next_plain_msg_id,
    pack_plain,
    unpack_plain,
)

# §19 V3
V3_AUTH_KEY = bytes.fromhex(
    "ACA2547BAA3B4B3E6AD9129ADEE796042FC4ACAAABA40DCE7A1196640595829E2BA85C5E68E5D2B7B713B28720CCD0E6"
    "5DA3B80CD8A9282BDE895755B924F4CBBCED119DEE057D3066D7095C25771A53D9AD6EC3464EE0E7FE1A4D9851F17B6C"
    "C7D6E636E0BDEA7D66153CF37005835A528E65673C1F5ADAA27465964BA89AA6FD045108B25B1DC9AB2D979864858C9E"
    "ACBFA4A399CDBF2154D2CC6743C5CAA40683343D80A36C7F1289DC5AC5EE585DEA1E1CD296444EA6CD8F6C3564B2D355"
    "B310A3C02608EEA5EC36D38E941BF811489AB7A24C069E44FF54714CB4A45EEE2F310FDDC0A1B08BD3DFF8801E27C850"
    "8EFD7AD51EF3C13EF1D9A02EE4601741"
)


# --------------------------------------------------------------------------- AuthKey


def test_auth_key_v3_derived_values():
    key = AuthKey.from_bytes(V3_AUTH_KEY)
    assert key.key == V3_AUTH_KEY
    assert key.key_id == 5654532459904850021 == 0x4E78EF50338B5865
    assert key.key_id_bytes == bytes.fromhex("65588b3350ef784e")
    assert key.aux_hash == bytes.fromhex("20b5c361a4f5a3d0")


def test_auth_key_negative_key_id_is_signed():
    # find a key whose SHA1[12:20] has the top bit set: key_id must come out negative
    for i in range(64):
        key = AuthKey.from_bytes(bytes([i]) * 256)
        if key.key_id < 0:
            assert struct.unpack("<q", key.key_id_bytes)[0] == key.key_id
            break
    else:  # pragma: no cover
        pytest.fail("no negative key id among 64 keys")


def test_auth_key_repr_and_str_never_show_key_material():
    key = AuthKey.from_bytes(V3_AUTH_KEY)
    for text in (repr(key), str(key), f"{key}", repr([key]), repr({"k": key})):
        assert "5654532459904850021" in text
        assert V3_AUTH_KEY.hex() not in text.lower()
        assert V3_AUTH_KEY[:16].hex() not in text.lower()
        assert repr(V3_AUTH_KEY)[:30] not in text
        assert key.aux_hash.hex() not in text.lower()
        assert repr(key.aux_hash) not in text


def test_auth_key_equality_hash_copy_pickle():
    a = AuthKey.from_bytes(V3_AUTH_KEY)
    b = AuthKey(V3_AUTH_KEY)
    assert a == b and hash(a) == hash(b)
    assert copy.deepcopy(a) == a
    assert pickle.loads(pickle.dumps(a)) == a
    assert AuthKey.from_bytes(bytearray(V3_AUTH_KEY)) == a
    assert a != AuthKey.from_bytes(bytes(256))


def test_auth_key_explicit_fields_must_match():
    a = AuthKey.from_bytes(V3_AUTH_KEY)
    assert AuthKey(key=a.key, key_id=a.key_id, aux_hash=a.aux_hash) == a
    with pytest.raises(LocalProtocolError):
        AuthKey(key=a.key, key_id=a.key_id + 1, aux_hash=a.aux_hash)
    with pytest.raises(LocalProtocolError):
        AuthKey(key=a.key, key_id=a.key_id, aux_hash=bytes(8))


@pytest.mark.parametrize("size", [0, 255, 257, 512])
def test_auth_key_must_be_256_bytes(size):
    with pytest.raises(LocalProtocolError) as info:
        AuthKey.from_bytes(b"\x42" * size)
    assert "4242" not in str(info.value)


def test_auth_key_is_frozen():
    key = AuthKey.from_bytes(V3_AUTH_KEY)
    with pytest.raises(AttributeError):
        key.key = bytes(256)  # type: ignore[misc]


# --------------------------------------------------------------------------- plain messages

V3_REQ_PQ_MULTI = bytes.fromhex(
    "0000000000000000D4720600503DC56514000000F18E7EBE406709F612FADFBEC3F0289D0AA67EEF"
)


def test_plain_v3_req_pq_multi_round_trip():
    message = unpack_plain(V3_REQ_PQ_MULTI)
    assert message == PlainMessage(
        0x65C53D50000672D4, bytes.fromhex("F18E7EBE406709F612FADFBEC3F0289D0AA67EEF")
    )
    assert pack_plain(message.msg_id, message.body) == V3_REQ_PQ_MULTI
    assert is_plain(V3_REQ_PQ_MULTI)


def test_plain_trailing_transport_padding_is_dropped():
    message = unpack_plain(V3_REQ_PQ_MULTI + b"\x99" * 7)
    assert message.body == V3_REQ_PQ_MULTI[20:]


@pytest.mark.parametrize("cut", [0, 4, 8, 19])
def test_plain_truncated_header(cut):
    with pytest.raises(TLDecodeError):
        unpack_plain(V3_REQ_PQ_MULTI[:cut])


def test_plain_four_byte_payload_mentions_transport_error():
    with pytest.raises(TLDecodeError, match="transport error"):
        unpack_plain(struct.pack("<i", -404))


def test_plain_length_past_the_end():
    with pytest.raises(TLDecodeError):
        unpack_plain(V3_REQ_PQ_MULTI[:-1])
    bad = V3_REQ_PQ_MULTI[:16] + struct.pack("<i", -1) + V3_REQ_PQ_MULTI[20:]
    with pytest.raises(TLDecodeError):
        unpack_plain(bad)


def test_plain_nonzero_auth_key_id():
    payload = b"\x01" + V3_REQ_PQ_MULTI[1:]
    assert not is_plain(payload)
    with pytest.raises(RemoteProtocolError):
        unpack_plain(payload)


def test_plain_msg_ids_parity_and_monotonic():
    last = 0
    for now in (1000.0, 1000.0, 1000.0, 999.0, 1000.5):
        msg_id = next_plain_msg_id(now, last, server=False)
        assert msg_id % 4 == 0 and msg_id > last
        last = msg_id
    last = 0
    for now in (1000.0, 1000.0, 998.0):
        msg_id = next_plain_msg_id(now, last, server=True)
        assert msg_id % 4 == 1 and msg_id > last
        last = msg_id
    assert next_plain_msg_id(1707425104.5, 0, server=False) >> 32 == 1707425104
