"""Temporary auth keys and ``auth.bindTempAuthKey``, sans-IO (spec §5.11, §4.4).

Theory of operation
-------------------
A temporary key is made by the ordinary handshake with ``p_q_inner_data_temp_dc``
(:class:`dcpool.mtproto.handshake.ClientHandshake` with ``temp_expires_in``).  Before it may
call anything but ``help.getConfig``/``help.getNearestDc`` it must be bound to the permanent
key with::

    auth.bindTempAuthKey#cdd42a05 perm_auth_key_id:long nonce:long expires_at:int
        encrypted_message:bytes = Bool;
    bind_auth_key_inner#75a3f765 nonce:long temp_auth_key_id:long perm_auth_key_id:long
        temp_session_id:long expires_at:int = BindAuthKeyInner;

sent **encrypted with the temp key**, in session ``temp_session_id``.  ``encrypted_message`` is
an MTProto 1.0 message encrypted with the **permanent** key::

    plaintext = random(16) + msg_id(8) + seq_no=0 (4) + len=40 (4) + bind_auth_key_inner (40)
    msg_key   = SHA1(plaintext)[4:20]                      # before padding
    padded    = plaintext + random padding to a multiple of 16
    encrypted_message = perm_auth_key_id(8) + msg_key(16) + AES-IGE(padded, KDF v1(perm, x=0))

where ``msg_id`` is the msg_id of the outer ``auth.bindTempAuthKey`` request itself.  So the
caller must know that msg_id before it serializes the request: reserve it from the session's
msg_id generator, build the request with :func:`bind_temp_auth_key_request`, and send it with
exactly that msg_id.

Client side: :func:`bind_temp_auth_key_request` (or :func:`encrypt_bind_message` for the
``encrypted_message`` alone).  Server side (the emulator): :func:`decrypt_bind_message` opens the
payload with the permanent key and returns a :class:`BindMessage`; :func:`check_bind` compares
it with the outer request and with what the request arrived on, and returns the RPC error
message Telegram would give (``ENCRYPTED_MESSAGE_INVALID``...) or None.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping

import attrs

from .. import tl
from ..crypto import Rng, aes, kdf
from ..errors import DcPoolError, LocalProtocolError
from .envelope import KeyLike

__all__ = [
    "BIND_INNER_LEN",
    "BindMessage",
    "BindRejected",
    "encrypt_bind_message",
    "bind_temp_auth_key_request",
    "decrypt_bind_message",
    "check_bind",
]

#: serialized bind_auth_key_inner, constructor id included
BIND_INNER_LEN = 40
_HEAD = struct.Struct("<qii")  # msg_id, seq_no, length


@attrs.frozen
class BindMessage:
    """The decrypted ``encrypted_message`` of an ``auth.bindTempAuthKey`` (server side)."""

    perm_auth_key_id: int
    msg_id: int
    seq_no: int
    length: int
    nonce: int
    temp_auth_key_id: int
    inner_perm_auth_key_id: int
    temp_session_id: int
    expires_at: int


class BindRejected(DcPoolError):
    """``encrypted_message`` cannot be opened (unknown perm key, bad msg_key, bad layout):
    Telegram's ``ENCRYPTED_MESSAGE_INVALID``."""


def _inner(nonce: int, temp_key_id: int, perm_key_id: int, temp_session_id: int, expires_at: int) -> bytes:
    # bind_auth_key_inner#75a3f765 nonce:long temp_auth_key_id:long perm_auth_key_id:long
    #   temp_session_id:long expires_at:int = BindAuthKeyInner;
    return tl.mtproto.BindAuthKeyInner(
        nonce=nonce,
        temp_auth_key_id=temp_key_id,
        perm_auth_key_id=perm_key_id,
        temp_session_id=temp_session_id,
        expires_at=expires_at,
    ).to_bytes()


def encrypt_bind_message(
    perm_key: KeyLike,
    *,
    temp_key_id: int,
    temp_session_id: int,
    msg_id: int,
    nonce: int,
    expires_at: int,
    rng: Rng = os.urandom,
) -> bytes:
    """``encrypted_message`` of ``auth.bindTempAuthKey`` (spec §5.11, MTProto 1.0 with the
    permanent key, KDF v1 with x = 0)."""
    inner = _inner(nonce, temp_key_id, perm_key.key_id, temp_session_id, expires_at)
    plaintext = rng(16) + _HEAD.pack(msg_id, 0, len(inner)) + inner
    msg_key = kdf.msg_key_v1(plaintext)
    padded = plaintext + rng(-len(plaintext) % 16)
    aes_key, aes_iv = kdf.aes_key_iv_v1(perm_key.key, msg_key, 0)
    return struct.pack("<q", perm_key.key_id) + msg_key + aes.ige_encrypt(padded, aes_key, aes_iv)


