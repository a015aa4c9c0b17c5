"""Hostile servers and bad clients (spec §5.5-§5.9, security guidelines).

Part 1: each :class:`Misbehavior` of the server makes the client raise its precise error,
produce no result, keep no key and refuse further input.

Part 2: every check of the server (§5.5 and the g_b checks of §5.7) answered with -404 (or -444
for a DC mismatch), driven by a hand-built client that can break each rule.
"""

from __future__ import annotations

import hashlib
import os

import attrs
import pytest

from dcpool import tl
from dcpool.crypto import aes, dh, kdf, rsa
from dcpool.errors import (
    AnswerHashMismatch,
    BadDhG,
    BadDhPrime,
    BadDhValue,
    HandshakeError,
    HandshakeSecurityError,
    LocalProtocolError,
    NewNonceHashMismatch,
    NonceMismatch,
    UnknownFingerprint,
)
from dcpool.mtproto import AuthKey
from dcpool.mtproto.handshake import (
    ClientHandshake,
    ClientHandshakeState,
    HandshakeResult,
    Misbehavior,
    ServerHandshake,
    ServerHandshakeState,
)
from dcpool.mtproto.plain import pack_plain, unpack_plain
from dcpool.tl import mtproto

NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def key() -> rsa.RsaPrivateKey:
    return rsa.RsaPrivateKey.generate()


def keys_of(key: rsa.RsaPrivateKey) -> dict[int, rsa.RsaPublicKey]:
    return {key.public_key.fingerprint: key.public_key}


# =========================================================================== part 1: hostile server

EXPECTED = {
    Misbehavior.WRONG_NONCE: NonceMismatch,
    Misbehavior.WRONG_SERVER_NONCE: NonceMismatch,
    Misbehavior.WRONG_INNER_NONCE: NonceMismatch,
    Misbehavior.WRONG_DH_GEN_NONCE: NonceMismatch,
    Misbehavior.UNKNOWN_FINGERPRINT: UnknownFingerprint,
    Misbehavior.BAD_PQ: HandshakeSecurityError,
    Misbehavior.CORRUPT_ANSWER_HASH: AnswerHashMismatch,
    Misbehavior.LONG_ANSWER_PADDING: AnswerHashMismatch,
    Misbehavior.UNSAFE_PRIME: BadDhPrime,
    Misbehavior.SHORT_PRIME: BadDhPrime,
    Misbehavior.G_OUT_OF_RANGE: BadDhG,
    Misbehavior.G_NOT_RESIDUE: BadDhG,
    Misbehavior.G_A_OUT_OF_RANGE: BadDhValue,
    Misbehavior.G_A_OUTSIDE_WINDOW: BadDhValue,
    Misbehavior.BAD_NEW_NONCE_HASH: NewNonceHashMismatch,
    Misbehavior.PARAMS_FAIL: HandshakeError,
    Misbehavior.PARAMS_FAIL_BAD_HASH: NewNonceHashMismatch,
    Misbehavior.DH_GEN_FAIL: HandshakeError,
    Misbehavior.ALWAYS_RETRY: HandshakeError,
}


def test_every_misbehavior_has_an_expectation():
    assert set(EXPECTED) == set(Misbehavior)


def _reachable_secrets(obj: object) -> list[object]:
    """AuthKeys and 256-byte blobs reachable from ``obj``'s attributes (one level into attrs)."""
    found = []
    for value in vars(obj).values():
        values = [value]
        if attrs.has(type(value)):
            values += [getattr(value, f.name) for f in attrs.fields(type(value))]
        for v in values:
            if isinstance(v, AuthKey) or (isinstance(v, bytes) and len(v) == 256):
                found.append(v)
    return found


@pytest.mark.parametrize("fault", list(Misbehavior), ids=lambda m: m.value)
@pytest.mark.parametrize("legacy", [False, True], ids=["rsa_pad", "legacy"])
def test_client_rejects_misbehaving_server(key, fault, legacy):
    client = ClientHandshake(keys_of(key), 2, os.urandom, legacy=legacy)
    server = ServerHandshake([key], os.urandom, misbehave={fault.value})
    out = client.start(NOW)
    with pytest.raises(EXPECTED[fault]) as info:
        for _ in range(12):
            reply, _ = server.receive(out, NOW)
            out = client.receive(reply, NOW)
            assert not isinstance(out, HandshakeResult), "a result escaped a misbehaving server"
    assert type(info.value) is EXPECTED[fault]  # precisely this class, not a parent or sibling
    assert client.state is ClientHandshakeState.FAILED
    assert _reachable_secrets(client) == []
    with pytest.raises(LocalProtocolError):
        client.receive(reply, NOW)
    with pytest.raises(LocalProtocolError):
        client.start(NOW)


