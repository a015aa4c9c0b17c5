"""ClientSession against a hand-driven (and sometimes misbehaving) server (spec §3, §8)."""

from __future__ import annotations

import os
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcpool import errors
from dcpool.mtproto import envelope
from dcpool.mtproto.authkey import AuthKey
from dcpool.mtproto.msgid import ServerMsgIdGenerator, msg_id_time, time_to_msg_id
from dcpool.mtproto.session import (
    ACK_BATCH,
    ClientSession,
    ClockCorrected,
    NewSessionCreated,
    Pong,
    RequestAcked,
    RequestFailed,
    RequestState,
    RpcErrorReceived,
    RpcResult,
    SaltChanged,
    Update,
)
from dcpool.tl import ids

NOW = 1_700_000_000.0
SID = 0x1122334455667788
SALT = 0x0102030405060708
KEY = AuthKey(random.Random(1).randbytes(256))


def I(v: int) -> bytes:  # noqa: E743
    return struct.pack("<I", v)


def q(v: int) -> bytes:
    return struct.pack("<q", v)


def i32(v: int) -> bytes:
    return struct.pack("<i", v)


def req_body(n: int = 0, size: int = 8) -> bytes:
    """A fake boxed request: constructor 0xdeadbeef + n + filler."""
    return I(0xDEADBEEF) + i32(n) + bytes(max(0, size - 8))


def rpc_result(req_msg_id: int, result: bytes) -> bytes:
    return I(ids.RPC_RESULT) + q(req_msg_id) + result


def rpc_error(code: int, message: str) -> bytes:
    return I(ids.RPC_ERROR) + i32(code) + envelope.pack_bytes(message.encode())


def msgs_ack(*msg_ids: int) -> bytes:
    return I(ids.MSGS_ACK) + envelope.pack_vector_long(msg_ids)


def bad_msg(bad_msg_id: int, code: int, seqno: int = 1) -> bytes:
    return I(ids.BAD_MSG_NOTIFICATION) + q(bad_msg_id) + i32(seqno) + i32(code)


def bad_salt(bad_msg_id: int, new_salt: int, seqno: int = 1) -> bytes:
    return I(ids.BAD_SERVER_SALT) + q(bad_msg_id) + i32(seqno) + i32(48) + q(new_salt)


UPDATE = I(0x74AE4240) + bytes(12)  # looks like "updates#74ae4240 ..." to the session


_NOT_CR = {
    ids.MSGS_ACK, ids.BAD_MSG_NOTIFICATION, ids.BAD_SERVER_SALT, ids.PONG, ids.FUTURE_SALTS,
    ids.MSGS_STATE_INFO, ids.MSGS_STATE_REQ, ids.MSG_RESEND_REQ, ids.MSG_DETAILED_INFO,
    ids.MSG_NEW_DETAILED_INFO, ids.MSG_CONTAINER, ids.DESTROY_SESSION_OK,
}  # fmt: skip


class FakeServer:
    """Crafts server → client payloads by hand (so each one can be made to misbehave)."""

    def __init__(self, key: AuthKey = KEY, session_id: int = SID) -> None:
        self.key = key
        self.session_id = session_id
        self.ids = ServerMsgIdGenerator()
        self.c = 0

    def seq(self, cr: bool) -> int:
        if cr:
            self.c += 1
            return 2 * self.c - 1
        return 2 * self.c

    def payload(
        self,
        body: bytes,
        *,
        now: float = NOW,
        cr: bool | None = None,
        answer: bool = True,
        msg_id: int | None = None,
        session_id: int | None = None,
        key: AuthKey | None = None,
    ) -> bytes:
        if cr is None:  # as a real server: results, updates and new_session_created are CR
            cr = envelope.constructor_of(body) not in _NOT_CR
        if msg_id is None:
            msg_id = self.ids.next(now, answer=answer)
        sid = self.session_id if session_id is None else session_id
        plain = envelope.pack_plaintext(SALT, sid, msg_id, self.seq(cr), body)
        return envelope.encrypt(key or self.key, plain, x=8, rng=os.urandom)

    def container(self, bodies: list[tuple[bytes, bool]], *, now: float = NOW) -> bytes:
        items = [(self.ids.next(now, answer=True), self.seq(cr), b) for b, cr in bodies]
        return self.payload(envelope.pack_container(items), now=now, cr=False, answer=False)


