"""Fuzzing every decoder a peer can reach: events or a typed dcpool error, never anything else,
never a hang.

The module tests already throw *random bytes* at each decoder (tests/transport/
test_transport_fuzz.py, tests/tl/test_tl_fuzz.py, tests/mtproto/test_envelope.py,
test_handshake.py, test_session.py, test_pair.py).  Random bytes rarely get past the first
check, so this file adds what they cannot reach — inputs that are *almost* right:

* transport: valid streams of every transport (plain, obfuscated, with a secret, full with its
  CRC) in both directions, then mutated (bytes flipped, cut, inserted, truncated) and fed in
  random chunks; unmutated streams must give back exactly the frames sent;
* handshake: a real exchange recorded once, then each step's message mutated and fed to a copy
  of the peer at that step (both roles);
* encrypted messages: plaintexts encrypted with the right key (so msg_key passes) but with
  random lengths, paddings and headers; the client session and the server connection fed
  containers of random inner messages, gzip_packed of random data, and mixed sequences;
* the whole client receive path (transport decoder + session) fed mutated encrypted streams;
* the TL readers (``tl.Reader`` and the session's hot-path reader) driven method by method,
  container/gzip helpers, and gzip bombs.

Every example runs under a watchdog (``DCPOOL_FUZZ_HANG`` seconds, SIGALRM): a hang fails.
``tools/fuzz.py`` runs this file with a much higher example count (``DCPOOL_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import copy
import functools
import gzip
import os
import random
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dcpool import errors, tl
from dcpool.errors import DcPoolError
from dcpool.mtproto import envelope
from dcpool.mtproto.authkey import AuthKey
from dcpool.mtproto.handshake import (
    ClientHandshake,
    ClientHandshakeState,
    HandshakeResult,
    ServerHandshake,
)
from dcpool.mtproto.msgid import ServerMsgIdGenerator
from dcpool.mtproto.server import (
    CloseConnection,
    IncomingRequest,
    MessageRejected,
    MessagesAcked,
    PingDelayDisconnect,
    ServerConnection,
    ServerCore,
    SessionCreated,
    SessionDestroyed,
    UnencryptedMessage,
)
from dcpool.mtproto.session import ClientSession, RequestState, RpcResult
from dcpool.tl import ids
from dcpool.transport import (
    ClientTransport,
    Frame,
    QuickAck,
    ServerTransport,
    TransportErrorFrame,
    TransportKind,
)

EXAMPLES = int(os.environ.get("DCPOOL_FUZZ_EXAMPLES", "40"))
HANG_SECONDS = float(os.environ.get("DCPOOL_FUZZ_HANG", "10"))


def fuzz(scale: float = 1.0) -> settings:
    return settings(
        max_examples=max(1, int(EXAMPLES * scale)),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


class Hang(Exception):
    """An example ran longer than the watchdog allows (deliberately not a DcPoolError)."""


@contextmanager
def watchdog(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail with :class:`Hang` if the block runs longer than ``seconds`` (main thread only)."""

    def expired(signum, frame):  # pragma: no cover - only on a hang
        raise Hang(f"no result after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def typed(fn: Callable[[], object]) -> tuple[object, DcPoolError | None]:
    """Run ``fn`` under the watchdog: (result, None) or (None, the DcPoolError it raised).
    Anything else propagates and fails the test."""
    with watchdog():
        try:
            result = fn()
        except DcPoolError as exc:
            _note(type(exc).__name__)
            return None, exc
    _note("accepted")
    return result, None


def _note(outcome: str) -> None:
    """Outcome statistics (``pytest --hypothesis-show-statistics``)."""
    try:
        event(outcome)
    except Exception:  # outside a hypothesis test
        pass


# --------------------------------------------------------------------------- mutations


@st.composite
def mutations(draw) -> list[tuple[str, float, int, bytes]]:
    """A few edits: (op, where in 0..1, size, bytes)."""
    op = st.sampled_from(["flip", "flip", "delete", "insert", "truncate", "extend", "swap"])
    return draw(
        st.lists(
            st.tuples(op, st.floats(0, 1, allow_nan=False), st.integers(1, 16), st.binary(min_size=1, max_size=16)),
            min_size=1,
            max_size=4,
        )
    )


def mutate(data: bytes, edits: list[tuple[str, float, int, bytes]]) -> bytes:
    buf = bytearray(data)
    for op, where, size, blob in edits:
        pos = min(int(where * len(buf)), max(len(buf) - 1, 0))
        if op == "flip" and buf:
            buf[pos] ^= blob[0] or 0x01
        elif op == "delete":
            del buf[pos : pos + size]
        elif op == "insert":
            buf[pos:pos] = blob
        elif op == "truncate":
            del buf[pos:]
        elif op == "extend":
            buf += blob
        elif op == "swap" and len(buf) > pos + size:
            buf[pos], buf[pos + size] = buf[pos + size], buf[pos]
    return bytes(buf)


def chunked(data: bytes, cuts: list[float]) -> list[bytes]:
    points = sorted({int(c * len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def seeded_rng(seed: int) -> Callable[[int], bytes]:
    r = random.Random(seed)
    return r.randbytes


# --------------------------------------------------------------------------- transport

SECRET = bytes(range(16))
#: (kind, obfuscated, secret)
TRANSPORTS = [
    (kind, obf, secret)
    for kind in TransportKind
    for obf in (False, True)
    for secret in (None, SECRET)
    if not (kind is TransportKind.FULL and obf) and not (secret and not obf)
]
EVENTS = (Frame, TransportErrorFrame, QuickAck)


def _pair(kind, obf, secret, seed):
    client = ClientTransport(kind, obfuscated=obf, secret=secret, rng=seeded_rng(seed))
    server = ServerTransport(rng=seeded_rng(seed + 1), secrets=(secret,))
    return client, server


def _feed(transport, chunks: list[bytes]) -> tuple[list, DcPoolError | None]:
    events: list = []

    def run():
        for chunk in chunks:
            events.extend(transport.receive_data(chunk))
        return events

    _, err = typed(run)
    assert all(isinstance(e, EVENTS) for e in events), events
    if err is not None:
        assert isinstance(err, errors.FramingError), repr(err)
    return events, err


payloads = st.lists(st.binary(min_size=1, max_size=64).map(lambda b: b + bytes(-len(b) % 4)),
                    min_size=1, max_size=5)


@pytest.mark.parametrize("kind,obf,secret", TRANSPORTS, ids=lambda v: getattr(v, "value", str(v)))
@fuzz(0.5)
@given(frames=payloads, edits=st.none() | mutations(), cuts=st.lists(st.floats(0, 1), max_size=6),
       seed=st.integers(0, 2**16))
def test_transport_client_to_server_streams(kind, obf, secret, frames, edits, cuts, seed):
    client, server = _pair(kind, obf, secret, seed)
    for p in frames:
        client.send_frame(p)
    stream = client.data_to_send()
    if edits is None:
        events, err = _feed(server, chunked(stream, cuts))
        assert err is None and [e.payload for e in events] == frames
    else:
        _feed(server, chunked(mutate(stream, edits), cuts))


@pytest.mark.parametrize("kind,obf,secret", TRANSPORTS, ids=lambda v: getattr(v, "value", str(v)))
@fuzz(0.5)
@given(frames=payloads, edits=st.none() | mutations(), cuts=st.lists(st.floats(0, 1), max_size=6),
       seed=st.integers(0, 2**16), error_code=st.none() | st.integers(-1000, -1))
def test_transport_server_to_client_streams(kind, obf, secret, frames, edits, cuts, seed, error_code):
    client, server = _pair(kind, obf, secret, seed)
    if kind is TransportKind.FULL:
        client.send_frame(bytes(8))  # full has no tag: the server detects it from a packet
    server.receive_data(client.data_to_send())  # the client's header: the server detects it
    for p in frames:
        server.send_frame(p)
    if error_code is not None:
        server.send_transport_error(error_code)
    stream = server.data_to_send()
    if edits is None:
        events, err = _feed(client, chunked(stream, cuts))
        want = [bytes(p) for p in frames]
        got = [e.payload for e in events if isinstance(e, Frame)]
        assert err is None and got == [p for p in want if len(p) != 4]
    else:
        _feed(client, chunked(mutate(stream, edits), cuts))


# --------------------------------------------------------------------------- handshake

NOW = 1_700_000_000.0


@functools.cache
def _transcript():
    """One real exchange: the peers' states before each step and the messages of each step."""
    from dcpool.testing import fixed_test_key

    key = fixed_test_key()
    client = ClientHandshake({key.public_key.fingerprint: key.public_key}, 2, os.urandom)
    server = ServerHandshake([key], os.urandom, expected_dc=2)
    clients, servers, to_server, to_client = [], [], [], []
    msg = client.start(NOW)
    while True:
        servers.append(copy.deepcopy(server))
        to_server.append(msg)
        reply, _ = server.receive(msg, NOW)
        assert reply is not None
        clients.append(copy.deepcopy(client))
        to_client.append(reply)
        out = client.receive(reply, NOW)
        if isinstance(out, HandshakeResult):
            return clients, servers, to_server, to_client
        msg = out


@fuzz(1.0)
@given(step=st.integers(0, 2), edits=mutations())
def test_handshake_client_mutated_server_messages(step, edits):
    clients, _, _, to_client = _transcript()
    client = copy.deepcopy(clients[step])
    out, err = typed(lambda: client.receive(mutate(to_client[step], edits), NOW))
    if err is not None:
        assert client.state is ClientHandshakeState.FAILED
        with pytest.raises(errors.LocalProtocolError):
            client.receive(to_client[step], NOW)  # dead for good: even the right answer
    else:
        assert isinstance(out, (bytes, HandshakeResult))


@fuzz(0.5)
@given(step=st.integers(0, 2), edits=mutations())
def test_handshake_server_mutated_client_messages(step, edits):
    _, servers, to_server, _ = _transcript()
    server = copy.deepcopy(servers[step])
    out, err = typed(lambda: server.receive(mutate(to_server[step], edits), NOW))
    if err is not None:
        assert isinstance(err, errors.HandshakeError) and err.transport_code in (-404, -444), repr(err)
    else:
        reply, result = out
        assert reply is None or isinstance(reply, bytes)


# --------------------------------------------------------------------------- encrypted messages

KEY = AuthKey(random.Random(8).randbytes(256))
SID = 0x0BADC0FFEE
SALT = 0x5A17


def _I(v: int) -> bytes:
    return struct.pack("<I", v)


def _q(v: int) -> bytes:
    return struct.pack("<q", v)


class _Server:
    """Builds server messages for one client session (ids from a real generator)."""

    def __init__(self) -> None:
        self.ids = ServerMsgIdGenerator()

    def next_id(self, answer: bool = True) -> int:
        return self.ids.next(NOW, answer=answer)

    def payload(self, body: bytes, *, msg_id: int | None = None, seq: int = 1,
                session_id: int = SID) -> bytes:
        msg_id = self.next_id() if msg_id is None else msg_id
        plain = envelope.pack_plaintext(SALT, session_id, msg_id, seq, body)
        return envelope.encrypt(KEY, plain, x=8, rng=os.urandom)


def _session() -> tuple[ClientSession, object]:
    cs = ClientSession(KEY, session_id=SID, server_salt=SALT, rng=os.urandom)
    req = cs.send_request(_I(0x12345678) + bytes(8), now=NOW)
    cs.data_to_send(NOW)
    return cs, req


CTORS = [
    ids.RPC_RESULT, ids.RPC_ERROR, ids.MSGS_ACK, ids.BAD_MSG_NOTIFICATION, ids.BAD_SERVER_SALT,
    ids.NEW_SESSION_CREATED, ids.PONG, ids.FUTURE_SALTS, ids.MSGS_STATE_REQ, ids.MSGS_STATE_INFO,
    ids.MSGS_ALL_INFO, ids.MSG_RESEND_REQ, ids.MSG_DETAILED_INFO, ids.MSG_NEW_DETAILED_INFO,
    ids.DESTROY_SESSION_OK, ids.DESTROY_SESSION_NONE, ids.GZIP_PACKED, ids.MSG_CONTAINER,
    ids.VECTOR, ids.BOOL_TRUE, 0x12345678, 0xFFFFFFFF,
]


@st.composite
def bodies(draw, req_msg_id: int | None = None) -> bytes:
    """A body that starts like a real one: a known constructor, sometimes our request's id."""
    ctor = draw(st.sampled_from(CTORS))
    tail = draw(st.binary(max_size=96))
    if req_msg_id is not None and len(tail) >= 8 and draw(st.booleans()):
        tail = _q(req_msg_id) + tail[8:]
    if ctor == ids.GZIP_PACKED and draw(st.booleans()):
        inner = _I(draw(st.sampled_from(CTORS))) + draw(st.binary(max_size=64))
        tail = tl.pack_bytes(gzip.compress(inner))
    body = _I(ctor) + tail
    return body + bytes(-len(body) % 4)


@fuzz(1.0)
@given(data=st.data())
def test_session_containers_of_random_messages(data):
    cs, req = _session()
    srv = _Server()
    n = data.draw(st.integers(0, 6))
    items = []
    for _ in range(n):
        choice = data.draw(st.sampled_from(["fresh", "fresh", "dup", "even", "late"]))
        if choice == "dup" and items:
            msg_id = items[-1][0]
        elif choice == "even":
            msg_id = srv.next_id() - 1
        else:
            msg_id = srv.next_id(answer=data.draw(st.booleans()))
        items.append((msg_id, data.draw(st.integers(0, 7)), data.draw(bodies(req.msg_id))))
    container_id = srv.next_id(answer=False)
    if items and data.draw(st.booleans()):
        items[-1] = (container_id + 4, *items[-1][1:])  # an inner id above the container's
    payload = srv.payload(envelope.pack_container(items), msg_id=container_id, seq=0)
    _, err = typed(lambda: cs.receive(payload, NOW))
    # a session keeps working after anything, and a failed message left it unchanged
    follow = srv.payload(_I(ids.RPC_RESULT) + _q(req.msg_id) + _I(ids.BOOL_TRUE))
    events, err2 = typed(lambda: cs.receive(follow, NOW))
    if err is not None:
        assert err2 is None and any(isinstance(e, RpcResult) for e in events), (err, events)
    typed(lambda: cs.data_to_send(NOW))


@fuzz(1.0)
@given(data=st.data())
def test_session_gzip_packed_payloads(data):
    cs, req = _session()
    srv = _Server()
    inner = data.draw(st.one_of(
        st.binary(max_size=200),
        bodies(req.msg_id),
        st.builds(lambda b: _I(ids.RPC_ERROR) + b, st.binary(max_size=40)),
    ))
    packed = gzip.compress(inner)
    if data.draw(st.booleans()):
        packed = mutate(packed, data.draw(mutations()))
    gz = _I(ids.GZIP_PACKED) + tl.pack_bytes(packed)
    body = _I(ids.RPC_RESULT) + _q(req.msg_id) + gz if data.draw(st.booleans()) else gz
    typed(lambda: cs.receive(srv.payload(body + bytes(-len(body) % 4)), NOW))


@fuzz(1.0)
@given(data=st.data(), to_server=st.booleans())
def test_right_key_random_plaintext(data, to_server):
    """msg_key passes (the right key encrypted it); header fields, length, padding and body are
    drawn from "right", "almost right" and "random"."""
    body = data.draw(st.one_of(bodies(), st.binary(max_size=200)))
    body += bytes(-len(body) % 4)
    srv = _Server()
    salt = data.draw(st.sampled_from([SALT, SALT + 1]))
    session_id = data.draw(st.sampled_from([SID, SID, SID ^ 1]))
    msg_id = data.draw(st.sampled_from([srv.next_id(), srv.next_id(answer=False), srv.next_id() - 1,
                                        (int(NOW) << 32), 0, -1]))
    if to_server:
        msg_id &= ~3
    seq = data.draw(st.integers(0, 5))
    plain = struct.pack("<qqqi", salt, session_id, msg_id, seq)
    pad = (-(36 + len(body)) % 16) + 16 * data.draw(st.integers(-1, 66))
    length = data.draw(st.sampled_from([len(body), len(body), len(body) + 4, len(body) - 4, -4,
                                        len(body) + pad, 1 << 30]))
    plain += struct.pack("<i", length) + body
    plain += data.draw(st.binary(min_size=max(pad, 0), max_size=max(pad, 0))) if pad > 0 else b""
    plain = plain[: len(plain) - len(plain) % 16] if len(plain) % 16 else plain
    if to_server:
        core = ServerCore(rng=os.urandom)
        core.add_key(KEY, now=NOW, server_salt=SALT)
        conn = ServerConnection(core, os.urandom)
        payload = envelope.encrypt_padded(KEY, plain, x=0)
        with watchdog():
            events = conn.receive(payload, NOW)  # the server role never raises on peer input
            conn.data_to_send(NOW)
        assert all(isinstance(e, SERVER_EVENTS) for e in events)
        _note("server: " + ",".join(sorted({type(e).__name__ for e in events})))
    else:
        cs, _ = _session()
        typed(lambda: cs.receive(envelope.encrypt_padded(KEY, plain, x=8), NOW))


SERVER_EVENTS = (IncomingRequest, UnencryptedMessage, CloseConnection, SessionCreated,
                 PingDelayDisconnect, MessageRejected, MessagesAcked, SessionDestroyed)


@fuzz(1.0)
@given(data=st.data())
def test_server_connection_containers_of_random_messages(data):
    """The server role gets containers of random client messages; it never raises."""
    core = ServerCore(rng=os.urandom)
    core.add_key(KEY, now=NOW, server_salt=SALT)
    conn = ServerConnection(core, os.urandom)
    base = (int(NOW) << 32) & ~3
    items = []
    for i in range(data.draw(st.integers(0, 6))):
        msg_id = base + 4 * data.draw(st.integers(0, 8)) + data.draw(st.sampled_from([0, 0, 0, 1, 2]))
        items.append((msg_id, data.draw(st.integers(0, 5)), data.draw(bodies())))
    container_id = base + 4 * 16
    plain = envelope.pack_plaintext(SALT, SID, container_id, data.draw(st.integers(0, 3)),
                                    envelope.pack_container(items))
    with watchdog():
        for _ in range(data.draw(st.integers(1, 2))):  # the second time: all duplicates
            events = conn.receive(envelope.encrypt(KEY, plain, x=0, rng=os.urandom), NOW)
            assert all(isinstance(e, SERVER_EVENTS) for e in events)
            for e in events:
                if isinstance(e, IncomingRequest):
                    conn.send_error(e, 400, "FUZZ")
            conn.data_to_send(NOW)


@fuzz(1.0)
@given(data=st.data())
def test_session_random_message_sequences(data):
    """Several server messages in a row, each valid, garbage or a replay: the session never
    raises anything but a dcpool error, and stays usable."""
    cs, req = _session()
    srv = _Server()
    sent: list[bytes] = []
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["body", "body", "replay", "garbage", "foreign"]))
        if kind == "replay" and sent:
            payload = data.draw(st.sampled_from(sent))
        elif kind == "garbage":
            payload = KEY.key_id_bytes + data.draw(st.binary(max_size=120))
        elif kind == "foreign":
            payload = srv.payload(data.draw(bodies(req.msg_id)), session_id=SID + 1)
        else:
            payload = srv.payload(data.draw(bodies(req.msg_id)), seq=data.draw(st.integers(0, 3)))
        sent.append(payload)
        typed(lambda: cs.receive(payload, NOW))
        typed(lambda: cs.data_to_send(NOW))
    assert req.state in set(RequestState)


@fuzz(0.5)
@given(n=st.integers(1, 4), edits=mutations(), cuts=st.lists(st.floats(0, 1), max_size=5),
       kind=st.sampled_from(list(TransportKind)))
def test_client_receive_path_mutated_streams(n, edits, cuts, kind):
    """Transport decoder + session, as the connection runs them, on a mutated server stream."""
    client = ClientTransport(kind, rng=seeded_rng(1))
    server = ServerTransport(rng=seeded_rng(2))
    if kind is TransportKind.FULL:
        client.send_frame(bytes(8))
    server.receive_data(client.data_to_send())
    cs, req = _session()
    srv = _Server()
    for i in range(n):
        body = _I(ids.RPC_RESULT) + _q(req.msg_id) + _I(ids.BOOL_TRUE) if i == n - 1 else (
            _I(ids.PONG) + _q(0) + _q(i))
        server.send_frame(srv.payload(body))
    stream = mutate(server.data_to_send(), edits)

    def run():
        for chunk in chunked(stream, cuts):
            for ev in client.receive_data(chunk):
                if isinstance(ev, Frame):
                    cs.receive(ev.payload, NOW)
        return None

    typed(run)


# --------------------------------------------------------------------------- TL readers

READER_OPS = ["read_int", "read_uint", "read_long", "read_ulong", "read_double", "read_int128",
              "read_int256", "read_bytes", "read_string", "read_bool", "read_object",
              "vector_int", "vector_long", "vector_object", "bare_vector", "raw"]


@fuzz(1.5)
@given(data=st.binary(max_size=160), ops=st.lists(st.sampled_from(READER_OPS), max_size=10),
       n=st.integers(-2, 40))
def test_tl_reader_methods(data, ops, n):
    reader = tl.Reader(data)

    def run():
        for op in ops:
            if op == "vector_int":
                reader.read_vector(reader.read_int)
            elif op == "vector_long":
                reader.read_vector(reader.read_long, 8)
            elif op == "vector_object":
                reader.read_vector(reader.read_object)
            elif op == "bare_vector":
                reader.read_bare_vector(reader.read_int)
            elif op == "raw":
                reader.read_raw(n)
            else:
                getattr(reader, op)()
        return reader.remaining

    _, err = typed(run)
    assert err is None or isinstance(err, errors.TLDecodeError), repr(err)


ENV_OPS = ["read_int", "read_uint", "read_long", "read_bytes", "read_string", "vector_long",
           "bare_vector_long", "rest", "raw"]


@fuzz(1.5)
@given(data=st.binary(max_size=160), ops=st.lists(st.sampled_from(ENV_OPS), max_size=10),
       n=st.integers(-2, 40), expect=st.none() | st.sampled_from(CTORS))
def test_envelope_reader_and_helpers(data, ops, n, expect):
    def run():
        r = envelope.Reader(data)
        if expect is not None:
            r.expect(expect)
        for op in ops:
            if op == "vector_long":
                r.read_vector_long()
            elif op == "bare_vector_long":
                r.read_vector_long(boxed=False)
            elif op == "raw":
                r.read_raw(n)
            else:
                getattr(r, op)()
        return None

    for fn in (run, lambda: envelope.unpack_container(data), lambda: envelope.gzip_unpack(data),
               lambda: envelope.parse_plaintext(data), lambda: envelope.maybe_gunzip(data),
               lambda: envelope.constructor_of(data)):
        _, err = typed(fn)
        assert err is None or isinstance(err, errors.RemoteProtocolError), repr(err)


@fuzz(1.0)
@given(items=st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), st.integers(-2**31, 2**31 - 1),
                                st.binary(max_size=40)), max_size=5),
       edits=st.none() | mutations())
