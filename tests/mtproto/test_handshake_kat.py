"""Known-answer tests of the client handshake against the official sample exchange (§19 V2-V6, V9).

The client is fed the recorded server messages with an rng scripted to return the recorded
nonce, new_nonce, RSA padding, b and AES padding.  RSA_PAD's temp_key was not published, so the
RSA-encrypted part cannot be compared with the page.  Instead the test maps the production
fingerprint to a locally generated key, decrypts what the client sent and compares the
plaintext (p_q_inner_data_dc + padding) with the page.  Everything after that (tmp AES key/iv,
g_b, set_client_DH_params.encrypted_data, auth_key, key id, salt) must match byte for byte.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import pytest

from dcpool import tl
from dcpool.crypto import kdf, rsa
from dcpool.mtproto import AuthKey
from dcpool.mtproto.handshake import ClientHandshake, ClientHandshakeState, HandshakeResult
from dcpool.mtproto.plain import pack_plain, unpack_plain
from dcpool.tl import mtproto
from spec_vectors import (
    V3_NONCE as NONCE,
    V3_SERVER_NONCE as SERVER_NONCE,
    V3_NEW_NONCE as NEW_NONCE,
    V3_P_Q_INNER_DATA_DC as P_Q_INNER_DATA_DC,
    V3_RSA_PAD_PADDING as RSA_PAD_PADDING,
    V3_TMP_AES_KEY as TMP_AES_KEY,
    V3_TMP_AES_IV as TMP_AES_IV,
    V3_ENCRYPTED_ANSWER as ENCRYPTED_ANSWER,
    V3_SERVER_TIME as SERVER_TIME,
    V3_B,
    V3_G_B as G_B,
    V3_CLIENT_DH_PADDING as SET_CLIENT_DH_PADDING,
    V3_SET_CLIENT_DH_ENCRYPTED as SET_CLIENT_DH_ENCRYPTED,
    V3_AUTH_KEY as AUTH_KEY,
    V3_NEW_NONCE_HASH1 as NEW_NONCE_HASH1,
    V3_NEW_NONCE_HASH2 as NEW_NONCE_HASH2,
    V3_AUTH_KEY_ID as AUTH_KEY_ID,
    V3_SERVER_SALT as SERVER_SALT,
    h,
)

B = V3_B.to_bytes(256, "big")  # the secret exponent as the scripted rng hands it out


# --------------------------------------------------------------------------- §19 V3 values

V3_REQ_PQ_MULTI_MSG = h("0000000000000000D4720600503DC56514000000F18E7EBE406709F612FADFBEC3F0289D0AA67EEF")
V3_RES_PQ_MSG = h("""
000000000000000001D83175503DC565A800000063241605406709F612FADFBEC3F0289D0AA67EEFE11DBC3BC97D91A2
6154F932AF01994308256595EDB776679700000015C4B51C03000000A5B7F709355FC30B216BE86C022BB4C385FD64DE
851D9DD0""")
FP_PRODUCTION = -3414540481677951611  # 0xd09d1d85de64fd85

NOW = 1707425104.25  # the seconds of the recorded req_pq_multi msg_id (0x65C53D50...)


class ScriptedRng:
    """rng(n) returns the next scripted value of length n; unscripted lengths get filler bytes.

    Keyed by length so the test does not depend on the order in which the handshake and
    dcpool.crypto draw different-sized values.
    """

    def __init__(self, *values: bytes) -> None:
        self.queues: dict[int, list[bytes]] = defaultdict(list)
        for value in values:
            self.queues[len(value)].append(value)
        self.calls: list[int] = []

    def __call__(self, n: int) -> bytes:
        self.calls.append(n)
        queue = self.queues.get(n)
        if queue:
            return queue.pop(0)
        # deterministic filler that differs on every call (RSA_PAD may need several temp_keys)
        seed = hashlib.sha256(len(self.calls).to_bytes(4, "little")).digest()
        return (seed * (n // 32 + 1))[:n]

    def exhausted(self) -> bool:
        return not any(self.queues.values())


@pytest.fixture(scope="module")
def local_key() -> rsa.RsaPrivateKey:
    return rsa.RsaPrivateKey.generate()


def server_message(msg_id: int, obj: object) -> bytes:
    return pack_plain(msg_id, obj.to_bytes())  # type: ignore[attr-defined]


def fixed_res_pq_message() -> bytes:
    # §18.8 / §19 V3: the page's message_length of resPQ (0xA8) does not match the 80-byte body.
    body = V3_RES_PQ_MSG[20:]
    assert len(body) == 80
    return V3_RES_PQ_MSG[:16] + len(body).to_bytes(4, "little") + body


def test_v3_tmp_key_and_answer_are_consistent():
    """Sanity of the recorded values themselves (they feed the client below)."""
    assert kdf.tmp_aes_key_iv(SERVER_NONCE, NEW_NONCE) == (TMP_AES_KEY, TMP_AES_IV)
    assert kdf.new_nonce_hash(NEW_NONCE, 1, AuthKey.from_bytes(AUTH_KEY).aux_hash) == NEW_NONCE_HASH1
    res_pq = tl.loads(fixed_res_pq_message()[20:])
    assert isinstance(res_pq, mtproto.ResPQ)
    assert res_pq.server_public_key_fingerprints[-1] == FP_PRODUCTION


def test_v3_full_client_exchange(local_key):
    rng = ScriptedRng(NONCE, NEW_NONCE, RSA_PAD_PADDING, B, SET_CLIENT_DH_PADDING)
    client = ClientHandshake({FP_PRODUCTION: local_key.public_key}, 2, rng)

    # --- step 1: req_pq_multi, identical to the page apart from the msg_id
    first = client.start(NOW)
    assert first[:8] == bytes(8)
    assert first[16:] == V3_REQ_PQ_MULTI_MSG[16:]
    first_msg_id = unpack_plain(first).msg_id
    assert first_msg_id % 4 == 0 and first_msg_id >> 32 == 0x65C53D50

    # --- step 2 -> 5: resPQ in, req_DH_params out
    second = client.receive(fixed_res_pq_message(), NOW)
    assert isinstance(second, bytes)
    message = unpack_plain(second)
    assert len(message.body) == 320  # the page's client message length
    assert message.msg_id > first_msg_id and message.msg_id % 4 == 0
    req = tl.loads(message.body)
    assert isinstance(req, mtproto.ReqDHParams)
    assert req.nonce == NONCE and req.server_nonce == SERVER_NONCE
    # §19 V2: pq 0x256595EDB7766797 = 0x5A300D4B * 0x6A26DB65
    assert req.p == h("5A300D4B") and req.q == h("6A26DB65")
    assert req.public_key_fingerprint == FP_PRODUCTION  # the last of the three offered
    assert client.fingerprint == FP_PRODUCTION
    assert len(req.encrypted_data) == 256
    decoded = rsa.decode_inner_data(req.encrypted_data, local_key)
    assert decoded.envelope is rsa.Envelope.RSA_PAD
    assert decoded.data == P_Q_INNER_DATA_DC + RSA_PAD_PADDING  # 100 + 92 = 192 bytes

    # --- step 6 -> 7: server_DH_params_ok in, set_client_DH_params out
    ok = mtproto.ServerDHParamsOk(nonce=NONCE, server_nonce=SERVER_NONCE, encrypted_answer=ENCRYPTED_ANSWER)
    third = client.receive(server_message(0x65C53D5100000001, ok), NOW)
    assert isinstance(third, bytes)
    message = unpack_plain(third)
    assert len(message.body) == 376  # the page's client message length
    set_dh = tl.loads(message.body)
    assert isinstance(set_dh, mtproto.SetClientDHParams)
    assert set_dh.nonce == NONCE and set_dh.server_nonce == SERVER_NONCE
    assert set_dh.encrypted_data == SET_CLIENT_DH_ENCRYPTED
    # the same bytes, opened with the page's tmp key: client_DH_inner_data with the page's g_b
    from dcpool.crypto import aes

    opened = aes.ige_decrypt(set_dh.encrypted_data, TMP_AES_KEY, TMP_AES_IV)
    inner = tl.Reader(opened[20:]).read_object()
    assert isinstance(inner, mtproto.ClientDHInnerData)
    assert inner.retry_id == 0 and inner.g_b == G_B
    assert opened.endswith(SET_CLIENT_DH_PADDING)
    assert hashlib.sha1(opened[20 : len(opened) - 12]).digest() == opened[:20]

    # --- step 9: dh_gen_ok in, result out
    gen_ok = mtproto.DhGenOk(nonce=NONCE, server_nonce=SERVER_NONCE, new_nonce_hash1=NEW_NONCE_HASH1)
    result = client.receive(server_message(0x65C53D5100000005, gen_ok), NOW + 0.5)
    assert isinstance(result, HandshakeResult)
    assert result.auth_key.key == AUTH_KEY
    assert result.auth_key.key_id == AUTH_KEY_ID
    assert result.server_salt == SERVER_SALT
    assert result.time_offset == pytest.approx(SERVER_TIME - NOW)
    assert client.state is ClientHandshakeState.DONE
    assert rng.exhausted()
    assert AUTH_KEY.hex() not in repr(result).lower()


def test_v3_dh_gen_retry_then_ok(local_key):
    """dh_gen_retry with the recorded hash2: the client sends retry_id = aux_hash (LE) and a
    new g_b, then accepts an ok that matches the *new* key."""
    second_b = (B[:-1] + b"\x01")
    rng = ScriptedRng(NONCE, NEW_NONCE, RSA_PAD_PADDING, B, SET_CLIENT_DH_PADDING, second_b)
    client = ClientHandshake({FP_PRODUCTION: local_key.public_key}, 2, rng)
    client.start(NOW)
    client.receive(fixed_res_pq_message(), NOW)
    ok = mtproto.ServerDHParamsOk(nonce=NONCE, server_nonce=SERVER_NONCE, encrypted_answer=ENCRYPTED_ANSWER)
    client.receive(server_message(0x65C53D5100000001, ok), NOW)
    retry = mtproto.DhGenRetry(nonce=NONCE, server_nonce=SERVER_NONCE, new_nonce_hash2=NEW_NONCE_HASH2)
    again = client.receive(server_message(0x65C53D5100000005, retry), NOW)
    assert isinstance(again, bytes)
    set_dh = tl.loads(unpack_plain(again).body)
    opened = aes_open(set_dh.encrypted_data)
    inner = tl.Reader(opened[20:]).read_object()
    assert inner.retry_id == int.from_bytes(h("20b5c361a4f5a3d0"), "little", signed=True)
    assert inner.g_b != G_B

    from dcpool.crypto.dh import TELEGRAM_DH_PRIME

    g_a = int.from_bytes(
        tl.Reader(aes_open(ENCRYPTED_ANSWER)[20:]).read_object().g_a, "big"
    )
    new_key = AuthKey.from_bytes(pow(g_a, int.from_bytes(second_b, "big"), TELEGRAM_DH_PRIME).to_bytes(256, "big"))
    gen_ok = mtproto.DhGenOk(
        nonce=NONCE, server_nonce=SERVER_NONCE,
        new_nonce_hash1=kdf.new_nonce_hash(NEW_NONCE, 1, new_key.aux_hash),
    )
    result = client.receive(server_message(0x65C53D5100000009, gen_ok), NOW)
    assert isinstance(result, HandshakeResult)
    assert result.auth_key == new_key != AuthKey.from_bytes(AUTH_KEY)


def aes_open(data: bytes) -> bytes:
    from dcpool.crypto import aes

    return aes.ige_decrypt(data, TMP_AES_KEY, TMP_AES_IV)


# --------------------------------------------------------------------------- §19 V4 (legacy)

V4_NONCE = h("3E0549828CCA27E966B301A48FECE2FC")
V4_SERVER_NONCE = h("A5CF4D33F4A11EA877BA4AA573907330")
V4_NEW_NONCE = h("311C85DB234AA2640AFC4A76A735CF5B1F0FD68BD17FA181E1229AD867CC024D")
V4_RES_PQ_BODY = h(
    "632416053E0549828CCA27E966B301A48FECE2FCA5CF4D33F4A11EA877BA4AA5739073300817ED48941A08F98100"
    "000015C4B51C01000000216BE86C022BB4C3"
)
V4_P_Q_INNER_DATA = h(
    "EC5AC9830817ED48941A08F98100000004494C553B00000004539110730000003E0549828CCA27E966B301A48FECE2FC"
    "A5CF4D33F4A11EA877BA4AA573907330311C85DB234AA2640AFC4A76A735CF5B1F0FD68BD17FA181E1229AD867CC024D"
)
FP_OLD = -4344800451088585951  # 0xc3b42b026ce86b21


def test_v4_legacy_p_q_inner_data(local_key):
    rng = ScriptedRng(V4_NONCE, V4_NEW_NONCE)
    client = ClientHandshake({FP_OLD: local_key.public_key}, 2, rng, legacy=True)
    client.start(1000.0)
    out = client.receive(pack_plain(0x3E8_00000001, V4_RES_PQ_BODY), 1000.0)
    req = tl.loads(unpack_plain(out).body)
    # §19 V2: 0x17ED48941A08F981 = 0x494C553B * 0x53911073
    assert (req.p, req.q) == (h("494C553B"), h("53911073"))
    assert req.public_key_fingerprint == FP_OLD
    decoded = rsa.decode_inner_data(req.encrypted_data, local_key)
    assert decoded.envelope is rsa.Envelope.LEGACY
    assert decoded.data == V4_P_Q_INNER_DATA  # 96 bytes, no dc
    assert hashlib.sha1(decoded.data).hexdigest().upper() == "DB761C27718A2305044F71F2AD951629D78B2449"
    # and the raw block really is SHA1(data) + data + padding (255 bytes after the zero byte)
    block = local_key.decrypt_raw(req.encrypted_data)
    assert block[0] == 0 and block[1:21] == hashlib.sha1(V4_P_Q_INNER_DATA).digest()
    assert block[21 : 21 + 96] == V4_P_Q_INNER_DATA


def test_v4_tmp_keys():
    assert kdf.tmp_aes_key_iv(V4_SERVER_NONCE, V4_NEW_NONCE) == (
        h("F011280887C7BB01DF0FC4E17830E0B91FBB8BE4B2267CB985AE25F33B527253"),
        h("3212D579EE35452ED23E0D0C92841AA7D31B2E9BDEF2151E80D15860311C85DB"),
    )


def test_v5_v6_tmp_keys():
    # V5 (Telethon): nonces as little-endian integers
    assert kdf.tmp_aes_key_iv((123456789).to_bytes(16, "little"), (1234567).to_bytes(32, "little")) == (
        h("345c11141f0a9f0fe4026bcf5a3b6b41ab96cac1c29557d087450e01a001a990"),
        h("d40823854f5e0ef2518c58a4ef76e3476cd91004f32ff8cbbbdca87587d61200"),
    )
    # V6 (gotd): leading zero bytes must be kept
    new_nonce = bytes(range(32))
    server_nonce = b"\x00" + bytes(range(0x21, 0x30))
    assert kdf.tmp_aes_key_iv(server_nonce, new_nonce) == (
        h("0a2d0f607499a866848e41798a34315e4922c39fe55c6caf5bc322c4b8c08c6a"),
        h("9cb702d4fd6e5d25e864070e166e6218f6783e8511471a5ab7802cf200010203"),
    )


def test_v6_leading_zero_nonces_full_handshake(local_key):
    """A full in-memory handshake whose new_nonce and server_nonce start with 0x00 (V6)."""
    import os

    from dcpool.mtproto.handshake import ServerHandshake

    new_nonce = bytes(range(32))
    server_nonce = b"\x00" + bytes(range(0x21, 0x30))

    queue = [server_nonce]

    def server_rng(n: int) -> bytes:
        if n == 16 and queue:
            return queue.pop(0)
        return os.urandom(n)

    client = ClientHandshake(
        {local_key.public_key.fingerprint: local_key.public_key}, 2,
        ScriptedRng(b"\x00" * 16, new_nonce),
    )
    server = ServerHandshake([local_key], server_rng)
    out = client.start(1000.0)
    result = None
    for _ in range(3):
        reply, result = server.receive(out, 1000.0)
        out = client.receive(reply, 1000.0)
    assert isinstance(out, HandshakeResult) and result is not None
    assert out.auth_key == result.auth_key
    assert out.server_salt == int.from_bytes(
        bytes(a ^ b for a, b in zip(new_nonce[:8], server_nonce[:8])), "little", signed=True
    )


# --------------------------------------------------------------------------- §19 V9

V9_OUTPUT = h("""
BF68719E836806B040CD261ECAF66EB3C4BA19F3BBEA3031B2E6CF29167BAB647201D101B291DC5B716A42E789A38D94
7FE59E9BCCE8F30EF46A946743EA8B6BABBCE7FC0AFC46B802AA453E83471D82A4DFAD83F971F350B4B4FB474CD1C48F
DF427E4B5FECCE9EC3178AE7DAC3985856FDEFA21D6FDC5E0E0FD8A57BC4F51580D637D372BE8D87C9AA3FDE8E6F8287
BCB3BE846AADCDD59465375479E248F62ED438F9804FBE36D41CA906243A5F740F3937949AA149BA8A8B8E68B3F3E1E3
CD3F946387520E21EEE55845E1F015A919A22F6A72BFAECD2CAE946C91983B41F9FFABE97963BBDE8F30EAF5FD3C5B8C
ECAB8711BD269E441B6084F385726FF0""")


def test_v9_rsa_pad_envelope_the_client_relies_on():
    key = rsa.TELEGRAM_PRODUCTION_KEYS[FP_PRODUCTION]
    assert rsa.encrypt_rsa_pad(b"a" * 144, key, lambda n: bytes(n)) == V9_OUTPUT


def test_client_against_real_production_key_is_deterministic():
    """With Telegram's real key the envelope is opaque, but it is a pure function of the rng."""
    outputs = []
    for _ in range(2):
        rng = ScriptedRng(NONCE, NEW_NONCE, RSA_PAD_PADDING)
        client = ClientHandshake(rsa.TELEGRAM_PRODUCTION_KEYS, 2, rng)
        client.start(NOW)
        req = tl.loads(unpack_plain(client.receive(fixed_res_pq_message(), NOW)).body)
        assert req.public_key_fingerprint == FP_PRODUCTION
        outputs.append(req.encrypted_data)
    assert outputs[0] == outputs[1] and len(outputs[0]) == 256