def sent_messages(payloads: list[bytes], key: AuthKey = KEY) -> list[tuple[int, int, bytes]]:
    """Decrypt client payloads (x = 0) and flatten containers into (msg_id, seq_no, body)."""
    out = []
    for p in payloads:
        msg = envelope.decrypt_message(key, p, x=0)
        assert msg.session_id == SID
        if envelope.constructor_of(msg.body) == ids.MSG_CONTAINER:
            items = envelope.unpack_container(msg.body)
            assert all(i.msg_id < msg.msg_id for i in items)
            assert msg.seq_no % 2 == 0
            out.extend((i.msg_id, i.seq_no, i.body) for i in items)
        else:
            out.append((msg.msg_id, msg.seq_no, msg.body))
    return out


def bodies_of(payloads: list[bytes]) -> list[bytes]:
    return [b for _, _, b in sent_messages(payloads)]


def salts_of(payloads: list[bytes]) -> list[int]:
    return [envelope.decrypt_message(KEY, p, x=0).salt for p in payloads]


@pytest.fixture
def cs() -> ClientSession:
    return ClientSession(KEY, session_id=SID, server_salt=SALT, time_offset=0.0, rng=os.urandom)


@pytest.fixture
def srv() -> FakeServer:
    return FakeServer()


def send_one(cs: ClientSession, n: int = 0, **kw):
    req = cs.send_request(req_body(n), now=NOW, **kw)
    out = cs.data_to_send(NOW)
    return req, out


# --------------------------------------------------------------------------- sending


def test_request_lifecycle(cs, srv):
    req = cs.send_request(req_body(1), now=NOW, token="tok")
    assert req.state is RequestState.QUEUED and req.msg_id is None and req.token == "tok"
    assert cs.statistics().queued == 1
    out = cs.data_to_send(NOW)
    assert len(out) == 1
    [(msg_id, seq_no, body)] = sent_messages(out)
    assert body == req_body(1) and msg_id == req.msg_id and msg_id % 4 == 0 and seq_no == 1
    assert abs(msg_id_time(msg_id) - NOW) < 1
    assert req.state is RequestState.SENT and cs.statistics().sent == 1
    assert salts_of(out) == [SALT]

    ev = cs.receive(srv.payload(msgs_ack(req.msg_id), cr=False, answer=False), NOW)
    assert ev == [RequestAcked(req)] and req.state is RequestState.ACKED
    assert cs.statistics().acked == 1

    ev = cs.receive(srv.payload(rpc_result(req.msg_id, UPDATE)), NOW)
    assert ev == [RpcResult(req, UPDATE)] and req.state is RequestState.ANSWERED
    st_ = cs.statistics()
    assert (st_.queued, st_.sent, st_.acked, st_.answered_total, st_.pending_acks) == (0, 0, 0, 1, 1)


def test_invoke_after_msg_wraps_with_the_current_msg_id(cs, srv):
    """send_request(after=first): the body goes out as invokeAfterMsg(first's msg_id, body),
    in the same data_to_send as first; once first is answered, a re-send goes out bare."""
    first = cs.send_request(req_body(1), now=NOW)
    second = cs.send_request(req_body(2), now=NOW, after=first)
    sent = dict((m, b) for m, _, b in sent_messages(cs.data_to_send(NOW)))
    assert sent[first.msg_id] == req_body(1)
    # invokeAfterMsg#cb9f372d {X:Type} msg_id:long query:!X = X;
    assert sent[second.msg_id] == I(ids.INVOKE_AFTER_MSG) + q(first.msg_id) + req_body(2)
    cs.receive(srv.payload(rpc_result(first.msg_id, UPDATE)), NOW)
    assert first.state is RequestState.ANSWERED
    requeued, _ = cs.connection_lost()  # never acknowledged: sent again on the next connection
    assert second in requeued
    [(_, _, body)] = [m for m in sent_messages(cs.data_to_send(NOW))
                      if envelope.constructor_of(m[2]) != ids.MSGS_ACK]
    assert body == req_body(2)


