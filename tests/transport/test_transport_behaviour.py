"""Round trips, detection, quick acks, transport errors and every FramingError path."""

from __future__ import annotations

import zlib

import pytest

from dcpool.errors import FramingError, LocalProtocolError
from dcpool.transport import (
    ClientTransport,
    Frame,
    QuickAck,
    ServerTransport,
    TransportErrorFrame,
    TransportKind,
)
from dcpool.transport.codecs import encode_full

from .helpers import CONFIGS, DD_SECRET, SECRET, config_id, det_rng, make_pair, payloads

SIZES = [4, 8, 12, 500, 504, 508, 1024, 4096, 64]


@pytest.mark.parametrize("cfg", CONFIGS, ids=config_id)
def test_round_trip_both_directions(cfg):
    client, server = make_pair(cfg)
    up = payloads(1, SIZES)
    down = payloads(2, SIZES)
    for p in up:
        client.send_frame(p)
    got = server.receive_data(client.data_to_send())
    # 4-byte payloads from a client are ordinary frames to the server.
    assert got == [Frame(p) for p in up]
    assert server.kind is cfg[0] and server.obfuscated is cfg[1]
    if cfg[1]:
        assert server.header_dc_id == 2
    for p in down:
        server.send_frame(p)
    events = client.receive_data(server.data_to_send())
    # Any 4-byte payload from the server is a transport error (§7.7).
    expected = [
        TransportErrorFrame(int.from_bytes(p, "little", signed=True)) if len(p) == 4 else Frame(p)
        for p in down
    ]
    assert events == expected
    assert client.data_to_send() == b"" and server.data_to_send() == b""


@pytest.mark.parametrize("cfg", CONFIGS, ids=config_id)
@pytest.mark.parametrize("code", [-404, -429, -444, -403])
def test_server_transport_error(cfg, code):
    client, server = make_pair(cfg)
    client.send_frame(b"\0" * 40)
    assert len(server.receive_data(client.data_to_send())) == 1
    server.send_transport_error(code)
    assert client.receive_data(server.data_to_send()) == [TransportErrorFrame(code)]


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c[0] is not TransportKind.FULL], ids=config_id)
def test_quick_ack_round_trip(cfg):
    client, server = make_pair(cfg)
    client.send_frame(b"\1" * 16, quick_ack=True)
    client.send_frame(b"\2" * 600, quick_ack=True)  # abridged long form: first byte 0xff
    client.send_frame(b"\3" * 16)
    assert server.receive_data(client.data_to_send()) == [
        Frame(b"\1" * 16, True),
        Frame(b"\2" * 600, True),
        Frame(b"\3" * 16, False),
    ]
    server.send_quick_ack(0x12345678)  # high bit forced on: token | 0x80000000
    server.send_frame(b"\4" * 8)
    server.send_quick_ack(0xFEDCBA98)
    assert client.receive_data(server.data_to_send()) == [
        QuickAck(0x92345678),
        Frame(b"\4" * 8),
        QuickAck(0xFEDCBA98),
    ]


def test_quick_ack_wire_formats():
    c = ClientTransport(TransportKind.ABRIDGED)
    c.send_frame(b"\0" * 8, quick_ack=True)
    assert c.data_to_send() == b"\xef\x82" + b"\0" * 8
    c = ClientTransport(TransportKind.INTERMEDIATE)
    c.send_frame(b"\0" * 8, quick_ack=True)
    assert c.data_to_send() == b"\xee" * 4 + bytes.fromhex("08000080") + b"\0" * 8
    # Client-side parsing of the three server forms (§7.6).
    assert ClientTransport(TransportKind.ABRIDGED).receive_data(bytes.fromhex("81020304")) == [
        QuickAck(0x81020304)
    ]
    assert ClientTransport(TransportKind.INTERMEDIATE).receive_data(bytes.fromhex("04030281")) == [
        QuickAck(0x81020304)
    ]
    framed = bytes.fromhex("0b000000" "ffffffff" "04030281" "aabbcc")  # 3 padding bytes
    assert ClientTransport(TransportKind.PADDED_INTERMEDIATE).receive_data(framed) == [
        QuickAck(0x81020304)
    ]
    with pytest.raises(LocalProtocolError):
        ClientTransport(TransportKind.FULL).send_frame(b"\0" * 8, quick_ack=True)


def test_full_unframed_error_words():
    # Telethon #4042: -429 sent as bare words in the full transport.
    words = (-429).to_bytes(4, "little", signed=True) * 3
    assert ClientTransport(TransportKind.FULL).receive_data(words) == [TransportErrorFrame(-429)] * 3


