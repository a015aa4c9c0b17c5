"""Chunking invariance and linear-time buffering.

Whatever way a valid stream is split into reads, the events must be the same as for one read.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcpool.transport import ClientTransport, Frame, ServerTransport, TransportKind

from .helpers import CONFIGS, config_id, det_rng, feed, make_pair, payloads

SMALL_SIZES = [4, 8, 508, 12]  # 508 = abridged long form (127 words)


def _streams(cfg, seed=0):
    """(client→server wire, server→client wire) and a factory for fresh receivers."""
    client, server = make_pair(cfg, seed)
    for p in payloads(seed, SMALL_SIZES):
        client.send_frame(p)
    if cfg[0] is not TransportKind.FULL:
        client.send_frame(b"\x09" * 16, quick_ack=True)
    up = client.data_to_send()
    expected_up = server.receive_data(up)
    for p in payloads(seed + 1, SMALL_SIZES):
        server.send_frame(p)
    server.send_transport_error(-404)
    if cfg[0] is not TransportKind.FULL:
        server.send_quick_ack(0x01020304)
    down = server.data_to_send()

    def new_server():
        return make_pair(cfg, seed)[1]

    def new_client():
        return make_pair(cfg, seed)[0]  # same rng seed → same keys as the original client

    expected_down = new_client().receive_data(down)
    assert len(expected_up) == len(SMALL_SIZES) + (cfg[0] is not TransportKind.FULL)
    assert len(expected_down) == len(SMALL_SIZES) + 1 + (cfg[0] is not TransportKind.FULL)
    return up, down, expected_up, expected_down, new_server, new_client


@pytest.mark.parametrize("cfg", CONFIGS, ids=config_id)
def test_every_split_point(cfg):
    up, down, exp_up, exp_down, new_server, new_client = _streams(cfg)
    for wire, exp, new in ((up, exp_up, new_server), (down, exp_down, new_client)):
        for i in range(len(wire) + 1):
            assert feed(new(), [wire[:i], wire[i:]]) == exp, i
        # one byte at a time
        assert feed(new(), [wire[i : i + 1] for i in range(len(wire))]) == exp


def test_every_pair_of_split_points_small_stream():
    # Exhaustive over all 3-chunk splittings of a small obfuscated stream and a small full one.
    for cfg in (CONFIGS[3], CONFIGS[8]):
        client, server = make_pair(cfg)
        client.send_frame(b"\1" * 8)
        client.send_frame(b"\2" * 4)
        wire = client.data_to_send()
        exp = make_pair(cfg)[1].receive_data(wire)
        assert exp == [Frame(b"\1" * 8), Frame(b"\2" * 4)]
        n = len(wire)
        for i in range(n + 1):
            for j in range(i, n + 1):
                assert feed(make_pair(cfg)[1], [wire[:i], wire[i:j], wire[j:]]) == exp


@st.composite
def cuts(draw, length):
    points = draw(st.lists(st.integers(0, length), max_size=12))
    return sorted(set(points))


@pytest.mark.parametrize("cfg", CONFIGS, ids=config_id)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_random_chunkings(cfg, data):
    up, down, exp_up, exp_down, new_server, new_client = _streams(cfg, seed=7)
    for wire, exp, new in ((up, exp_up, new_server), (down, exp_down, new_client)):
        points = data.draw(cuts(len(wire)))
        bounds = [0, *points, len(wire)]
        chunks = [wire[a:b] for a, b in zip(bounds, bounds[1:])]
        assert feed(new(), chunks) == exp


def _time_big_frame(kind: TransportKind, size: int, obfuscated: bool) -> float:
    client = ClientTransport(kind, obfuscated=obfuscated, rng=det_rng(1), max_frame_size=size)
    server = ServerTransport(max_frame_size=size)
    payload = bytes(range(256)) * (size // 256)
    client.send_frame(payload)
    wire = client.data_to_send()
    start = time.perf_counter()
    events = []
    for i in range(0, len(wire), 997):
        events.extend(server.receive_data(wire[i : i + 997]))
    elapsed = time.perf_counter() - start
    assert events == [Frame(payload)]
    return elapsed


@pytest.mark.parametrize(
    ("kind", "obfuscated"),
    [
        (TransportKind.ABRIDGED, False),
        (TransportKind.FULL, False),
        (TransportKind.PADDED_INTERMEDIATE, True),
    ],
)
def test_one_mib_frame_in_997_byte_chunks_is_linear(kind, obfuscated):
    small = min(_time_big_frame(kind, 1 << 20, obfuscated) for _ in range(3))
    big = min(_time_big_frame(kind, 4 << 20, obfuscated) for _ in range(2))
    # Linear: 4× the data costs ~4× the time.  Quadratic copying would cost ~16×.
    assert big < 10 * small + 0.05, (small, big)
    assert small < 1.0
