"""Diffie-Hellman parameters and the checks of the security guidelines (spec §5.7).

Theory of operation
-------------------
The handshake's DH group is a 2048-bit safe prime ``p`` (``(p-1)/2`` prime) and a small
generator ``g``.  Both sides must verify what the other sends:

1. :func:`check_dh_params` — ``2^2047 < p < 2^2048``, ``p`` is a safe prime, ``g`` in 2..7 and
   a quadratic residue mod p (so that g generates the subgroup of order (p-1)/2, which has no
   small subgroups).  The residue condition is the table of §5.7 (quadratic reciprocity).
   Failures raise :class:`~dcpool.errors.BadDhPrime` / :class:`~dcpool.errors.BadDhG`.
2. :func:`check_g_x` — ``1 < g_x < p-1`` and ``2^(2048-64) <= g_x <= p - 2^(2048-64)`` for g_a
   and g_b.  Failure raises :class:`~dcpool.errors.BadDhValue`.

:func:`is_safe_prime` answers True at once for Telegram's prime (:data:`TELEGRAM_DH_PRIME`, the
only prime real servers send and the only one Pyrogram accepts) and caches every other verdict.
For an unknown prime it runs Miller-Rabin on ``q = (p-1)/2`` (13 fixed + ``rounds`` ≥ 15
hash-derived bases) and then proves ``p`` prime with Pocklington's criterion: since ``p - 1 =
2q`` with ``q`` prime and ``q > sqrt(p)``, ``a^(p-1) ≡ 1 (mod p)`` together with
``gcd(a^2 - 1, p) = 1`` shows ``p`` is prime.  That is stronger than Miller-Rabin on ``p`` and
costs one exponentiation; a base-2 Fermat test on ``p`` runs first to reject random
composites cheaply.

:func:`generate_secret` draws a 2048-bit exponent from the caller's ``rng`` and redraws until
``g^x mod p`` passes :func:`check_g_x` (spec §5.7 item 4: the server must regenerate ``a``).
"""

from __future__ import annotations

from collections.abc import Callable
from math import gcd
from typing import Final

from ..errors import BadDhG, BadDhPrime, BadDhValue
from .factorize import is_probable_prime

__all__ = [
    "TELEGRAM_DH_PRIME",
    "auth_key_from_int",
    "check_dh_params",
    "check_g",
    "check_g_x",
    "generate_secret",
    "is_safe_prime",
]

#: Telegram's 2048-bit safe prime, big-endian hex as in spec §5.7.
TELEGRAM_DH_PRIME: Final[int] = int(
    "C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F"
    "48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C37"
    "20FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64"
    "2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4"
    "A4A695811051907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754"
    "FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4"
    "E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F"
    "0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B",
    16,
)

_LOW: Final = 1 << 2047
_HIGH: Final = 1 << 2048
# §5.7 item 4: the window for g_a/g_b.
_WINDOW: Final = 1 << (2048 - 64)
_MIN_ROUNDS: Final = 15

# Verdicts of is_safe_prime, keyed by prime; seeded with the known-good prime.
_safe_cache: dict[int, bool] = {TELEGRAM_DH_PRIME: True}


def is_safe_prime(p: int, rounds: int = 20, *, use_cache: bool = True) -> bool:
    """True if ``p`` and ``(p-1)/2`` are both prime (see the module docstring).

    ``rounds`` (at least 15, §5.7) hash-derived Miller-Rabin bases are used on ``(p-1)/2``
    beyond the 13 fixed ones.  Verdicts are cached unless ``use_cache`` is False.
    """
    if use_cache:
        cached = _safe_cache.get(p)
        if cached is not None:
            return cached
    verdict = _is_safe_prime(p, max(rounds, _MIN_ROUNDS))
    if use_cache:
        if len(_safe_cache) > 64:  # a hostile peer must not grow this without bound
            _safe_cache.clear()
            _safe_cache[TELEGRAM_DH_PRIME] = True
        _safe_cache[p] = verdict
    return verdict


def _is_safe_prime(p: int, rounds: int) -> bool:
    if p < 7 or p % 2 == 0:
        return p == 5
    # Cheap rejection of random composites before the expensive test on q.
    if pow(2, p - 1, p) != 1:
        return False
    q = (p - 1) // 2
    if not is_probable_prime(q, rounds):
        return False
    # Pocklington with the prime q > sqrt(p): find a with a^(p-1) = 1 and gcd(a^2 - 1, p) = 1.
    for a in range(2, 100):
        if pow(a, p - 1, p) != 1:
            return False
        if gcd(a * a - 1, p) == 1:
            return True
    return False  # pragma: no cover  (would need p to share a factor with every a^2-1)


def check_g(g: int, dh_prime: int) -> None:
    """g in 2..7 and a quadratic residue mod ``dh_prime`` (table of §5.7); else BadDhG."""
    if not 2 <= g <= 7:
        raise BadDhG(f"g = {g} is outside 2..7")
    p = dh_prime
    ok = {
        2: p % 8 == 7,
        3: p % 3 == 2,
        4: True,
        5: p % 5 in (1, 4),
        6: p % 24 in (19, 23),
        7: p % 7 in (3, 5, 6),
    }[g]
    if not ok:
        raise BadDhG(f"g = {g} does not generate the prime-order subgroup of this dh_prime")


def check_dh_params(g: int, dh_prime: int) -> None:
    """All of §5.7 items 1-2 (and 1 < g < p-1 of item 3).  Raises BadDhPrime or BadDhG."""
    if not _LOW < dh_prime < _HIGH:
        raise BadDhPrime(f"dh_prime has {dh_prime.bit_length()} bits, expected 2048")
    if not is_safe_prime(dh_prime):
        raise BadDhPrime("dh_prime is not a safe prime")
    check_g(g, dh_prime)


def check_g_x(g_x: int, dh_prime: int) -> None:
    """§5.7 items 3-4 for g_a / g_b: 1 < g_x < p-1 and 2^1984 <= g_x <= p - 2^1984.

    Raises BadDhValue.
    """
    if not 1 < g_x < dh_prime - 1:
        raise BadDhValue("g_a/g_b is outside (1, dh_prime - 1)")
    if not _WINDOW <= g_x <= dh_prime - _WINDOW:
        raise BadDhValue("g_a/g_b is outside [2^1984, dh_prime - 2^1984]")


def generate_secret(
    g: int, dh_prime: int, rng: Callable[[int], bytes]
) -> tuple[int, int]:
    """A fresh 2048-bit secret ``x`` and ``g^x mod dh_prime`` that passes :func:`check_g_x`
    (redrawn until it does; spec §5.7 item 5 wants a secure ``rng``)."""
    for _ in range(1000):
        secret = int.from_bytes(rng(256), "big")
        if secret < 2:
            continue
        g_x = pow(g, secret, dh_prime)
        try:
            check_g_x(g_x, dh_prime)
        except BadDhValue:
            continue
        return secret, g_x
    raise ValueError("rng keeps producing unusable DH secrets")


def auth_key_from_int(value: int) -> bytes:
    """The DH result as the 256-byte big-endian auth_key, left-padded with zeros (§4.1)."""
    if not 0 <= value < _HIGH:
        raise ValueError("DH result does not fit in 2048 bits")
    return value.to_bytes(256, "big")
