"""pq factorisation (spec §5.3, §19 V2) and Miller-Rabin."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcpool.crypto.factorize import factorize, factorize_pq, is_probable_prime


@pytest.mark.parametrize(
    ("pq", "p", "q"),
    [
        (0x17ED48941A08F981, 0x494C553B, 0x53911073),
        (1724114033281923457, 1229739323, 1402015859),
        (0x256595EDB7766797, 0x5A300D4B, 0x6A26DB65),
        (2694724800268887959, 1513098571, 1780931429),
        (378221, 613, 617),
        (15, 3, 5),
        (6, 2, 3),
        (35, 5, 7),
    ],
)
def test_v2_and_small(pq: int, p: int, q: int) -> None:
    assert factorize_pq(pq) == (p, q)


@pytest.mark.parametrize("bad", [-15, 0, 1, 2, 3, 13, 1229739323, 2**61 - 1])
def test_rejects_primes_and_units(bad: int) -> None:
    with pytest.raises(ValueError):
        factorize_pq(bad)


def test_non_semiprimes() -> None:
    assert factorize_pq(4) == (2, 2)
    assert factorize_pq(9) == (3, 3)
    assert factorize_pq(30) == (2, 15)
    assert factorize(2**10 * 3**3 * 1229739323) == [2] * 10 + [3] * 3 + [1229739323]
    assert factorize(1229739323**2) == [1229739323, 1229739323]


def _prime(rnd: random.Random, lo: int, hi: int) -> int:
    while True:
        x = rnd.randrange(lo, hi) | 1
        if is_probable_prime(x):
            return x


def test_64_bit_pq_like_the_server_sends() -> None:
    # the emulator's choice (§5.2: primes in [2^30, 2^31)) and the worst case near 2^32
    rnd = random.Random(1234)
    for lo, hi in ((2**30, 2**31), (2**31, 2**32)):
        for _ in range(6):
            p, q = _prime(rnd, lo, hi), _prime(rnd, lo, hi)
            if p == q:
                continue
            assert factorize_pq(p * q) == (min(p, q), max(p, q))


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=2, max_value=2**40), st.integers(min_value=2, max_value=2**20))
def test_product_roundtrip(a: int, b: int) -> None:
    n = a * b
    fs = factorize(n)
    prod = 1
    for f in fs:
        assert is_probable_prime(f)
        prod *= f
    assert prod == n
    p, q = factorize_pq(n)
    assert p * q == n and p <= q and p == fs[0]


def test_is_probable_prime() -> None:
    known_primes = [2, 3, 5, 7, 997, 1009, 1229739323, 1402015859, 2**61 - 1, 2**89 - 1, 2**127 - 1]
    for p in known_primes:
        assert is_probable_prime(p), p
    # composites, including strong pseudoprimes to several small bases
    composites = [0, 1, 4, 561, 1105, 3215031751, 2152302898747, 3474749660383, 341550071728321,
                  3825123056546413051, 318665857834031151167461, 2**61 + 1, (2**61 - 1) * (2**89 - 1)]
    for c in composites:
        assert not is_probable_prime(c), c
