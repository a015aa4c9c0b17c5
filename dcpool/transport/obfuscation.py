"""obfuscated2: AES-256-CTR underneath any framing (spec §7.5, vectors §19 V13).

Theory of operation.  The client picks 64 random bytes ``init`` that must not look like any
plain transport (first byte ``ef``; first word ``HEAD``/``POST``/``GET ``/``OPTI``/TLS
``16 03 01 02``/``dddddddd``/``eeeeeeee``; second word zero = full-transport seq 0).  It writes
the 4-byte protocol tag at 56..60 and, optionally, a signed LE int16 DC id at 60..62 (tdlib
always does, Telethon/Pyrogram leave random bytes; MTProxy needs it, §18.1).

Keys, with ``rev = init[::-1]``::

    client -> server:  key = init[8:40]   iv = init[40:56]
    server -> client:  key = rev[8:40]    iv = rev[40:56]

With an MTProxy secret (16 bytes; 17 with a leading ``0xdd`` that only means "use padded
intermediate" and is dropped) each key becomes ``SHA256(key + secret)``; the IVs are unchanged.

The client encrypts the whole 64-byte ``init`` with its send stream and sends
``init[0:56] + encrypted[56:64]``; its stream then continues at position 64 for the first framed
byte.  The server decrypts the header with the same client→server stream (so it too continues
at 64), reads the tag at 56..60, and encrypts what it sends with the server→client stream from
position 0.  Both streams run for the life of the connection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import attrs

from ..crypto.aes import AesCtr
from ..errors import LocalProtocolError
from .codecs import TransportKind

HEADER_SIZE = 64

#: The obfuscated tag at init[56:60] for each framing; full has none.
TAGS: dict[TransportKind, bytes] = {
    TransportKind.ABRIDGED: b"\xef\xef\xef\xef",
    TransportKind.INTERMEDIATE: b"\xee\xee\xee\xee",
    TransportKind.PADDED_INTERMEDIATE: b"\xdd\xdd\xdd\xdd",
}
KIND_BY_TAG: dict[bytes, TransportKind] = {tag: kind for kind, tag in TAGS.items()}

#: §7.5 step 1 (tdlib's full list): first words an obfuscated header must never start with.
FORBIDDEN_FIRST_WORDS = frozenset(
    {
        b"HEAD",
        b"POST",
        b"GET ",
        b"OPTI",
        b"\x16\x03\x01\x02",  # TLS record start (LE int 0x02010316)
        b"\xdd\xdd\xdd\xdd",
        b"\xee\xee\xee\xee",
    }
)

_MAX_HEADER_ATTEMPTS = 1000


def is_valid_init(init: bytes) -> bool:
    """Whether 64 random bytes may start an obfuscated2 connection (§7.5 step 1)."""
    return (
        init[0] != 0xEF
        and bytes(init[0:4]) not in FORBIDDEN_FIRST_WORDS
        and bytes(init[4:8]) != b"\x00\x00\x00\x00"
    )


def normalize_secret(secret: bytes | str | None) -> tuple[bytes | None, bool]:
    """Return ``(16-byte key secret or None, padded_required)``.

    Accepts raw bytes or a hex string.  A 17-byte secret starting with ``0xdd`` means
    "padded intermediate" (the byte is dropped); fake-TLS (``0xee``) secrets are not supported.
    """
    if secret is None:
        return None, False
    if isinstance(secret, str):
        try:
            secret = bytes.fromhex(secret)
        except ValueError as exc:
            raise LocalProtocolError("MTProxy secret is not valid hex") from exc
    secret = bytes(secret)
    if len(secret) == 16:
        return secret, False
    if len(secret) == 17 and secret[0] == 0xDD:
        return secret[1:], True
    if len(secret) >= 17 and secret[0] == 0xEE:
        raise LocalProtocolError("fake-TLS (0xee) MTProxy secrets are not supported")
    raise LocalProtocolError(f"MTProxy secret must be 16 bytes or 0xdd + 16 bytes, got {len(secret)}")


def _derive(init: bytes, secret: bytes | None) -> tuple[AesCtr, AesCtr]:
    """(client→server stream, server→client stream), both at position 0."""
    rev = init[::-1]
    c2s_key, c2s_iv = init[8:40], init[40:56]
    s2c_key, s2c_iv = rev[8:40], rev[40:56]
    if secret is not None:
        c2s_key = hashlib.sha256(c2s_key + secret).digest()
        s2c_key = hashlib.sha256(s2c_key + secret).digest()
    return AesCtr(c2s_key, c2s_iv), AesCtr(s2c_key, s2c_iv)


@attrs.define
class Obfuscator:
    """The two running CTR streams of one side of an obfuscated connection."""

    _encryptor: AesCtr
    _decryptor: AesCtr

    def encrypt(self, data: bytes) -> bytes:
        return self._encryptor.update(data)

    def decrypt(self, data: bytes) -> bytes:
        return self._decryptor.update(data)


def client_init(
    kind: TransportKind,
    rng: Callable[[int], bytes],
    secret: bytes | None = None,
    dc_id: int | None = None,
) -> tuple[bytes, Obfuscator]:
    """Build the 64-byte header a client sends, and its streams (send stream already at 64).

    ``secret`` must already be normalised (16 bytes or None).
    """
    tag = TAGS.get(kind)
    if tag is None:
        raise LocalProtocolError(f"{kind.value} transport cannot be obfuscated")
    if dc_id is not None and not -0x8000 <= dc_id <= 0x7FFF:
        raise LocalProtocolError(f"dc_id {dc_id} does not fit the header's int16")
    for _ in range(_MAX_HEADER_ATTEMPTS):
        init = bytes(rng(HEADER_SIZE))
        if len(init) != HEADER_SIZE:
            raise LocalProtocolError("rng returned the wrong number of bytes")
        if is_valid_init(init):
            break
    else:
        raise LocalProtocolError("rng keeps producing forbidden obfuscation headers")
    header = bytearray(init)
    header[56:60] = tag
    if dc_id is not None:
        header[60:62] = dc_id.to_bytes(2, "little", signed=True)
    send, recv = _derive(bytes(header), secret)
    encrypted = send.update(bytes(header))
    return bytes(header[:56]) + encrypted[56:64], Obfuscator(send, recv)


@attrs.frozen
class ServerInit:
    """What the server learnt from a valid 64-byte header."""

    kind: TransportKind
    dc_id: int  # the int16 at 60..62; meaningful only if the client wrote one (§18.1)
    obfuscator: Obfuscator


def server_init(header: bytes, secret: bytes | None = None) -> ServerInit | None:
    """Decrypt a client's 64-byte header with ``secret`` (normalised); ``None`` if the tag is
    not one of ef/ee/dd×4 (wrong secret, or not obfuscated2 at all)."""
    header = bytes(header[:HEADER_SIZE])
    recv, send = _derive(header, secret)
    plain = recv.update(header)  # the client→server stream now sits at position 64, as the client's
    kind = KIND_BY_TAG.get(plain[56:60])
    if kind is None:
        return None
    dc_id = int.from_bytes(plain[60:62], "little", signed=True)
    return ServerInit(kind, dc_id, Obfuscator(send, recv))
