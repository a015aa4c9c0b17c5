"""RSA keys, fingerprints and both handshake envelopes: spec §5.4, §6, §19 V4, V8, V9."""

from __future__ import annotations

import base64
import os
from hashlib import sha1, sha256

import pytest

from spec_vectors import (
    V3_NEW_NONCE,
    V3_NONCE,
    V3_P,
    V3_P_Q_INNER_DATA_DC,
    V3_PQ,
    V3_Q,
    V3_RSA_PAD_PADDING,
    V3_SERVER_NONCE,
    V4_P_Q_INNER_DATA,
    V4_P_Q_INNER_DATA_SHA1,
    V9_OUTPUT,
)
from dcpool.crypto import aes, rsa
from dcpool.crypto._tl import int_to_be, tl_bytes
from dcpool.errors import HandshakeSecurityError, SecurityError

TDLIB_TEST_PEM = (
    "-----BEGIN RSA PUBLIC KEY-----\n"
    "MIIBCgKCAQEAr4v4wxMDXIaMOh8bayF/NyoYdpcysn5EbjTIOZC0RkgzsRj3SGlu\n"
    "52QSz+ysO41dQAjpFLgxPVJoOlxXokaOq827IfW0bGCm0doT5hxtedu9UCQKbE8j\n"
    "lDOk+kWMXHPZFJKWRgKgTu9hcB3y3Vk+JFfLpq3d5ZB48B4bcwrRQnzkx5GhWOFX\n"
    "x73ZgjO93eoQ2b/lDyXxK4B4IS+hZhjzezPZTI5upTRbs5ljlApsddsHrKk6jJNj\n"
    "8Ygs/ps8e6ct82jLXbnndC9s8HjEvDvBPH9IPjv5JUlmHMBFZ5vFQIfbpo0u0+1P\n"
    "n6bkEi5o7/ifoyVv2pAZTRwppTz0EuXD8QIDAQAB\n"
    "-----END RSA PUBLIC KEY-----"
)

GOTD_PKIX_PEM = """-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCJhOrkbrOi7/fFQRN2+8W5+Inx
bdxo7XH5DDKgFvXPDDe8cQINO3/kFat7KlpC2n2sS8ApZQkmREANg0XpImL9lCHB
v1FgQmL0xtnaURKo7FzaoaL4jCf5556NQr1th9F3oeN67mR4+BF0vPP9Gu6GY5Z1
BSqi+FEREW/2aWSgSwIDAQAB
-----END PUBLIC KEY-----"""

PRODUCTION_FP = -3414540481677951611  # 0xd09d1d85de64fd85


def zeros(n: int) -> bytes:
    return bytes(n)


