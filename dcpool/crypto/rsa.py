"""RSA as the MTProto handshake uses it: fingerprints, the two encryption envelopes, and the
server-side decoding that tells them apart (spec §5.4, §6).

Theory of operation
-------------------
MTProto uses *textbook* RSA (``m^e mod n`` with Python's ``pow``; no OAEP/PKCS#1 padding).
The padding is MTProto's own, in one of two envelopes around the serialized
``p_q_inner_data*`` object ``data``:

* **RSA_PAD** (current; tdlib, tdesktop, gotd; :func:`encrypt_rsa_pad`):
  ``data`` is padded to 192 bytes, reversed, hashed with a random ``temp_key`` (SHA256),
  AES-256-IGE encrypted under ``temp_key`` with a zero IV, and ``temp_key`` is XOR-masked with
  SHA256 of that ciphertext.  The 256-byte result is retried with a new ``temp_key`` until it is
  below ``n``.
* **Legacy** (Telethon 1.45, Pyrogram 2.0.106; :func:`encrypt_legacy`):
  ``SHA1(data) + data + padding`` to 255 bytes.

A server must accept both (spec §5.4, §18 item 4).  :func:`decode_inner_data` (and the
contract's :func:`decrypt_inner_data`) computes ``m = c^d mod n`` and then:

1. **legacy** if ``m[0] == 0`` and ``SHA1(m[21 : 21+L]) == m[1:21]``, where ``L`` is the
   serialized length of the TL object at ``m[21:]``.  Only a TL parser knows ``L``; the crypto
   layer cannot import ``dcpool.tl``, so ``L`` comes from a ``parse_len`` callable
   (``parse_len(buf) -> int``: the length of the boxed TL object at the start of ``buf``;
   raise anything on failure).  The default, :func:`p_q_inner_data_len`, knows the four
   ``p_q_inner_data*`` constructors, which are the only ones valid here.
2. otherwise **RSA_PAD**: undo the mask, decrypt, and require the SHA256 to match.

Failure of both raises :class:`~dcpool.errors.HandshakeSecurityError` (a ``SecurityError``);
the handshake layer answers it with transport error -404 (spec §5.5).  ``ValueError`` is only
raised for local misuse (bad arguments to the encryption functions).

Fingerprints (spec §6.1) are ``SHA1(TLbytes(n) + TLbytes(e))[12:20]`` as a signed LE int64,
with minimal big-endian magnitudes.  The known Telegram keys (§6.2) ship in
:data:`TELEGRAM_PRODUCTION_KEYS`, :data:`TELEGRAM_TEST_KEYS` and :data:`TELEGRAM_LEGACY_KEYS`.

Randomness comes only from the ``rng`` argument (``rng(n) -> n random bytes``), except
:meth:`RsaPrivateKey.generate`, which uses the ``cryptography`` package's (OpenSSL) generator.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Callable, Iterable, Mapping
from hashlib import sha1, sha256
from typing import Any, Final, TypeAlias

import attrs
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as _crsa

from ..errors import ConfigError, HandshakeSecurityError
from . import Rng, aes
from ._tl import int_to_be, read_tl_bytes_len, tl_bytes

__all__ = [
    "DecodedInnerData",
    "Envelope",
    "RsaPrivateKey",
    "RsaKeysSpec",
    "RsaPublicKey",
    "TELEGRAM_LEGACY_KEYS",
    "TELEGRAM_PRODUCTION_KEYS",
    "TELEGRAM_TEST_KEYS",
    "decode_inner_data",
    "decrypt_inner_data",
    "encrypt_legacy",
    "encrypt_rsa_pad",
    "fingerprint",
    "p_q_inner_data_len",
    "rsa_keys_from_user",
]


# RSA_PAD sizes (spec §5.4)
_PAD_DATA_MAX: Final = 144
_PAD_TOTAL: Final = 192
# legacy envelope: SHA1 (20) + data + padding = 255 bytes
_LEGACY_TOTAL: Final = 255
_LEGACY_DATA_MAX: Final = _LEGACY_TOTAL - 20


def fingerprint(n: int, e: int) -> int:
    """Telegram's fingerprint of the key (n, e): spec §6.1."""
    digest = sha1(tl_bytes(int_to_be(n)) + tl_bytes(int_to_be(e))).digest()
    return int.from_bytes(digest[12:20], "little", signed=True)


