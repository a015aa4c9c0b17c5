"""Telegram's 2FA password check, SRP-6a with a PBKDF2 stretch: both sides, pure functions.

Theory of operation (spec LOGIN.md §1.3-§1.6; core.telegram.org/api/srp)
-----------------------------------------------------------------------
Notation: ``H`` = SHA-256, ``SH(data, salt) = H(salt | data | salt)``, ``pad(n)`` = n as 256
big-endian bytes.  Every number that goes into a hash is ``pad``-ded; salts and the password
(UTF-8, not normalised) are hashed as raw bytes.

* ``x = PH2(password) = SH(PBKDF2-HMAC-SHA512(SH(SH(password, salt1), salt2), salt1, 100000),
  salt2)`` (:func:`password_hash`), ``v = g^x mod p`` (:func:`verifier`, what the server keeps;
  the client sends ``pad(v)`` as ``new_password_hash`` when it sets a password).
* ``k = H(pad(p) | pad(g))`` (:func:`multiplier`).
* Server challenge: random ``b``; ``srp_B = (k·v + g^b) mod p`` (:func:`server_challenge`),
  with ``g^b`` redrawn until it lies in [2^1984, p − 2^1984] (§1.5).
* Client: random ``a``; ``A = g^a mod p``; ``u = H(pad(A) | pad(B))``;
  ``S = (B − k·v)^(a + u·x) mod p`` (exponent not reduced); ``K = H(pad(S))``;
  ``M1 = H(H(pad(p)) xor H(pad(g)) | H(salt1) | H(salt2) | pad(A) | pad(B) | K)``
  (:func:`client_check`).
* Server: ``S = (A · v^u)^b mod p``, the same ``K`` and ``M1``, compared in constant time
  (:func:`server_verify`).  No server proof is returned; success is the method's result.

Client-side checks (§1.5, Telethon's and tdlib's): p a 2048-bit safe prime and g a valid
generator (:func:`dcpool.crypto.dh.check_dh_params`), ``0 < B < p``, and ``g_b = B − k·v``
inside the 2^1984 window; ``a`` is redrawn until ``A`` passes the same window and ``u ≠ 0``.
Server-side, ``A`` must satisfy ``1 < A < p − 1`` (SRP hygiene, §1.6 step 3).

Nothing here logs, and no error message carries the password, ``x``, ``v`` or a secret
exponent.  Randomness only comes in through ``rng`` arguments.
"""

from __future__ import annotations

import hashlib
import hmac

import attrs

from ..errors import BadDhValue
from . import Rng
from .dh import TELEGRAM_DH_PRIME, check_dh_params, check_g_x

__all__ = [
    "SRP_G",
    "SRP_P",
    "PBKDF2_ITERATIONS",
    "SrpCheck",
    "ServerChallenge",
    "pad",
    "password_hash",
    "verifier",
    "check_group",
    "multiplier",
    "server_challenge",
    "client_check",
    "compute_m1",
    "server_verify",
]

#: The group every Telegram server sends (spec §1.5: g = 3 with the §5.7 prime).
SRP_G = 3
SRP_P = TELEGRAM_DH_PRIME
PBKDF2_ITERATIONS = 100_000
_SIZE = 256
_WINDOW = 1 << (2048 - 64)


def pad(n: int) -> bytes:
    """``n`` big-endian in exactly 256 bytes (spec §1.3)."""
    return n.to_bytes(_SIZE, "big")


