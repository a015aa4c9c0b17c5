"""Key derivation and the handshake's symmetric steps: spec §4, §5.6-§5.10, §19 V3-V6, V10-V12."""

from __future__ import annotations

import base64
from hashlib import sha1, sha256

import pytest

from spec_vectors import (
    V3_ANSWER_WITH_HASH,
    V3_AUTH_KEY,
    V3_AUTH_KEY_ID,
    V3_AUX_HASH,
    V3_B,
    V3_CLIENT_DH_INNER_DATA,
    V3_CLIENT_DH_PADDING,
    V3_ENCRYPTED_ANSWER,
    V3_G_B,
    V3_NEW_NONCE,
    V3_NEW_NONCE_HASH1,
    V3_NEW_NONCE_HASH2,
    V3_NEW_NONCE_HASH3,
    V3_NONCE,
    V3_SERVER_NONCE,
    V3_SERVER_SALT,
    V3_SERVER_TIME,
    V3_SET_CLIENT_DH_ENCRYPTED,
    V3_TMP_AES_IV,
    V3_TMP_AES_KEY,
    V4_NEW_NONCE,
    V4_SERVER_NONCE,
    V4_TMP_AES_IV,
    V4_TMP_AES_KEY,
    V10_ENCRYPTED,
    V11_AUTH_KEY,
    V11_MESSAGE,
    V11_PLAINTEXT,
)
from dcpool.crypto import aes, dh, kdf

# ---------------------------------------------------------------- handshake (V3-V6)


def test_v3_tmp_aes_key_iv() -> None:
    assert kdf.tmp_aes_key_iv(V3_SERVER_NONCE, V3_NEW_NONCE) == (V3_TMP_AES_KEY, V3_TMP_AES_IV)


def test_v4_tmp_aes_key_iv() -> None:
    assert kdf.tmp_aes_key_iv(V4_SERVER_NONCE, V4_NEW_NONCE) == (V4_TMP_AES_KEY, V4_TMP_AES_IV)


def test_v5_telethon_tmp_aes_key_iv() -> None:
    server_nonce = (123456789).to_bytes(16, "little")
    new_nonce = (1234567).to_bytes(32, "little")
    key, iv = kdf.tmp_aes_key_iv(server_nonce, new_nonce)
    assert key.hex() == "345c11141f0a9f0fe4026bcf5a3b6b41ab96cac1c29557d087450e01a001a990"
    assert iv.hex() == "d40823854f5e0ef2518c58a4ef76e3476cd91004f32ff8cbbbdca87587d61200"
    assert base64.b64encode(key) == b"NFwRFB8Knw/kAmvPWjtrQauWysHClVfQh0UOAaABqZA="
    assert base64.b64encode(iv) == b"1AgjhU9eDvJRjFik73bjR2zZEATzL/jLu9yodYfWEgA="


def test_v6_leading_zero_nonces_kept_full_length() -> None:
    new_nonce = bytes(range(32))
    server_nonce = bytes([0]) + bytes(range(0x21, 0x30))
    key, iv = kdf.tmp_aes_key_iv(server_nonce, new_nonce)
    assert key.hex() == "0a2d0f607499a866848e41798a34315e4922c39fe55c6caf5bc322c4b8c08c6a"
    assert iv.hex() == "9cb702d4fd6e5d25e864070e166e6218f6783e8511471a5ab7802cf200010203"


