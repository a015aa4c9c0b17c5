"""The auth key: 2048 bits shared by a client and a DC, and the two hashes derived from it.

Theory of operation (spec §4.1)
-------------------------------
* ``key`` is exactly **256 bytes**, the big-endian value of ``g^(ab) mod dh_prime`` left-padded
  with zeros (Telethon trims the leading zero byte in about 1 handshake of 200, §17.2; we never do).
* ``key_id`` = ``SHA1(key)[12:20]`` read as a signed little-endian int64: the low 64 bits, which
  every encrypted message carries in clear and by which the server finds the key.
* ``aux_hash`` = ``SHA1(key)[0:8]``: the high 64 bits, used only by the handshake
  (``new_nonce_hashN`` and ``retry_id``, §5.8–§5.9).

One SHA1 gives both, so they are computed here directly rather than through two calls into
:mod:`dcpool.crypto.kdf` (which computes the same formulas).

The key bytes are secret: neither ``repr`` nor ``str`` of an :class:`AuthKey` shows them (nor the
aux hash, which is also derived from the secret); only the public ``key_id`` appears.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import attrs

from ..errors import LocalProtocolError

__all__ = ["AUTH_KEY_SIZE", "AuthKey"]

#: Size of an auth key in bytes (2048 bits, spec §4.1).
AUTH_KEY_SIZE = 256


def _digest(key: bytes) -> bytes:
    return hashlib.sha1(key).digest()


def _default_key_id(self: AuthKey) -> int:
    return int.from_bytes(_digest(self.key)[12:20], "little", signed=True)


def _default_aux_hash(self: AuthKey) -> bytes:
    return _digest(self.key)[0:8]


def _check_key(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != AUTH_KEY_SIZE:
        size = len(value) if isinstance(value, (bytes, bytearray, memoryview)) else type(value).__name__
        # Never echo the value itself: it may be key material.
        raise LocalProtocolError(f"an auth key must be {AUTH_KEY_SIZE} bytes, got {size}")


@attrs.frozen(repr=False)
class AuthKey:
    """A 2048-bit MTProto auth key with its ``key_id`` and ``aux_hash`` (spec §4.1).

    Build it with :meth:`from_bytes` (or ``AuthKey(key)``); ``key_id`` and ``aux_hash`` are
    derived.  If they are passed explicitly (e.g. by storage), they must match the key.
    """

    key: bytes = attrs.field(validator=_check_key)
    key_id: int = attrs.field(default=attrs.Factory(_default_key_id, takes_self=True))
    aux_hash: bytes = attrs.field(default=attrs.Factory(_default_aux_hash, takes_self=True))

    def __attrs_post_init__(self) -> None:
        digest = _digest(self.key)
        if self.key_id != int.from_bytes(digest[12:20], "little", signed=True):
            raise LocalProtocolError("key_id does not match the auth key")
        if self.aux_hash != digest[0:8]:
            raise LocalProtocolError("aux_hash does not match the auth key")

    @classmethod
    def from_bytes(cls, key: bytes) -> AuthKey:
        """The auth key whose 256 raw bytes are ``key``."""
        return cls(bytes(key) if isinstance(key, (bytearray, memoryview)) else key)

    @property
    def key_id_bytes(self) -> bytes:
        """``key_id`` as the 8 bytes that start every encrypted message (spec §3.2)."""
        return struct.pack("<q", self.key_id)

    def __repr__(self) -> str:
        # Key material must never reach logs or tracebacks: show only the public id.
        return f"AuthKey(key_id={self.key_id}, key=<{len(self.key)} bytes hidden>)"

    __str__ = __repr__
