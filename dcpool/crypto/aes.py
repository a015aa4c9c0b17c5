"""AES-256 in the two modes MTProto uses: IGE (messages, handshake) and CTR (obfuscation).

Theory of operation
-------------------
AES-256-IGE (spec §4.3) chains every 16-byte block to both the previous ciphertext block and
the previous plaintext block.  The 32-byte IV is ``c0 = iv[0:16]`` (the initial "previous
ciphertext") followed by ``p0 = iv[16:32]`` (the initial "previous plaintext")::

    C_i = E(P_i ^ C_{i-1}) ^ P_{i-1}          P_i = D(C_i ^ P_{i-1}) ^ C_{i-1}

There is no padding: the data length must be a multiple of 16 (0 is allowed and gives b"").

IGE is hidden behind one tiny backend interface (:class:`IgeBackend`) with three
implementations, tried in speed order at import:

1. ``cryptg``       (Rust, maintained; measured roughly 3-4x faster than tgcrypto for IGE);
2. ``tgcrypto``     (C, Pyrogram's);
3. ``cryptography`` (always available; IGE built on OpenSSL AES, see below).

``DCPOOL_AES_BACKEND=cryptg|tgcrypto|cryptography`` forces one; forcing a backend that is not
installed raises ``ImportError`` at import, an unknown name raises ``ValueError``.
:data:`BACKEND` names the chosen one; :func:`get_backend` / :func:`available_backends` let
tests and benchmarks drive each backend directly.

The ``cryptography`` fallback
-----------------------------
*Encryption* is done with **one** AES-CBC call.  Write ``Y_i = E(P_i ^ C_{i-1})`` so that
``C_i = Y_i ^ P_{i-1}``.  Substituting ``C_{i-1} = Y_{i-1} ^ P_{i-2}`` gives
``Y_i = E((P_i ^ P_{i-2}) ^ Y_{i-1})``: exactly CBC encryption of ``X_i = P_i ^ P_{i-2}`` with
IV ``c0`` (taking ``X_1 = P_1`` and ``P_0 = p0``).  Both XOR passes are done on whole buffers as
Python big integers (C speed), so encryption costs one OpenSSL call plus two big XORs.

*Decryption* has the mirror structure ``Z_i = D((C_i ^ C_{i-2}) ^ Z_{i-1})``, i.e. CBC
*encryption* with the AES *decryption* function as the block cipher.  No library exposes that
mode, and the input of each ``D`` depends on the previous output, so decryption runs one ECB
call per block (OpenSSL still does the AES; Python only chains).  It is the slow direction of
the fallback; the native backends have no such asymmetry.

AES-256-CTR (obfuscated2, spec §7.5) always uses ``cryptography``: OpenSSL's CTR keeps one
continuous keystream with a 128-bit big-endian counter, which is exactly what MTProto needs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

import attrs
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "BACKEND",
    "BACKEND_NAMES",
    "ENV_VAR",
    "AesCtr",
    "IgeBackend",
    "available_backends",
    "get_backend",
    "ige_decrypt",
    "ige_encrypt",
]

#: Environment variable that forces a backend.
ENV_VAR: Final = "DCPOOL_AES_BACKEND"

#: Every backend name, fastest first (the automatic choice takes the first installed one).
BACKEND_NAMES: Final = ("cryptg", "tgcrypto", "cryptography")

Buffer = bytes | bytearray | memoryview
_IgeFn = Callable[[bytes, bytes, bytes], bytes]


@attrs.frozen
class IgeBackend:
    """One AES-256-IGE implementation.

    ``encrypt``/``decrypt`` take ``(data, key, iv)`` and validate lengths: data a multiple of
    16 bytes, key 32 bytes, iv 32 bytes (``ValueError`` otherwise).
    """

    name: str
    encrypt: _IgeFn = attrs.field(repr=False)
    decrypt: _IgeFn = attrs.field(repr=False)


def _check(data: Buffer, key: bytes, iv: bytes) -> None:
    if len(data) % 16:
        raise ValueError(f"AES-IGE data length {len(data)} is not a multiple of 16")
    if len(key) != 32:
        raise ValueError(f"AES-256-IGE key must be 32 bytes, got {len(key)}")
    if len(iv) != 32:
        raise ValueError(f"AES-IGE iv must be 32 bytes, got {len(iv)}")


# --------------------------------------------------------------------------- fallback


def _fallback_encrypt(data: Buffer, key: bytes, iv: bytes) -> bytes:
    _check(data, key, iv)
    n = len(data)
    if not n:
        return b""
    plain = bytes(data)
    # prev2 = [P_0 ... P_{k-2}] shifted two blocks: X = P ^ (zeros(16) + p0 + P[:-32])
    # (X_1 = P_1 because the first 16 bytes XOR with zeros; X_2 = P_2 ^ p0; X_i = P_i ^ P_{i-2}).
    p_int = int.from_bytes(plain, "big")
    shifted2 = int.from_bytes(bytes(16) + iv[16:32] + plain[: n - 32], "big") if n > 16 else 0
    x = (p_int ^ shifted2).to_bytes(n, "big")
    enc = Cipher(algorithms.AES(bytes(key)), modes.CBC(bytes(iv[0:16]))).encryptor()
    y = enc.update(x) + enc.finalize()
    # C_i = Y_i ^ P_{i-1}, with P_0 = p0
    shifted1 = int.from_bytes(iv[16:32] + plain[: n - 16], "big")
    return (int.from_bytes(y, "big") ^ shifted1).to_bytes(n, "big")


def _fallback_decrypt(data: Buffer, key: bytes, iv: bytes) -> bytes:
    _check(data, key, iv)
    n = len(data)
    if not n:
        return b""
    cipher = bytes(data)
    update = Cipher(algorithms.AES(bytes(key)), modes.ECB()).decryptor().update
    from_bytes = int.from_bytes
    c_prev = from_bytes(iv[0:16], "big")
    p_prev = from_bytes(iv[16:32], "big")
    out = bytearray(n)
    for i in range(0, n, 16):
        c = from_bytes(cipher[i : i + 16], "big")
        p = from_bytes(update((c ^ p_prev).to_bytes(16, "big")), "big") ^ c_prev
        out[i : i + 16] = p.to_bytes(16, "big")
        c_prev = c
        p_prev = p
    return bytes(out)


def _make_cryptography() -> IgeBackend:
    return IgeBackend("cryptography", _fallback_encrypt, _fallback_decrypt)


# --------------------------------------------------------------------------- native backends


def _native(name: str, native_encrypt: Callable, native_decrypt: Callable, *, coerce: bool) -> IgeBackend:
    """Wrap a C implementation with the checks every backend shares.  ``coerce``: the library
    takes only ``bytes``."""

    def wrap(native: Callable) -> Callable[[Buffer, bytes, bytes], bytes]:
        def run(data: Buffer, key: bytes, iv: bytes) -> bytes:
            _check(data, key, iv)
            if not data:  # tgcrypto rejects empty input
                return b""
            if coerce:
                return native(bytes(data), bytes(key), bytes(iv))
            return native(data, key, iv)

        return run

    return IgeBackend(name, wrap(native_encrypt), wrap(native_decrypt))


def _make_cryptg() -> IgeBackend:
    import cryptg  # noqa: PLC0415  (optional dependency)

    # cryptg accepts only `bytes` and silently pads odd lengths: hence _check and coercion.
    return _native("cryptg", cryptg.encrypt_ige, cryptg.decrypt_ige, coerce=True)


def _make_tgcrypto() -> IgeBackend:
    import tgcrypto  # noqa: PLC0415  (optional dependency)

    return _native("tgcrypto", tgcrypto.ige256_encrypt, tgcrypto.ige256_decrypt, coerce=False)


_FACTORIES: dict[str, Callable[[], IgeBackend]] = {
    "cryptg": _make_cryptg,
    "tgcrypto": _make_tgcrypto,
    "cryptography": _make_cryptography,
}
_cache: dict[str, IgeBackend] = {}


def get_backend(name: str) -> IgeBackend:
    """The backend called ``name``; ``ImportError`` if its package is missing,
    ``ValueError`` for an unknown name."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown AES backend {name!r}; expected one of {', '.join(BACKEND_NAMES)}")
    backend = _cache.get(name)
    if backend is None:
        backend = _cache[name] = _FACTORIES[name]()
    return backend


