"""Telegram's session rules, enforced by the emulator and observed over real loopback sockets.

MTPROTO.md §3.3/§3.4/§8.3 (msg_id order, seq_no consistency, bad_msg_notification codes) and
§10 (initConnection on a new key, supported layers).  The msg_id/seq_no tests write their own
messages in a session of their own on an authorised key, so that every id and seq_no is the
test's choice, and read the server's answers below the client session.
"""

from __future__ import annotations

import os
import time

import pytest
import trio
from _raw_client import Closed, open_session

from dcpool import tl
from dcpool.errors import BadRequest
from dcpool.mtproto import envelope
from dcpool.mtproto.envelope import pack_long, pack_uint
from dcpool.mtproto.session import NewSessionCreated, RpcResult
from dcpool.transport import Frame, TransportErrorFrame

pytestmark = pytest.mark.e2e

api = tl.api
ids = tl.ids
TIMEOUT = 10


# --------------------------------------------------------------------------- initConnection


async def test_first_call_on_a_new_key_must_be_wrapped_in_init_connection(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 1) as raw:
            raw.auto_init = False
            with pytest.raises(BadRequest) as info:
                await raw.call(api.help.GetNearestDc())
            assert info.value.message == "CONNECTION_NOT_INITED"
            raw.auto_init = True  # the next call is wrapped
            assert (await raw.call(api.help.GetNearestDc())).this_dc == 1
            # the key is initialised now: later calls need no wrapper (§10)
            assert (await raw.call(api.help.GetNearestDc())).this_dc == 1
    stats = cluster.statistics()[1]
    assert stats.errors["CONNECTION_NOT_INITED"] == 1
    assert stats.requests["help.getNearestDc"] == 3


async def test_unsupported_layer_is_connection_layer_invalid(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as raw:
            raw.layer = cluster.world.min_layer - 1
            with pytest.raises(BadRequest) as info:
                await raw.call(api.help.GetNearestDc())
            assert info.value.message == "CONNECTION_LAYER_INVALID"
            # the layer was refused, so the key is still not initialised
            with pytest.raises(BadRequest) as info:
                await raw.call(api.help.GetNearestDc())
            assert info.value.message == "CONNECTION_NOT_INITED"
            raw.auto_init, raw.layer = True, cluster.world.min_layer
            assert (await raw.call(api.help.GetNearestDc())).this_dc == 2


async def test_init_connection_rule_can_be_switched_off(cluster):
    cluster.world.require_init_connection = False
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 3) as raw:
            raw.auto_init = False
            assert (await raw.call(api.help.GetNearestDc())).this_dc == 3


# --------------------------------------------------------------------------- hand-made messages


