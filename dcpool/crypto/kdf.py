"""Key derivation for MTProto: auth-key ids, msg_key, the message AES key/IV, handshake values.

Theory of operation
-------------------
Everything here is a pure function of its byte arguments (hashlib only, no state, no
randomness), so each formula can be checked against the spec and the known-answer tests of §19.

* ``auth_key_id``/``auth_key_aux_hash`` (§4.1): the low / high 64 bits of SHA1(auth_key).
* MTProto 2.0 (§4.2): ``msg_key`` is the middle 128 bits of
  SHA256(auth_key[88+x : 120+x] + plaintext); KDF2 mixes two SHA256 digests into aes_key/aes_iv.
  ``x`` is 0 for client → server and 8 for server → client; the receiver uses the sender's x.
* MTProto 1.0 (§4.4): only for the auth.bindTempAuthKey inner payload (§5.11).
* Handshake (§5.6, §5.9, §5.10): tmp_aes_key/iv from the nonces, new_nonce_hash1/2/3, the
  initial server salt.  Nonces are raw 16/32-byte strings and are used at full length even when
  they start with zero bytes (V6).
"""

from __future__ import annotations

from hashlib import sha1, sha256

__all__ = [
    "aes_key_iv",
    "aes_key_iv_v1",
    "auth_key_aux_hash",
    "auth_key_id",
    "initial_server_salt",
    "msg_key",
    "msg_key_large",
    "msg_key_v1",
    "new_nonce_hash",
    "nonce_hash_fail",
    "quick_ack_token",
    "tmp_aes_key_iv",
]

Buffer = bytes | bytearray | memoryview


def _check_x(x: int) -> None:
    if x not in (0, 8):
        raise ValueError(f"x must be 0 (client -> server) or 8 (server -> client), got {x}")


def _check_auth_key(auth_key: bytes) -> None:
    if len(auth_key) != 256:
        raise ValueError(f"auth_key must be 256 bytes, got {len(auth_key)}")


# --------------------------------------------------------------------------- §4.1


def auth_key_id(auth_key: bytes) -> int:
    """SHA1(auth_key)[12:20] read as a signed little-endian int64 (spec §4.1)."""
    return int.from_bytes(sha1(auth_key).digest()[12:20], "little", signed=True)


def auth_key_aux_hash(auth_key: bytes) -> bytes:
    """SHA1(auth_key)[0:8], the 8 raw bytes used by new_nonce_hash and retry_id (spec §4.1)."""
    return sha1(auth_key).digest()[0:8]


# --------------------------------------------------------------------------- §4.2 MTProto 2.0


def msg_key_large(auth_key: bytes, plaintext: Buffer, x: int) -> bytes:
    """SHA256(auth_key[88+x : 120+x] + plaintext), 32 bytes (spec §4.2).

    ``plaintext`` includes the padding.  Its first 4 bytes give the quick-ack token (§7.6).
    """
    _check_x(x)
    _check_auth_key(auth_key)
    h = sha256(auth_key[88 + x : 120 + x])
    h.update(plaintext)
    return h.digest()


def msg_key(auth_key: bytes, plaintext: Buffer, x: int) -> bytes:
    """The 16-byte MTProto 2.0 msg_key: msg_key_large[8:24] (spec §4.2)."""
    return msg_key_large(auth_key, plaintext, x)[8:24]


def quick_ack_token(msg_key_large_: bytes) -> int:
    """msg_key_large[0:4] as LE uint32 with the top bit set (spec §7.6)."""
    return int.from_bytes(msg_key_large_[0:4], "little") | 0x80000000


def aes_key_iv(auth_key: bytes, msg_key_: bytes, x: int) -> tuple[bytes, bytes]:
    """MTProto 2.0 KDF2: (aes_key, aes_iv), 32 bytes each (spec §4.2)."""
    _check_x(x)
    _check_auth_key(auth_key)
    if len(msg_key_) != 16:
        raise ValueError(f"msg_key must be 16 bytes, got {len(msg_key_)}")
    a = sha256(msg_key_ + auth_key[x : x + 36]).digest()
    b = sha256(auth_key[40 + x : 76 + x] + msg_key_).digest()
    aes_key = a[0:8] + b[8:24] + a[24:32]
    aes_iv = b[0:8] + a[8:24] + b[24:32]
    return aes_key, aes_iv