def test_seq_no_and_msg_ids_increase(cs):
    for n in range(3):
        cs.send_request(req_body(n), now=NOW)
    cs.send_ping(7)
    msgs = sent_messages(cs.data_to_send(NOW))
    assert [s for _, s, _ in msgs] == [0, 1, 3, 5]  # ping (not CR) first, then 3 CR requests
    ids_ = [m for m, _, _ in msgs]
    assert ids_ == sorted(set(ids_))
    cs.send_request(req_body(9), now=NOW)
    [(m, s, _)] = sent_messages(cs.data_to_send(NOW))
    assert s == 7 and m > ids_[-1]


def test_rpc_error_parsed(cs, srv):
    req, _ = send_one(cs)
    [ev] = cs.receive(srv.payload(rpc_result(req.msg_id, rpc_error(420, "FLOOD_WAIT_31"))), NOW)
    assert isinstance(ev, RpcErrorReceived) and ev.request is req
    assert isinstance(ev.error, errors.FloodWait) and ev.error.seconds == 31
    req2, _ = send_one(cs)
    [ev] = cs.receive(srv.payload(rpc_result(req2.msg_id, rpc_error(303, "FILE_MIGRATE_4"))), NOW)
    assert isinstance(ev.error, errors.FileMigrate) and ev.error.dc_id == 4


def test_gzip_result_and_gzip_error_unpacked(cs, srv):
    big = I(0x11223344) + b"abc" * 1000 + bytes(3)
    req, _ = send_one(cs)
    [ev] = cs.receive(srv.payload(rpc_result(req.msg_id, envelope.gzip_pack(big))), NOW)
    assert ev == RpcResult(req, big)
    req, _ = send_one(cs)
    [ev] = cs.receive(srv.payload(rpc_result(req.msg_id, envelope.gzip_pack(rpc_error(400, "X")))), NOW)
    assert isinstance(ev.error, errors.BadRequest)
    # a top-level gzip_packed update
    [ev] = cs.receive(srv.payload(envelope.gzip_pack(UPDATE), answer=False), NOW)
    assert ev == Update(UPDATE)


def test_gzip_requests(srv):
    body = I(0xCAFEBABE) + b"z" * 2000
    cs = ClientSession(KEY, session_id=SID, server_salt=SALT, rng=os.urandom)
    cs.send_request(body, now=NOW)
    [(_, _, sent)] = sent_messages(cs.data_to_send(NOW))
    assert envelope.constructor_of(sent) == ids.GZIP_PACKED and envelope.gzip_unpack(sent) == body
    # media sessions: off
    media = ClientSession(KEY, session_id=SID, server_salt=SALT, rng=os.urandom, gzip_requests=False)
    media.send_request(body, now=NOW)
    assert bodies_of(media.data_to_send(NOW)) == [body]
    # incompressible bodies are sent as they are
    noise = I(0xCAFEBABE) + os.urandom(2000)
    cs.send_request(noise, now=NOW)
    assert bodies_of(cs.data_to_send(NOW)) == [noise]
    # per-request override
    cs.send_request(body, now=NOW, compress=False)
    assert bodies_of(cs.data_to_send(NOW)) == [body]


def test_acks_batched(cs, srv):
    for _ in range(ACK_BATCH - 1):
        assert cs.receive(srv.payload(UPDATE, answer=False), NOW) == [Update(UPDATE)]
    assert cs.has_pending_acks() and cs.data_to_send(NOW) == []
    # a non-content-related message is not acked
    cs.receive(srv.payload(UPDATE, answer=False, cr=False), NOW)
    assert cs.statistics().pending_acks == ACK_BATCH - 1
    cs.receive(srv.payload(UPDATE, answer=False), NOW)
    out = cs.data_to_send(NOW)
    [(_, seq, body)] = sent_messages(out)
    assert envelope.constructor_of(body) == ids.MSGS_ACK and seq % 2 == 0
    acked = envelope.Reader(body, 4).read_vector_long()
    assert len(acked) == ACK_BATCH and not cs.has_pending_acks()


def test_acks_piggyback_in_container(cs, srv):
    cs.receive(srv.payload(UPDATE, answer=False), NOW)
    req, out = send_one(cs)
    assert len(out) == 1
    msgs = sent_messages(out)
    assert [envelope.constructor_of(b) for _, _, b in msgs] == [ids.MSGS_ACK, 0xDEADBEEF]


