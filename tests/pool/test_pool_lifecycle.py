"""End-to-end: the pool's first use, persistence across processes, routing to a foreign DC,
raw invocation, errors and lifecycle events (issue 4), against ``dcpool.testing`` over real
loopback sockets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from dcpool import errors, tl
from dcpool.pool import PoolEvent, open_pool
from dcpool.storage import SqliteStorage
from dcpool.testing import Cluster

api = tl.api
TIMEOUT = 20


@pytest.fixture
def clock(mock_clock):
    """trio's fake clock, jumping after 20 ms of real idleness (reconnect backoff costs no real
    time; sockets stay real)."""
    mock_clock.autojump_threshold = 0.02
    return mock_clock


def pool_for(cluster: Cluster, **kwargs):
    kwargs.setdefault("home_dc", 2)
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                     **kwargs)


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Poll a condition that depends on the other side of a socket (no task-blocking trick
    can see through real I/O)."""
    while not predicate():
        await trio.sleep(0.005)


async def next_event(events: trio.MemoryReceiveChannel, kind: str) -> PoolEvent:
    async for event in events:
        if event.kind == kind:
            return event
    raise AssertionError(f"the event stream ended before {kind!r}")


def connections_total(cluster: Cluster) -> dict[int, int]:
    stats = cluster.statistics()
    return {dc: stats[dc].connections_total for dc in cluster.world.dc_ids}


# --------------------------------------------------------------------------- first use


async def test_first_use_creates_key_and_fetches_config_then_reuses_them(cluster, tmp_path):
    path = tmp_path / "session.sqlite"
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, storage=path) as pool:
            async with pool.events() as events:
                created = await next_event(events, "key_created")
                refreshed = await next_event(events, "config_refreshed")
            assert created.dc_id == 2 and refreshed.dc_id == 2
            await pool.flush_storage()  # (writes happen off the event loop)
            assert created.data["key_id"] == pool.storage.get_dc(2).key_id
            await pool.flush_storage()  # (writes happen off the event loop)
            snap = pool.storage.get_config()
            assert snap is not None
            config = tl.loads(snap.blob)
            assert type(config) is api.Config and config.this_dc == 2
            assert snap.expires == config.expires
            assert {o.id for o in config.dc_options} == set(cluster.world.dc_ids)
            stats = pool.statistics()
            assert stats.home_dc == 2 and list(stats.dcs) == [2]
            assert stats[2].key_state == "keyed" and stats[2].connections["main"] == 1
        first = cluster.statistics()
        assert first[2].handshakes == 1
        assert first.total("handshakes") == 1
        assert first[2].requests["help.getConfig"] == 1

        # A second process on the same file: the key and the config are reused.
        async with pool_for(cluster, storage=path) as pool:
            async with pool.events() as events:
                nearest = await pool.invoke(api.help.GetNearestDc())
                assert nearest.this_dc == 2
                kinds = []
                while True:
                    try:
                        kinds.append(events.receive_nowait().kind)
                    except trio.WouldBlock:
                        break
            assert "key_created" not in kinds
            assert pool.statistics()[2].key_state == "keyed"
        second = cluster.statistics()
        assert second.total("handshakes") == 1  # no key exchange at all
        assert second[2].requests["help.getConfig"] == 1  # the stored config had not expired
        assert second[2].connections_total == first[2].connections_total + 1

    storage = SqliteStorage(path, "prod")
    try:
        assert storage.get_home_dc() == 2 and [r.dc_id for r in storage.list_dcs()] == [2]
    finally:
        storage.close()


async def test_invoke_on_foreign_dc_touches_only_that_dc(cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, fetch_config=False) as pool:
            await pool.invoke(api.help.GetNearestDc())
            before = connections_total(cluster)
            assert before == {1: 0, 2: 1, 3: 0, 4: 0, 5: 0}
            config = await pool.invoke(api.help.GetConfig(), dc_id=4)
            assert config.this_dc == 4
            assert connections_total(cluster) == {1: 0, 2: 1, 3: 0, 4: 1, 5: 0}
            # Again: the DC 4 connection is reused.
            await pool.invoke(api.help.GetNearestDc(), dc_id=4)
            assert connections_total(cluster) == {1: 0, 2: 1, 3: 0, 4: 1, 5: 0}
            stats = pool.statistics()
            assert sorted(stats.dcs) == [2, 4]
            assert stats[4].connections == {"main": 1, "download": 0, "upload": 0, "cdn": 0}
            assert stats[2].connections == {"main": 1, "download": 0, "upload": 0, "cdn": 0}
            assert stats[4].requests == 2 and stats[2].requests == 1
            assert stats[4].key_state == "keyed" and stats[4].in_flight == 0
            assert stats[4].endpoint == "%s:%d" % cluster.endpoint(4)
            assert cluster.statistics()[4].handshakes == 1
            assert stats.in_flight == 0
        # Closing the pool closed every connection.
        await wait_until(lambda: all(cluster.live_connections(dc) == 0 for dc in (2, 4)))


# --------------------------------------------------------------------------- API surface