def test_misbehavior_accepts_enum_and_rejects_unknown_names(key):
    server = ServerHandshake([key], os.urandom, misbehave=[Misbehavior.BAD_PQ, "wrong_nonce"])
    assert server.misbehave == {Misbehavior.BAD_PQ, Misbehavior.WRONG_NONCE}
    assert "bad_pq" in repr(server)
    with pytest.raises(LocalProtocolError):
        ServerHandshake([key], os.urandom, misbehave={"be_evil"})


def test_unsafe_prime_knob_is_really_a_prime_that_is_not_safe():
    from dcpool.mtproto.handshake import _SHORT_PRIME, _UNSAFE_PRIME

    # prime (Fermat base 2 is enough here: the constant was chosen with 20 Miller-Rabin rounds)
    assert _UNSAFE_PRIME.bit_length() == 2048 and pow(2, _UNSAFE_PRIME - 1, _UNSAFE_PRIME) == 1
    assert not dh.is_safe_prime(_UNSAFE_PRIME)
    assert _UNSAFE_PRIME % 3 == 2  # so g = 3 alone would pass: the prime is what fails
    assert _SHORT_PRIME.bit_length() == 1024 and dh.is_safe_prime(_SHORT_PRIME)


def test_client_bounded_retries(key):
    server = ServerHandshake([key], os.urandom, misbehave={"always_retry"})
    client = ClientHandshake(keys_of(key), 2, os.urandom, max_retries=2)
    out = client.start(NOW)
    sent = 0
    with pytest.raises(HandshakeError, match="more than 2 retries"):
        while True:
            reply, _ = server.receive(out, NOW)
            sent += 1
            out = client.receive(reply, NOW)
    assert sent == 5  # req_pq, req_DH_params, 3 x set_client_DH_params (1 + 2 retries)


def test_dh_gen_ok_before_set_client_dh_params_is_rejected(key):
    """An answer of the wrong step never yields a key."""
    client = ClientHandshake(keys_of(key), 2, os.urandom)
    server = ServerHandshake([key], os.urandom)
    res_pq, _ = server.receive(client.start(NOW), NOW)
    nonce = tl.loads(unpack_plain(res_pq).body)
    client.receive(res_pq, NOW)
    forged = mtproto.DhGenOk(nonce=nonce.nonce, server_nonce=nonce.server_nonce, new_nonce_hash1=bytes(16))
    with pytest.raises(Exception) as info:
        client.receive(pack_plain(0x7777_0001, forged.to_bytes()), NOW)
    assert not isinstance(info.value, LocalProtocolError)
    assert client.state is ClientHandshakeState.FAILED


# =========================================================================== part 2: bad clients