def test_container_limits_and_large_bodies_alone(cs):
    for n in range(1500):
        cs.send_request(req_body(n), now=NOW)
    out = cs.data_to_send(NOW)
    assert len(out) == 2
    assert len(sent_messages(out[:1])) == 1024
    big = I(0xABCDEF01) + os.urandom(1_100_000)
    cs.send_request(req_body(1), now=NOW)
    cs.send_request(big, now=NOW, compress=False)
    cs.send_request(req_body(2), now=NOW)
    out = cs.data_to_send(NOW)
    assert len(out) == 3
    msgs = sent_messages(out)
    assert [b for _, _, b in msgs] == [req_body(1), big, req_body(2)]
    ids_ = [m for m, _, _ in msgs]
    assert ids_ == sorted(ids_)


def test_byte_budget_splits_containers(cs):
    for n in range(5):
        cs.send_request(req_body(n, size=400_000), now=NOW, compress=False)
    out = cs.data_to_send(NOW)
    assert len(out) == 3  # 2 + 2 + 1 bodies of ~400 KB in ~1 MiB containers
    assert [envelope.Reader(b, 4).read_int() for b in bodies_of(out)] == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- notifications


def test_bad_server_salt_adopt_and_resend_once(cs, srv):
    req, out = send_one(cs)
    old_id = req.msg_id
    ev = cs.receive(srv.payload(bad_salt(old_id, 0x55)), NOW)
    assert ev == [SaltChanged(0x55)] and cs.salt == 0x55
    assert req.state is RequestState.QUEUED
    out = cs.data_to_send(NOW)
    assert salts_of(out) == [0x55]
    assert bodies_of(out) == [req_body(0)] and req.msg_id > old_id and req.send_count == 2
    assert cs.data_to_send(NOW) == []
    # a late answer to the old id still resolves the request (alias)
    [ev] = cs.receive(srv.payload(rpc_result(old_id, UPDATE)), NOW)
    assert ev == RpcResult(req, UPDATE)
    assert cs.statistics().sent == 0


def test_notification_for_a_message_we_never_sent_is_ignored(cs, srv):
    req, _ = send_one(cs)
    assert cs.receive(srv.payload(bad_salt(req.msg_id + 4, 0x55)), NOW) == []
    assert cs.salt == SALT
    assert cs.receive(srv.payload(bad_msg(req.msg_id + 4, 16)), NOW) == []
    assert cs.time_offset == 0.0 and req.state is RequestState.SENT


@pytest.mark.parametrize("skew", [-400.0, 400.0])
def test_bad_msg_16_17_time_correction(skew):
    cs = ClientSession(KEY, session_id=SID, server_salt=SALT, time_offset=0.0, rng=os.urandom)
    srv = FakeServer()
    server_now = NOW - skew  # the client clock is off by `skew`
    req, _ = send_one(cs)
    code = 17 if skew > 0 else 16
    ev = cs.receive(srv.payload(bad_msg(req.msg_id, code), now=server_now), NOW)
    assert len(ev) == 1 and isinstance(ev[0], ClockCorrected)
    assert abs(cs.time_offset + skew) < 0.01
    [(m, _, body)] = sent_messages(cs.data_to_send(NOW))
    assert body == req_body(0) and abs(msg_id_time(m) - server_now) < 0.01
    # now the corrected clock accepts server messages with the server's time
    [ev] = cs.receive(srv.payload(rpc_result(m, UPDATE), now=server_now), NOW)
    assert ev == RpcResult(req, UPDATE)


def test_bad_msg_on_container_resends_everything(cs, srv):
    a = cs.send_request(req_body(1), now=NOW)
    b = cs.send_request(req_body(2), now=NOW)
    cs.send_ping(5)
    cs.data_to_send(NOW)
    assert a.container_id is not None and a.container_id == b.container_id
    cs.receive(srv.payload(bad_msg(a.container_id, 20)), NOW)
    out = cs.data_to_send(NOW)
    assert bodies_of(out) == [I(ids.PING) + q(5), req_body(1), req_body(2)]


def test_unrecoverable_bad_msg_fails_request(cs, srv):
    req, _ = send_one(cs)
    [ev] = cs.receive(srv.payload(bad_msg(req.msg_id, 35)), NOW)
    assert isinstance(ev, RequestFailed) and ev.request is req
    assert isinstance(ev.error, errors.BadMsgNotification) and ev.error.code == 35
    assert req.state is RequestState.FAILED and cs.statistics().failed_total == 1