def _fp_repr(fp: int) -> str:
    return f"{fp & 0xFFFFFFFFFFFFFFFF:#018x}"


@attrs.frozen(repr=False)
class RsaPublicKey:
    """An RSA public key (n, e) with its Telegram fingerprint (signed int64)."""

    n: int
    e: int
    fingerprint: int = attrs.field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.n < 3 or self.e < 3:
            raise ValueError("not an RSA public key")
        object.__setattr__(self, "fingerprint", fingerprint(self.n, self.e))

    def __repr__(self) -> str:
        return f"RsaPublicKey(fingerprint={_fp_repr(self.fingerprint)}, bits={self.n.bit_length()})"

    @property
    def size(self) -> int:
        """Modulus length in bytes (256 for the 2048-bit keys MTProto uses)."""
        return (self.n.bit_length() + 7) // 8

    @classmethod
    def from_pem(cls, pem: str | bytes) -> RsaPublicKey:
        """Parse a PKCS#1 (``BEGIN RSA PUBLIC KEY``) or PKIX (``BEGIN PUBLIC KEY``) PEM."""
        data = pem.encode("ascii") if isinstance(pem, str) else bytes(pem)
        key = serialization.load_pem_public_key(data.strip() + b"\n")
        if not isinstance(key, _crsa.RSAPublicKey):
            raise ValueError("PEM does not hold an RSA public key")
        numbers = key.public_numbers()
        return cls(numbers.n, numbers.e)

    def _crypto_key(self) -> _crsa.RSAPublicKey:
        return _crsa.RSAPublicNumbers(self.e, self.n).public_key()

    def to_pkcs1_pem(self) -> str:
        """``-----BEGIN RSA PUBLIC KEY-----`` PEM (the form Telegram clients embed)."""
        return (
            self._crypto_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
            .decode("ascii")
        )

    def to_pkix_pem(self) -> str:
        """``-----BEGIN PUBLIC KEY-----`` (SubjectPublicKeyInfo) PEM."""
        return (
            self._crypto_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def encrypt_raw(self, block: bytes) -> bytes:
        """Textbook RSA: ``int_be(block)^e mod n`` as ``size`` big-endian bytes.

        ``ValueError`` if the block is longer than the modulus or not below ``n``.
        """
        if len(block) > self.size:
            raise ValueError(f"RSA block of {len(block)} bytes for a {self.size}-byte key")
        m = int.from_bytes(block, "big")
        if m >= self.n:
            raise ValueError("RSA block is not below the modulus")
        return pow(m, self.e, self.n).to_bytes(self.size, "big")


@attrs.frozen(repr=False)
class RsaPrivateKey:
    """An RSA private key.  Decryption uses the CRT.  The repr never shows secret values."""

    n: int
    e: int
    d: int
    p: int
    q: int
    dmp1: int = attrs.field(init=False, eq=False)
    dmq1: int = attrs.field(init=False, eq=False)
    iqmp: int = attrs.field(init=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.p * self.q != self.n:
            raise ValueError("p * q != n")
        object.__setattr__(self, "dmp1", self.d % (self.p - 1))
        object.__setattr__(self, "dmq1", self.d % (self.q - 1))
        object.__setattr__(self, "iqmp", pow(self.q, -1, self.p))

    def __repr__(self) -> str:
        return (
            f"RsaPrivateKey(fingerprint={_fp_repr(self.public_key.fingerprint)}, "
            f"bits={self.n.bit_length()})"
        )

    @property
    def public_key(self) -> RsaPublicKey:
        return RsaPublicKey(self.n, self.e)

    @property
    def fingerprint(self) -> int:
        return self.public_key.fingerprint

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8

    @classmethod
    def generate(cls, bits: int = 2048, *, public_exponent: int = 65537) -> RsaPrivateKey:
        """A new key pair from ``cryptography`` (OpenSSL's RNG), e = 65537 by default.

        MTProto needs 2048 bits (the envelopes are 256 bytes); smaller sizes are for tests.
        """
        key = _crsa.generate_private_key(public_exponent=public_exponent, key_size=bits)
        return cls._from_crypto(key)

    @classmethod
    def _from_crypto(cls, key: _crsa.RSAPrivateKey) -> RsaPrivateKey:
        priv = key.private_numbers()
        pub = priv.public_numbers
        return cls(n=pub.n, e=pub.e, d=priv.d, p=priv.p, q=priv.q)

    @classmethod
    def from_pem(cls, pem: str | bytes) -> RsaPrivateKey:
        """Parse an unencrypted PKCS#1 (``BEGIN RSA PRIVATE KEY``) or PKCS#8 PEM."""
        data = pem.encode("ascii") if isinstance(pem, str) else bytes(pem)
        key = serialization.load_pem_private_key(data.strip() + b"\n", password=None)
        if not isinstance(key, _crsa.RSAPrivateKey):
            raise ValueError("PEM does not hold an RSA private key")
        return cls._from_crypto(key)

    def to_pkcs1_pem(self) -> str:
        """``-----BEGIN RSA PRIVATE KEY-----`` PEM, unencrypted."""
        numbers = _crsa.RSAPrivateNumbers(
            p=self.p,
            q=self.q,
            d=self.d,
            dmp1=self.dmp1,
            dmq1=self.dmq1,
            iqmp=self.iqmp,
            public_numbers=_crsa.RSAPublicNumbers(self.e, self.n),
        )
        return (
            numbers.private_key()
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
            .decode("ascii")
        )

    def decrypt_raw(self, block: bytes) -> bytes:
        """Textbook RSA: ``int_be(block)^d mod n`` as ``size`` big-endian bytes (CRT).

        :class:`HandshakeSecurityError` if the block is not a value below ``n`` (it comes
        from the peer).
        """
        c = int.from_bytes(block, "big")
        if len(block) > self.size or c >= self.n:
            raise HandshakeSecurityError("RSA ciphertext is not below the modulus")
        m1 = pow(c, self.dmp1, self.p)
        m2 = pow(c, self.dmq1, self.q)
        h = self.iqmp * (m1 - m2) % self.p
        return (m2 + h * self.q).to_bytes(self.size, "big")


# --------------------------------------------------------------------------- envelopes


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _check_mtproto_key(key: RsaPublicKey) -> None:
    if key.size != 256:
        raise ValueError(f"MTProto envelopes need a 2048-bit RSA key, got {key.n.bit_length()} bits")


def encrypt_rsa_pad(data: bytes, key: RsaPublicKey, rng: Rng = os.urandom) -> bytes:
    """RSA_PAD envelope (spec §5.4): 256 bytes for ``req_DH_params.encrypted_data``.

    ``data`` (the serialized ``p_q_inner_data_dc``/``_temp_dc``) must be at most 144 bytes.
    ``rng`` is called for the 192-len(data) padding bytes, then 32 bytes of temp_key per attempt.
    """
    _check_mtproto_key(key)
    if len(data) > _PAD_DATA_MAX:
        raise ValueError(f"RSA_PAD data is {len(data)} bytes, at most {_PAD_DATA_MAX} allowed")
    data_with_padding = bytes(data) + rng(_PAD_TOTAL - len(data))
    if len(data_with_padding) != _PAD_TOTAL:
        raise ValueError("rng returned the wrong number of bytes")
    data_pad_reversed = data_with_padding[::-1]
    zero_iv = bytes(32)
    for _ in range(1000):
        temp_key = rng(32)
        if len(temp_key) != 32:
            raise ValueError("rng returned the wrong number of bytes")
        # the hash covers the NON-reversed padded data
        data_with_hash = data_pad_reversed + sha256(temp_key + data_with_padding).digest()
        aes_encrypted = aes.ige_encrypt(data_with_hash, temp_key, zero_iv)
        temp_key_xor = _xor(temp_key, sha256(aes_encrypted).digest())
        key_aes_encrypted = temp_key_xor + aes_encrypted
        if int.from_bytes(key_aes_encrypted, "big") < key.n:
            return key.encrypt_raw(key_aes_encrypted)
    raise ValueError("RSA_PAD: no temp_key gave a value below the modulus")  # pragma: no cover


def encrypt_legacy(data: bytes, key: RsaPublicKey, rng: Rng = os.urandom) -> bytes:
    """Legacy envelope (spec §5.4): ``RSA(SHA1(data) + data + padding)``, 255-byte block.

    Used with ``p_q_inner_data`` by Telethon and Pyrogram.  ``data`` at most 235 bytes.
    """
    _check_mtproto_key(key)
    if len(data) > _LEGACY_DATA_MAX:
        raise ValueError(f"legacy data is {len(data)} bytes, at most {_LEGACY_DATA_MAX} allowed")
    block = sha1(data).digest() + bytes(data) + rng(_LEGACY_DATA_MAX - len(data))
    if len(block) != _LEGACY_TOTAL:
        raise ValueError("rng returned the wrong number of bytes")
    return key.encrypt_raw(block)


# --------------------------------------------------------------------------- server side


# p_q_inner_data#83c95aec pq:string p:string q:string nonce:int128 server_nonce:int128 new_nonce:int256 = P_Q_inner_data;
# p_q_inner_data_dc#a9f55f95 ... new_nonce:int256 dc:int = P_Q_inner_data;
# p_q_inner_data_temp#3c6a84d4 ... new_nonce:int256 expires_in:int = P_Q_inner_data;
# p_q_inner_data_temp_dc#56fddf88 ... new_nonce:int256 dc:int expires_in:int = P_Q_inner_data;
_PQ_INNER_TAIL: Final[dict[int, int]] = {
    0x83C95AEC: 0,
    0xA9F55F95: 4,
    0x3C6A84D4: 4,
    0x56FDDF88: 8,
}


def p_q_inner_data_len(buf: bytes) -> int:
    """Serialized length of the boxed ``p_q_inner_data*`` object at the start of ``buf``.

    The default ``parse_len`` of :func:`decode_inner_data`.  ``ValueError`` if ``buf`` does not
    start with one of the four constructors or is too short.
    """
    if len(buf) < 4:
        raise ValueError("too short")
    tail = _PQ_INNER_TAIL.get(int.from_bytes(buf[0:4], "little"))
    if tail is None:
        raise ValueError("not a p_q_inner_data constructor")
    pos = 4
    for _ in range(3):  # pq, p, q
        pos = read_tl_bytes_len(buf, pos)
    pos += 16 + 16 + 32 + tail  # nonce, server_nonce, new_nonce, [dc], [expires_in]
    if pos > len(buf):
        raise ValueError("truncated p_q_inner_data")
    return pos


class Envelope(enum.Enum):
    """Which envelope carried ``req_DH_params.encrypted_data``."""

    LEGACY = "legacy"  # SHA1(data) + data + padding
    RSA_PAD = "rsa_pad"


@attrs.frozen
class DecodedInnerData:
    """Result of :func:`decode_inner_data`.

    ``data`` starts with the boxed TL object.  For LEGACY it is exactly the object (length
    checked by ``parse_len``); for RSA_PAD it is the 192 bytes ``data_with_padding``, the
    object followed by random padding (the SHA256 covers all of it).
    """

    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    envelope: Envelope


def decode_inner_data(
    encrypted: bytes,
    key: RsaPrivateKey,
    parse_len: Callable[[bytes], int] = p_q_inner_data_len,
) -> DecodedInnerData:
    """Server side of §5.4: decrypt ``encrypted_data``, detect the envelope, verify its hash.

    The legacy envelope is tried first (leading zero byte, then SHA1 over the ``parse_len``
    bytes of the TL object after the hash), then RSA_PAD (SHA256 check).  Raises
    :class:`~dcpool.errors.HandshakeSecurityError` if neither verifies, or if
    ``encrypted`` is not a 256-byte value below the modulus.
    """
    if len(encrypted) != 256 or key.size != 256:
        raise HandshakeSecurityError("encrypted_data must be 256 bytes for a 2048-bit key")
    m = key.decrypt_raw(encrypted)

    if m[0] == 0:
        body = m[21:]
        try:
            length = parse_len(body)
        except Exception:  # noqa: BLE001  any parse failure just means "not legacy"
            length = -1
        if 0 < length <= len(body) and sha1(body[:length]).digest() == m[1:21]:
            return DecodedInnerData(body[:length], Envelope.LEGACY)

    temp_key_xor, aes_encrypted = m[0:32], m[32:256]
    temp_key = _xor(temp_key_xor, sha256(aes_encrypted).digest())
    data_with_hash = aes.ige_decrypt(aes_encrypted, temp_key, bytes(32))
    data_with_padding = data_with_hash[0:_PAD_TOTAL][::-1]
    if sha256(temp_key + data_with_padding).digest() == data_with_hash[_PAD_TOTAL:]:
        return DecodedInnerData(data_with_padding, Envelope.RSA_PAD)

    raise HandshakeSecurityError("encrypted_data verifies as neither the legacy nor the RSA_PAD envelope")


def decrypt_inner_data(
    encrypted: bytes,
    key: RsaPrivateKey,
    parse_len: Callable[[bytes], int] = p_q_inner_data_len,
) -> bytes:
    """The contract's entry point: :func:`decode_inner_data` (...)``.data``.

    Returns bytes that start with one boxed TL object (a ``p_q_inner_data*``), possibly
    followed by padding.  Raises :class:`~dcpool.errors.HandshakeSecurityError`.
    """
    return decode_inner_data(encrypted, key, parse_len).data


# --------------------------------------------------------------------------- known keys

# spec §6.2: current production key (tdlib PublicRsaKeySharedMain.cpp, tdesktop), 0xd09d1d85de64fd85
_PRODUCTION_PEM = """\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEA6LszBcC1LGzyr992NzE0ieY+BSaOW622Aa9Bd4ZHLl+TuFQ4lo4g
5nKaMBwK/BIb9xUfg0Q29/2mgIR6Zr9krM7HjuIcCzFvDtr+L0GQjae9H0pRB2OO
62cECs5HKhT5DZ98K33vmWiLowc621dQuwKWSQKjWf50XYFw42h21P2KXUGyp2y/
+aEyZ+uVgLLQbRA1dEjSDZ2iGRy12Mk5gpYc397aYp438fsJoHIgJ2lgMv5h7WY9
t6N/byY9Nw9p21Og3AoXSL2q/2IJ1WRUhebgAdGVMlV1fkuOQoEzR7EdpqtQD9Cs
5+bfo3Nhmcyvk5ftB0WkJ9z6bNZ7yxrP8wIDAQAB
-----END RSA PUBLIC KEY-----
"""

# spec §6.2: test-DC key (tdlib, tdesktop), 0xb25898df208d2603
_TEST_PEM = """\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAyMEdY1aR+sCR3ZSJrtztKTKqigvO/vBfqACJLZtS7QMgCGXJ6XIR
yy7mx66W0/sOFa7/1mAZtEoIokDP3ShoqF4fVNb6XeqgQfaUHd8wJpDWHcR2OFwv
plUUI1PLTktZ9uW2WE23b+ixNwJjJGwBDJPQEQFBE+vfmH0JP503wr5INS1poWg/
j25sIWeYPHYeOrFp/eXaqhISP6G+q2IeTaWTXpwZj4LzXq5YOpk4bYEQ6mvRq7D1
aHWfYmlEGepfaYR8Q0YqvvhYtMte3ITnuSJs171+GDqpdKcSwHnd6FudwGO4pcCO
j4WcDuXc2CTHgH8gFTNhp/Y8/SpDOhvn9QIDAQAB
-----END RSA PUBLIC KEY-----
"""

# Older test-DC key (earlier tdlib releases used it for is_test; also the key of tdlib's
# TEST(Mtproto, RSA), spec §19 V8), 0x9692106da14b9f02
_OLD_TEST_PEM = """\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAr4v4wxMDXIaMOh8bayF/NyoYdpcysn5EbjTIOZC0RkgzsRj3SGlu
52QSz+ysO41dQAjpFLgxPVJoOlxXokaOq827IfW0bGCm0doT5hxtedu9UCQKbE8j
lDOk+kWMXHPZFJKWRgKgTu9hcB3y3Vk+JFfLpq3d5ZB48B4bcwrRQnzkx5GhWOFX
x73ZgjO93eoQ2b/lDyXxK4B4IS+hZhjzezPZTI5upTRbs5ljlApsddsHrKk6jJNj
8Ygs/ps8e6ct82jLXbnndC9s8HjEvDvBPH9IPjv5JUlmHMBFZ5vFQIfbpo0u0+1P
n6bkEi5o7/ifoyVv2pAZTRwppTz0EuXD8QIDAQAB
-----END RSA PUBLIC KEY-----
"""

# spec §6.2 legacy keys, as embedded by Telethon (telethon/crypto/rsa.py: 4 "new", 4 "old").
_LEGACY_PEMS = (
    # 0x0bc35f3509f7b7a5 (offered by the servers; Telethon "new", Pyrogram "#2")
    """\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAruw2yP/BCcsJliRoW5eBVBVle9dtjJw+OYED160Wybum9SXtBBLX
riwt4rROd9csv0t0OHCaTmRqBcQ0J8fxhN6/cpR1GWgOZRUAiQxoMnlt0R93LCX/
j1dnVa/gVbCjdSxpbrfY2g2L4frzjJvdl84Kd9ORYjDEAyFnEA7dD556OptgLQQ2
e2iVNq8NZLYTzLp5YpOdO1doK+ttrltggTCy5SrKeLoCPPbOgGsdxJxyz5KKcZnS
Lj16yE5HvJQn0CNpRdENvRUXe6tBP78O39oJ8BTHp9oIjd6XWXAsp2CvK45Ol8wF
XGF710w9lwCGNbmNxNYhtIkdqfsEcwR5JwIDAQAB
-----END RSA PUBLIC KEY-----
""",
    # 0x15ae5fa8b5529542
    """\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAvfLHfYH2r9R70w8prHblWt/nDkh+XkgpflqQVcnAfSuTtO05lNPs
pQmL8Y2XjVT4t8cT6xAkdgfmmvnvRPOOKPi0OfJXoRVylFzAQG/j83u5K3kRLbae
7fLccVhKZhY46lvsueI1hQdLgNV9n1cQ3TDS2pQOCtovG4eDl9wacrXOJTG2990V
jgnIKNA0UMoP+KF03qzryqIt3oTvZq03DyWdGK+AZjgBLaDKSnC6qD2cFY81UryR
WOab8zKkWAnhw2kFpcqhI0jdV5QaSCExvnsjVaX0Y1N0870931/5Jb9ICe4nweZ9
kSDF/gip3kWLG0o8XQpChDfyvsqB9OLV/wIDAQAB
-----END RSA PUBLIC KEY-----
""",
    # 0xaeae98e13cd7f94f
    """\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAs/ditzm+mPND6xkhzwFIz6J/968CtkcSE/7Z2qAJiXbmZ3UDJPGr
zqTDHkO30R8VeRM/Kz2f4nR05GIFiITl4bEjvpy7xqRDspJcCFIOcyXm8abVDhF+
th6knSU0yLtNKuQVP6voMrnt9MV1X92LGZQLgdHZbPQz0Z5qIpaKhdyA8DEvWWvS
Uwwc+yi1/gGaybwlzZwqXYoPOhwMebzKUk0xW14htcJrRrq+PXXQbRzTMynseCoP
Ioke0dtCodbA3qQxQovE16q9zz4Otv2k4j63cz53J+mhkVWAeWxVGI0lltJmWtEY
K6er8VqqWot3nqmWMXogrgRLggv/NbbooQIDAQAB
-----END RSA PUBLIC KEY-----
""",
    # 0x5a181b2235057d98
    """\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAvmpxVY7ld/8DAjz6F6q05shjg8/4p6047bn6/m8yPy1RBsvIyvuD
uGnP/RzPEhzXQ9UJ5Ynmh2XJZgHoE9xbnfxL5BXHplJhMtADXKM9bWB11PU1Eioc
3+AXBB8QiNFBn2XI5UkO5hPhbb9mJpjA9Uhw8EdfqJP8QetVsI/xrCEbwEXe0xvi
fRLJbY08/Gp66KpQvy7g8w7VB8wlgePexW3pT13Ap6vuC+mQuJPyiHvSxjEKHgqe
Pji9NP3tJUFQjcECqcm0yV7/2d0t/pbCm+ZH1sadZspQCEPPrtbkQBlvHb4OLiIW
PGHKSMeRFvp3IWcmdJqXahxLCUS1Eh6MAQIDAQAB
-----END RSA PUBLIC KEY-----
""",
    # 0xc3b42b026ce86b21 (old key, still offered by the servers)
    """\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAwVACPi9w23mF3tBkdZz+zwrzKOaaQdr01vAbU4E1pvkfj4sqDsm6
lyDONS789sVoD/xCS9Y0hkkC3gtL1tSfTlgCMOOul9lcixlEKzwKENj1Yz/s7daS
an9tqw3bfUV/nqgbhGX81v/+7RFAEd+RwFnK7a+XYl9sluzHRyVVaTTveB2GazTw
Efzk2DWgkBluml8OREmvfraX3bkHZJTKX4EQSjBbbdJ2ZXIsRrYOXfaA+xayEGB+
8hdlLmAjbCVfaigxX0CDqWeR1yFL9kwd9P0NsZRPsmoqVwMbMu7mStFai6aIhc3n
Slv8kg9qv1m6XHVQY3PnEw+QQtqSIXklHwIDAQAB
-----END RSA PUBLIC KEY-----
""",
    # 0x9a996a1db11c729b
    """\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAxq7aeLAqJR20tkQQMfRn+ocfrtMlJsQ2Uksfs7Xcoo77jAid0bRt
ksiVmT2HEIJUlRxfABoPBV8wY9zRTUMaMA654pUX41mhyVN+XoerGxFvrs9dF1Ru
vCHbI02dM2ppPvyytvvMoefRoL5BTcpAihFgm5xCaakgsJ/tH5oVl74CdhQw8J5L
xI/K++KJBUyZ26Uba1632cOiq05JBUW0Z2vWIOk4BLysk7+U9z+SxynKiZR3/xdi
XvFKk01R3BHV+GUKM2RYazpS/P8v7eyKhAbKxOdRcFpHLlVwfjyM1VlDQrEZxsMp
NTLYXb6Sce1Uov0YtNx5wEowlREH1WOTlwIDAQAB
-----END RSA PUBLIC KEY-----
""",
    # 0xb05b2a6f70cdea78
    """\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAsQZnSWVZNfClk29RcDTJQ76n8zZaiTGuUsi8sUhW8AS4PSbPKDm+
DyJgdHDWdIF3HBzl7DHeFrILuqTs0vfS7Pa2NW8nUBwiaYQmPtwEa4n7bTmBVGsB
1700/tz8wQWOLUlL2nMv+BPlDhxq4kmJCyJfgrIrHlX8sGPcPA4Y6Rwo0MSqYn3s
g1Pu5gOKlaT9HKmE6wn5Sut6IiBjWozrRQ6n5h2RXNtO7O2qCDqjgB2vBxhV7B+z
hRbLbCmW0tYMDsvPpX5M8fsO05svN+lKtCAuz1leFns8piZpptpSCFn7bWxiA9/f
x5x17D7pfah3Sy2pA+NDXyzSlGcKdaUmwQIDAQAB
-----END RSA PUBLIC KEY-----
""",
    # 0x71e025b6c76033e3
    """\
-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAwqjFW0pi4reKGbkc9pK83Eunwj/k0G8ZTioMMPbZmW99GivMibwa
xDM9RDWabEMyUtGoQC2ZcDeLWRK3W8jMP6dnEKAlvLkDLfC4fXYHzFO5KHEqF06i
qAqBdmI1iBGdQv/OQCBcbXIWCGDY2AsiqLhlGQfPOI7/vvKc188rTriocgUtoTUc
/n/sIUzkgwTqRyvWYynWARWzQg0I9olLBBC2q5RQJJlnYXZwyTL3y9tdb7zOHkks
WV9IMQmZmyZh/N7sMbGWQpt4NMchGpPGeJ2e5gHBjDnlIf2p1yZOYeUYrdbwcS0t
UiggS4UeE8TzIuXFQxw7fzEIlmhIaq3FnwIDAQAB
-----END RSA PUBLIC KEY-----
""",
)


def _key_dict(*pems: str) -> dict[int, RsaPublicKey]:
    keys = [RsaPublicKey.from_pem(pem) for pem in pems]
    return {k.fingerprint: k for k in keys}


#: The current production key only (what tdlib/tdesktop use): {fingerprint: key}.
TELEGRAM_PRODUCTION_KEYS: Final[dict[int, RsaPublicKey]] = _key_dict(_PRODUCTION_PEM)
#: Test-DC keys: the current one (0xb25898df208d2603) and the older one (0x9692106da14b9f02).
TELEGRAM_TEST_KEYS: Final[dict[int, RsaPublicKey]] = _key_dict(_TEST_PEM, _OLD_TEST_PEM)
#: The eight legacy production keys of spec §6.2 (Telethon's "new" and "old" lists).
TELEGRAM_LEGACY_KEYS: Final[dict[int, RsaPublicKey]] = _key_dict(*_LEGACY_PEMS)


# --------------------------------------------------------------------------- user input

#: What ``open_pool(rsa_keys=...)`` accepts: ``{fingerprint: RsaPublicKey}``; one PEM (``str`` or
#: ``bytes``; PKCS#1 ``BEGIN RSA PUBLIC KEY`` or SPKI ``BEGIN PUBLIC KEY``, several blocks
#: allowed); an :class:`RsaPublicKey`; or a list mixing keys and PEMs.
RsaKeysSpec: TypeAlias = (
    Mapping[int, RsaPublicKey] | RsaPublicKey | str | bytes | Iterable[RsaPublicKey | str | bytes]
)

_U64: Final = (1 << 64) - 1
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", re.DOTALL)


def rsa_keys_from_user(spec: RsaKeysSpec) -> dict[int, RsaPublicKey]:
    """Turn any accepted ``rsa_keys=`` form into ``{fingerprint: key}`` (the handshake looks
    keys up by the fingerprints the server offers, spec §6.1).

    Pure; the pool calls it once.  Raises :class:`~dcpool.errors.ConfigError` on an empty
    input, a PEM that holds no RSA public key (a private key is refused too: it does not
    belong in a client), or a mapping whose key is not the fingerprint of its value.
    """
    keys: list[RsaPublicKey] = []
    if isinstance(spec, Mapping):
        for fp, key in spec.items():
            if not isinstance(key, RsaPublicKey):
                raise ConfigError(f"rsa_keys[{fp!r}] is {type(key).__name__}, not an RsaPublicKey")
            # signed (as on the wire) or its unsigned 64-bit spelling (as people print it)
            if not isinstance(fp, int) or fp & _U64 != key.fingerprint & _U64:
                raise ConfigError(
                    f"rsa_keys key {fp!r} is not the fingerprint of its key ({key!r})"
                )
            keys.append(key)
    elif isinstance(spec, (RsaPublicKey, str, bytes, bytearray)):
        keys.extend(_keys_of(spec))
    else:
        try:
            items = list(spec)
        except TypeError:
            raise ConfigError(
                f"rsa_keys must be PEM text, RsaPublicKey(s) or {{fingerprint: key}},"
                f" not {type(spec).__name__}"
            ) from None
        for item in items:
            keys.extend(_keys_of(item))
    if not keys:
        raise ConfigError("rsa_keys holds no key")
    return {key.fingerprint: key for key in keys}


def _keys_of(item: Any) -> list[RsaPublicKey]:
    if isinstance(item, RsaPublicKey):
        return [item]
    if isinstance(item, str):
        item = item.encode("ascii", "replace")
    if not isinstance(item, (bytes, bytearray)):
        raise ConfigError(f"an rsa_keys entry is {type(item).__name__}, not PEM text or RsaPublicKey")
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(bytes(item))]
    if not blocks:
        raise ConfigError("an rsa_keys entry is not PEM text (no BEGIN/END block)")
    out = []
    for block in blocks:
        try:
            out.append(RsaPublicKey.from_pem(block))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            kind = block.split(b"-----")[1].decode("ascii", "replace")
            raise ConfigError(f"rsa_keys: the {kind} block is not an RSA public key ({exc})") from None
    return out