def test_container_round_trip_or_typed_error(items, edits):
    items = [(m, s, b + bytes(-len(b) % 4)) for m, s, b in items]
    packed = envelope.pack_container(items)
    if edits is None:
        got, err = typed(lambda: envelope.unpack_container(packed))
        if err is None:
            assert [(i.msg_id, i.seq_no, bytes(i.body)) for i in got] == items
        else:  # the one thing a well-formed container may not hold: another container
            assert any(b[:4] == _I(ids.MSG_CONTAINER) for _, _, b in items), repr(err)
    else:
        _, err = typed(lambda: envelope.unpack_container(mutate(packed, edits)))
        assert err is None or isinstance(err, errors.RemoteProtocolError)


def _bomb(size: int) -> bytes:
    """gzip of ``size`` zero bytes (a few KiB that inflate to ``size``)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    out = [z.compress(chunk) for _ in range(size >> 20)]
    out.append(z.flush())
    return b"".join(out)


def test_gzip_bombs_are_typed_errors_without_inflating_everything():
    from dcpool.tl import _binary

    bomb = _bomb(_binary.MAX_GZIP_UNPACKED + (1 << 20))
    packed = _I(ids.GZIP_PACKED) + tl.pack_bytes(bomb)
    with watchdog(20):
        with pytest.raises(errors.TLDecodeError):
            tl.loads(packed)
        with pytest.raises(errors.TLDecodeError):
            envelope.gzip_unpack(packed)
        # inside an rpc_result, through the client session
        cs, req = _session()
        with pytest.raises(DcPoolError):
            cs.receive(_Server().payload(_I(ids.RPC_RESULT) + _q(req.msg_id) + packed), NOW)


def test_nested_gzip_is_bounded():
    inner = _I(ids.BOOL_TRUE)
    for _ in range(12):
        inner = _I(ids.GZIP_PACKED) + tl.pack_bytes(gzip.compress(inner))
    with watchdog():
        with pytest.raises(errors.TLDecodeError):
            tl.loads(inner)