@pytest.mark.parametrize("code,delta", [(32, 64), (33, -16)])
def test_bad_msg_seqno_adjusts_and_resends(cs, srv, code, delta):
    for n in range(10):
        cs.send_request(req_body(n), now=NOW)
    cs.data_to_send(NOW)
    req, out = send_one(cs, 99)
    [(_, seq_before, _)] = sent_messages(out)
    cs.receive(srv.payload(bad_msg(req.msg_id, code)), NOW)
    [(_, seq_after, body)] = sent_messages(cs.data_to_send(NOW))
    assert body == req_body(99)
    assert seq_after == seq_before + 2 + delta


def test_bad_msg_is_exempt_from_the_window(cs, srv):
    req, _ = send_one(cs)
    ev = cs.receive(srv.payload(bad_msg(req.msg_id, 16), now=NOW + 1000), NOW)
    assert isinstance(ev[0], ClockCorrected)
    # a container carrying the notification is exempt as well
    cs2 = ClientSession(KEY, session_id=SID, server_salt=SALT, rng=os.urandom)
    req2, _ = send_one(cs2)
    nsc = I(ids.NEW_SESSION_CREATED) + q(req2.msg_id) + q(1) + q(SALT)
    payload = srv.container([(nsc, True), (bad_msg(req2.msg_id, 16), False)], now=NOW + 1000)
    ev = cs2.receive(payload, NOW)
    assert [type(e) for e in ev] == [NewSessionCreated, ClockCorrected]


def test_new_session_created_classifies(cs, srv):
    acked = cs.send_request(req_body(1), now=NOW)
    unacked = cs.send_request(req_body(2), now=NOW)
    cs.data_to_send(NOW)
    cs.receive(srv.payload(msgs_ack(acked.msg_id), cr=False), NOW)
    newer = cs.send_request(req_body(3), now=NOW)
    cs.data_to_send(NOW)
    nsc = I(ids.NEW_SESSION_CREATED) + q(newer.msg_id) + q(77) + q(0x99)
    [ev] = cs.receive(srv.payload(nsc, answer=False), NOW)
    assert ev == NewSessionCreated(newer.msg_id, 0x99, (acked,))
    assert cs.salt == 0x99
    assert acked.state is RequestState.ORPHANED
    assert unacked.state is RequestState.QUEUED and newer.state is RequestState.SENT
    msgs = sent_messages(cs.data_to_send(NOW))
    # the ack of new_session_created rides with the re-sent request
    assert [b for _, _, b in msgs][1] == req_body(2)
    assert envelope.constructor_of(msgs[0][2]) == ids.MSGS_ACK


def test_pong_plain_and_wrapped(cs, srv):
    cs.send_ping(11)
    cs.send_ping(12, disconnect_delay=75)
    msgs = sent_messages(cs.data_to_send(NOW))
    assert msgs[1][2] == I(ids.PING_DELAY_DISCONNECT) + q(12) + i32(75)
    assert all(s % 2 == 0 for _, s, _ in msgs)
    p1, p2 = msgs[0][0], msgs[1][0]
    assert cs.receive(srv.payload(I(ids.PONG) + q(p1) + q(11), cr=False), NOW) == [Pong(11)]
    wrapped = rpc_result(p2, I(ids.PONG) + q(p2) + q(12))
    assert cs.receive(srv.payload(wrapped), NOW) == [Pong(12)]
    # an unsolicited pong is dropped
    assert cs.receive(srv.payload(I(ids.PONG) + q(p1) + q(11), cr=False), NOW) == []


def future_salts_body(req_msg_id: int, salts: list[tuple[int, int, int]]) -> bytes:
    body = I(ids.FUTURE_SALTS) + q(req_msg_id) + i32(int(NOW)) + i32(len(salts))
    for since, until, salt in salts:
        body += i32(since) + i32(until) + q(salt)
    return body


def test_future_salts_stored_and_switched(cs, srv):
    req = cs.request_future_salts(3, now=NOW)
    cs.data_to_send(NOW)
    t = int(NOW)
    salts = [(t - 100, t + 100, SALT), (t + 100, t + 200, 0x1111), (t + 200, t + 300, 0x2222)]
    body = future_salts_body(req.msg_id, salts)
    [ev] = cs.receive(srv.payload(body, cr=False), NOW)
    assert ev == RpcResult(req, body)
    assert len(cs.future_salts) == 3
    cs.send_request(req_body(), now=NOW + 150)
    assert salts_of(cs.data_to_send(NOW + 150)) == [0x1111]
    cs.send_request(req_body(), now=NOW + 250)
    assert salts_of(cs.data_to_send(NOW + 250)) == [0x2222]
    assert cs.statistics().future_salts == 1