def available_backends() -> list[str]:
    """Names of the installed backends, fastest first (``"cryptography"`` is always there)."""
    names = []
    for name in BACKEND_NAMES:
        try:
            get_backend(name)
        except ImportError:
            continue
        names.append(name)
    return names


def _select() -> IgeBackend:
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced:
        try:
            return get_backend(forced)
        except ImportError as exc:
            raise ImportError(f"{ENV_VAR}={forced} but that package is not installed") from exc
    return get_backend(available_backends()[0])


_backend = _select()

#: Name of the backend that :func:`ige_encrypt` / :func:`ige_decrypt` use.
BACKEND: str = _backend.name

#: ``ige_encrypt(data, key, iv) -> bytes`` with the chosen backend (spec §4.3).
ige_encrypt: _IgeFn = _backend.encrypt
#: ``ige_decrypt(data, key, iv) -> bytes`` with the chosen backend (spec §4.3).
ige_decrypt: _IgeFn = _backend.decrypt


# --------------------------------------------------------------------------- CTR


class AesCtr:
    """One continuous AES-256-CTR keystream (128-bit big-endian counter, spec §7.5).

    ``update`` may be called with pieces of any size; the keystream continues across calls, so
    encrypting ``a`` then ``b`` equals encrypting ``a + b``.  Encryption and decryption are the
    same operation.
    """

    __slots__ = ("_update",)

    def __init__(self, key: bytes, iv: bytes) -> None:
        if len(key) != 32:
            raise ValueError(f"AES-256-CTR key must be 32 bytes, got {len(key)}")
        if len(iv) != 16:
            raise ValueError(f"AES-CTR iv must be 16 bytes, got {len(iv)}")
        self._update = Cipher(algorithms.AES(bytes(key)), modes.CTR(bytes(iv))).encryptor().update

    def update(self, data: Buffer) -> bytes:
        return self._update(data)

    def __repr__(self) -> str:  # never show key material
        return "<AesCtr>"