def bind_temp_auth_key_request(
    perm_key: KeyLike,
    *,
    temp_key_id: int,
    temp_session_id: int,
    msg_id: int,
    expires_at: int,
    nonce: int | None = None,
    rng: Rng = os.urandom,
) -> tl.api.auth.BindTempAuthKey:
    """The ``auth.bindTempAuthKey`` request to send, encrypted with the temp key, in session
    ``temp_session_id`` and with msg_id ``msg_id`` (the same value is sealed inside).
    ``nonce`` defaults to a random long; ``expires_at`` is a unix time (the temp key's
    ``now + expires_in``, at most)."""
    if nonce is None:
        nonce = int.from_bytes(rng(8), "little", signed=True)
    if expires_at <= 0:
        raise LocalProtocolError(f"expires_at must be a positive unix time, got {expires_at}")
    encrypted = encrypt_bind_message(
        perm_key,
        temp_key_id=temp_key_id,
        temp_session_id=temp_session_id,
        msg_id=msg_id,
        nonce=nonce,
        expires_at=expires_at,
        rng=rng,
    )
    return tl.api.auth.BindTempAuthKey(
        perm_auth_key_id=perm_key.key_id,
        nonce=nonce,
        expires_at=expires_at,
        encrypted_message=encrypted,
    )


def decrypt_bind_message(encrypted: bytes, perm_keys: Mapping[int, KeyLike]) -> BindMessage:
    """Open ``encrypted_message`` (server side).  ``perm_keys`` maps the DC's permanent key
    ids to their keys.  Raises :class:`BindRejected` when the key is unknown, the msg_key
    does not match or the layout is wrong."""
    data = bytes(encrypted)
    if len(data) < 24 + 80 or (len(data) - 24) % 16:
        raise BindRejected(f"encrypted_message of {len(data)} bytes")
    (perm_id,) = struct.unpack_from("<q", data)
    key = perm_keys.get(perm_id)
    if key is None:
        raise BindRejected("unknown permanent key")
    msg_key = data[8:24]
    aes_key, aes_iv = kdf.aes_key_iv_v1(key.key, msg_key, 0)
    padded = aes.ige_decrypt(data[24:], aes_key, aes_iv)
    msg_id, seq_no, length = _HEAD.unpack_from(padded, 16)
    if length != BIND_INNER_LEN or 32 + length > len(padded) or len(padded) - (32 + length) > 15:
        raise BindRejected(f"bind message length {length}")
    if kdf.msg_key_v1(padded[: 32 + length]) != msg_key:
        raise BindRejected("msg_key v1 mismatch")
    try:
        inner = tl.loads(padded[32 : 32 + length])
    except DcPoolError as exc:
        raise BindRejected(f"bad bind_auth_key_inner: {exc}") from None
    if type(inner).__name__ != "BindAuthKeyInner":
        raise BindRejected("not a bind_auth_key_inner")
    return BindMessage(
        perm_auth_key_id=perm_id,
        msg_id=msg_id,
        seq_no=seq_no,
        length=length,
        nonce=inner.nonce,
        temp_auth_key_id=inner.temp_auth_key_id,
        inner_perm_auth_key_id=inner.perm_auth_key_id,
        temp_session_id=inner.temp_session_id,
        expires_at=inner.expires_at,
    )


def check_bind(
    message: BindMessage,
    request: tl.api.auth.BindTempAuthKey,
    *,
    temp_key_id: int,
    session_id: int,
    msg_id: int,
) -> str | None:
    """The server's checks of spec §5.11 once the message is open: the sealed msg_id is the
    outer request's, seq_no 0, the inner ids are the temp key the request arrived on, its
    session and the outer ``perm_auth_key_id``, the nonce and expires_at match the outer ones.
    Returns ``"ENCRYPTED_MESSAGE_INVALID"`` for any mismatch, else None."""
    ok = (
        message.msg_id == msg_id
        and message.seq_no == 0
        and message.temp_auth_key_id == temp_key_id
        and message.temp_session_id == session_id
        and message.inner_perm_auth_key_id == request.perm_auth_key_id
        and message.perm_auth_key_id == request.perm_auth_key_id
        and message.nonce == request.nonce
        and message.expires_at == request.expires_at
    )
    return None if ok else "ENCRYPTED_MESSAGE_INVALID"