def test_msgs_state_req_answered(cs, srv):
    first = srv.payload(UPDATE, answer=False)
    cs.receive(first, NOW)
    got_id = cs.pending_ack_ids()[0]
    cs.receive(srv.payload(UPDATE, answer=False, cr=False), NOW)
    req_id = srv.ids.next(NOW, answer=False)
    body = I(ids.MSGS_STATE_REQ) + envelope.pack_vector_long([got_id, got_id + 2**40, 1])
    cs.receive(srv.payload(body, cr=False, msg_id=req_id), NOW)
    msgs = sent_messages(cs.data_to_send(NOW))
    info_body = [b for _, _, b in msgs if envelope.constructor_of(b) == ids.MSGS_STATE_INFO][0]
    r = envelope.Reader(info_body, 4)
    assert r.read_long() == req_id
    assert list(r.read_bytes()) == [4, 3, 1]  # received, ack still pending; too high; too low


def test_msg_resend_req(cs, srv):
    req, _ = send_one(cs)
    old = req.msg_id
    body = I(ids.MSG_RESEND_REQ) + envelope.pack_vector_long([old])
    cs.receive(srv.payload(body, cr=False), NOW)
    assert bodies_of(cs.data_to_send(NOW)) == [req_body(0)] and req.msg_id != old
    # unknown id → msgs_state_info for all of them
    body = I(ids.MSG_RESEND_REQ) + envelope.pack_vector_long([req.msg_id, 12345 * 4])
    rid = srv.ids.next(NOW, answer=False)
    cs.receive(srv.payload(body, cr=False, msg_id=rid), NOW)
    [info] = bodies_of(cs.data_to_send(NOW))
    r = envelope.Reader(info, 4)
    assert r.read_long() == rid and list(r.read_bytes()) == [4, 1]


def test_msg_detailed_info(cs, srv):
    req, _ = send_one(cs)
    answer_id = srv.ids.next(NOW, answer=True)
    info = I(ids.MSG_DETAILED_INFO) + q(req.msg_id) + q(answer_id) + i32(100) + i32(0)
    cs.receive(srv.payload(info, cr=False), NOW)
    [body] = bodies_of(cs.data_to_send(NOW))
    assert body == I(ids.MSG_RESEND_REQ) + envelope.pack_vector_long([answer_id])
    # the answer arrives; a new detailed info about it is then simply acked
    cs.receive(srv.payload(rpc_result(req.msg_id, UPDATE), msg_id=answer_id), NOW)
    new_info = I(ids.MSG_NEW_DETAILED_INFO) + q(answer_id) + i32(100) + i32(0)
    cs.receive(srv.payload(new_info, cr=False), NOW)
    assert cs.pending_ack_ids() == [answer_id]


def test_destroy_session(cs, srv):
    with pytest.raises(errors.LocalProtocolError):
        cs.destroy_session(SID, now=NOW)
    req = cs.destroy_session(42, now=NOW)
    cs.data_to_send(NOW)
    body = I(ids.DESTROY_SESSION_OK) + q(42)
    assert cs.receive(srv.payload(body, cr=False), NOW) == [RpcResult(req, body)]


def test_duplicate_inside_container_skipped_but_acked(cs, srv):
    mid = srv.ids.next(NOW, answer=False)
    cs.receive(srv.payload(UPDATE, msg_id=mid), NOW)
    cs.data_to_send(NOW)
    cs.send_request(req_body(), now=NOW)
    cs.data_to_send(NOW)  # flushes the ack of mid
    assert not cs.has_pending_acks()
    items = [(mid, 1, UPDATE), (srv.ids.next(NOW, answer=False), 3, UPDATE + bytes(4))]
    payload = srv.payload(envelope.pack_container(items), cr=False, answer=False)
    assert cs.receive(payload, NOW) == [Update(UPDATE + bytes(4))]
    assert sorted(cs.pending_ack_ids()) == sorted([items[0][0], items[1][0]])


# --------------------------------------------------------------------------- connection loss