async def test_invoke_raw_returns_the_serialized_result(cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, fetch_config=False) as pool:
            raw = await pool.invoke_raw(api.help.GetNearestDc().to_bytes())
            assert isinstance(raw, bytes)
            nearest = tl.loads(raw)
            assert type(nearest) is api.NearestDc and nearest.this_dc == 2
            assert raw == nearest.to_bytes()
            raw4 = await pool.invoke_raw(bytes(api.help.GetConfig()), dc_id=4)
            assert tl.loads(raw4).this_dc == 4


async def test_unknown_dc_is_rejected_without_network(cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, fetch_config=False) as pool:
            with pytest.raises(errors.UnknownDc):
                await pool.invoke(api.help.GetConfig(), dc_id=42)
            with pytest.raises(LookupError):  # UnknownDc is also a LookupError
                await pool.invoke_raw(bytes(api.help.GetConfig()), dc_id=9)
            assert pool.statistics().dcs == {}
            assert cluster.statistics().total("connections_total") == 0


async def test_invoke_wants_a_function(cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, fetch_config=False) as pool:
            with pytest.raises(errors.LocalProtocolError):
                await pool.invoke(api.InputPeerEmpty())


@pytest.mark.parametrize(
    ("code", "message", "cls", "name", "value"),
    [
        (400, "PHONE_NUMBER_INVALID", errors.BadRequest, "PHONE_NUMBER_INVALID", None),
        (420, "FLOOD_WAIT_17", errors.FloodWait, "FLOOD_WAIT_X", 17),
        (401, "AUTH_KEY_UNREGISTERED", errors.AuthKeyUnregistered, "AUTH_KEY_UNREGISTERED", None),
        # (500-class answers to idempotent requests are retried: tests/pool/test_pool_errors.py)
    ],
)
async def test_rpc_errors_propagate_with_code_name_value(cluster, code, message, cls, name, value):
    with trio.fail_after(TIMEOUT):
        # flood_sleep_threshold: a FLOOD_WAIT_17 above it is raised, not waited out
        async with pool_for(cluster, fetch_config=False, flood_sleep_threshold=10) as pool:
            cluster.faults(2).fail("help.getNearestDc", code, message, count=1)
            with pytest.raises(cls) as info:
                await pool.invoke(api.help.GetNearestDc())
            exc = info.value
            assert isinstance(exc, errors.RpcError)
            assert (exc.code, exc.message, exc.name, exc.value) == (code, message, name, value)
            assert exc.request_name == "help.getNearestDc"
            # The connection survives an rpc_error: the next call works on it.
            assert (await pool.invoke(api.help.GetNearestDc())).this_dc == 2
            assert pool.statistics().in_flight == 0
            assert cluster.statistics()[2].connections_total == 1


async def test_migrate_error_is_followed_not_raised(cluster):
    # PHONE_MIGRATE moves home; the caller just sees the answer.
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, fetch_config=False) as pool:
            phone = cluster.world.test_phone(4, 1234)
            sent = await pool.send_code(phone)
            assert type(sent) is api.auth.SentCode
            assert pool.home_dc == 4
            assert pool.statistics().migrations == 1


async def test_events_report_the_lifecycle(clock, cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, fetch_config=False) as pool:
            async with pool.events() as events:
                await pool.invoke(api.help.GetNearestDc(), dc_id=3)
                cluster.drop_connections(3)
                await next_event(events, "disconnected")
                connected = await next_event(events, "connected")
                assert connected.dc_id == 3 and connected.data["lane"] == "main"
                assert connected.data["endpoint"] == "%s:%d" % cluster.endpoint(3)
                await pool.invoke(api.help.GetNearestDc(), dc_id=3)
            seen = []
            async with pool.events(buffer=100) as events2:
                pool.set_home_dc(5)
                seen.append(events2.receive_nowait())
            assert seen[0].kind == "home_changed" and seen[0].dc_id == 5 and seen[0].data == {"old": 2}
            assert isinstance(seen[0].time, float)
            assert pool.statistics()[3].reconnects == 1


async def test_a_slow_event_observer_does_not_stall_the_pool(cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, fetch_config=False) as pool:
            async with pool.events(buffer=1):
                # Nobody reads: the pool goes on and drops what does not fit.
                for dc in (1, 3, 4):
                    await pool.invoke(api.help.GetNearestDc(), dc_id=dc)
            assert sorted(pool.statistics().dcs) == [1, 3, 4]


async def test_closed_pool_refuses_calls(cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, fetch_config=False) as pool:
            await pool.invoke(api.help.GetNearestDc())
        with pytest.raises(errors.PoolClosed):
            await pool.invoke(api.help.GetNearestDc())
        assert pool.statistics().tasks == 0


async def test_events_as_a_plain_async_iterator_end_with_the_pool(cluster):
    kinds: list[str] = []
    subscribed = trio.Event()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            async with pool_for(cluster, fetch_config=False) as pool:

                async def watch() -> None:
                    stream = pool.events()
                    subscribed.set()
                    async for event in stream:  # subscribes on the first iteration
                        kinds.append(event.kind)

                nursery.start_soon(watch)
                await subscribed.wait()
                await trio.sleep(0)  # let the watcher reach its first receive
                await pool.invoke(api.help.GetNearestDc(), dc_id=4)
                pool.set_home_dc(5)
            # leaving the pool ends the stream: the watcher's loop returns by itself
    assert "key_created" in kinds and "connected" in kinds and kinds[-1] == "home_changed"
    assert pool.statistics().event_subscribers == 0
