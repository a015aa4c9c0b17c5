"""Client ↔ server auth-key handshake in memory (spec §5): happy paths, retry, state machine."""

from __future__ import annotations

import functools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcpool import tl
from dcpool.crypto import rsa
from dcpool.errors import (
    DcPoolError,
    HandshakeError,
    LocalProtocolError,
    MsgIdParity,
    RemoteProtocolError,
    TLDecodeError,
)
from dcpool.mtproto import AuthKey
from dcpool.mtproto.handshake import (
    ClientHandshake,
    ClientHandshakeState,
    HandshakeResult,
    ServerHandshake,
    ServerHandshakeResult,
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


def run(client: ClientHandshake, server: ServerHandshake, now: float = NOW, server_now: float | None = None):
    """Drive both sides to completion; returns (client result, server result, round trips)."""
    server_now = now if server_now is None else server_now
    out = client.start(now)
    server_result = None
    for trips in range(1, 20):
        reply, result = server.receive(out, server_now)
        if result is not None:
            assert server_result is None, "the server produced two results"
            server_result = result
        assert reply is not None
        out = client.receive(reply, now)
        if isinstance(out, HandshakeResult):
            return out, server_result, trips
    raise AssertionError("handshake did not finish")


@pytest.mark.parametrize("legacy", [False, True], ids=["rsa_pad", "legacy"])
@pytest.mark.parametrize("temp", [None, 86400], ids=["perm", "temp"])
def test_full_handshake(key, legacy, temp):
    client = ClientHandshake(keys_of(key), 10002, os.urandom, legacy=legacy, temp_expires_in=temp)
    server = ServerHandshake([key], os.urandom, expected_dc=2, test_mode=True)
    ours, theirs, trips = run(client, server, now=NOW, server_now=NOW + 12.5)
    assert trips == 3
    assert isinstance(theirs, ServerHandshakeResult)
    assert ours.auth_key == theirs.auth_key
    assert len(ours.auth_key.key) == 256
    assert ours.server_salt == theirs.server_salt
    assert ours.time_offset == pytest.approx(12.0)  # server_time is whole seconds
    # legacy inner data carries no dc (§5.4); the _dc variants carry the wire dc
    assert theirs.dc == (None if legacy else 10002)
    assert theirs.temp_expires_in == temp
    assert client.state is ClientHandshakeState.DONE
    assert server.state is ServerHandshakeState.DONE and server.completed == 1


def test_media_dc_is_negative(key):
    client = ClientHandshake(keys_of(key), -4, os.urandom)
    ours, theirs, _ = run(client, ServerHandshake([key], os.urandom, expected_dc=4))
    assert theirs.dc == -4 and ours.auth_key == theirs.auth_key


def test_result_salt_formula(key):
    """§5.10: server_salt = new_nonce[0:8] XOR server_nonce[0:8] as LE int64 (checked by
    reading both nonces off the wire with a key we hold)."""
    client = ClientHandshake(keys_of(key), 2, os.urandom)
    server = ServerHandshake([key], os.urandom)
    first = client.start(NOW)
    res_pq_msg, _ = server.receive(first, NOW)
    server_nonce = tl.loads(unpack_plain(res_pq_msg).body).server_nonce
    req = client.receive(res_pq_msg, NOW)
    inner = tl.Reader(rsa.decrypt_inner_data(tl.loads(unpack_plain(req).body).encrypted_data, key)).read_object()
    reply, _ = server.receive(req, NOW)
    reply, _ = server.receive(client.receive(reply, NOW), NOW)
    result = client.receive(reply, NOW)
    salt = bytes(a ^ b for a, b in zip(inner.new_nonce[:8], server_nonce[:8]))
    assert result.server_salt == int.from_bytes(salt, "little", signed=True)


def test_retry_path_on_key_id_collision(key):
    seen: list[int] = []

    def key_exists(key_id: int) -> bool:
        seen.append(key_id)
        return len(seen) == 1  # the first key "collides"

    client = ClientHandshake(keys_of(key), 2, os.urandom)
    server = ServerHandshake([key], os.urandom, key_exists=key_exists)
    ours, theirs, trips = run(client, server)
    assert trips == 4  # one extra set_client_DH_params round trip
    assert len(seen) == 2 and seen[0] != seen[1]
    assert ours.auth_key == theirs.auth_key
    assert ours.auth_key.key_id == seen[1]


def test_retry_id_is_previous_aux_hash(key):
    """§5.8: after dh_gen_retry the client sends retry_id = previous auth_key_aux_hash as LE long
    (the server enforces it; here we also look inside with the server's tmp key)."""
    calls = []

    def key_exists(key_id):
        calls.append(key_id)
        return len(calls) == 1

    client = ClientHandshake(keys_of(key), 2, os.urandom)
    server = ServerHandshake([key], os.urandom, key_exists=key_exists)
    out = client.start(NOW)
    for _ in range(2):
        out = client.receive(server.receive(out, NOW)[0], NOW)
    first_set = out
    retry_msg, _ = server.receive(first_set, NOW)
    assert isinstance(tl.loads(unpack_plain(retry_msg).body), mtproto.DhGenRetry)
    first_candidate = client._secrets.auth_key  # white-box: the key that collided
    second_set = client.receive(retry_msg, NOW)
    from dcpool.crypto import aes

    s = server._secrets
    body = tl.loads(unpack_plain(second_set).body)
    plain = aes.ige_decrypt(body.encrypted_data, s.tmp_key, s.tmp_iv)
    inner = tl.Reader(plain[20:]).read_object()
    assert inner.retry_id == int.from_bytes(first_candidate.aux_hash, "little", signed=True)
    reply, result = server.receive(second_set, NOW)
    final = client.receive(reply, NOW)
    assert final.auth_key == result.auth_key != first_candidate


def test_several_handshakes_on_one_server_object(key):
    """Telethon redoes a handshake on the same connection (§17.2): a new req_pq restarts."""
    server = ServerHandshake([key], os.urandom)
    results = [run(ClientHandshake(keys_of(key), 2, os.urandom, legacy=i % 2 == 1), server)[0]
               for i in range(3)]
    assert server.completed == 3
    assert len({r.auth_key.key_id for r in results}) == 3


def test_restart_in_the_middle(key):
    """A client that gives up after resPQ and starts again is served a fresh handshake."""
    server = ServerHandshake([key], os.urandom)
    abandoned = ClientHandshake(keys_of(key), 2, os.urandom)
    first, _ = server.receive(abandoned.start(NOW), NOW)
    server.receive(abandoned.receive(first, NOW), NOW)
    assert server.state is ServerHandshakeState.WAIT_SET_CLIENT_DH_PARAMS
    ours, theirs, _ = run(ClientHandshake(keys_of(key), 2, os.urandom), server)
    assert ours.auth_key == theirs.auth_key


def test_server_answers_repeats_identically(key):
    """§5.1/§5.9: a repeated req_pq gets the same resPQ; a repeated req_DH_params the same
    server_DH_params_ok; a repeated set_client_DH_params after ok the same dh_gen_ok, no second
    result."""
    client = ClientHandshake(keys_of(key), 2, os.urandom)
    server = ServerHandshake([key], os.urandom)
    req_pq = client.start(NOW)
    a, _ = server.receive(req_pq, NOW)
    b, _ = server.receive(req_pq, NOW + 1)
    assert unpack_plain(a).body == unpack_plain(b).body
    assert unpack_plain(b).msg_id > unpack_plain(a).msg_id
    req_dh = client.receive(a, NOW)
    c, _ = server.receive(req_dh, NOW)
    d, _ = server.receive(req_dh, NOW)
    assert unpack_plain(c).body == unpack_plain(d).body
    set_dh = client.receive(c, NOW)
    e, result = server.receive(set_dh, NOW)
    f, again = server.receive(set_dh, NOW)
    assert result is not None and again is None
    assert unpack_plain(e).body == unpack_plain(f).body
    assert isinstance(client.receive(e, NOW), HandshakeResult)


def test_server_accepts_legacy_req_pq(key):
    server = ServerHandshake([key], os.urandom)
    reply, _ = server.receive(pack_plain(4, mtproto.ReqPq(nonce=b"n" * 16).to_bytes()), NOW)
    res_pq = tl.loads(unpack_plain(reply).body)
    assert isinstance(res_pq, mtproto.ResPQ) and res_pq.nonce == b"n" * 16


def test_server_pq_and_msg_ids(key):
    """§5.2: p, q random distinct primes in [2^30, 2^31), pq 8 bytes; server msg_ids odd (≡1 mod 4)
    and increasing."""
    from dcpool.crypto.factorize import factorize_pq, is_probable_prime

    server = ServerHandshake([key], os.urandom)
    last = 0
    pqs = set()
    for i in range(25):
        reply, _ = server.receive(pack_plain(4 * (i + 1), mtproto.ReqPqMulti(nonce=os.urandom(16)).to_bytes()), NOW)
        message = unpack_plain(reply)
        assert message.msg_id % 4 == 1 and message.msg_id > last
        last = message.msg_id
        res_pq = tl.loads(message.body)
        assert res_pq.server_public_key_fingerprints == [key.public_key.fingerprint]
        assert len(res_pq.pq) == 8
        pq = int.from_bytes(res_pq.pq, "big")
        p, q = factorize_pq(pq)
        assert 2**30 <= p < q < 2**31
        assert is_probable_prime(p) and is_probable_prime(q)
        pqs.add(pq)
    assert len(pqs) > 20


def test_server_several_keys_fingerprints(key):
    other = rsa.RsaPrivateKey.generate()
    server = ServerHandshake([key, other], os.urandom)
    # the client knows only the second key
    ours, theirs, _ = run(ClientHandshake(keys_of(other), 2, os.urandom), server)
    assert ours.auth_key == theirs.auth_key


def test_server_shared_msg_id_source(key):
    ids = iter(range(1001, 10**6, 4))
    server = ServerHandshake([key], os.urandom, msg_ids=lambda now: next(ids))
    reply, _ = server.receive(pack_plain(4, mtproto.ReqPqMulti(nonce=b"x" * 16).to_bytes()), NOW)
    assert unpack_plain(reply).msg_id == 1001


# --------------------------------------------------------------------------- client state machine


def test_client_state_errors(key):
    client = ClientHandshake(keys_of(key), 2, os.urandom)
    with pytest.raises(LocalProtocolError):
        client.receive(b"", NOW)
    assert client.state is ClientHandshakeState.IDLE
    client.start(NOW)
    with pytest.raises(LocalProtocolError):
        client.start(NOW)
    assert client.state is ClientHandshakeState.WAIT_RES_PQ  # misuse does not kill it


def test_client_after_done_is_closed(key):
    client = ClientHandshake(keys_of(key), 2, os.urandom)
    server = ServerHandshake([key], os.urandom)
    run(client, server)
    with pytest.raises(LocalProtocolError):
        client.receive(pack_plain(1, b"\x00" * 4), NOW)
    assert client._secrets is None  # §5.9: temporary data dropped


def test_client_constructor_validation(key):
    with pytest.raises(LocalProtocolError):
        ClientHandshake({}, 2, os.urandom)
    with pytest.raises(LocalProtocolError):
        ClientHandshake(keys_of(key), 2, os.urandom, temp_expires_in=0)
    with pytest.raises(LocalProtocolError):
        ClientHandshake(keys_of(key), 2, lambda n: b"short").start(NOW)


def test_client_msg_ids(key):
    client = ClientHandshake(keys_of(key), 2, os.urandom)
    server = ServerHandshake([key], os.urandom)
    out = client.start(NOW)
    ids = [unpack_plain(out).msg_id]
    for _ in range(2):
        out = client.receive(server.receive(out, NOW)[0], NOW)  # same `now` every time
        ids.append(unpack_plain(out).msg_id)
    assert all(i % 4 == 0 for i in ids)
    assert ids == sorted(set(ids))


def test_client_rejects_even_server_msg_id(key):
    client = ClientHandshake(keys_of(key), 2, os.urandom)
    server = ServerHandshake([key], os.urandom)
    reply, _ = server.receive(client.start(NOW), NOW)
    message = unpack_plain(reply)
    with pytest.raises(MsgIdParity):
        client.receive(pack_plain(message.msg_id + 1, message.body), NOW)
    assert client.state is ClientHandshakeState.FAILED


def test_client_unexpected_constructor_kills_it(key):
    client = ClientHandshake(keys_of(key), 2, os.urandom)
    client.start(NOW)
    bogus = mtproto.DhGenOk(nonce=b"a" * 16, server_nonce=b"b" * 16, new_nonce_hash1=b"c" * 16)
    with pytest.raises(RemoteProtocolError):
        client.receive(pack_plain(5, bogus.to_bytes()), NOW)
    with pytest.raises(LocalProtocolError):
        client.receive(pack_plain(9, bogus.to_bytes()), NOW)


def test_client_transport_error_payload_is_not_its_job(key):
    client = ClientHandshake(keys_of(key), 2, os.urandom)
    client.start(NOW)
    with pytest.raises(TLDecodeError):
        client.receive((-404).to_bytes(4, "little", signed=True), NOW)
    assert client.state is ClientHandshakeState.FAILED


def test_client_repr_shows_no_secrets(key):
    client = ClientHandshake(keys_of(key), 2, os.urandom)
    server = ServerHandshake([key], os.urandom)
    out = client.start(NOW)
    out = client.receive(server.receive(out, NOW)[0], NOW)
    text = repr(client) + repr(server)
    new_nonce = client._secrets.new_nonce
    assert new_nonce.hex() not in text and repr(new_nonce) not in text
    assert "wait_dh_params" in text


# --------------------------------------------------------------------------- robustness


@functools.cache
def _fuzz_key() -> rsa.RsaPrivateKey:
    # not a fixture: hypothesis would print the private key's fields in a falsifying example
    return rsa.RsaPrivateKey.generate()


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=300), msg_id=st.integers(0, 2**63 - 1))
def test_server_garbage_is_always_minus_404(body, msg_id):
    server = ServerHandshake([_fuzz_key()], os.urandom)
    for payload in (body, pack_plain(msg_id, body)):
        try:
            server.receive(payload, NOW)
        except HandshakeError as exc:
            assert exc.transport_code == -404
            assert server.state is ServerHandshakeState.FAILED


@settings(max_examples=60, deadline=None)
@given(body=st.binary(max_size=300), msg_id=st.integers(0, 2**61).map(lambda x: 2 * x + 1))
def test_client_garbage_raises_only_dcpool_errors(body, msg_id):
    client = ClientHandshake(keys_of(_fuzz_key()), 2, os.urandom)
    client.start(NOW)
    with pytest.raises(DcPoolError):
        client.receive(pack_plain(msg_id, body), NOW)
    assert client.state is ClientHandshakeState.FAILED


def test_auth_key_type(key):
    ours, _, _ = run(ClientHandshake(keys_of(key), 2, os.urandom), ServerHandshake([key], os.urandom))
    assert isinstance(ours.auth_key, AuthKey)
