"""``open_pool(rsa_keys=...)`` forms: {fingerprint: key}, PEM text (PKCS#1 or SPKI), key lists."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dcpool.crypto.rsa import (
    TELEGRAM_PRODUCTION_KEYS,
    TELEGRAM_TEST_KEYS,
    RsaPrivateKey,
    RsaPublicKey,
    rsa_keys_from_user,
)
from dcpool.errors import ConfigError

PROD = next(iter(TELEGRAM_PRODUCTION_KEYS.values()))
TEST_KEYS = list(TELEGRAM_TEST_KEYS.values())


def by_fp(*keys: RsaPublicKey) -> dict[int, RsaPublicKey]:
    return {k.fingerprint: k for k in keys}


def test_a_mapping_is_checked_and_kept() -> None:
    assert rsa_keys_from_user(TELEGRAM_TEST_KEYS) == dict(TELEGRAM_TEST_KEYS)
    # the unsigned spelling of a fingerprint names the same key; the result is keyed signed
    assert rsa_keys_from_user({PROD.fingerprint & (2**64 - 1): PROD}) == by_fp(PROD)


@pytest.mark.parametrize("form", ["pkcs1", "spki", "pkcs1-bytes", "spki-padded"])
def test_one_pem_in_either_format(form: str) -> None:
    pem: str | bytes = {
        "pkcs1": PROD.to_pkcs1_pem(),
        "spki": PROD.to_pkix_pem(),
        "pkcs1-bytes": PROD.to_pkcs1_pem().encode(),
        "spki-padded": "\n\n  " + PROD.to_pkix_pem() + "\n",
    }[form]
    assert rsa_keys_from_user(pem) == by_fp(PROD)


def test_several_pem_blocks_in_one_text() -> None:
    text = TEST_KEYS[0].to_pkcs1_pem() + "\n" + TEST_KEYS[1].to_pkix_pem()
    assert rsa_keys_from_user(text) == by_fp(*TEST_KEYS)


def test_lists_of_keys_and_pems_mixed() -> None:
    assert rsa_keys_from_user([PROD]) == by_fp(PROD)
    assert rsa_keys_from_user(PROD) == by_fp(PROD)
    got = rsa_keys_from_user((TEST_KEYS[0], TEST_KEYS[1].to_pkix_pem(), PROD.to_pkcs1_pem()))
    assert got == by_fp(TEST_KEYS[0], TEST_KEYS[1], PROD)


def test_the_fingerprints_are_telegrams() -> None:
    # the well-known fingerprint of the current production key (spec §6.2)
    (fp,) = rsa_keys_from_user(PROD.to_pkcs1_pem())
    assert fp & 0xFFFFFFFFFFFFFFFF == 0xD09D1D85DE64FD85


def _ec_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize(
    "bad, words",
    [
        ({}, "no key"),
        ([], "no key"),
        ("", "not PEM"),
        ("hello", "not PEM"),
        ([42], "int, not PEM"),
        (3.5, "not float"),
        ({1: PROD}, "not the fingerprint"),
        ({PROD.fingerprint: "pem"}, "not an RsaPublicKey"),
        ("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----", "RSA PUBLIC KEY block"),
        ("ec", "PUBLIC KEY block is not an RSA public key"),
        ("private", "RSA PRIVATE KEY block is not an RSA public key"),
    ],
)
def test_bad_forms_are_a_config_error(bad: Any, words: str) -> None:
    if bad == "ec":
        bad = _ec_pem()
    elif bad == "private":
        bad = RsaPrivateKey.generate(1024).to_pkcs1_pem()
    with pytest.raises(ConfigError, match=words):
        rsa_keys_from_user(bad)