def _h(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def _sh(data: bytes, salt: bytes) -> bytes:
    return _h(salt, data, salt)


def _password_bytes(password: str | bytes) -> bytes:
    return password.encode("utf-8") if isinstance(password, str) else bytes(password)


def password_hash(password: str | bytes, salt1: bytes, salt2: bytes) -> bytes:
    """PH2 (32 bytes), read as the big-endian integer x (spec §1.3)."""
    ph1 = _sh(_sh(_password_bytes(password), salt1), salt2)
    stretched = hashlib.pbkdf2_hmac("sha512", ph1, salt1, PBKDF2_ITERATIONS)
    return _sh(stretched, salt2)


def check_group(g: int, p: int) -> None:
    """The client's checks of a server's SRP group (§1.5): BadDhPrime / BadDhG."""
    check_dh_params(g, p)


def verifier(password: str | bytes, salt1: bytes, salt2: bytes, g: int = SRP_G, p: int = SRP_P) -> bytes:
    """``pad(g^x mod p)``: the server's verifier v, and the client's ``new_password_hash``."""
    x = int.from_bytes(password_hash(password, salt1, salt2), "big")
    return pad(pow(g, x, p))


def multiplier(g: int = SRP_G, p: int = SRP_P) -> int:
    """``k = H(pad(p) | pad(g))`` (spec §1.4 step 3)."""
    return int.from_bytes(_h(pad(p), pad(g)), "big")


def _u(a_pub: int, b_pub: int) -> int:
    return int.from_bytes(_h(pad(a_pub), pad(b_pub)), "big")


def compute_m1(g: int, p: int, salt1: bytes, salt2: bytes, a_pub: int, b_pub: int, s: int) -> bytes:
    """``M1 = H(H(pad(p)) xor H(pad(g)) | H(salt1) | H(salt2) | pad(A) | pad(B) | H(pad(S)))``."""
    hp, hg = _h(pad(p)), _h(pad(g))
    xor = bytes(x ^ y for x, y in zip(hp, hg))
    return _h(xor, _h(salt1), _h(salt2), pad(a_pub), pad(b_pub), _h(pad(s)))


@attrs.frozen(repr=False)
class SrpCheck:
    """What the client sends: ``inputCheckPasswordSRP(srp_id, A, M1)``."""

    srp_id: int
    A: bytes
    M1: bytes

    def __repr__(self) -> str:  # A and M1 are derived from the password: keep them out of logs
        return f"<SrpCheck srp_id={self.srp_id}>"


@attrs.frozen(repr=False)
class ServerChallenge:
    """One ``account.getPassword`` challenge: the secret ``b`` and ``srp_B = pad(B)``."""

    b: int
    B: bytes

    def __repr__(self) -> str:
        return "<ServerChallenge>"


def server_challenge(v: bytes, rng: Rng, g: int = SRP_G, p: int = SRP_P) -> ServerChallenge:
    """A fresh ``b`` and ``srp_B = (k·v + g^b) mod p`` with ``g^b`` in the 2^1984 window and
    ``srp_B ≠ 0`` (spec §1.5 "consequences for an emulator")."""
    k_v = multiplier(g, p) * int.from_bytes(v, "big") % p
    for _ in range(1000):
        b = int.from_bytes(rng(_SIZE), "big")
        g_b = pow(g, b, p)
        if not _WINDOW <= g_b <= p - _WINDOW:
            continue
        big_b = (k_v + g_b) % p
        if big_b:
            return ServerChallenge(b=b, B=pad(big_b))
    raise ValueError("rng keeps producing unusable SRP secrets")


def client_check(
    password: str | bytes,
    *,
    srp_id: int,
    srp_B: bytes,
    salt1: bytes,
    salt2: bytes,
    g: int = SRP_G,
    p: int = SRP_P,
    rng: Rng,
) -> SrpCheck:
    """The client's answer to one challenge (spec §1.4 steps 1-11, checks of §1.5).

    Raises BadDhPrime/BadDhG for a bad group and BadDhValue for a bad ``srp_B``."""
    check_dh_params(g, p)
    b_pub = int.from_bytes(srp_B, "big")
    if not 0 < b_pub < p or len(srp_B) > _SIZE:
        raise BadDhValue("srp_B is outside (0, p)")
    x = int.from_bytes(password_hash(password, salt1, salt2), "big")
    k_v = multiplier(g, p) * pow(g, x, p) % p
    g_b = (b_pub - k_v) % p
    check_g_x(g_b, p)
    for _ in range(1000):
        a = int.from_bytes(rng(_SIZE), "big")
        a_pub = pow(g, a, p)
        if not _WINDOW <= a_pub <= p - _WINDOW:
            continue
        u = _u(a_pub, b_pub)
        if u == 0:
            continue
        s = pow(g_b, a + u * x, p)
        m1 = compute_m1(g, p, salt1, salt2, a_pub, b_pub, s)
        return SrpCheck(srp_id=srp_id, A=pad(a_pub), M1=m1)
    raise ValueError("rng keeps producing unusable SRP secrets")


def server_verify(
    *,
    v: bytes,
    challenge: ServerChallenge,
    A: bytes,
    M1: bytes,
    salt1: bytes,
    salt2: bytes,
    g: int = SRP_G,
    p: int = SRP_P,
) -> bool:
    """True if ``M1`` proves knowledge of the password behind ``v`` (spec §1.6 steps 3-4)."""
    a_pub = int.from_bytes(A, "big")
    if len(A) > _SIZE or not 1 < a_pub < p - 1:
        return False
    b_pub = int.from_bytes(challenge.B, "big")
    u = _u(a_pub, b_pub)
    s = pow(a_pub * pow(int.from_bytes(v, "big"), u, p) % p, challenge.b, p)
    expected = compute_m1(g, p, salt1, salt2, a_pub, b_pub, s)
    return hmac.compare_digest(expected, bytes(M1))
