"""Encrypted MTProto 2.0 messages: packing, unpacking and every receive check (spec §3.2, §4).

Theory of operation
-------------------
An encrypted message on the wire is ``auth_key_id(8) + msg_key(16) + AES-IGE(plaintext)``.
The plaintext is::

    salt(8) session_id(8) msg_id(8) seq_no(4) message_data_length(4) message_data  padding

with 12..1024 bytes of random padding making the total a multiple of 16 (§3.2).  ``msg_key`` is
the middle of SHA256(auth_key[88+x : 120+x] + plaintext) and the AES key/IV come from KDF2
(§4.2); x = 0 for client → server, 8 for server → client.

:func:`encrypt` pads and encrypts any inner plaintext (it does not look inside, so the §19 V10
vector, which has no header, can be checked).  :func:`decrypt` runs the checks of §4.5 in an
order that leaks nothing useful:

1. the buffer is long enough and ``auth_key_id`` is ours (:class:`AuthKeyIdMismatch`);
2. the encrypted part is a non-empty multiple of 16 and can hold a header and 12 bytes of
   padding (:class:`BadMessageLength`) — checked *before* decrypting, IGE needs whole blocks;
3. decrypt, recompute ``msg_key`` with the sender's x (:class:`MsgKeyMismatch`).  The msg_key
   covers the padding, so a forger cannot reach the later checks: those can only fail for a
   peer that holds the key and is buggy, which is why they may raise precise errors;
4. ``message_data_length`` is non-negative, divisible by 4 and fits in the plaintext
   (:class:`BadMessageLength`), and the padding is 12..1024 bytes (:class:`BadPadding`).

All lengths are computed from the received buffer before any slice, so nothing ever reads past
it.  The rest of this module holds the small hand-written TL codecs that the session layer uses
on its hot path (containers, gzip_packed and the service messages of §8); every reader raises
:class:`dcpool.errors.TLDecodeError` on malformed input and never over-reads.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import Protocol

import attrs

from ..crypto import Rng, aes, kdf
from ..errors import (
    AuthKeyIdMismatch,
    BadMessageLength,
    BadPadding,
    LocalProtocolError,
    MsgKeyMismatch,
    TLDecodeError,
)
from ..tl import ids
from ..tl._binary import Reader, pack_bytes, pack_int, pack_long, pack_uint

__all__ = [
    "HEADER_SIZE",
    "MIN_PADDING",
    "MAX_PADDING",
    "KeyLike",
    "InnerMessage",
    "encrypt",
    "encrypt_padded",
    "decrypt",
    "decrypt_message",
    "pack_plaintext",
    "parse_plaintext",
    "peek_auth_key_id",
    "minimal_padding",
    "pack_container",
    "unpack_container",
    "ContainerItem",
    "gzip_pack",
    "gzip_unpack",
    "maybe_gunzip",
    "constructor_of",
    "Reader",
    "pack_int",
    "pack_uint",
    "pack_long",
    "pack_bytes",
    "pack_vector_long",
    "MAX_GZIP_OUTPUT",
]


#: salt + session_id + msg_id + seq_no + message_data_length
HEADER_SIZE = 32
MIN_PADDING = 12
MAX_PADDING = 1024
#: Largest decompressed gzip_packed we accept (a download chunk is at most 1 MiB; leave room).
MAX_GZIP_OUTPUT = 16 * 1024 * 1024

_OUTER = 8 + 16  # auth_key_id + msg_key
# Smallest legal plaintext: a header, an empty body and 12 bytes of padding, rounded up to 16.
_MIN_PLAINTEXT = 48

_q = struct.Struct("<q")
_i = struct.Struct("<i")
_I = struct.Struct("<I")
_header = struct.Struct("<qqqii")
_inner_hdr = struct.Struct("<qii")


class KeyLike(Protocol):
    """What this module needs from :class:`dcpool.mtproto.AuthKey`."""

    @property
    def key(self) -> bytes: ...

    @property
    def key_id(self) -> int: ...


# --------------------------------------------------------------------------- encryption


def minimal_padding(length: int) -> int:
    """The padding Telethon/Pyrogram add: 12..27 bytes making ``length + pad`` ≡ 0 mod 16."""
    return (-(length + MIN_PADDING)) % 16 + MIN_PADDING


def encrypt(
    auth_key: KeyLike,
    plaintext_inner: bytes,
    *,
    x: int,
    rng: Rng,
    padding: int | None = None,
) -> bytes:
    """Pad ``plaintext_inner`` with random bytes and encrypt it: ``auth_key_id + msg_key + data``.

    ``padding`` (default: the minimal 12..27 bytes) must lie in 12..1024 and make the total a
    multiple of 16; anything else is a :class:`LocalProtocolError`.
    """
    if padding is None:
        padding = minimal_padding(len(plaintext_inner))
    elif not MIN_PADDING <= padding <= MAX_PADDING or (len(plaintext_inner) + padding) % 16:
        raise LocalProtocolError(f"padding of {padding} bytes is illegal for this message")
    return encrypt_padded(auth_key, b"".join((plaintext_inner, rng(padding))), x=x)


def encrypt_padded(auth_key: KeyLike, plaintext: bytes, *, x: int) -> bytes:
    """Encrypt an already padded plaintext (length a multiple of 16) without further checks.

    Meant for tests that need a peer that misbehaves (too little padding, a lying length...).
    """
    if len(plaintext) % 16:
        raise LocalProtocolError("IGE needs a plaintext that is a multiple of 16 bytes")
    key = auth_key.key
    mk = kdf.msg_key(key, plaintext, x)
    aes_key, aes_iv = kdf.aes_key_iv(key, mk, x)
    return b"".join((_q.pack(auth_key.key_id), mk, aes.ige_encrypt(plaintext, aes_key, aes_iv)))


def peek_auth_key_id(data: bytes | memoryview) -> int:
    """The auth_key_id of a received payload (0 means an unencrypted handshake message)."""
    if len(data) < 8:
        raise BadMessageLength(f"payload of {len(data)} bytes has no auth_key_id")
    return _q.unpack_from(data, 0)[0]


def _decrypt_checked(auth_key: KeyLike, data: bytes | memoryview, x: int) -> tuple[bytes, int]:
    """Checks 1-4 of the module docstring; returns (plaintext, message_data_length)."""
    n = len(data)
    if n < 8:
        raise BadMessageLength(f"encrypted payload of {n} bytes is too short")
    key_id = _q.unpack_from(data, 0)[0]
    if key_id != auth_key.key_id:
        raise AuthKeyIdMismatch(f"auth_key_id {key_id} is not ours ({auth_key.key_id})")
    enc_len = n - _OUTER
    if enc_len < _MIN_PLAINTEXT or enc_len % 16:
        raise BadMessageLength(f"encrypted data of {max(enc_len, 0)} bytes is not a valid size")
    view = memoryview(data)
    mk = bytes(view[8:24])
    key = auth_key.key
    aes_key, aes_iv = kdf.aes_key_iv(key, mk, x)
    plaintext = aes.ige_decrypt(bytes(view[24:]), aes_key, aes_iv)
    if kdf.msg_key(key, plaintext, x) != mk:
        raise MsgKeyMismatch("msg_key does not match the decrypted message")
    length = _i.unpack_from(plaintext, 28)[0]
    room = enc_len - HEADER_SIZE
    if length < 0 or length % 4 or length > room:
        raise BadMessageLength(f"message_data_length {length} is impossible (room {room})")
    pad = room - length
    if not MIN_PADDING <= pad <= MAX_PADDING:
        raise BadPadding(f"{pad} bytes of padding (allowed 12..1024)")
    return plaintext, length


def decrypt(auth_key: KeyLike, data: bytes | memoryview, *, x: int) -> memoryview:
    """Decrypt and check one encrypted message (spec §4.5, steps 1-3).

    Returns the plaintext without its padding: the 32-byte header followed by message_data.
    ``x`` is the *sender's* x: 8 when a client decrypts, 0 when a server does.
    """
    plaintext, length = _decrypt_checked(auth_key, data, x)
    # A view, not a copy: bodies of up to 1 MiB (upload.file) pass through several layers.
    return memoryview(plaintext)[: HEADER_SIZE + length]


@attrs.frozen
class InnerMessage:
    """The decrypted header and body of one message (or of a container, before unpacking).
    ``body`` is a view into the decrypted plaintext."""

    salt: int
    session_id: int
    msg_id: int
    seq_no: int
    body: bytes | memoryview


def decrypt_message(auth_key: KeyLike, data: bytes | memoryview, *, x: int) -> InnerMessage:
    """:func:`decrypt`, then :func:`parse_plaintext`."""
    return parse_plaintext(decrypt(auth_key, data, x=x))


def pack_plaintext(salt: int, session_id: int, msg_id: int, seq_no: int, body: bytes) -> bytes:
    """The unpadded inner plaintext: 32-byte header + body."""
    return _header.pack(salt, session_id, msg_id, seq_no, len(body)) + body


def parse_plaintext(plaintext: bytes | memoryview) -> InnerMessage:
    """Parse header + body (as returned by :func:`decrypt`); checks the length field again."""
    if len(plaintext) < HEADER_SIZE:
        raise BadMessageLength("plaintext shorter than its header")
    salt, session_id, msg_id, seq_no, length = _header.unpack_from(plaintext, 0)
    if length < 0 or length % 4 or HEADER_SIZE + length > len(plaintext):
        raise BadMessageLength(f"message_data_length {length} is impossible")
    return InnerMessage(salt, session_id, msg_id, seq_no, plaintext[HEADER_SIZE : HEADER_SIZE + length])


# --------------------------------------------------------------------------- TL helpers


# pack_int, pack_uint, pack_long and pack_bytes are the TL runtime's (re-exported here for the
# session and server code that builds service messages by hand).


def pack_vector_long(values: Iterable[int]) -> bytes:
    vals = list(values)
    return _I.pack(ids.VECTOR) + _i.pack(len(vals)) + struct.pack(f"<{len(vals)}q", *vals)


def constructor_of(body: bytes | memoryview) -> int | None:
    """The leading constructor id (unsigned), or None when the body is shorter than 4 bytes."""
    if len(body) < 4:
        return None
    return _I.unpack_from(body, 0)[0]


# --------------------------------------------------------------------------- containers


@attrs.frozen
class ContainerItem:
    """One message of a msg_container: ``message msg_id:long seqno:int bytes:int body:Object``.

    ``body`` is a view into the container (no copy: a container often carries a 1 MiB answer)."""

    msg_id: int
    seq_no: int
    body: bytes | memoryview


def pack_container(items: Iterable[tuple[int, int, bytes]]) -> bytes:
    """msg_container#73f1f8dc messages:vector<%Message> = MessageContainer;  (spec §3.6)

    ``items`` are (msg_id, seq_no, body); the bare vector has a count and no vector id.
    """
    parts = []
    count = 0
    for msg_id, seq_no, body in items:
        parts.append(_inner_hdr.pack(msg_id, seq_no, len(body)))
        parts.append(body)
        count += 1
    return _I.pack(ids.MSG_CONTAINER) + _i.pack(count) + b"".join(parts)


def unpack_container(body: bytes | memoryview, *, max_items: int = 1024) -> list[ContainerItem]:
    """Split a msg_container body (constructor included).  Raises TLDecodeError when the
    container is malformed: wrong id, too many items, a length that is negative, not a multiple
    of 4 or past the end, bytes left over, or a container inside a container."""
    r = Reader(body)
    r.expect(ids.MSG_CONTAINER)
    count = r.read_int()
    if count < 0 or count > max_items:
        raise TLDecodeError(f"container with {count} messages")
    out = []
    for _ in range(count):
        msg_id = r.read_long()
        seq_no = r.read_int()
        length = r.read_int()
        if length < 0 or length % 4:
            raise TLDecodeError(f"container item of {length} bytes")
        inner = r.read_raw(length)
        if constructor_of(inner) == ids.MSG_CONTAINER:
            raise TLDecodeError("container inside a container")
        out.append(ContainerItem(msg_id, seq_no, inner))
    if r.remaining:
        raise TLDecodeError(f"{r.remaining} bytes after the last container item")
    return out


# --------------------------------------------------------------------------- gzip


def gzip_pack(body: bytes) -> bytes:
    """gzip_packed#3072cfa1 packed_data:bytes = Object;  (spec §2.7)"""
    # wbits=31: a gzip (RFC 1952) stream, as Python's gzip.compress produces.
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    data = comp.compress(body) + comp.flush()
    return _I.pack(ids.GZIP_PACKED) + pack_bytes(data)


def gzip_unpack(body: bytes | memoryview, *, limit: int = MAX_GZIP_OUTPUT) -> bytes:
    """The object inside a gzip_packed body (constructor included).  Malformed streams and
    streams inflating beyond ``limit`` bytes raise TLDecodeError."""
    r = Reader(body)
    r.expect(ids.GZIP_PACKED)
    packed = r.read_bytes()
    try:
        d = zlib.decompressobj(47)  # 32 + 15: accept gzip or zlib headers
        out = d.decompress(packed, limit)
        if d.unconsumed_tail or not d.eof:
            raise TLDecodeError("gzip_packed stream is truncated or too large")
    except zlib.error as exc:
        raise TLDecodeError(f"bad gzip_packed stream: {exc}") from exc
    return out


def maybe_gunzip(body: bytes | memoryview) -> bytes | memoryview:
    """``body`` itself, or the object inside it when it is a gzip_packed."""
    if constructor_of(body) == ids.GZIP_PACKED:
        return gzip_unpack(body)
    return body