def test_padded_padding_is_0_to_3_and_0_to_15_accepted():
    client = ClientTransport(TransportKind.PADDED_INTERMEDIATE, rng=det_rng(5))
    client.data_to_send()
    pads = set()
    for _ in range(64):
        client.send_frame(b"\7" * 8)
        wire = client.data_to_send()
        total = int.from_bytes(wire[:4], "little")
        assert total == len(wire) - 4 and wire[4:12] == b"\7" * 8
        pads.add(total - 8)
    assert pads == {0, 1, 2, 3}
    for pad in range(16):
        server = ServerTransport()
        stream = b"\xdd" * 4 + (12 + pad).to_bytes(4, "little") + b"\5" * 12 + b"\xaa" * pad
        # Padding beyond 3 bytes stays in the payload as whole words (documented; §7.3).
        keep = 12 + pad - pad % 4
        assert server.receive_data(stream) == [Frame((b"\5" * 12 + b"\xaa" * pad)[:keep])]


def test_client_initial_bytes():
    assert ClientTransport(TransportKind.ABRIDGED).data_to_send() == b"\xef"
    assert ClientTransport(TransportKind.INTERMEDIATE).data_to_send() == b"\xee" * 4
    assert ClientTransport(TransportKind.PADDED_INTERMEDIATE).data_to_send() == b"\xdd" * 4
    assert ClientTransport(TransportKind.FULL).data_to_send() == b""
    obf = ClientTransport(TransportKind.ABRIDGED, obfuscated=True, rng=det_rng(3))
    assert len(obf.data_to_send()) == 64


def test_forbidden_headers_are_regenerated():
    from dcpool.transport.obfuscation import client_init, is_valid_init

    bad = [
        b"\xef" + b"\1" * 63,
        b"HEAD" + b"\1" * 60,
        b"POST" + b"\1" * 60,
        b"GET " + b"\1" * 60,
        b"OPTI" + b"\1" * 60,
        b"\x16\x03\x01\x02" + b"\1" * 60,
        b"\xdd" * 4 + b"\1" * 60,
        b"\xee" * 4 + b"\1" * 60,
        b"\1" * 4 + b"\0" * 4 + b"\1" * 56,
    ]
    good = b"\2" * 64
    seq = iter(bad + [good])
    for b in bad:
        assert not is_valid_init(b)
    header, _ = client_init(TransportKind.ABRIDGED, lambda n: next(seq))
    assert header[:56] == good[:56]
    with pytest.raises(LocalProtocolError):
        client_init(TransportKind.ABRIDGED, lambda n: bad[0])


# ---------------------------------------------------------------------------- detection


@pytest.mark.parametrize("verb", [b"POST", b"GET ", b"HEAD", b"OPTI"])
def test_http_rejected(verb):
    server = ServerTransport()
    with pytest.raises(FramingError, match="HTTP transport not supported"):
        server.receive_data(verb + b" /api HTTP/1.1\r\n")
    with pytest.raises(FramingError):  # the transport stays dead
        server.receive_data(b"x")


def test_detection_waits_for_enough_bytes():
    server = ServerTransport()
    assert server.receive_data(b"\xee\xee\xee") == [] and server.kind is None
    assert server.receive_data(b"\xee") == [] and server.kind is TransportKind.INTERMEDIATE
    server = ServerTransport()
    assert server.receive_data(b"\x10\0\0\0\0\0\0") == [] and server.kind is None
    assert server.receive_data(b"\0") == [] and server.kind is TransportKind.FULL
    server = ServerTransport()
    assert server.receive_data(b"\x01" * 63) == [] and server.kind is None


def test_obfuscated_bad_tag():
    server = ServerTransport()
    with pytest.raises(FramingError, match="protocol tag"):
        server.receive_data(b"\x01" * 64)


def test_obfuscated_wrong_secret_and_no_secret_server():
    client = ClientTransport(TransportKind.INTERMEDIATE, obfuscated=True, secret=SECRET, rng=det_rng(9))
    with pytest.raises(FramingError):
        ServerTransport(secrets=[None, b"\2" * 16]).receive_data(client.data_to_send())
    client = ClientTransport(TransportKind.INTERMEDIATE, obfuscated=True, rng=det_rng(9))
    with pytest.raises(FramingError):
        ServerTransport(secrets=[SECRET]).receive_data(client.data_to_send())


@pytest.mark.parametrize("first", [b"\xef", b"\xee" * 4, b"\xdd" * 4, b"\x10\0\0\0\0\0\0\0"])
def test_allow_plain_false(first):
    with pytest.raises(FramingError, match="not allowed"):
        ServerTransport(allow_plain=False).receive_data(first)


