"""Random bytes into either side: only events or FramingError, never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcpool.errors import FramingError
from dcpool.transport import ClientTransport, Frame, QuickAck, ServerTransport, TransportErrorFrame, TransportKind

from .helpers import SECRET, det_rng

EVENT_TYPES = (Frame, QuickAck, TransportErrorFrame)
# Prefixes that steer the server into each detection branch, so the fuzz reaches the codecs.
PREFIXES = [b"", b"\xef", b"\xee" * 4, b"\xdd" * 4, b"\x10\0\0\0\0\0\0\0", b"POST"] + [
    ClientTransport(kind, obfuscated=True, secret=secret, rng=det_rng(4)).data_to_send()
    for kind in (TransportKind.ABRIDGED, TransportKind.INTERMEDIATE, TransportKind.PADDED_INTERMEDIATE)
    for secret in (None, SECRET)
]


def _drive(transport, chunks):
    try:
        for chunk in chunks:
            for event in transport.receive_data(chunk):
                assert isinstance(event, EVENT_TYPES)
    except FramingError:
        pass


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.sampled_from(PREFIXES),
    chunks=st.lists(st.binary(max_size=80), max_size=8),
    secrets=st.sampled_from([(None,), (SECRET,), (None, SECRET), ()]),
    allow_plain=st.booleans(),
)
def test_server_fuzz(prefix, chunks, secrets, allow_plain):
    server = ServerTransport(rng=det_rng(0), secrets=secrets, allow_plain=allow_plain, max_frame_size=256)
    _drive(server, [prefix, *chunks])


@pytest.mark.parametrize("kind", list(TransportKind))
@pytest.mark.parametrize("obfuscated", [False, True])
@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.binary(max_size=80), max_size=8))
def test_client_fuzz(kind, obfuscated, chunks):
    if obfuscated and kind is TransportKind.FULL:
        return
    client = ClientTransport(kind, obfuscated=obfuscated, rng=det_rng(0), max_frame_size=256)
    _drive(client, chunks)
