"""Shared helpers for the transport tests: a deterministic rng and a client/server pair."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from dcpool.transport import ClientTransport, ServerTransport, TransportKind

SECRET = bytes.fromhex("8a96ef6e42a18c21837580cd1c91c5a8")
DD_SECRET = b"\xdd" + SECRET


def det_rng(seed: int = 0) -> Callable[[int], bytes]:
    """A reproducible rng (SHA256 in counter mode) so tests never depend on os.urandom."""
    state = {"n": 0}

    def rng(n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            state["n"] += 1
            out += hashlib.sha256(f"{seed}:{state['n']}".encode()).digest()
        return bytes(out[:n])

    return rng


def fixed_rng(first: bytes, seed: int = 0) -> Callable[[int], bytes]:
    """Returns ``first`` on the first call (the obfuscation header), then deterministic bytes."""
    rest = det_rng(seed)
    calls = {"n": 0}

    def rng(n: int) -> bytes:
        calls["n"] += 1
        if calls["n"] == 1:
            assert n == len(first)
            return first
        return rest(n)

    return rng


#: (kind, obfuscated, client secret, server secrets)
CONFIGS: list[tuple[TransportKind, bool, bytes | None, tuple[bytes | None, ...]]] = [
    (TransportKind.ABRIDGED, False, None, (None,)),
    (TransportKind.INTERMEDIATE, False, None, (None,)),
    (TransportKind.PADDED_INTERMEDIATE, False, None, (None,)),
    (TransportKind.FULL, False, None, (None,)),
    (TransportKind.ABRIDGED, True, None, (None,)),
    (TransportKind.INTERMEDIATE, True, None, (None,)),
    (TransportKind.PADDED_INTERMEDIATE, True, None, (None,)),
    (TransportKind.ABRIDGED, True, SECRET, (b"\x01" * 16, SECRET)),
    (TransportKind.INTERMEDIATE, True, SECRET, (SECRET,)),
    (TransportKind.PADDED_INTERMEDIATE, True, SECRET, (None, SECRET)),
    (TransportKind.PADDED_INTERMEDIATE, True, DD_SECRET, (DD_SECRET,)),
]


def config_id(cfg: tuple) -> str:
    kind, obf, secret, _ = cfg
    s = kind.value + ("-obf" if obf else "")
    if secret is not None:
        s += "-dd" if secret[0] == 0xDD else "-secret"
    return s


def make_pair(cfg: tuple, seed: int = 0) -> tuple[ClientTransport, ServerTransport]:
    kind, obf, secret, secrets = cfg
    client = ClientTransport(kind, obfuscated=obf, secret=secret, dc_id=2 if obf else None, rng=det_rng(seed))
    server = ServerTransport(rng=det_rng(seed + 1000), secrets=secrets)
    return client, server


def feed(transport: ClientTransport | ServerTransport, chunks: Iterable[bytes]) -> list:
    events: list = []
    for chunk in chunks:
        events.extend(transport.receive_data(chunk))
    return events


def payloads(seed: int, sizes: Iterable[int]) -> list[bytes]:
    rng = det_rng(seed)
    return [rng(n) for n in sizes]
