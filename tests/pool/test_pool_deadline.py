"""One deadline per call (issue 11): ``invoke(..., timeout=T)`` bounds the whole call --
migration hops, authorization transfers (and the FLOOD_WAIT they wait out), reconnects --
and RequestTimeout says which stage was running.  On trio's fake clock (see test_pool_timers
for why the autojump threshold is not 0)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from dcpool import errors, tl
from dcpool.pool import open_pool
from dcpool.testing import Cluster, open_cluster

api = tl.api
PART = 64 * 1024
PHONE_DC2, CODE_DC2 = "9996621234", "22222"


@pytest.fixture
def clock(mock_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    mock_clock.autojump_threshold = 0.02
    return mock_clock


def pool_for(cluster: Cluster, **kwargs):
    kwargs.setdefault("home_dc", 2)
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                     fetch_config=False, **kwargs)


async def test_timeout_2_through_migration_flood_waited_transfer_and_reconnect(clock):
    async with open_cluster() as cluster:
        f = cluster.add_file(4, size=PART)
        with trio.fail_after(1000):
            # wait_flood: the export's FLOOD_WAIT_1 is waited out; connect_attempts: the call
            # keeps waiting for the reconnect instead of failing fast
            async with pool_for(cluster, flood_sleep_threshold=60, connect_attempts=1000,
                                request_timeout=None) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(2).flood_wait("auth.exportAuthorization", 1, count=1)
                request = api.upload.GetFile(location=f.input_location(), offset=0, limit=PART)
                async with pool.events() as events, trio.open_nursery() as nursery:

                    # DC 4 drops its connection once the part arrives (the part may ride
                    # behind the import, so in the same packet) and refuses new ones
                    cluster.faults(4).drop_after_ack("upload.getFile", count=1)

                    async def break_dc4_once_authorized() -> None:
                        async for event in events:
                            if event.kind == "transfer_done" and event.dc_id == 4:
                                cluster.faults(4).refuse_connections()  # until cleared
                                return

                    nursery.start_soon(break_dc4_once_authorized)
                    t0 = trio.current_time()
                    with pytest.raises(errors.RequestTimeout) as info:
                        # the hint is wrong: DC 3 answers FILE_MIGRATE_4
                        await pool.invoke(request, dc_id=3, timeout=2)
                    elapsed = trio.current_time() - t0
                # the whole call got 2 s: not 2 s per hop, per transfer step or per attempt
                assert elapsed == pytest.approx(2.0)
                assert info.value.stage == "connecting"
                assert "after 1 migration" in str(info.value)
                s = cluster.statistics()
                assert s[3].errors.get("FILE_MIGRATE_4") == 1  # the migration
                # the transfers (to DC 3 for the hint, then to DC 4), the first under FLOOD_WAIT_1
                assert s[2].exports == 2 and s[3].imports == 1 and s[4].imports == 1
                assert s[2].errors.get("FLOOD_WAIT_1") == 1
                st = pool.statistics()
                assert st.transfer_flood_waits == 1 and st.transfers == 2
                assert st[4].reconnects >= 1  # and the reconnect
                assert st.in_flight == 0
                cluster.faults(4).clear()
                # the next call (its own deadline) goes straight to DC 4 once it is back
                assert len((await pool.invoke(request, dc_id=4, timeout=30)).bytes) == PART


async def test_timeout_says_the_answer_was_awaited(clock):
    async with open_cluster() as cluster:
        with trio.fail_after(1000):
            async with pool_for(cluster) as pool:
                await pool.invoke(api.help.GetNearestDc())
                cluster.faults(2).latency = 10
                t0 = trio.current_time()
                with pytest.raises(errors.RequestTimeout) as info:
                    await pool.invoke(api.help.GetNearestDc(), timeout=3)
                assert trio.current_time() - t0 == pytest.approx(3.0)
                assert info.value.stage == "waiting for the answer"
                assert pool.statistics().in_flight == 0


async def test_timeout_none_and_default(clock):
    async with open_cluster() as cluster:
        with trio.fail_after(1000):
            async with pool_for(cluster, request_timeout=5) as pool:
                await pool.invoke(api.help.GetNearestDc())
                cluster.faults(2).latency = 7
                t0 = trio.current_time()
                with pytest.raises(errors.RequestTimeout):
                    await pool.invoke(api.help.GetNearestDc())  # the pool's default: 5 s
                assert trio.current_time() - t0 == pytest.approx(5.0)
                # None: no deadline (the latency is waited out)
                assert (await pool.invoke(api.help.GetNearestDc(), timeout=None)).this_dc == 2
