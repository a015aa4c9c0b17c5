"""End-to-end: everything the pool does on a timer (issue 4) — config refresh at expiry, idle
lanes closing, keep-alive pings, reconnect backoff — on trio's fake clock.

The emulator and the pool share the trio run, so a :class:`trio.testing.MockClock` drives both;
sockets stay real.  The clock only jumps once every task has been blocked for
``autojump_threshold`` of *real* time, so a loopback packet in flight is never overtaken by a
jump (a threshold of 0 would jump whenever a poll finds nothing ready, a race with the kernel).
Deadlines of ``trio.fail_after`` are fake seconds too: a hung test jumps to them at once.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing

from dcpool import errors, tl
from dcpool.pool import PoolEvent, open_pool
from dcpool.testing import Cluster, open_cluster

api = tl.api


@pytest.fixture
def clock(mock_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    mock_clock.autojump_threshold = 0.02
    return mock_clock


def pool_for(cluster: Cluster, **kwargs):
    kwargs.setdefault("home_dc", 2)
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                     **kwargs)


async def wait_until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await trio.sleep(0.005)


async def next_event(events: trio.MemoryReceiveChannel, kind: str,
                     dc_id: int | None = None) -> PoolEvent:
    async for event in events:
        if event.kind == kind and (dc_id is None or event.dc_id == dc_id):
            return event
    raise AssertionError(f"the event stream ended before {kind!r}")


# --------------------------------------------------------------------------- config


async def test_config_is_refreshed_when_it_expires(clock, tmp_path):
    path = tmp_path / "s.sqlite"
    async with open_cluster(config_ttl=300) as cluster:
        with trio.fail_after(2000):
            async with pool_for(cluster, storage=path) as pool:
                async with pool.events() as events:
                    first = await next_event(events, "config_refreshed")
                    second = await next_event(events, "config_refreshed")
                    assert 300 <= second.time - first.time <= 300 + 31 + 1  # TTL + jitter
                    assert cluster.statistics()[2].requests["help.getConfig"] == 2
                    third = await next_event(events, "config_refreshed")
                    assert 300 <= third.time - second.time <= 332
            assert cluster.statistics()[2].requests["help.getConfig"] == 3
            t_closed = trio.current_time()

            # Restarted: the stored config is used until its TTL runs out, then refreshed.
            async with pool_for(cluster, storage=path) as pool:
                async with pool.events() as events:
                    await trio.sleep(100)
                    assert cluster.statistics()[2].requests["help.getConfig"] == 3
                    refreshed = await next_event(events, "config_refreshed")
                    assert refreshed.time - t_closed <= 300 + 31 + 1
            assert cluster.statistics()[2].requests["help.getConfig"] == 4


async def test_update_config_triggers_a_refresh(cluster):
    with trio.fail_after(20):
        async with pool_for(cluster) as pool:
            async with pool.events() as events:
                await next_event(events, "config_refreshed")
                user = await pool.sign_in(cluster.world.test_phone(2, 1111), "22222")
                assert cluster.push_update(user.id, api.UpdateConfig()) == 1
                await next_event(events, "config_refreshed")
            assert cluster.statistics()[2].requests["help.getConfig"] == 2


# --------------------------------------------------------------------------- idle lanes


async def test_idle_foreign_and_download_connections_close(clock):
    async with open_cluster() as cluster:
        stored = cluster.add_file(2, size=200_000)
        with trio.fail_after(1000):
            async with pool_for(cluster, fetch_config=False, idle_timeout=30, ping_interval=10) as pool:
                await pool.sign_in(cluster.world.test_phone(2, 2222), "22222")
                async with pool.events() as events:
                    await pool.invoke(api.help.GetConfig(), dc_id=4)
                    data = b"".join([c async for c in pool.download(stored.input_location(), dc_id=2,
                                                                    size=stored.size)])
                    assert data == stored.data
                    t0 = trio.current_time()
                    assert pool.statistics()[2].connections == {"main": 1, "download": 1, "upload": 0, "cdn": 0}
                    assert pool.statistics()[4].connections["main"] == 1
                    closed = {(e.dc_id, e.data["lane"]) for e in
                              [await next_event(events, "idle_closed") for _ in range(2)]}
                    assert closed == {(4, "main"), (2, "download")}
                    # ping granularity: closed within one ping interval after the idle timeout
                    assert 30 <= trio.current_time() - t0 <= 30 + 10 + 1
                stats = pool.statistics()
                assert stats[4].connections == {"main": 0, "download": 0, "upload": 0, "cdn": 0}
                assert stats[4].reconnects == 0 and stats[2].reconnects == 0  # closed, not lost
                assert stats[2].connections == {"main": 1, "download": 0, "upload": 0, "cdn": 0}  # home main stays
                assert stats.in_flight == 0
                await wait_until(lambda: cluster.live_connections(4) == 0)
                assert cluster.live_connections(2) == 1
                # Used again: reopened on demand, with the key it already has.
                await pool.invoke(api.help.GetNearestDc(), dc_id=4)
                assert cluster.statistics()[4].connections_total == 2
                assert cluster.statistics()[4].handshakes == 1


async def test_busy_connection_does_not_idle_close(clock):
    async with open_cluster() as cluster:
        with trio.fail_after(1000):
            async with pool_for(cluster, fetch_config=False, idle_timeout=30, ping_interval=10) as pool:
                for _ in range(8):  # one call every 9 s: never 30 s idle
                    await pool.invoke(api.help.GetNearestDc(), dc_id=4)
                    await trio.sleep(9)
                assert cluster.statistics()[4].connections_total == 1
                assert pool.statistics()[4].connections["main"] == 1


# --------------------------------------------------------------------------- keep-alive


async def test_keepalive_uses_ping_delay_disconnect(clock):
    async with open_cluster() as cluster:
        with trio.fail_after(1000):
            async with pool_for(cluster, fetch_config=False, ping_interval=10) as pool:
                await pool.invoke(api.help.GetNearestDc())
                (server_conn,) = cluster.servers[2].connections.values()
                assert server_conn.disconnect_scope.deadline == float("inf")  # no ping yet
                await trio.sleep(35)  # three pings
                # ping_delay_disconnect(disconnect_delay=interval + 15) armed the DC's disconnect
                # timer: a client that vanishes is hung up on soon after its next ping is due...
                left = server_conn.disconnect_scope.deadline - trio.current_time()
                assert 25 - 10 <= left <= 25
                # ...and every pong came back: the connection never broke.
                await trio.sleep(100)
                assert cluster.statistics()[2].connections_total == 1
                assert pool.statistics()[2].reconnects == 0


async def test_default_keepalive_is_telethons_60_75(clock):
    async with open_cluster() as cluster:
        with trio.fail_after(1000):
            async with pool_for(cluster, fetch_config=False) as pool:
                await pool.invoke(api.help.GetNearestDc())
                (server_conn,) = cluster.servers[2].connections.values()
                await trio.sleep(61)
                left = server_conn.disconnect_scope.deadline - trio.current_time()
                assert 75 - 1 - 1e-6 <= left <= 75


async def test_long_ping_interval_keeps_the_connection(clock):
    # The disconnect delay asked of the DC must outlast the interval between two pings, or
    # the DC hangs up on a perfectly healthy connection between them.
    async with open_cluster() as cluster:
        with trio.fail_after(5000):
            async with pool_for(cluster, fetch_config=False, ping_interval=200) as pool:
                await pool.invoke(api.help.GetNearestDc())
                await trio.sleep(1000)
                assert cluster.statistics()[2].connections_total == 1
                assert pool.statistics()[2].reconnects == 0


async def test_missing_pong_reconnects(clock):
    async with open_cluster() as cluster:
        with trio.fail_after(1000):
            async with pool_for(cluster, fetch_config=False, ping_interval=10) as pool:
                await pool.invoke(api.help.GetNearestDc())
                async with pool.events() as events:
                    cluster.faults(2).latency = 30  # pongs come back far too late
                    lost = await next_event(events, "disconnected")
                    assert "pong" in lost.data["reason"]
                    cluster.faults(2).latency = 0
                    await next_event(events, "connected")
                assert (await pool.invoke(api.help.GetNearestDc())).this_dc == 2
                assert pool.statistics()[2].reconnects == 1


# --------------------------------------------------------------------------- backoff


async def test_refused_connections_back_off_then_recover(clock):
    async with open_cluster() as cluster:
        with trio.fail_after(1000):
            async with pool_for(cluster, fetch_config=False) as pool:
                cluster.faults(3).refuse_connections(count=2)
                async with pool.events() as events:
                    async with trio.open_nursery() as nursery:
                        result = []

                        async def call() -> None:
                            result.append(await pool.invoke(api.help.GetNearestDc(), dc_id=3))

                        nursery.start_soon(call)
                        delays = []
                        for _ in range(2):
                            ev = await next_event(events, "backoff", dc_id=3)
                            delays.append(ev.data["seconds"])
                            until = pool.statistics()[3].backoff_until
                            assert until is not None and until > trio.current_time()
                            assert pool.statistics()[3].in_flight == 1  # the call waits
                    assert result and result[0].this_dc == 3
                # exponential with jitter in [1/2, 1] of 0.5, 1 seconds
                for n, delay in enumerate(delays):
                    assert 0.5 * 2**n / 2 <= delay <= 0.5 * 2**n
                stats = pool.statistics()[3]
                assert stats.backoff_until is None and stats.connections["main"] == 1
                assert cluster.statistics()[3].connections_total == 1  # refused ones are not counted
                assert cluster.statistics()[3].handshakes == 1


async def test_unreachable_dc_fails_calls_fast_and_recovers(clock):
    async with open_cluster() as cluster:
        with trio.fail_after(1000):
            async with pool_for(cluster, fetch_config=False, connect_attempts=3) as pool:
                cluster.faults(3).refuse_connections()  # until cleared
                t0 = trio.current_time()
                with pytest.raises(errors.HandshakeError):
                    await pool.invoke(api.help.GetNearestDc(), dc_id=3)
                assert trio.current_time() - t0 <= 0.5 + 1  # two backoffs, not a timeout
                assert pool.statistics()[3].in_flight == 0
                # The slot keeps trying, backing off further; once the DC is back, calls work.
                cluster.faults(3).clear()
                assert (await pool.invoke(api.help.GetNearestDc(), dc_id=3)).this_dc == 3
                assert pool.statistics()[3].backoff_until is None


async def test_flapping_connection_backs_off_from_the_base_delay(clock):
    # Every connection reaches "ready" and is then dropped: each was healthy, so the backoff
    # does not grow (it would reach 8 s by the 5th loss otherwise), and the request, never
    # executed by a dropped connection, runs exactly once in the end.
    async with open_cluster() as cluster:
        with trio.fail_after(1000):
            async with pool_for(cluster, fetch_config=False) as pool:
                await pool.invoke(api.help.GetNearestDc())
                cluster.faults(2).drop_connections(after_messages=0, count=5)
                async with pool.events() as events:
                    pool.drop_connections(2)
                    config = await pool.invoke(api.help.GetConfig())
                    assert config.this_dc == 2
                    delays = [e.data["seconds"] for e in _drain(events) if e.kind == "backoff"]
                assert len(delays) == 5
                assert all(0.25 <= d <= 0.5 for d in delays), delays
                stats = cluster.statistics()[2]
                assert stats.requests["help.getConfig"] == 1
                assert stats.connections_total == 1 + 5 + 1


def _drain(channel: trio.MemoryReceiveChannel) -> list[PoolEvent]:
    out = []
    while True:
        try:
            out.append(channel.receive_nowait())
        except trio.WouldBlock:
            return out