class OwnSession:
    """Messages written by hand in a fresh session of ``raw``'s (initialised) key."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.key = raw.session.auth_key
        self.salt = raw.session.salt
        self.session_id = int.from_bytes(os.urandom(8), "little", signed=True)
        self.received: list[tuple[int, int, bytes]] = []
        base = int(time.time() * 2**32)
        self.base = base - base % 4

    def msg_id(self, k: int) -> int:
        """An id k*4 steps above the base (negative k: below it)."""
        return self.base + 4 * k

    async def send(self, msg_id: int, seq_no: int, body: bytes) -> None:
        plaintext = envelope.pack_plaintext(self.salt, self.session_id, msg_id, seq_no, body)
        await self.raw.send_payload(envelope.encrypt(self.key, plaintext, x=0, rng=os.urandom))

    async def send_container(self, msg_id: int, items: list[tuple[int, int, bytes]]) -> None:
        await self.send(msg_id, 0, envelope.pack_container(items))

    async def receive(self) -> None:
        data = await self.raw.stream.receive_some(1 << 20)
        if not data:
            raise AssertionError("the server closed the connection")
        for event in self.raw.transport.receive_data(data):
            assert isinstance(event, Frame), event
            msg = envelope.decrypt_message(self.key, event.payload, x=8)
            assert msg.session_id == self.session_id
            if envelope.constructor_of(msg.body) == ids.MSG_CONTAINER:
                items = [(i.msg_id, i.seq_no, i.body) for i in envelope.unpack_container(msg.body)]
            else:
                items = [(msg.msg_id, msg.seq_no, msg.body)]
            self.received.extend((m, s, envelope.maybe_gunzip(b)) for m, s, b in items)

    def bad_msg_codes(self) -> dict[int, int]:
        """bad_msg_id -> error_code of every bad_msg_notification received."""
        out = {}
        for _, _, body in self.received:
            if envelope.constructor_of(body) == ids.BAD_MSG_NOTIFICATION:
                bad_id = int.from_bytes(body[4:12], "little", signed=True)
                out[bad_id] = int.from_bytes(body[16:20], "little", signed=True)
        return out

    def answered(self, msg_id: int) -> bool:
        """An rpc_result or a pong for ``msg_id`` arrived."""
        for _, _, body in self.received:
            ctor = envelope.constructor_of(body)
            if ctor in (ids.RPC_RESULT, ids.PONG) and int.from_bytes(body[4:12], "little", signed=True) == msg_id:
                return True
        return False

    async def until(self, predicate) -> None:
        while not predicate():
            await self.receive()


def ping(ping_id: int) -> bytes:
    # ping#7abe77ec ping_id:long = Pong;
    return pack_uint(ids.PING) + pack_long(ping_id)


async def own_session(cluster, dc_id: int):
    raw_cm = open_session(cluster, dc_id)
    raw = await raw_cm.__aenter__()
    await raw.call(api.help.GetNearestDc())  # initialises the key
    return raw_cm, OwnSession(raw)


async def test_msg_ids_must_strictly_increase_within_a_session(cluster):
    with trio.fail_after(TIMEOUT):
        raw_cm, s = await own_session(cluster, 1)
        try:
            first = s.msg_id(0)
            await s.send(first, 1, api.help.GetNearestDc().to_bytes())
            await s.until(lambda: s.answered(first))
            lower = s.msg_id(-10)  # recent, never sent, but below the last id
            await s.send(lower, 2, ping(1))
            await s.until(lambda: lower in s.bad_msg_codes())
            assert s.bad_msg_codes()[lower] == 16
            higher = s.msg_id(10)
            await s.send(higher, 2, ping(2))
            await s.until(lambda: s.answered(higher))
        finally:
            await raw_cm.__aexit__(None, None, None)
    assert not s.answered(lower)


async def test_container_reusing_a_msg_id_is_code_19(cluster):
    with trio.fail_after(TIMEOUT):
        raw_cm, s = await own_session(cluster, 1)
        try:
            first = s.msg_id(0)
            await s.send(first, 1, api.help.GetNearestDc().to_bytes())
            await s.until(lambda: s.answered(first))
            inner = s.msg_id(-4)
            await s.send_container(first, [(inner, 2, ping(3))])
            await s.until(lambda: first in s.bad_msg_codes())
            assert s.bad_msg_codes()[first] == 19
            assert not s.answered(inner)  # nothing inside a refused container runs
        finally:
            await raw_cm.__aexit__(None, None, None)
    assert cluster.statistics()[1].requests["help.getNearestDc"] == 2  # own call + ours, once


async def test_msg_id_older_than_the_remembered_ones_is_code_20(cluster):
    cluster.servers[2].core.received_memory = 4
    with trio.fail_after(TIMEOUT):
        raw_cm, s = await own_session(cluster, 2)
        try:
            sent = [s.msg_id(k) for k in range(6)]
            for i, msg_id in enumerate(sent):
                await s.send(msg_id, 2 * i, ping(i))
            await s.until(lambda: all(s.answered(m) for m in sent))
            # a container (new id) re-sending an id older than the 4 remembered ones
            container, old = s.msg_id(10), s.msg_id(-2)
            await s.send_container(container, [(old, 12, ping(99))])
            await s.until(lambda: old in s.bad_msg_codes())
            assert s.bad_msg_codes()[old] == 20
            assert not s.answered(old)
        finally:
            await raw_cm.__aexit__(None, None, None)


async def test_seq_no_too_low_is_32_and_too_high_is_33(cluster):
    with trio.fail_after(TIMEOUT):
        raw_cm, s = await own_session(cluster, 3)
        try:
            a = s.msg_id(0)
            await s.send(a, 5, api.help.GetNearestDc().to_bytes())  # content-related, seq 5
            await s.until(lambda: s.answered(a))
            # a higher msg_id with a lower seq_no
            low = s.msg_id(4)
            await s.send(low, 3, api.help.GetNearestDc().to_bytes())
            # a higher msg_id with an equal, odd seq_no
            equal = s.msg_id(8)
            await s.send(equal, 5, api.help.GetNearestDc().to_bytes())
            # a lower msg_id (inside a new container) with a higher seq_no
            container, high = s.msg_id(12), s.msg_id(-4)
            await s.send_container(container, [(high, 7, api.help.GetNearestDc().to_bytes())])
            await s.until(lambda: {low, equal, high} <= set(s.bad_msg_codes()))
            codes = s.bad_msg_codes()
            assert (codes[low], codes[equal], codes[high]) == (32, 32, 33)
            # consistent numbering goes through
            ok = s.msg_id(16)
            await s.send(ok, 7, api.help.GetNearestDc().to_bytes())
            await s.until(lambda: s.answered(ok))
        finally:
            await raw_cm.__aexit__(None, None, None)
    assert cluster.statistics()[3].requests["help.getNearestDc"] == 3  # refused ones never ran


# --------------------------------------------------------------------------- key and session faults


async def test_forgotten_key_gets_minus_404_and_is_really_forgotten(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 4) as raw:
            await raw.call(api.help.GetNearestDc())
            key_id = raw.session.auth_key.key_id
            cluster.world.authorize(4, key_id, cluster.add_user("15550001", 4).id)
            assert cluster.knows_key(4, key_id)
            cluster.faults(4).forget_key()
            raw.send(api.help.GetNearestDc())
            await raw.until(lambda e: isinstance(e, Closed))
            assert raw.history[-2] == TransportErrorFrame(-404)
        assert not cluster.knows_key(4, key_id)
        assert cluster.world.authorization(4, key_id) is None
        # A new key must initialise its connection again.
        async with open_session(cluster, 4) as raw:
            raw.auto_init = False
            with pytest.raises(BadRequest):
                await raw.call(api.help.GetNearestDc())
    assert not cluster.faults(4).armed()


async def test_transport_error_minus_404_makes_the_key_unknown(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 1) as raw:
            await raw.call(api.help.GetNearestDc())
            key_id = raw.session.auth_key.key_id
            cluster.faults(1).transport_error(-404)
            raw.send(api.help.GetNearestDc())
            await raw.until(lambda e: isinstance(e, Closed))
    assert not cluster.knows_key(1, key_id)


async def test_known_key_never_gets_minus_404(cluster):
    """Other transport errors (e.g. -429 flood) leave the key alone; a replayed payload on a
    new connection is accepted by key (and ignored as a duplicate), not answered with -404."""
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as raw:
            await raw.call(api.help.GetNearestDc())
            key_id = raw.session.auth_key.key_id
            cluster.faults(2).transport_error(-429)
            raw.send(api.help.GetNearestDc())
            await raw.until(lambda e: isinstance(e, Closed))
            assert raw.history[-2] == TransportErrorFrame(-429)
    assert cluster.knows_key(2, key_id)


async def test_cluster_forget_key_now(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 3) as raw:
            await raw.call(api.help.GetNearestDc())
            key_id = raw.session.auth_key.key_id
            assert cluster.forget_key(3, key_id) and not cluster.forget_key(3, key_id)
            raw.send(api.help.GetNearestDc())
            await raw.until(lambda e: isinstance(e, Closed))
            assert raw.history[-2] == TransportErrorFrame(-404)


async def test_lost_server_session_is_announced_again(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 5) as raw:
            await raw.call(api.help.GetNearestDc())
            assert len(raw.of_type(NewSessionCreated)) == 1
            cluster.faults(5).lose_session()
            before = len(raw.history)
            assert (await raw.call(api.help.GetNearestDc())).this_dc == 5
            kinds = [type(e) for e in raw.history[before:]]
    assert NewSessionCreated in kinds
    assert kinds.index(NewSessionCreated) < kinds.index(RpcResult)
    assert len(raw.of_type(NewSessionCreated)) == 2
    assert cluster.statistics()[5].requests["help.getNearestDc"] == 2