def test_v3_server_dh_params_ok_decrypts() -> None:
    answer_with_hash = aes.ige_decrypt(V3_ENCRYPTED_ANSWER, V3_TMP_AES_KEY, V3_TMP_AES_IV)
    assert answer_with_hash == V3_ANSWER_WITH_HASH
    # server_DH_inner_data#b5890dba nonce:int128 server_nonce:int128 g:int dh_prime:string g_a:string server_time:int
    answer = answer_with_hash[20 : 20 + 564]
    assert sha1(answer).digest() == answer_with_hash[:20]
    assert len(answer_with_hash) - 20 - 564 == 8  # padding
    assert answer[0:4] == bytes.fromhex("ba0d89b5")
    assert answer[4:20] == V3_NONCE and answer[20:36] == V3_SERVER_NONCE
    g = int.from_bytes(answer[36:40], "little")
    assert answer[40:44] == b"\xfe\x00\x01\x00"
    dh_prime = int.from_bytes(answer[44:300], "big")
    assert answer[300:304] == b"\xfe\x00\x01\x00"
    g_a = int.from_bytes(answer[304:560], "big")
    assert int.from_bytes(answer[560:564], "little") == V3_SERVER_TIME
    assert g == 3 and dh_prime == dh.TELEGRAM_DH_PRIME
    dh.check_dh_params(g, dh_prime)
    dh.check_g_x(g_a, dh_prime)
    # client side: g_b and the auth key
    g_b = pow(g, V3_B, dh_prime)
    assert dh.auth_key_from_int(g_b) == V3_G_B
    dh.check_g_x(g_b, dh_prime)
    assert dh.auth_key_from_int(pow(g_a, V3_B, dh_prime)) == V3_AUTH_KEY


def test_v3_set_client_dh_params_encrypts() -> None:
    data = V3_CLIENT_DH_INNER_DATA
    data_with_hash = sha1(data).digest() + data + V3_CLIENT_DH_PADDING
    assert len(data_with_hash) % 16 == 0
    encrypted = aes.ige_encrypt(data_with_hash, V3_TMP_AES_KEY, V3_TMP_AES_IV)
    assert encrypted == V3_SET_CLIENT_DH_ENCRYPTED
    assert aes.ige_decrypt(encrypted, V3_TMP_AES_KEY, V3_TMP_AES_IV) == data_with_hash


def test_v3_derived_values() -> None:
    assert kdf.auth_key_id(V3_AUTH_KEY) == V3_AUTH_KEY_ID
    assert V3_AUTH_KEY_ID == 0x4E78EF50338B5865
    assert sha1(V3_AUTH_KEY).digest()[12:20].hex() == "65588b3350ef784e"
    aux = kdf.auth_key_aux_hash(V3_AUTH_KEY)
    assert aux == V3_AUX_HASH
    assert kdf.new_nonce_hash(V3_NEW_NONCE, 1, aux) == V3_NEW_NONCE_HASH1
    assert kdf.new_nonce_hash(V3_NEW_NONCE, 2, aux) == V3_NEW_NONCE_HASH2
    assert kdf.new_nonce_hash(V3_NEW_NONCE, 3, aux) == V3_NEW_NONCE_HASH3
    assert kdf.initial_server_salt(V3_NEW_NONCE, V3_SERVER_NONCE) == V3_SERVER_SALT
    assert (V3_SERVER_SALT & (2**64 - 1)).to_bytes(8, "little").hex() == "49a6747298503dce"
    assert kdf.nonce_hash_fail(V3_NEW_NONCE) == sha1(V3_NEW_NONCE).digest()[4:20]


def test_handshake_argument_checks() -> None:
    with pytest.raises(ValueError):
        kdf.tmp_aes_key_iv(V3_SERVER_NONCE[1:], V3_NEW_NONCE)  # a nonce must never be shortened
    with pytest.raises(ValueError):
        kdf.tmp_aes_key_iv(V3_SERVER_NONCE, V3_NEW_NONCE[:31])
    with pytest.raises(ValueError):
        kdf.new_nonce_hash(V3_NEW_NONCE, 4, V3_AUX_HASH)
    with pytest.raises(ValueError):
        kdf.new_nonce_hash(V3_NEW_NONCE, 1, V3_AUX_HASH[:7])


# ---------------------------------------------------------------- MTProto 2.0 messages (V10, V11)


def test_v10_client_to_server_encryption() -> None:
    auth_key = bytes(range(256))
    plaintext = b"Hello, world! This data should remain secure!" + bytes(19)
    assert len(plaintext) == 64
    msg_key = kdf.msg_key(auth_key, plaintext, 0)
    aes_key, aes_iv = kdf.aes_key_iv(auth_key, msg_key, 0)
    key_id = kdf.auth_key_id(auth_key).to_bytes(8, "little", signed=True)
    message = key_id + msg_key + aes.ige_encrypt(plaintext, aes_key, aes_iv)
    assert message == V10_ENCRYPTED


