"""Parts in flight (issue 18 item 2): many parts multiplexed per connection, a cap on the
connections of a DC, and the adaptive window of ``parallel="auto"`` (growth while throughput
grows, back-off on FLOOD_WAIT and on rising latency).

On trio's fake clock with a latency injected in each direction (see
tests/pool/test_pool_timers.py): throughput is then bound by round trips alone, as on a long
link, so the window's decisions are deterministic.  Connections are counted by the emulator."""

from __future__ import annotations

import hashlib

import pytest
import trio
import trio.testing

import dcpool
from dcpool.testing import Cluster, StoredFile, open_cluster

from migrate_helpers import CODE_DC2, PHONE_DC2, pool_args

PART = 64 * 1024


@pytest.fixture
def clock(mock_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    mock_clock.autojump_threshold = 0.02
    return mock_clock


async def download(pool: dcpool.Pool, f: StoredFile, parallel, *, watch_dc: int | None = None):
    """(the Download, the most calls in flight on ``watch_dc`` seen meanwhile)"""
    h = hashlib.sha256()
    peak = 0
    d = pool.download(f.input_location(), dc_id=f.dc_id, size=f.size, part_size=PART, parallel=parallel)

    async def fetch_all() -> None:
        async with d as chunks:
            async for chunk in chunks:
                h.update(chunk)

    if watch_dc is None:
        await fetch_all()
    else:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal peak
                while True:
                    dc = pool.statistics().dcs.get(watch_dc)  # (none before the first part)
                    peak = max(peak, dc.in_flight if dc is not None else 0)
                    await trio.sleep(0.05)

            nursery.start_soon(watch)
            await fetch_all()
            nursery.cancel_scope.cancel()
    assert h.hexdigest() == f.sha256
    return d, peak


@pytest.mark.parametrize("cap", [1, 2])
async def test_many_parts_per_connection_within_the_dc_cap(clock, cap: int) -> None:
    async with open_cluster() as cluster:
        f = cluster.add_file(4, size=32 * PART)
        with trio.fail_after(600):
            async with dcpool.open_pool(home_dc=2, download_connections=8, max_connections_per_dc=cap,
                                        **pool_args(cluster)) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(4).latency = 0.5
                d, peak = await download(pool, f, 16, watch_dc=4)
                s = cluster.statistics()[4]
                # every connection DC 4 ever saw, the authorization transfer's included
                assert s.connections_total == cap
                assert d.peak_in_flight == 16 and peak >= 16  # multiplexed: 16 / cap per connection (+ the import)
                assert s.requests["upload.getFile"] == 32
                st = pool.statistics().dcs[4]
                assert sum(st.connections.values()) == cap


async def test_without_a_cap_the_download_lane_opens_its_connections(clock) -> None:
    async with open_cluster() as cluster:
        f = cluster.add_file(4, size=32 * PART)
        with trio.fail_after(600):
            async with dcpool.open_pool(home_dc=2, download_connections=8, **pool_args(cluster)) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                await download(pool, f, 16)
                assert cluster.statistics()[4].connections_total == 1 + 8  # main + the lane


def test_cap_is_validated() -> None:
    with pytest.raises(ValueError):
        dcpool.pool.PoolConfig(max_connections_per_dc=0)


async def test_auto_window_grows_while_throughput_grows(clock) -> None:
    async with open_cluster() as cluster:
        f = cluster.add_file(4, size=160 * PART)
        with trio.fail_after(600):
            async with dcpool.open_pool(home_dc=2, download_parts_max=32, **pool_args(cluster)) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(4).latency = 0.5  # a long link: parts in flight are throughput
                d, _ = await download(pool, f, "auto")
                window = d.window()
                assert window is pool.part_windows.for_dc(4)  # one window per DC
                # slow start doubled it from 8 up to the maximum, and it stayed there
                assert window.size == 32 and window.grown == 2 and window.shrunk == 0
                assert d.peak_in_flight == 32
                assert cluster.statistics()[4].requests["upload.getFile"] == 160
                # memory stays bounded by the window: never more than 32 parts held
                assert d.peak_buffered_bytes <= 32 * PART


async def test_auto_window_backs_off_on_flood_wait(clock) -> None:
    async with open_cluster() as cluster:
        f = cluster.add_file(4, size=96 * PART)
        with trio.fail_after(600):
            async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(4).latency = 0.5
                d, _ = await download(pool, f, "auto")
                assert d.window().shrunk == 0 and d.window().size == 32
                cluster.faults(4).flood_wait("upload.getFile", 3, count=2)
                d, _ = await download(pool, f, "auto")  # waited out, asked again: complete
                window = d.window()
                assert window.shrunk >= 1
                s = cluster.statistics()[4]
                assert s.errors["FLOOD_WAIT_3"] == 2
                assert s.requests["upload.getFile"] == 2 * 96 + 2
                # a long flood wait is the caller's error, not a silent stall
                cluster.faults(4).flood_wait("upload.getFile", 3600, count=1)
                with pytest.raises(dcpool.errors.FloodWait):
                    await download(pool, f, "auto")


async def test_auto_window_backs_off_when_latency_rises(clock) -> None:
    async with open_cluster() as cluster:
        f = cluster.add_file(4, size=96 * PART)
        with trio.fail_after(900):
            async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(4).latency = 0.25
                d, _ = await download(pool, f, "auto")
                window = d.window()
                assert window.shrunk == 0
                cluster.faults(4).latency = 2.0  # 8x the round trip: slower, and queues build up
                await download(pool, f, "auto")
                assert window.shrunk >= 1


async def test_bad_parallel_values_are_refused(cluster: Cluster) -> None:
    f = cluster.add_file(4, size=PART)
    async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
        for bad in (0, "fast", 2.5):
            with pytest.raises(dcpool.errors.LocalProtocolError):
                pool.download(f.input_location(), dc_id=4, parallel=bad)