def test_connection_lost_classification_and_requeue(cs, srv):
    a = cs.send_request(req_body(1), now=NOW)
    b = cs.send_request(req_body(2), now=NOW)
    c = cs.send_request(req_body(3), now=NOW)
    cs.send_ping(1)
    cs.data_to_send(NOW)
    cs.receive(srv.payload(msgs_ack(b.msg_id), cr=False), NOW)
    cs.receive(srv.payload(rpc_result(c.msg_id, UPDATE)), NOW)
    d = cs.send_request(req_body(4), now=NOW)
    requeued, orphaned = cs.connection_lost()
    assert requeued == [a] and orphaned == [b]
    assert a.state is RequestState.QUEUED and b.state is RequestState.ORPHANED
    assert c.state is RequestState.ANSWERED and d.state is RequestState.QUEUED
    cs.requeue(b)
    out = cs.data_to_send(NOW)
    msgs = sent_messages(out)
    # pending ack of the rpc_result, then a (first: it was sent before d), d, then b; no ping
    assert [m[2] for m in msgs[1:]] == [req_body(1), req_body(4), req_body(2)]
    assert envelope.constructor_of(msgs[0][2]) == ids.MSGS_ACK
    assert cs.statistics().sent == 3


def test_cancel(cs, srv):
    a = cs.send_request(req_body(1), now=NOW)
    cs.cancel(a)
    assert a.state is RequestState.CANCELLED and cs.data_to_send(NOW) == []
    b, _ = send_one(cs)
    cs.cancel(b)
    assert cs.receive(srv.payload(rpc_result(b.msg_id, UPDATE)), NOW) == []
    assert cs.has_pending_acks()  # the answer is still acked
    assert b.state is RequestState.CANCELLED


def test_bad_request_body_rejected(cs):
    with pytest.raises(errors.LocalProtocolError):
        cs.send_request(b"abc", now=NOW)


# --------------------------------------------------------------------------- receive checks


def _snapshot(cs: ClientSession):
    return (cs.statistics(), cs.salt, cs.time_offset, cs.pending_ack_ids(), len(cs._received))


def _bad(srv: FakeServer, kind: str, good_id: int) -> bytes:
    plain_ok = envelope.pack_plaintext(SALT, SID, srv.ids.next(NOW, answer=False), 1, UPDATE)
    if kind == "msg_key":
        data = bytearray(envelope.encrypt(KEY, plain_ok, x=8, rng=os.urandom))
        data[10] ^= 0xFF
        return bytes(data)
    if kind == "direction":  # encrypted with the client's x
        return envelope.encrypt(KEY, plain_ok, x=0, rng=os.urandom)
    if kind == "session_id":
        return srv.payload(UPDATE, session_id=SID + 1)
    if kind == "auth_key_id":
        return srv.payload(UPDATE, key=AuthKey(os.urandom(256)))
    if kind == "too_old":
        return srv.payload(UPDATE, msg_id=(time_to_msg_id(NOW - 301) & ~3) | 3)
    if kind == "too_new":
        return srv.payload(UPDATE, msg_id=(time_to_msg_id(NOW + 31) & ~3) | 3)
    if kind == "replayed":
        return srv.payload(UPDATE, msg_id=good_id)
    if kind == "even_id":
        return srv.payload(UPDATE, msg_id=srv.ids.next(NOW, answer=False) + 1)
    if kind == "even_id_in_container":
        inner = [(srv.ids.next(NOW, answer=False) + 1, 1, UPDATE)]
        return srv.payload(envelope.pack_container(inner), cr=False)
    if kind == "little_padding":
        plain = struct.pack("<qqqii", SALT, SID, srv.ids.next(NOW, answer=False), 1, 8) + bytes(8) + bytes(8)
        return envelope.encrypt_padded(KEY, plain, x=8)
    if kind == "much_padding":
        plain = struct.pack("<qqqii", SALT, SID, srv.ids.next(NOW, answer=False), 1, 4) + bytes(4)
        return envelope.encrypt_padded(KEY, plain + os.urandom(1036), x=8)
    if kind == "not_16":
        return srv.payload(UPDATE)[:-4]
    if kind == "length_too_large":
        plain = struct.pack("<qqqii", SALT, SID, srv.ids.next(NOW, answer=False), 1, 64) + bytes(16) + bytes(16)
        return envelope.encrypt_padded(KEY, plain, x=8)
    if kind == "length_unaligned":
        plain = struct.pack("<qqqii", SALT, SID, srv.ids.next(NOW, answer=False), 1, 6) + bytes(8) + bytes(24)
        return envelope.encrypt_padded(KEY, plain, x=8)
    if kind == "truncated_body":
        return srv.payload(I(ids.RPC_RESULT) + b"\x00\x00\x00\x00")
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind,error",
    [
        ("msg_key", errors.MsgKeyMismatch),
        ("direction", errors.MsgKeyMismatch),
        ("session_id", errors.SessionIdMismatch),
        ("auth_key_id", errors.AuthKeyIdMismatch),
        ("too_old", errors.MsgIdOutOfWindow),
        ("too_new", errors.MsgIdOutOfWindow),
        ("replayed", errors.MsgIdReplayed),
        ("even_id", errors.MsgIdParity),
        ("even_id_in_container", errors.MsgIdParity),
        ("little_padding", errors.BadPadding),
        ("much_padding", errors.BadPadding),
        ("not_16", errors.BadMessageLength),
        ("length_too_large", errors.BadMessageLength),
        ("length_unaligned", errors.BadMessageLength),
        ("truncated_body", errors.TLDecodeError),
    ],
)
def test_receive_checks_raise_precisely_and_change_nothing(cs, srv, kind, error):
    req, _ = send_one(cs)
    good = srv.payload(UPDATE, answer=False)
    good_id = envelope.decrypt_message(KEY, good, x=8).msg_id
    cs.receive(good, NOW)
    before = _snapshot(cs)
    with pytest.raises(error):
        cs.receive(_bad(srv, kind, good_id), NOW)
    assert _snapshot(cs) == before
    assert req.state is RequestState.SENT
    # the session still works
    assert cs.receive(srv.payload(rpc_result(req.msg_id, UPDATE)), NOW) == [RpcResult(req, UPDATE)]