def test_v11_server_to_client_decryption() -> None:
    key_id, msg_key, ciphertext = V11_MESSAGE[:8], V11_MESSAGE[8:24], V11_MESSAGE[24:]
    assert key_id == sha1(V11_AUTH_KEY).digest()[12:20]
    assert kdf.auth_key_id(V11_AUTH_KEY) == int.from_bytes(key_id, "little", signed=True)
    aes_key, aes_iv = kdf.aes_key_iv(V11_AUTH_KEY, msg_key, 8)
    plaintext = aes.ige_decrypt(ciphertext, aes_key, aes_iv)
    assert plaintext == V11_PLAINTEXT
    # the receiver recomputes msg_key with the sender's x (8 for the server)
    assert kdf.msg_key(V11_AUTH_KEY, plaintext, 8) == msg_key
    assert msg_key == sha256(V11_AUTH_KEY[96:128] + plaintext).digest()[8:24]
    assert kdf.msg_key(V11_AUTH_KEY, plaintext, 0) != msg_key


def test_msg_key_large_and_quick_ack() -> None:
    auth_key = bytes(range(256))
    large = kdf.msg_key_large(auth_key, b"x" * 32, 0)
    assert large == sha256(auth_key[88:120] + b"x" * 32).digest()
    assert kdf.msg_key(auth_key, b"x" * 32, 0) == large[8:24]
    token = kdf.quick_ack_token(large)
    assert token == int.from_bytes(large[:4], "little") | 0x80000000
    assert token & 0x80000000


def test_kdf_argument_checks() -> None:
    with pytest.raises(ValueError):
        kdf.msg_key(bytes(256), b"", 4)
    with pytest.raises(ValueError):
        kdf.aes_key_iv(bytes(255), bytes(16), 0)
    with pytest.raises(ValueError):
        kdf.aes_key_iv(bytes(256), bytes(15), 0)
    with pytest.raises(ValueError):
        kdf.aes_key_iv_v1(bytes(256), bytes(16), 3)


# ---------------------------------------------------------------- V12 (MTProto 1.0 and 2.0 KDFs)


def test_v12_msg_key_v1() -> None:
    assert kdf.msg_key_v1(b"bind-message-test-payload").hex() == "fc11a3669566de22b87f66550dc3de6d"


def test_v12_kdf_v1() -> None:
    key, iv = kdf.aes_key_iv_v1(bytes(range(256)), bytes(range(16)), 0)
    assert key.hex() == "17d7295ca9213d1ab656acdb1ad48b2ea7f3a8f7095098d5508b900bbd5fccfc"
    assert iv.hex() == "2d7d16a65a84108e9805656caa474501cc580aa2edc33abfd0bfad785464d1c6"


@pytest.mark.parametrize(
    ("x", "key_hex", "iv_hex"),
    [
        (
            0,
            "704ed09c8b41668ae8f99d244738f71dbddc44469b6bbd4aa8573dd042bd059e",
            "4d266000a550edabbf4c7ce40fd0043cc92230184cd317a5cc9c2482fd3b9318",
        ),
        (
            8,
            "217725799b245806458174a1fcfbc883906807b15033fdd0ea2b4d69cf9c364e",
            "669a6538917a4fa56ca32360a431c9160be4ad887140980dab91ce7bdc47ffbc",
        ),
    ],
)
def test_v12_kdf_v2(x: int, key_hex: str, iv_hex: str) -> None:
    key, iv = kdf.aes_key_iv(bytes(range(256)), bytes(range(16)), x)
    assert (key.hex(), iv.hex()) == (key_hex, iv_hex)


def test_kdf2_matches_the_formula() -> None:
    # an independent transcription of spec §4.2, on the V11 key
    auth_key, mk = V11_AUTH_KEY, bytes(range(100, 116))
    for x in (0, 8):
        a = sha256(mk + auth_key[x : x + 36]).digest()
        b = sha256(auth_key[40 + x : 40 + x + 36] + mk).digest()
        assert kdf.aes_key_iv(auth_key, mk, x) == (
            a[0:8] + b[8:24] + a[24:32],
            b[0:8] + a[8:24] + b[24:32],
        )
