"""Diffie-Hellman parameter checks (spec §5.7)."""

from __future__ import annotations

import os

import pytest

from spec_vectors import h
from dcpool.crypto import dh
from dcpool.crypto.factorize import is_probable_prime
from dcpool.errors import BadDhG, BadDhPrime, BadDhValue, HandshakeSecurityError

P = dh.TELEGRAM_DH_PRIME


def test_known_prime_bytes_and_residues() -> None:
    assert P.to_bytes(256, "big")[:8] == h("C71CAEB9C6B1C904")
    assert P.to_bytes(256, "big")[-8:] == h("119CD8E3B92FCC5B")
    assert 2**2047 < P < 2**2048
    assert (P % 8, P % 3, P % 5, P % 24, P % 7) == (3, 2, 3, 11, 6)


def test_known_prime_is_safe_without_cache() -> None:
    assert dh.is_safe_prime(P)  # cached
    assert dh.is_safe_prime(P, rounds=15, use_cache=False)  # the full test


# A 2048-bit prime (checked with the `rsa` package too) that is not safe: (p-1)/2 is divisible by 3.
PRIME_NOT_SAFE = 2**2047 + 2**2046 + 0x1B7


def test_not_safe_primes() -> None:
    assert is_probable_prime(PRIME_NOT_SAFE, rounds=2)
    assert ((PRIME_NOT_SAFE - 1) // 2) % 3 == 0
    assert not dh.is_safe_prime(PRIME_NOT_SAFE, use_cache=False)
    with pytest.raises(BadDhPrime):
        dh.check_dh_params(4, PRIME_NOT_SAFE)
    assert not dh.is_safe_prime(P + 2, use_cache=False)  # composite
    assert not dh.is_safe_prime(P - 2, use_cache=False)
    assert dh.is_safe_prime(23) and dh.is_safe_prime(7) and dh.is_safe_prime(5)
    assert dh.is_safe_prime(2**127 - 1) is False  # prime, (p-1)/2 = 2^126 - 1 composite
    assert not dh.is_safe_prime(13) and not dh.is_safe_prime(2) and not dh.is_safe_prime(1)
    # q prime but p = 2q + 1 composite: q = 5 -> 11 is prime; q = 7 -> 15 composite
    assert not dh.is_safe_prime(15)


def test_check_dh_params_accepts_telegram() -> None:
    for g in (3, 4, 7):
        dh.check_dh_params(g, P)


@pytest.mark.parametrize("g", [0, 1, 2, 5, 6, 8, P - 1])
def test_check_dh_params_rejects_g(g: int) -> None:
    with pytest.raises(BadDhG):
        dh.check_dh_params(g, P)


@pytest.mark.parametrize(
    ("g", "residue_ok", "modulus"),
    [
        (2, [7], 8),
        (3, [2], 3),
        (5, [1, 4], 5),
        (6, [19, 23], 24),
        (7, [3, 5, 6], 7),
    ],
)
def test_residue_table(g: int, residue_ok: list[int], modulus: int) -> None:
    # check_g only looks at p mod m; use fake "primes" with each residue
    for r in range(modulus):
        fake = modulus * 1000 + r
        if r in residue_ok:
            dh.check_g(g, fake)
        else:
            with pytest.raises(BadDhG):
                dh.check_g(g, fake)
    dh.check_g(4, 1000003)


def test_check_dh_params_rejects_prime() -> None:
    for bad in (P + 2, 2**2047 - 1, 2**2048 + 1, 23, (P - 1) // 2):
        with pytest.raises(BadDhPrime):
            dh.check_dh_params(3, bad)
    assert issubclass(BadDhPrime, HandshakeSecurityError)


def test_check_g_x() -> None:
    window = 2 ** (2048 - 64)
    for ok in (window, P - window, pow(3, 12345678901234567890, P)):
        dh.check_g_x(ok, P)
    for bad in (0, 1, 2, P - 1, P, P + 5, window - 1, P - window + 1, -5):
        with pytest.raises(BadDhValue):
            dh.check_g_x(bad, P)


def test_generate_secret() -> None:
    secret, g_a = dh.generate_secret(3, P, os.urandom)
    assert g_a == pow(3, secret, P)
    dh.check_g_x(g_a, P)
    # an rng that first yields unusable secrets: 0, 1 (secret < 2), then a good one
    chunks = [bytes(256), bytes(255) + b"\x01", b"\x55" * 256]
    secret, g_x = dh.generate_secret(3, P, lambda n: chunks.pop(0))
    assert secret == int.from_bytes(b"\x55" * 256, "big")
    with pytest.raises(ValueError):
        dh.generate_secret(3, P, lambda n: bytes(n))


def test_auth_key_from_int_pads() -> None:
    assert dh.auth_key_from_int(5) == bytes(255) + b"\x05"
    with pytest.raises(ValueError):
        dh.auth_key_from_int(2**2048)
