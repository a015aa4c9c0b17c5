"""Factorisation of the handshake's ``pq`` (spec §5.3) and a deterministic primality test.

Theory of operation
-------------------
The server sends ``pq``, a product of two distinct primes of about 32 bits each (pq < 2^64); the
client must return ``p < q``.  This is the proof of work of the handshake.

1. Tiny factors are removed by trial division (so 15, 378221 = 613 * 617 and even numbers are
   immediate).
2. Otherwise Pollard's rho in Brent's variant finds a factor: iterate ``y -> y^2 + c (mod n)``,
   compare against a saved point whose index doubles (Brent's cycle finding, one squaring per
   step instead of three), and batch ``m`` differences into one product so that only one gcd is
   taken per batch.  If a batch overshoots (gcd == n) the batch is replayed one step at a time
   from its saved start.  A failed ``c`` is replaced by the next one; the sequence of ``c`` and
   starting points is fixed, so the function is deterministic (no randomness, spec rules).
   For 64-bit pq this takes about sqrt(p) ≈ 2^16 squarings, tens of milliseconds.

:func:`is_probable_prime` is Miller-Rabin with fixed bases: the first 13 prime bases are a
proof for n < 3.3 * 10^24 (which covers every pq); larger n get ``rounds`` extra bases derived
from SHA256 of n.  :mod:`dcpool.crypto.dh` has the 2048-bit safe-prime check.
"""

from __future__ import annotations

from hashlib import sha256
from math import gcd, isqrt

__all__ = ["factorize", "factorize_pq", "is_probable_prime"]

_SMALL_PRIMES: tuple[int, ...] = tuple(
    p for p in range(2, 1000) if all(p % d for d in range(2, isqrt(p) + 1))
)
# Miller-Rabin with the first 13 prime bases is deterministic for n < 3317044064679887385961981
# (the first 12 are not: 318665857834031151167461 is a strong pseudoprime to all of them).
_DETERMINISTIC_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
_DETERMINISTIC_LIMIT = 3317044064679887385961981


def _miller_rabin_round(n: int, d: int, s: int, a: int) -> bool:
    x = pow(a, d, n)
    if x == 1 or x == n - 1:
        return True
    for _ in range(s - 1):
        x = x * x % n
        if x == n - 1:
            return True
    return False


def is_probable_prime(n: int, rounds: int = 20) -> bool:
    """Miller-Rabin.  Exact for n < 3.3e24; otherwise 13 fixed plus ``rounds`` hash-derived
    bases (error ≤ 4^-(13+rounds) for a non-adversarial n)."""
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while not d & 1:
        d >>= 1
        s += 1
    for a in _DETERMINISTIC_BASES:
        if not _miller_rabin_round(n, d, s, a):
            return False
    if n < _DETERMINISTIC_LIMIT:
        return True
    # Bases derived from n itself: deterministic, and not a fixed list an adversary could
    # build strong pseudoprimes against.
    seed = n.to_bytes((n.bit_length() + 7) // 8, "big")
    for i in range(rounds):
        digest = sha256(seed + i.to_bytes(4, "big")).digest() * ((n.bit_length() + 255) // 256 + 1)
        a = 2 + int.from_bytes(digest, "big") % (n - 3)
        if not _miller_rabin_round(n, d, s, a):
            return False
    return True


def _brent(n: int) -> int:
    """A non-trivial factor of the odd composite ``n`` (not a prime power of a tiny prime)."""
    m = 128  # differences multiplied together per gcd
    for c in range(1, 10_000):
        y = 2 + c  # start point; any fixed choice works
        g = r = q = 1
        x = ys = y
        while g == 1:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(m, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = gcd(q, n)
                k += m
            r <<= 1
        if g == n:
            # The batch overshot: replay it one step at a time from its start.
            while True:
                ys = (ys * ys + c) % n
                g = gcd(abs(x - ys), n)
                if g > 1:
                    break
        if g != n:
            return g
    raise ArithmeticError(f"Pollard-Brent found no factor of {n}")  # pragma: no cover


def _one_factor(n: int) -> int:
    """A non-trivial factor of the composite ``n``."""
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return p
    root = isqrt(n)
    if root * root == n:
        return root
    return _brent(n)


def factorize(n: int) -> list[int]:
    """All prime factors of ``n`` >= 2, sorted, with multiplicity."""
    if n < 2:
        raise ValueError(f"cannot factorise {n}")
    todo, primes = [n], []
    while todo:
        m = todo.pop()
        if is_probable_prime(m):
            primes.append(m)
            continue
        f = _one_factor(m)
        todo += (f, m // f)
    return sorted(primes)


def factorize_pq(pq: int) -> tuple[int, int]:
    """Split the handshake's ``pq`` into ``(p, q)`` with ``p * q == pq`` and ``p <= q``.

    For the product of two distinct primes (what servers send) this is the pair of primes with
    ``p < q``.  For any other composite the smallest prime factor is returned as ``p`` and
    the cofactor as ``q``.  ``ValueError`` for a prime, 1, 0 or a negative number.
    """
    if not isinstance(pq, int) or pq < 4:
        raise ValueError(f"pq must be a composite integer, got {pq!r}")
    if is_probable_prime(pq):
        raise ValueError("pq is prime")
    factors = factorize(pq)
    p = factors[0]
    return p, pq // p