# --------------------------------------------------------------------------- §4.4 MTProto 1.0


def msg_key_v1(plaintext_without_padding: Buffer) -> bytes:
    """MTProto 1.0 msg_key: SHA1(plaintext without padding)[4:20] (spec §4.4, §5.11)."""
    return sha1(plaintext_without_padding).digest()[4:20]


def aes_key_iv_v1(auth_key: bytes, msg_key_: bytes, x: int) -> tuple[bytes, bytes]:
    """MTProto 1.0 KDF: (aes_key, aes_iv).  Only for the bindTempAuthKey payload (x = 0)."""
    _check_x(x)
    _check_auth_key(auth_key)
    if len(msg_key_) != 16:
        raise ValueError(f"msg_key must be 16 bytes, got {len(msg_key_)}")
    a = sha1(msg_key_ + auth_key[x : x + 32]).digest()
    b = sha1(auth_key[32 + x : 48 + x] + msg_key_ + auth_key[48 + x : 64 + x]).digest()
    c = sha1(auth_key[64 + x : 96 + x] + msg_key_).digest()
    d = sha1(msg_key_ + auth_key[96 + x : 128 + x]).digest()
    aes_key = a[0:8] + b[8:20] + c[4:16]
    aes_iv = a[8:20] + b[0:8] + c[16:20] + d[0:8]
    return aes_key, aes_iv


# --------------------------------------------------------------------------- handshake


def _check_nonces(server_nonce: bytes, new_nonce: bytes) -> None:
    if len(server_nonce) != 16:
        raise ValueError(f"server_nonce must be 16 bytes, got {len(server_nonce)}")
    if len(new_nonce) != 32:
        raise ValueError(f"new_nonce must be 32 bytes, got {len(new_nonce)}")


def tmp_aes_key_iv(server_nonce: bytes, new_nonce: bytes) -> tuple[bytes, bytes]:
    """The handshake's temporary (tmp_aes_key, tmp_aes_iv), spec §5.6::

    tmp_aes_key = SHA1(new_nonce + server_nonce) + SHA1(server_nonce + new_nonce)[0:12]
    tmp_aes_iv  = SHA1(server_nonce + new_nonce)[12:20] + SHA1(new_nonce + new_nonce) + new_nonce[0:4]
    """
    _check_nonces(server_nonce, new_nonce)
    ns = sha1(new_nonce + server_nonce).digest()
    sn = sha1(server_nonce + new_nonce).digest()
    nn = sha1(new_nonce + new_nonce).digest()
    return ns + sn[0:12], sn[12:20] + nn + new_nonce[0:4]


def new_nonce_hash(new_nonce: bytes, n: int, aux_hash: bytes) -> bytes:
    """new_nonce_hashN = SHA1(new_nonce + bytes([N]) + auth_key_aux_hash)[4:20] (spec §5.9).

    N = 1 for dh_gen_ok, 2 for dh_gen_retry, 3 for dh_gen_fail.
    """
    if n not in (1, 2, 3):
        raise ValueError(f"new_nonce_hash number must be 1, 2 or 3, got {n}")
    if len(new_nonce) != 32:
        raise ValueError(f"new_nonce must be 32 bytes, got {len(new_nonce)}")
    if len(aux_hash) != 8:
        raise ValueError(f"auth_key_aux_hash must be 8 bytes, got {len(aux_hash)}")
    return sha1(new_nonce + bytes((n,)) + aux_hash).digest()[4:20]


def nonce_hash_fail(new_nonce: bytes) -> bytes:
    """server_DH_params_fail.new_nonce_hash = SHA1(new_nonce)[4:20] (spec §5.5)."""
    if len(new_nonce) != 32:
        raise ValueError(f"new_nonce must be 32 bytes, got {len(new_nonce)}")
    return sha1(new_nonce).digest()[4:20]


def initial_server_salt(new_nonce: bytes, server_nonce: bytes) -> int:
    """new_nonce[0:8] XOR server_nonce[0:8], read as a signed LE int64 (spec §5.10)."""
    _check_nonces(server_nonce, new_nonce)
    raw = bytes(a ^ b for a, b in zip(new_nonce[0:8], server_nonce[0:8], strict=True))
    return int.from_bytes(raw, "little", signed=True)
