"""End-to-end: what happens to a request whose connection dies (issue 4).

* never acknowledged → re-sent on the next connection, executed exactly once (the emulator's
  execution counters prove it);
* acknowledged, then the connection died before the answer → a non-idempotent request raises
  :class:`dcpool.errors.OutcomeUnknown` (dcpool never guesses), an idempotent one is re-sent.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from dcpool import errors, tl
from dcpool.mtproto.session import RequestState
from dcpool.pool import open_pool
from dcpool.testing import Cluster

api = tl.api
TIMEOUT = 60


@pytest.fixture
def clock(mock_clock):
    """trio's fake clock (jumping after 20 ms of real idleness): reconnect backoffs cost no
    real time.  Sockets stay real; ``TIMEOUT`` is in fake seconds."""
    mock_clock.autojump_threshold = 0.02
    return mock_clock


def pool_for(cluster: Cluster, **kwargs):
    kwargs.setdefault("home_dc", 2)
    kwargs.setdefault("fetch_config", False)
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                     **kwargs)


async def wait_until(predicate: Callable[[], bool], poll: float = 0.005) -> None:
    # On the fake clock each poll costs one autojump (20 ms of real idleness): poll coarsely
    # when the condition is known to take a while.
    while not predicate():
        await trio.sleep(poll)


def send_code() -> object:
    # auth.sendCode#a677244f phone_number:string api_id:int api_hash:string settings:CodeSettings
    #   = auth.SentCode;
    # Not idempotent (every execution issues a new code: the world's `codes` counts them), and
    # allowed before login.  The number is DC 2's reserved test number: no migration.
    return api.auth.SendCode(phone_number="9996621234", api_id=1, api_hash="x",
                             settings=api.CodeSettings())


def executions_on(cluster: Cluster, dc: int) -> list[int]:
    return [n for (d, *_), n in cluster.executions().items() if d == dc]


# --------------------------------------------------------------------------- never acked


async def test_request_dropped_before_execution_is_resent_exactly_once(clock, cluster):
    # The first connection dies on its 4th packet: the 3 handshake packets are processed, the
    # request (packet 4) is not.  The pool re-dials, re-sends, and the DC runs it once.
    cluster.faults(2).drop_connections(after_messages=3, count=1)
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            async with pool.events() as events:
                assert type(await pool.invoke(send_code())) is api.auth.SentCode
                kinds = [e.kind for e in _drain(events)]
            stats = cluster.statistics()[2]
            assert stats.requests == {"auth.sendCode": 1}
            assert len(cluster.world.codes) == 1
            assert executions_on(cluster, 2) == [1]  # one msg_id, executed once
            assert stats.handshakes == 1  # the key survived the lost connection
            assert stats.connections_total == 2
            assert "disconnected" in kinds and kinds.count("connected") == 2
            assert kinds.count("key_created") == 1
            ps = pool.statistics()
            assert ps[2].reconnects == 1 and ps.in_flight == 0


async def test_request_lost_in_the_network_is_resent_exactly_once(clock, cluster):
    # A request is on the wire (sent, not acked) when the DC kills the connection before
    # processing it (it was still in the DC's inbound delay line).
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            await pool.invoke(api.help.GetNearestDc())
            conn = pool.dc(2).connections("main")[0]
            cluster.faults(2).latency = 0.5
            result: list[object] = []

            async def call() -> None:
                result.append(await pool.invoke(send_code()))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call)
                await wait_until(lambda: any(
                    c.pending is not None and c.pending.state is RequestState.SENT for c in conn.calls
                ))
                assert cluster.drop_connections(2) == 1
                cluster.faults(2).latency = 0.0
            assert len(result) == 1 and len(cluster.world.codes) == 1
            stats = cluster.statistics()[2]
            assert stats.requests["auth.sendCode"] == 1
            assert sorted(executions_on(cluster, 2)) == [1, 1]  # getNearestDc + cancelCode
            assert stats.connections_total == 2
            assert pool.statistics()[2].reconnects == 1


async def test_request_executed_but_answer_lost_is_not_executed_twice(clock, cluster):
    # The DC ran it, but its answer (which also acks it) was lost with the connection: the
    # client cannot tell "never arrived" from "ran".  Re-sent under its original msg_id inside
    # a new container (spec §8.4), the DC answers from its cache instead of running it again.
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            await pool.invoke(api.help.GetNearestDc())
            cluster.faults(2).latency = 0.3  # the answer waits 0.3 s in the DC's delay line
            result: list[object] = []

            async def call() -> None:
                result.append(await pool.invoke(send_code()))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call)
                await wait_until(lambda: cluster.statistics()[2].requests.get("auth.sendCode"),
                                 poll=0.1)
                pool.drop_connections(2)  # executed; its answer (no ack) is lost with the link
                cluster.faults(2).latency = 0.0
            assert len(result) == 1 and type(result[0]) is api.auth.SentCode
            assert cluster.statistics()[2].requests["auth.sendCode"] == 1
            assert len(cluster.world.codes) == 1
            assert cluster.statistics().duplicates() == {}


# --------------------------------------------------------------------------- acked, then lost


async def test_non_idempotent_request_acked_then_lost_raises_outcome_unknown(clock, cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            await pool.invoke(api.help.GetNearestDc())
            cluster.faults(2).drop_after_ack("auth.sendCode")
            with pytest.raises(errors.OutcomeUnknown) as info:
                await pool.invoke(send_code())
            assert info.value.request_name == "auth.sendCode" and info.value.dc_id == 2
            # dcpool did not re-send it on its own: the DC never saw it executed.
            assert "auth.sendCode" not in cluster.statistics()[2].requests
            assert pool.statistics().in_flight == 0
            # The pool reconnects and goes on.
            assert type(await pool.invoke(send_code())) is api.auth.SentCode
            assert cluster.statistics()[2].requests["auth.sendCode"] == 1
            assert cluster.statistics()[2].connections_total == 2


async def test_idempotent_request_acked_then_lost_is_retried(clock, cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            await pool.invoke(api.help.GetNearestDc())
            cluster.faults(2).drop_after_ack("help.getConfig")
            config = await pool.invoke(api.help.GetConfig())
            assert config.this_dc == 2
            stats = cluster.statistics()[2]
            assert stats.requests["help.getConfig"] == 1  # the lost attempt never ran
            assert stats.connections_total == 2
            assert all(n == 1 for n in executions_on(cluster, 2))
            assert pool.statistics().in_flight == 0


async def test_invoke_raw_idempotent_flag_allows_the_retry(clock, cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            await pool.invoke(api.help.GetNearestDc())
            cluster.faults(2).drop_after_ack("auth.sendCode")
            raw = await pool.invoke_raw(bytes(send_code()), idempotent=True)
            assert type(tl.loads(raw)) is api.auth.SentCode
            assert cluster.statistics()[2].requests["auth.sendCode"] == 1


async def test_download_survives_acked_then_lost_get_file(clock, cluster):
    # upload.getFile is idempotent: a part whose answer was lost is simply asked again.
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            await pool.sign_in(cluster.world.test_phone(2, 4321), "22222")
            stored = cluster.add_file(2, size=3 * 131072 + 100)
            cluster.faults(2).drop_after_ack("upload.getFile", count=2)
            data = b"".join([chunk async for chunk in pool.download(
                stored.input_location(), dc_id=2, size=stored.size, part_size=131072, parallel=2)])
            assert data == stored.data
            stats = cluster.statistics()[2]
            assert stats.requests["upload.getFile"] == 4  # 4 parts, each executed once
            assert cluster.statistics().duplicates() == {}
            assert pool.statistics().in_flight == 0


def _drain(channel: trio.MemoryReceiveChannel) -> list:
    out = []
    while True:
        try:
            out.append(channel.receive_nowait())
        except trio.WouldBlock:
            return out


# --------------------------------------------------------------------------- key forgotten


async def test_request_survives_a_forgotten_auth_key(clock, cluster):
    # -404 (spec §7.7): the DC does not know our key.  The pool creates a new one (a new key
    # is a new session) and the idempotent request goes through the new session, once.
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, request_timeout=10) as pool:
            await pool.invoke(api.help.GetNearestDc())
            await pool.flush_storage()  # (writes happen off the event loop)
            old_key = pool.storage.get_dc(2).key_id
            cluster.faults(2).transport_error(-404, count=1)
            async with pool.events() as events:
                assert (await pool.invoke(api.help.GetConfig())).this_dc == 2
                kinds = [e.kind for e in _drain(events)]
            assert "key_created" in kinds
            await pool.flush_storage()  # (writes happen off the event loop)
            assert pool.storage.get_dc(2).key_id != old_key
            stats = cluster.statistics()[2]
            assert stats.handshakes == 2
            assert stats.requests["help.getConfig"] == 1
            assert pool.statistics().in_flight == 0


async def test_non_idempotent_request_never_runs_twice_across_a_forgotten_key(clock, cluster):
    # A transport error names no message: the request may have run under the old key, so it
    # either goes through once or fails with OutcomeUnknown; it never hangs, never runs twice.
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, request_timeout=10) as pool:
            await pool.invoke(api.help.GetNearestDc())
            cluster.faults(2).transport_error(-404, count=1)
            try:
                assert type(await pool.invoke(send_code())) is api.auth.SentCode
            except errors.OutcomeUnknown:
                pass
            assert cluster.statistics()[2].requests.get("auth.sendCode", 0) <= 1
            assert pool.statistics().in_flight == 0
            assert type(await pool.invoke(send_code())) is api.auth.SentCode