class Recorder:
    """An rng that returns fixed bytes and records the calls."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.calls: list[int] = []

    def __call__(self, n: int) -> bytes:
        self.calls.append(n)
        chunk = self.chunks.pop(0) if self.chunks else os.urandom(n)
        assert len(chunk) == n
        return chunk


@pytest.fixture(scope="module")
def server_key() -> rsa.RsaPrivateKey:
    return rsa.RsaPrivateKey.generate()


# ---------------------------------------------------------------- fingerprints


def test_spec_6_2_known_fingerprints() -> None:
    expected_hex = {
        0xD09D1D85DE64FD85: rsa.TELEGRAM_PRODUCTION_KEYS,
        0xB25898DF208D2603: rsa.TELEGRAM_TEST_KEYS,
        0x0BC35F3509F7B7A5: rsa.TELEGRAM_LEGACY_KEYS,
        0x15AE5FA8B5529542: rsa.TELEGRAM_LEGACY_KEYS,
        0xAEAE98E13CD7F94F: rsa.TELEGRAM_LEGACY_KEYS,
        0x5A181B2235057D98: rsa.TELEGRAM_LEGACY_KEYS,
        0xC3B42B026CE86B21: rsa.TELEGRAM_LEGACY_KEYS,
        0x9A996A1DB11C729B: rsa.TELEGRAM_LEGACY_KEYS,
        0xB05B2A6F70CDEA78: rsa.TELEGRAM_LEGACY_KEYS,
        0x71E025B6C76033E3: rsa.TELEGRAM_LEGACY_KEYS,
    }
    for fp_hex, table in expected_hex.items():
        fp = int.from_bytes(fp_hex.to_bytes(8, "big"), "big", signed=True)
        assert fp in table, hex(fp_hex)
        assert table[fp].fingerprint == fp
        assert table[fp].e == 65537 and table[fp].n.bit_length() == 2048
    assert set(rsa.TELEGRAM_PRODUCTION_KEYS) == {PRODUCTION_FP}
    assert len(rsa.TELEGRAM_LEGACY_KEYS) == 8
    # signed decimals as listed in §6.2
    assert -5595554452916591101 in rsa.TELEGRAM_TEST_KEYS
    for dec in (847625836280919973, 1562291298945373506, -5859577972006586033, 6491968696586960280,
                -4344800451088585951, -7306692244673891685, -5738946642031285640, 8205599988028290019):
        assert dec in rsa.TELEGRAM_LEGACY_KEYS


def test_v8_tdlib_fingerprint_and_raw_rsa() -> None:
    key = rsa.RsaPublicKey.from_pem(TDLIB_TEST_PEM)
    assert key.fingerprint == -7596991558377038078
    assert key.size == 256
    assert key.fingerprint in rsa.TELEGRAM_TEST_KEYS
    out = key.encrypt_raw(TDLIB_TEST_PEM.encode()[:256])
    assert len(out) == 256
    assert base64.b64encode(sha256(out).digest()) == b"U2nJEtB2AgpHrm3HB0yhpTQgb0wbesi9Pv/W1v/vULU="


def test_v8_gotd_pkix_fingerprint() -> None:
    key = rsa.RsaPublicKey.from_pem(GOTD_PKIX_PEM.encode())
    assert key.n.bit_length() == 1024
    assert key.fingerprint == 1914007313702140277


def test_fingerprint_formula() -> None:
    key = rsa.TELEGRAM_PRODUCTION_KEYS[PRODUCTION_FP]
    blob = b"\xfe\x00\x01\x00" + key.n.to_bytes(256, "big") + b"\x03\x01\x00\x01"
    assert tl_bytes(int_to_be(key.n)) + tl_bytes(int_to_be(key.e)) == blob
    assert rsa.fingerprint(key.n, key.e) == int.from_bytes(sha1(blob).digest()[12:20], "little", signed=True)


def test_tl_bytes_v15() -> None:
    assert tl_bytes(b"\xaa\xbb") == bytes.fromhex("02aabb00")
    assert tl_bytes(b"") == bytes(4)
    assert tl_bytes(b"x" * 253) == b"\xfd" + b"x" * 253 + bytes(2)
    assert tl_bytes(b"x" * 396) == b"\xfe\x8c\x01\x00" + b"x" * 396


# ---------------------------------------------------------------- PEM round trips


def test_public_pem_roundtrips() -> None:
    key = rsa.TELEGRAM_PRODUCTION_KEYS[PRODUCTION_FP]
    pkcs1 = key.to_pkcs1_pem()
    assert pkcs1.startswith("-----BEGIN RSA PUBLIC KEY-----")
    assert "MIIBCgKCAQEA6LszBcC1LGzyr992NzE0ieY+" in pkcs1
    assert rsa.RsaPublicKey.from_pem(pkcs1) == key
    pkix = key.to_pkix_pem()
    assert pkix.startswith("-----BEGIN PUBLIC KEY-----")
    assert rsa.RsaPublicKey.from_pem(pkix) == key
    assert "0xd09d1d85de64fd85" in repr(key)


def test_private_key_generate_and_pem(server_key: rsa.RsaPrivateKey) -> None:
    assert server_key.e == 65537 and server_key.n.bit_length() == 2048
    pem = server_key.to_pkcs1_pem()
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    again = rsa.RsaPrivateKey.from_pem(pem)
    assert again == server_key
    assert again.public_key == server_key.public_key
    assert server_key.fingerprint == server_key.public_key.fingerprint
    assert rsa.RsaPublicKey.from_pem(server_key.public_key.to_pkcs1_pem()) == server_key.public_key
    # repr never shows secret numbers
    text = repr(server_key)
    assert str(server_key.d)[:20] not in text and str(server_key.p)[:20] not in text
    assert "fingerprint" in text


def test_from_pem_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        rsa.RsaPublicKey.from_pem("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----")


def test_raw_rsa_roundtrip(server_key: rsa.RsaPrivateKey) -> None:
    block = os.urandom(255)
    c = server_key.public_key.encrypt_raw(block)
    assert server_key.decrypt_raw(c) == b"\x00" + block
    with pytest.raises(ValueError):
        server_key.public_key.encrypt_raw(b"\xff" * 256)
    with pytest.raises(HandshakeSecurityError):
        server_key.decrypt_raw(b"\xff" * 256)


# ---------------------------------------------------------------- RSA_PAD


@pytest.mark.parametrize("backend", aes.available_backends())
def test_v9_rsa_pad_deterministic(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # gotd crypto/rsa_pad_test.go: 144 x 'a', zero padding, zero temp_key
    impl = aes.get_backend(backend)
    monkeypatch.setattr(aes, "ige_encrypt", impl.encrypt)
    key = rsa.TELEGRAM_PRODUCTION_KEYS[PRODUCTION_FP]
    assert rsa.encrypt_rsa_pad(b"a" * 144, key, zeros) == V9_OUTPUT


def test_rsa_pad_rng_usage() -> None:
    key = rsa.TELEGRAM_PRODUCTION_KEYS[PRODUCTION_FP]
    rng = Recorder(V3_RSA_PAD_PADDING, bytes(32))
    out = rsa.encrypt_rsa_pad(V3_P_Q_INNER_DATA_DC, key, rng)
    assert len(out) == 256
    # V3: 100 bytes of data + 92 published padding bytes = 192, then one temp_key
    assert rng.calls == [92, 32]


def test_rsa_pad_limits(server_key: rsa.RsaPrivateKey) -> None:
    with pytest.raises(ValueError):
        rsa.encrypt_rsa_pad(b"a" * 145, server_key.public_key, os.urandom)
    small = rsa.RsaPublicKey.from_pem(GOTD_PKIX_PEM)
    with pytest.raises(ValueError):
        rsa.encrypt_rsa_pad(b"a", small, os.urandom)


def test_rsa_pad_retries_when_not_below_modulus() -> None:
    # The production modulus starts with 0xe8, so roughly 1 temp_key in 11 gives a 256-byte
    # value >= n; such a temp_key must be dropped and a new one drawn (spec §5.4).
    key = rsa.TELEGRAM_PRODUCTION_KEYS[PRODUCTION_FP]
    data = b"x" * 100
    candidates = [sha256(bytes([i])).digest() for i in range(256)]
    for first in range(len(candidates) - 1):
        rng = Recorder(bytes(92), *candidates[first:])
        out = rsa.encrypt_rsa_pad(data, key, rng)
        if len(rng.calls) > 2:
            break
    else:  # pragma: no cover
        pytest.fail("no temp_key needed a retry")
    retries = len(rng.calls) - 2
    used = candidates[first + retries]
    # the result is what the accepted temp_key alone gives
    assert out == rsa.encrypt_rsa_pad(data, key, Recorder(bytes(92), used))
    assert rng.calls == [92] + [32] * (retries + 1)


# ---------------------------------------------------------------- server-side detection


def test_decode_rsa_pad_v3_inner_data(server_key: rsa.RsaPrivateKey) -> None:
    enc = rsa.encrypt_rsa_pad(V3_P_Q_INNER_DATA_DC, server_key.public_key, Recorder(V3_RSA_PAD_PADDING))
    decoded = rsa.decode_inner_data(enc, server_key)
    assert decoded.envelope is rsa.Envelope.RSA_PAD
    assert decoded.data == V3_P_Q_INNER_DATA_DC + V3_RSA_PAD_PADDING
    assert rsa.decrypt_inner_data(enc, server_key).startswith(V3_P_Q_INNER_DATA_DC)
    assert rsa.p_q_inner_data_len(decoded.data) == len(V3_P_Q_INNER_DATA_DC)


def test_decode_legacy_v4_inner_data(server_key: rsa.RsaPrivateKey) -> None:
    assert sha1(V4_P_Q_INNER_DATA).digest() == V4_P_Q_INNER_DATA_SHA1
    rng = Recorder()
    enc = rsa.encrypt_legacy(V4_P_Q_INNER_DATA, server_key.public_key, rng)
    assert rng.calls == [235 - 96]
    block = server_key.decrypt_raw(enc)
    assert block[0] == 0 and block[1:21] == V4_P_Q_INNER_DATA_SHA1 and block[21:117] == V4_P_Q_INNER_DATA
    decoded = rsa.decode_inner_data(enc, server_key)
    assert decoded == rsa.DecodedInnerData(V4_P_Q_INNER_DATA, rsa.Envelope.LEGACY)
    assert rsa.decrypt_inner_data(enc, server_key) == V4_P_Q_INNER_DATA


def _pq_inner(ctor: int, tail: bytes) -> bytes:
    # p_q_inner_data* pq:string p:string q:string nonce:int128 server_nonce:int128 new_nonce:int256 ...
    return (
        ctor.to_bytes(4, "little")
        + tl_bytes(V3_PQ.to_bytes(8, "big"))
        + tl_bytes(V3_P.to_bytes(4, "big"))
        + tl_bytes(V3_Q.to_bytes(4, "big"))
        + V3_NONCE
        + V3_SERVER_NONCE
        + V3_NEW_NONCE
        + tail
    )


ALL_FOUR = {
    "p_q_inner_data": _pq_inner(0x83C95AEC, b""),
    "p_q_inner_data_dc": _pq_inner(0xA9F55F95, (2).to_bytes(4, "little")),
    "p_q_inner_data_temp": _pq_inner(0x3C6A84D4, (86400).to_bytes(4, "little")),
    "p_q_inner_data_temp_dc": _pq_inner(0x56FDDF88, (-2).to_bytes(4, "little", signed=True) + (3600).to_bytes(4, "little")),
}


def test_p_q_inner_data_dc_layout() -> None:
    assert ALL_FOUR["p_q_inner_data_dc"] == V3_P_Q_INNER_DATA_DC


@pytest.mark.parametrize("name", sorted(ALL_FOUR))
@pytest.mark.parametrize("envelope", [rsa.Envelope.LEGACY, rsa.Envelope.RSA_PAD])
def test_server_accepts_all_four_in_both_envelopes(
    server_key: rsa.RsaPrivateKey, name: str, envelope: rsa.Envelope
) -> None:
    data = ALL_FOUR[name]
    assert rsa.p_q_inner_data_len(data + b"junk") == len(data)
    encrypt = rsa.encrypt_legacy if envelope is rsa.Envelope.LEGACY else rsa.encrypt_rsa_pad
    for _ in range(3):
        decoded = rsa.decode_inner_data(encrypt(data, server_key.public_key, os.urandom), server_key)
        assert decoded.envelope is envelope
        assert decoded.data[: len(data)] == data


def test_custom_parse_len(server_key: rsa.RsaPrivateKey) -> None:
    payload = b"\x01\x02\x03\x04" + b"custom object" + b"\x00\x00\x00"
    enc = rsa.encrypt_legacy(payload, server_key.public_key, os.urandom)
    # the default parser does not know this constructor -> falls through to RSA_PAD, which fails
    with pytest.raises(HandshakeSecurityError):
        rsa.decode_inner_data(enc, server_key)
    decoded = rsa.decode_inner_data(enc, server_key, parse_len=lambda buf: len(payload))
    assert decoded == rsa.DecodedInnerData(payload, rsa.Envelope.LEGACY)


def test_tampering_is_rejected(server_key: rsa.RsaPrivateKey) -> None:
    pub = server_key.public_key
    data = ALL_FOUR["p_q_inner_data_dc"]
    for encrypt in (rsa.encrypt_legacy, rsa.encrypt_rsa_pad):
        enc = bytearray(encrypt(data, pub, os.urandom))
        enc[100] ^= 1
        with pytest.raises(HandshakeSecurityError):
            rsa.decrypt_inner_data(bytes(enc), server_key)
    # wrong length, value above the modulus, random junk
    with pytest.raises(HandshakeSecurityError):
        rsa.decrypt_inner_data(bytes(255), server_key)
    with pytest.raises(SecurityError):
        rsa.decrypt_inner_data(b"\xff" * 256, server_key)
    with pytest.raises(HandshakeSecurityError):
        rsa.decrypt_inner_data(pub.encrypt_raw(os.urandom(255)), server_key)
    # legacy block whose SHA1 is wrong
    bad = b"\x00" * 20 + data + bytes(235 - len(data))
    with pytest.raises(HandshakeSecurityError):
        rsa.decrypt_inner_data(pub.encrypt_raw(bad), server_key)
    # encrypted for another key
    other = rsa.TELEGRAM_PRODUCTION_KEYS[PRODUCTION_FP]
    with pytest.raises(HandshakeSecurityError):
        rsa.decrypt_inner_data(rsa.encrypt_rsa_pad(data, other, os.urandom), server_key)


def test_legacy_limits(server_key: rsa.RsaPrivateKey) -> None:
    with pytest.raises(ValueError):
        rsa.encrypt_legacy(b"x" * 236, server_key.public_key, os.urandom)
    enc = rsa.encrypt_legacy(b"x" * 235, server_key.public_key, os.urandom)
    assert len(enc) == 256


def test_p_q_inner_data_len_rejects() -> None:
    data = ALL_FOUR["p_q_inner_data"]
    for bad in (b"", b"\x00\x00", b"\x01\x02\x03\x04" + data[4:], data[:-1], data[:10]):
        with pytest.raises(ValueError):
            rsa.p_q_inner_data_len(bad)
