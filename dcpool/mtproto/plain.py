"""Unencrypted MTProto messages: the envelope of the auth-key handshake (spec §3.1).

Layout (all little-endian)::

    auth_key_id   int64 = 0            8 bytes of zeros
    message_id    int64                client: divisible by 4; server: odd (spec §3.3)
    message_len   int32                length of message_data
    message_data  bytes                one boxed TL object (req_pq_multi, resPQ, ...)

Only the handshake objects may travel like this (§3.1); everything else is encrypted (§3.2).

Decoding is strict about what matters and lenient about one thing: bytes *after*
``message_data`` are tolerated, because the padded-intermediate transport (§7.3) appends 0–15
random bytes to every payload and cannot know where an unencrypted message ends.  The header
must be complete and ``message_len`` may not run past the payload.

Helpers to compute the handshake's own msg_ids live here too (spec §3.3): the client's are
``int(now * 2**32)`` rounded down to a multiple of 4, the server's the same with the low bits
``01`` (an answer).  They only have to increase within one connection, which
:func:`next_plain_msg_id` guarantees.
"""

from __future__ import annotations

import struct

import attrs

from ..errors import RemoteProtocolError, TLDecodeError

__all__ = [
    "PLAIN_HEADER_SIZE",
    "PlainMessage",
    "is_plain",
    "next_plain_msg_id",
    "pack_plain",
    "unpack_plain",
]

#: auth_key_id (8) + message_id (8) + message_len (4).
PLAIN_HEADER_SIZE = 20

_HEADER = struct.Struct("<qqi")
_ZERO_KEY_ID = bytes(8)


@attrs.frozen
class PlainMessage:
    """One decoded unencrypted message: its msg_id and the boxed TL body."""

    msg_id: int
    body: bytes


def pack_plain(msg_id: int, body: bytes) -> bytes:
    """Serialize an unencrypted message carrying the boxed TL object ``body`` (spec §3.1)."""
    return _HEADER.pack(0, msg_id, len(body)) + body


def is_plain(payload: bytes | bytearray | memoryview) -> bool:
    """True if ``payload`` starts with ``auth_key_id == 0`` (an unencrypted message, §17.4 step 2)."""
    return len(payload) >= 8 and bytes(payload[0:8]) == _ZERO_KEY_ID


def unpack_plain(payload: bytes | bytearray | memoryview) -> PlainMessage:
    """Decode an unencrypted message.

    Raises :class:`~dcpool.errors.RemoteProtocolError` if ``auth_key_id`` is not zero and
    :class:`~dcpool.errors.TLDecodeError` if the header is truncated or ``message_len`` is
    impossible.  Trailing bytes (transport padding, see the module docstring) are dropped.
    """
    if len(payload) < PLAIN_HEADER_SIZE:
        raise TLDecodeError(
            f"unencrypted message too short: {len(payload)} bytes, need at least {PLAIN_HEADER_SIZE}"
            + (" (a 4-byte payload is a transport error: the transport layer handles it)"
               if len(payload) == 4 else "")
        )
    key_id, msg_id, length = _HEADER.unpack_from(payload, 0)
    if key_id != 0:
        raise RemoteProtocolError(f"expected an unencrypted message, got auth_key_id {key_id}")
    if length < 4 or PLAIN_HEADER_SIZE + length > len(payload):
        raise TLDecodeError(
            f"unencrypted message_len {length} impossible for a {len(payload)}-byte payload"
        )
    return PlainMessage(msg_id, bytes(payload[PLAIN_HEADER_SIZE : PLAIN_HEADER_SIZE + length]))


def next_plain_msg_id(now: float, last: int, *, server: bool) -> int:
    """A handshake msg_id for time ``now`` that is greater than ``last`` (spec §3.3).

    Client ids are multiples of 4; server ids are ≡ 1 (mod 4), the value for answers.
    """
    msg_id = (int(now * 2**32) & ~3) | (1 if server else 0)
    if msg_id <= last:
        msg_id = (last & ~3) + 4 + (1 if server else 0)
    return msg_id
