"""Known-answer tests: spec §19 V13 (obfuscated2) and V14 (framing)."""

from __future__ import annotations

import pytest

from dcpool.transport import ClientTransport, Frame, QuickAck, ServerTransport, TransportKind
from dcpool.transport.codecs import encode_abridged, encode_full, encode_intermediate
from dcpool.transport.obfuscation import client_init, normalize_secret, server_init

from .helpers import fixed_rng

RANDOM = bytes.fromhex(
    "f5768f50b731260a46be1027c2eeaa39350624f0b6da59eba56c81fe4510c2e0"
    "b61d3dd323ee02388633e3837a0c1c24fa6f29ccd724be6f416ff7b026f6cce6"
)
MTPROXY_SECRET = bytes.fromhex("8a96ef6e42a18c21837580cd1c91c5a8")


# ---------------------------------------------------------------------------- V14


def test_v14_full_abc_seq1():
    assert encode_full(b"abc", 1) == bytes.fromhex("0f000000" "01000000" "616263" "4ed66d94")


@pytest.mark.parametrize(("size", "prefix"), [(4, "01"), (124, "1f"), (1024, "7f000100")])
def test_v14_abridged_prefix(size, prefix):
    assert encode_abridged(b"\0" * size) == bytes.fromhex(prefix)
    client = ClientTransport(TransportKind.ABRIDGED)
    client.send_frame(b"\0" * size)
    assert client.data_to_send() == b"\xef" + bytes.fromhex(prefix) + b"\0" * size


def test_v14_intermediate_prefix():
    assert encode_intermediate(300) == bytes.fromhex("2c010000")
    client = ClientTransport(TransportKind.INTERMEDIATE)
    client.send_frame(b"\1" * 300)
    assert client.data_to_send() == b"\xee" * 4 + bytes.fromhex("2c010000") + b"\1" * 300


def test_v14_full_seq_counts_from_zero_through_public_api():
    client = ClientTransport(TransportKind.FULL)
    client.send_frame(b"abcd")
    client.send_frame(b"abcd")
    wire = client.data_to_send()
    first = bytes.fromhex("10000000" "00000000") + b"abcd"
    assert wire[:12] == first and wire[12:16] != b""
    assert wire[16:24] == bytes.fromhex("10000000" "01000000")
    assert len(wire) == 32


# ---------------------------------------------------------------------------- V13 MTProxy


def test_v13_mtproxy_header_and_streams():
    header, obf = client_init(TransportKind.PADDED_INTERMEDIATE, fixed_rng(RANDOM), MTPROXY_SECRET, dc_id=2)
    assert header[:56] == RANDOM[:56]
    assert header[56:64] == bytes.fromhex("bea2dde16dc59dd2")
    assert obf.encrypt(b"abcd") == bytes.fromhex("ca7a8226")
    assert obf.decrypt(b"abcd") == bytes.fromhex("8f711982")


def test_v13_mtproxy_through_client_transport_with_dd_secret():
    client = ClientTransport(
        TransportKind.PADDED_INTERMEDIATE,
        obfuscated=True,
        secret=b"\xdd" + MTPROXY_SECRET,
        dc_id=2,
        rng=fixed_rng(RANDOM),
    )
    header = client.data_to_send()
    assert header == RANDOM[:56] + bytes.fromhex("bea2dde16dc59dd2")
    # The receive stream maps wire "abcd" to 8f711982: LE 0x8219718f has bit 31 set, which a
    # padded-intermediate client reads as a quick-ack token (§7.6, as tdlib does).
    assert client.receive_data(b"abcd") == [QuickAck(0x8219718F)]


def test_v13_mtproxy_server_side():
    header = RANDOM[:56] + bytes.fromhex("bea2dde16dc59dd2")
    init = server_init(header, MTPROXY_SECRET)
    assert init is not None
    assert init.kind is TransportKind.PADDED_INTERMEDIATE and init.dc_id == 2
    # The server's receive stream continues at 64, where the client encrypted "abcd" → ca7a8226.
    assert init.obfuscator.decrypt(bytes.fromhex("ca7a8226")) == b"abcd"
    # The server's send stream is the client's receive stream: position 0 gives abcd ^ ks.
    assert init.obfuscator.encrypt(b"abcd") == bytes.fromhex("8f711982")
    # Wrong / missing secret: the tag does not decrypt.
    assert server_init(header, None) is None
    server = ServerTransport(secrets=[b"\x00" * 16, "dd" + MTPROXY_SECRET.hex()])
    assert server.receive_data(header) == []
    assert server.kind is TransportKind.PADDED_INTERMEDIATE
    assert server.obfuscated and server.secret == MTPROXY_SECRET and server.header_dc_id == 2


def test_v13_second_gotd_vector():
    secret, _ = normalize_secret(b"\xaa" * 16)
    header, _ = client_init(TransportKind.PADDED_INTERMEDIATE, fixed_rng(b"a" * 64), secret, dc_id=2)
    assert header[56:64] == bytes.fromhex("ab4162424f66fddc")


# ---------------------------------------------------------------------------- V13 direct


@pytest.mark.parametrize(
    ("kind", "tail"),
    [
        (TransportKind.ABRIDGED, "26453920f70309dc"),
        (TransportKind.INTERMEDIATE, "27443821f70309dc"),
        (TransportKind.PADDED_INTERMEDIATE, "14770b12f70309dc"),
    ],
)
def test_v13_direct(kind, tail):
    header, obf = client_init(kind, fixed_rng(RANDOM))
    assert header == RANDOM[:56] + bytes.fromhex(tail)
    assert obf.encrypt(b"abcd") == bytes.fromhex("b4e18c5f")
    assert obf.decrypt(b"abcd") == bytes.fromhex("5936a3fe")
    init = server_init(header)
    assert init is not None and init.kind is kind
    assert init.dc_id == int.from_bytes(RANDOM[60:62], "little", signed=True)  # random, not written


def test_v13_direct_media_dc_minus_2():
    header, _ = client_init(TransportKind.ABRIDGED, fixed_rng(RANDOM), dc_id=-2)
    assert header[56:64] == bytes.fromhex("264539202f0a09dc")
    init = server_init(header)
    assert init is not None and init.dc_id == -2


def test_v13_direct_end_to_end_client_send_stream_continues_at_64():
    client = ClientTransport(TransportKind.ABRIDGED, obfuscated=True, rng=fixed_rng(RANDOM))
    # Abridged frame whose plain wire bytes start with "abcd": length byte 0x61 = 97 words.
    payload = b"bcd" + b"\0" * (97 * 4 - 3)
    client.send_frame(payload)
    wire = client.data_to_send()
    assert wire[:64] == RANDOM[:56] + bytes.fromhex("26453920f70309dc")
    assert wire[64:68] == bytes.fromhex("b4e18c5f")
    server = ServerTransport()
    assert server.receive_data(wire) == [Frame(payload)]
    assert server.kind is TransportKind.ABRIDGED and server.obfuscated


def test_v13_direct_end_to_end_client_receive_stream_starts_at_0():
    client = ClientTransport(TransportKind.ABRIDGED, obfuscated=True, rng=fixed_rng(RANDOM))
    # Wire "abcd" decrypts to 59 36 a3 fe: abridged length 0x59 = 89 words = 356 bytes.
    assert client.receive_data(b"abcd") == []
    events = client.receive_data(b"\0" * 353)
    assert len(events) == 1 and isinstance(events[0], Frame)
    assert len(events[0].payload) == 356 and events[0].payload[:3] == bytes.fromhex("36a3fe")