def test_replay_window_evicts_to_minimum(cs, srv):
    ids_ = [srv.ids.next(NOW, answer=False) for _ in range(520)]
    for m in ids_[1:]:
        cs.receive(srv.payload(UPDATE, msg_id=m, cr=False), NOW)
    with pytest.raises(errors.MsgIdReplayed):  # below the minimum of the 500 kept ids
        cs.receive(srv.payload(UPDATE, msg_id=ids_[0], cr=False), NOW)


# --------------------------------------------------------------------------- fuzz


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_payloads(data):
    cs = ClientSession(KEY, session_id=SID, server_salt=SALT, rng=os.urandom)
    for payload in (data, KEY.key_id_bytes + data):
        try:
            cs.receive(payload, NOW)
        except errors.DcPoolError:
            pass


_ctor = st.sampled_from(
    [
        ids.RPC_RESULT, ids.MSGS_ACK, ids.BAD_MSG_NOTIFICATION, ids.BAD_SERVER_SALT,
        ids.NEW_SESSION_CREATED, ids.PONG, ids.FUTURE_SALTS, ids.MSGS_STATE_REQ, ids.MSG_RESEND_REQ,
        ids.MSG_DETAILED_INFO, ids.MSG_NEW_DETAILED_INFO, ids.DESTROY_SESSION_OK, ids.GZIP_PACKED,
        ids.MSG_CONTAINER, ids.MSGS_STATE_INFO, ids.RPC_ERROR, 0x12345678,
    ]
)  # fmt: skip


@settings(max_examples=120, deadline=None)
@given(ctor=_ctor, tail=st.binary(max_size=120), seq=st.integers(0, 5))
def test_fuzz_valid_envelopes_with_garbage_bodies(ctor, tail, seq):
    cs = ClientSession(KEY, session_id=SID, server_salt=SALT, rng=os.urandom)
    req = cs.send_request(req_body(), now=NOW)
    cs.data_to_send(NOW)
    srv = FakeServer()
    body = I(ctor) + tail
    body += bytes(-len(body) % 4)
    if len(tail) >= 8:  # sometimes point at our request
        body = body[:4] + q(req.msg_id) + body[12:]
    try:
        events = cs.receive(srv.payload(body, cr=bool(seq & 1)), NOW)
    except errors.DcPoolError:
        return
    assert isinstance(events, list)
    cs.data_to_send(NOW)
