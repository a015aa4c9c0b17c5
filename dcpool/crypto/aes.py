"""AES-256 in the two modes MTProto uses: IGE (messages, handshake) and CTR (obfuscation).

(Placeholder: the crypto module owner replaces this file; ``AesCtr`` keeps its signature.)
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class AesCtr:
    """One continuous AES-256-CTR keystream (128-bit big-endian counter)."""

    __slots__ = ("_ctx",)

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._ctx = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()

    def update(self, data: bytes) -> bytes:
        return self._ctx.update(data)