def test_server_send_before_detection_is_local_error():
    server = ServerTransport()
    with pytest.raises(LocalProtocolError):
        server.send_frame(b"\0" * 4)
    with pytest.raises(LocalProtocolError):
        server.send_transport_error(-404)


# ---------------------------------------------------------------------------- framing errors


def _server(kind: TransportKind) -> ServerTransport:
    s = ServerTransport(max_frame_size=1024)
    s.receive_data(ClientTransport(kind).data_to_send() or encode_full(b"\0" * 4, 0))
    return s


@pytest.mark.parametrize(
    ("kind", "data", "match"),
    [
        (TransportKind.ABRIDGED, b"\x00", "zero-length"),
        (TransportKind.ABRIDGED, b"\x7f\x01\x01\x00", "max_frame_size"),
        (TransportKind.INTERMEDIATE, b"\0\0\0\0", "zero-length"),
        (TransportKind.INTERMEDIATE, b"\x05\0\0\0", "multiple of 4"),
        (TransportKind.INTERMEDIATE, b"\x04\x04\0\0", "max_frame_size"),
        (TransportKind.PADDED_INTERMEDIATE, b"\0\0\0\0", "zero-length"),
        (TransportKind.PADDED_INTERMEDIATE, b"\x03\0\0\0", "no payload"),
        (TransportKind.PADDED_INTERMEDIATE, b"\x10\x04\0\0", "max_frame_size"),
        (TransportKind.FULL, b"\x0b\0\0\0", "shorter"),
        (TransportKind.FULL, b"\x0c\0\0\0", "zero-length"),
        (TransportKind.FULL, b"\x0f\0\0\0", "multiple of 4"),
        (TransportKind.FULL, b"\x10\x04\0\0", "max_frame_size"),
    ],
)
def test_bad_lengths(kind, data, match):
    server = _server(kind)
    with pytest.raises(FramingError, match=match):
        server.receive_data(data)


def test_full_crc_and_seq():
    server = ServerTransport()
    assert server.receive_data(encode_full(b"abcd", 0)) == [Frame(b"abcd")]
    bad = bytearray(encode_full(b"abcd", 1))
    bad[9] ^= 1
    with pytest.raises(FramingError, match="CRC32"):
        server.receive_data(bytes(bad))
    server = ServerTransport()
    server.receive_data(encode_full(b"abcd", 0))
    with pytest.raises(FramingError, match="out of order"):
        server.receive_data(encode_full(b"abcd", 2))
    client = ClientTransport(TransportKind.FULL)
    with pytest.raises(FramingError, match="out of order"):
        client.receive_data(encode_full(b"abcdabcd", 1))
    # The V14 vector itself has a 3-byte payload: valid CRC, but not a multiple of 4.
    with pytest.raises(FramingError, match="multiple of 4"):
        ClientTransport(TransportKind.FULL).receive_data(encode_full(b"abc", 0))
    assert zlib.crc32(b"") == 0  # sanity for the incremental crc helper


def test_send_validation():
    c = ClientTransport(TransportKind.INTERMEDIATE, max_frame_size=64)
    for bad in (b"", b"abc", b"\0" * 68):
        with pytest.raises(LocalProtocolError):
            c.send_frame(bad)
    with pytest.raises(LocalProtocolError):
        ClientTransport(TransportKind.ABRIDGED, secret=SECRET)  # secret without obfuscation
    with pytest.raises(LocalProtocolError):
        ClientTransport(TransportKind.ABRIDGED, obfuscated=True, secret=DD_SECRET)
    with pytest.raises(LocalProtocolError):
        ClientTransport(TransportKind.FULL, obfuscated=True)
    with pytest.raises(LocalProtocolError):
        ClientTransport(TransportKind.ABRIDGED, obfuscated=True, secret=b"\0" * 15)
    with pytest.raises(LocalProtocolError):
        ClientTransport(TransportKind.ABRIDGED, obfuscated=True, dc_id=40000)
    server = _server(TransportKind.ABRIDGED)
    with pytest.raises(LocalProtocolError):
        server.send_transport_error(404)


def test_hex_secret_accepted():
    c = ClientTransport(TransportKind.PADDED_INTERMEDIATE, obfuscated=True, secret="dd" + SECRET.hex(), rng=det_rng(1))
    s = ServerTransport(secrets=[SECRET])
    assert s.receive_data(c.data_to_send()) == []
    assert s.kind is TransportKind.PADDED_INTERMEDIATE and s.secret == SECRET