@attrs.define
class ManualClient:
    """A hand-driven client that can break any rule the server checks."""

    server: ServerHandshake
    key: rsa.RsaPrivateKey
    nonce: bytes = attrs.Factory(lambda: os.urandom(16))
    new_nonce: bytes = attrs.Factory(lambda: os.urandom(32))
    msg_id: int = 0
    res_pq: object = None
    answer: object = None
    tmp: tuple[bytes, bytes] = (b"", b"")
    result: object = None

    def send(self, obj_or_bytes) -> object:
        body = obj_or_bytes if isinstance(obj_or_bytes, bytes) else obj_or_bytes.to_bytes()
        self.msg_id += 4
        reply, self.result = self.server.receive(pack_plain(self.msg_id, body), NOW)
        return tl.loads(unpack_plain(reply).body)

    def req_pq(self) -> object:
        self.res_pq = self.send(mtproto.ReqPqMulti(nonce=self.nonce))
        return self.res_pq

    def pq(self) -> tuple[int, int]:
        from dcpool.crypto.factorize import factorize_pq

        return factorize_pq(int.from_bytes(self.res_pq.pq, "big"))

    def req_dh(
        self, *, variant: str = "dc", envelope: str = "rsa_pad", dc: int = 2, expires_in: int = 3600,
        inner_nonce: bytes | None = None, inner_server_nonce: bytes | None = None,
        inner_p: int | None = None, nonce: bytes | None = None, server_nonce: bytes | None = None,
        p: int | None = None, q: int | None = None, fingerprint: int | None = None,
        pq_bytes: bytes | None = None, width: int = 0, inner_obj: object = None,
        encrypted: bytes | None = None,
    ) -> object:
        rp, rq = self.pq()
        p = rp if p is None else p
        q = rq if q is None else q

        def enc(v: int) -> bytes:
            return v.to_bytes(width or (v.bit_length() + 7) // 8, "big")

        common = dict(
            pq=self.res_pq.pq if pq_bytes is None else pq_bytes,
            p=enc(rp if inner_p is None else inner_p), q=enc(rq),
            nonce=self.nonce if inner_nonce is None else inner_nonce,
            server_nonce=self.res_pq.server_nonce if inner_server_nonce is None else inner_server_nonce,
            new_nonce=self.new_nonce,
        )
        inner = inner_obj or {
            "legacy": lambda: mtproto.PQInnerData(**common),
            "dc": lambda: mtproto.PQInnerDataDc(**common, dc=dc),
            "temp": lambda: mtproto.PQInnerDataTemp(**common, expires_in=expires_in),
            "temp_dc": lambda: mtproto.PQInnerDataTempDc(**common, dc=dc, expires_in=expires_in),
        }[variant]()
        seal = rsa.encrypt_legacy if envelope == "legacy" else rsa.encrypt_rsa_pad
        if encrypted is None:
            encrypted = seal(inner.to_bytes(), self.key.public_key, os.urandom)
        self.answer = self.send(mtproto.ReqDHParams(
            nonce=self.nonce if nonce is None else nonce,
            server_nonce=self.res_pq.server_nonce if server_nonce is None else server_nonce,
            p=enc(p), q=enc(q),
            public_key_fingerprint=self.key.public_key.fingerprint if fingerprint is None else fingerprint,
            encrypted_data=encrypted,
        ))
        return self.answer

    def dh_inner(self) -> object:
        self.tmp = kdf.tmp_aes_key_iv(self.res_pq.server_nonce, self.new_nonce)
        plain = aes.ige_decrypt(self.answer.encrypted_answer, *self.tmp)
        return tl.Reader(plain[20:]).read_object()

    def set_dh(
        self, *, g_b: int | None = None, retry_id: int = 0, b: int | None = None,
        inner_nonce: bytes | None = None, corrupt_hash: bool = False, g_b_width: int = 256,
        long_padding: bool = False,
    ) -> tuple[object, AuthKey]:
        inner = self.dh_inner()
        prime = int.from_bytes(inner.dh_prime, "big")
        g_a = int.from_bytes(inner.g_a, "big")
        b = b if b is not None else int.from_bytes(os.urandom(256), "big")
        if g_b is None:
            g_b = pow(inner.g, b, prime)
        data = mtproto.ClientDHInnerData(
            nonce=self.nonce if inner_nonce is None else inner_nonce,
            server_nonce=self.res_pq.server_nonce, retry_id=retry_id,
            g_b=g_b.to_bytes(g_b_width or (g_b.bit_length() + 7) // 8, "big"),
        ).to_bytes()
        sha = hashlib.sha1(data).digest()
        if corrupt_hash:
            sha = bytes(20)
        pad = os.urandom(-(20 + len(data)) % 16 + (16 if long_padding else 0))
        encrypted = aes.ige_encrypt(sha + data + pad, *self.tmp)
        reply = self.send(mtproto.SetClientDHParams(
            nonce=self.nonce, server_nonce=self.res_pq.server_nonce, encrypted_data=encrypted,
        ))
        return reply, AuthKey.from_bytes(pow(g_a, b, prime).to_bytes(256, "big"))


def expect_code(code: int, call, *args, **kwargs) -> HandshakeError:
    with pytest.raises(HandshakeError) as info:
        call(*args, **kwargs)
    assert info.value.transport_code == code
    return info.value


@pytest.mark.parametrize("variant", ["legacy", "dc", "temp", "temp_dc"])
@pytest.mark.parametrize("envelope", ["legacy", "rsa_pad"])
def test_server_accepts_all_inner_variants_in_both_envelopes(key, variant, envelope):
    server = ServerHandshake([key], os.urandom, expected_dc=2)
    c = ManualClient(server, key)
    c.req_pq()
    answer = c.req_dh(variant=variant, envelope=envelope, dc=2, expires_in=600)
    assert isinstance(answer, mtproto.ServerDHParamsOk)
    inner = c.dh_inner()
    assert inner.g == 3 and int.from_bytes(inner.dh_prime, "big") == dh.TELEGRAM_DH_PRIME
    dh.check_g_x(int.from_bytes(inner.g_a, "big"), dh.TELEGRAM_DH_PRIME)
    assert abs(inner.server_time - NOW) < 1
    reply, auth_key = c.set_dh()
    assert isinstance(reply, mtproto.DhGenOk)
    assert reply.new_nonce_hash1 == kdf.new_nonce_hash(c.new_nonce, 1, auth_key.aux_hash)
    assert c.result.auth_key == auth_key
    assert c.result.dc == (2 if variant.endswith("dc") else None)
    assert c.result.temp_expires_in == (600 if variant.startswith("temp") else None)


def test_server_accepts_pyrogram_and_telethon_encodings(key):
    """Pyrogram: p, q as exactly 4 bytes; Telethon: g_b minimal-length (§17.1)."""
    server = ServerHandshake([key], os.urandom)
    c = ManualClient(server, key)
    c.req_pq()
    assert isinstance(c.req_dh(variant="legacy", envelope="legacy", width=4), mtproto.ServerDHParamsOk)
    reply, auth_key = c.set_dh(g_b_width=0)
    assert isinstance(reply, mtproto.DhGenOk) and c.result.auth_key == auth_key


def started(key, **server_kwargs) -> ManualClient:
    c = ManualClient(ServerHandshake([key], os.urandom, **server_kwargs), key)
    c.req_pq()
    return c


BAD_REQ_DH = {
    "wrong_nonce": dict(nonce=b"\x01" * 16),
    "wrong_server_nonce": dict(server_nonce=b"\x02" * 16),
    "unknown_fingerprint": dict(fingerprint=12345),
    "p_times_q_wrong": dict(p=3, q=5),
    "p_q_swapped": "swap",
    "inner_wrong_nonce": dict(inner_nonce=b"\x03" * 16),
    "inner_wrong_server_nonce": dict(inner_server_nonce=b"\x04" * 16),
    "inner_wrong_p": dict(inner_p=7),
    "inner_wrong_pq": dict(pq_bytes=(15).to_bytes(8, "big")),
    "inner_not_p_q_inner_data": dict(inner_obj=mtproto.ReqPqMulti(nonce=bytes(16))),
    "garbage_encrypted_data": dict(encrypted=os.urandom(255) + b"\x00"),
    "short_encrypted_data": dict(encrypted=b"\x00" * 100),
    "temp_expires_in_zero": dict(variant="temp_dc", expires_in=0),
}


@pytest.mark.parametrize("case", list(BAD_REQ_DH))
def test_server_rejects_bad_req_dh_params_with_404(key, case):
    c = started(key)
    kwargs = BAD_REQ_DH[case]
    if kwargs == "swap":
        p, q = c.pq()
        kwargs = dict(p=q, q=p)
    expect_code(-404, c.req_dh, **kwargs)
    assert c.server.state is ServerHandshakeState.FAILED
    # §5.5: after that every further request of this handshake also gets -404 ...
    expect_code(-404, c.req_dh)
    # ... and a new req_pq starts over
    c2 = ManualClient(c.server, key)
    c2.req_pq()
    assert isinstance(c2.req_dh(), mtproto.ServerDHParamsOk)


@pytest.mark.parametrize(
    ("test_mode", "dc", "expected_dc", "code"),
    [
        (False, 10002, None, -444),  # test dc id at a production DC
        (True, 2, None, -444),  # production dc id at a test DC
        (True, -10002, None, 0),  # test media DC
        (False, -2, 2, 0),
        (False, 3, 2, -444),  # not this DC
        (True, 10004, 2, -444),
    ],
)
def test_server_dc_checks(key, test_mode, dc, expected_dc, code):
    c = started(key, test_mode=test_mode, expected_dc=expected_dc)
    if code:
        expect_code(code, c.req_dh, variant="dc", dc=dc)
    else:
        assert isinstance(c.req_dh(variant="temp_dc", dc=dc), mtproto.ServerDHParamsOk)


def test_server_legacy_inner_data_has_no_dc_to_check(key):
    c = started(key, test_mode=True, expected_dc=2)
    assert isinstance(c.req_dh(variant="legacy"), mtproto.ServerDHParamsOk)


@pytest.mark.parametrize(
    "case",
    ["g_b_one", "g_b_p_minus_1", "g_b_below_window", "g_b_above_window", "wrong_inner_nonce",
     "corrupt_hash", "long_padding", "wrong_retry_id"],
)
def test_server_rejects_bad_set_client_dh_params_with_404(key, case):
    c = started(key)
    c.req_dh()
    p = dh.TELEGRAM_DH_PRIME
    kwargs = {
        "g_b_one": dict(g_b=1),
        "g_b_p_minus_1": dict(g_b=p - 1),
        "g_b_below_window": dict(g_b=pow(3, 5, p)),
        "g_b_above_window": dict(g_b=p - 2**1984 + 1),
        "wrong_inner_nonce": dict(inner_nonce=bytes(16)),
        "corrupt_hash": dict(corrupt_hash=True),
        "long_padding": dict(long_padding=True),
        "wrong_retry_id": dict(retry_id=1),
    }[case]
    expect_code(-404, c.set_dh, **kwargs)
    assert c.server.state is ServerHandshakeState.FAILED


def test_server_checks_retry_id_after_retry(key):
    calls = []
    c = started(key, key_exists=lambda key_id: calls.append(key_id) or len(calls) == 1)
    c.req_dh()
    reply, first = c.set_dh()
    assert isinstance(reply, mtproto.DhGenRetry)
    assert reply.new_nonce_hash2 == kdf.new_nonce_hash(c.new_nonce, 2, first.aux_hash)
    expect_code(-404, c.set_dh, retry_id=0)  # must be the previous aux_hash


def test_server_retry_then_ok_with_right_retry_id(key):
    calls = []
    c = started(key, key_exists=lambda key_id: calls.append(key_id) or len(calls) == 1)
    c.req_dh()
    _, first = c.set_dh()
    reply, second = c.set_dh(retry_id=int.from_bytes(first.aux_hash, "little", signed=True))
    assert isinstance(reply, mtproto.DhGenOk)
    assert c.result.auth_key == second and calls == [first.key_id, second.key_id]


def test_server_gives_up_after_many_collisions(key):
    c = started(key, key_exists=lambda key_id: True)
    c.req_dh()
    retry_id = 0
    for _ in range(50):
        reply, candidate = c.set_dh(retry_id=retry_id)
        if not isinstance(reply, mtproto.DhGenRetry):
            break
        retry_id = int.from_bytes(candidate.aux_hash, "little", signed=True)
    assert isinstance(reply, mtproto.DhGenFail)
    assert reply.new_nonce_hash3 == kdf.new_nonce_hash(c.new_nonce, 3, candidate.aux_hash)
    assert c.result is None


@pytest.mark.parametrize("step", ["req_dh_first", "set_dh_first", "set_dh_twice_state"])
def test_server_rejects_out_of_order_requests(key, step):
    server = ServerHandshake([key], os.urandom)
    c = ManualClient(server, key)
    if step == "req_dh_first":
        c.res_pq = mtproto.ResPQ(nonce=c.nonce, server_nonce=bytes(16), pq=(15).to_bytes(8, "big"),
                                 server_public_key_fingerprints=[])
        expect_code(-404, c.req_dh)
    elif step == "set_dh_first":
        body = mtproto.SetClientDHParams(nonce=c.nonce, server_nonce=bytes(16), encrypted_data=bytes(16))
        expect_code(-404, c.send, body)
    else:
        c.req_pq()
        body = mtproto.SetClientDHParams(nonce=c.nonce, server_nonce=c.res_pq.server_nonce,
                                         encrypted_data=bytes(16))
        expect_code(-404, c.send, body)


def test_server_rejects_non_handshake_objects(key):
    server = ServerHandshake([key], os.urandom)
    c = ManualClient(server, key)
    expect_code(-404, c.send, mtproto.DhGenOk(nonce=bytes(16), server_nonce=bytes(16), new_nonce_hash1=bytes(16)))


def test_server_constructor_validation(key):
    with pytest.raises(LocalProtocolError):
        ServerHandshake([], os.urandom)


def test_handshake_error_pickles_with_code():
    import pickle

    err = pickle.loads(pickle.dumps(HandshakeError("bad", transport_code=-444)))
    assert err.transport_code == -444 and str(err) == "bad"
    assert HandshakeError("x").transport_code is None
