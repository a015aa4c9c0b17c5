"""End-to-end: server-pushed updates through ``pool.updates()`` (issue 4): arrival order, the
gap marker when the consumer lags beyond the buffer, and the end of the stream at close."""

from __future__ import annotations

import trio

from dcpool import tl
from dcpool.pool import ReceivedUpdate, UpdatesGap, open_pool
from dcpool.testing import Cluster

api = tl.api
TIMEOUT = 20


def pool_for(cluster: Cluster, **kwargs):
    kwargs.setdefault("home_dc", 2)
    kwargs.setdefault("fetch_config", False)
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                     **kwargs)


def numbered(i: int):
    # updateShort#78d4dec1 update:Update date:int = Updates;  (`date` numbers them)
    return api.UpdateShort(update=api.UpdateLoginToken(), date=i)


async def barrier(pool) -> None:
    """A round trip on the home connection: the DC wrote every update it pushed before this
    answer, and TCP keeps the order, so they have all been received when it returns."""
    await pool.invoke(api.help.GetNearestDc())


async def test_updates_arrive_in_order(cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            user = await pool.sign_in(cluster.world.test_phone(2, 5555), "22222")
            got: list[int] = []
            async with trio.open_nursery() as nursery:
                async def consume() -> None:
                    async for item in pool.updates():
                        assert isinstance(item, ReceivedUpdate) and item.dc_id == 2
                        parsed = item.parse()
                        assert type(parsed) is api.UpdateShort
                        assert type(parsed.update) is api.UpdateLoginToken
                        got.append(parsed.date)
                        if len(got) == 50:
                            return

                nursery.start_soon(consume)
                for i in range(50):
                    assert cluster.push_update(user.id, numbered(i)) == 1
                    if i % 7 == 0:
                        await trio.lowlevel.checkpoint()
            assert got == list(range(50))


async def test_lagging_consumer_gets_a_gap_marker(cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, updates_buffer=5) as pool:
            user = await pool.sign_in(cluster.world.test_phone(2, 6666), "22222")
            for i in range(12):
                cluster.push_update(user.id, numbered(i))
            await barrier(pool)  # nobody consumed: 12 arrived, 5 fit
            stream = pool.updates()
            first = await stream.__anext__()
            assert first == UpdatesGap(dropped=7)
            rest = [(await stream.__anext__()).parse().date for _ in range(5)]
            assert rest == [7, 8, 9, 10, 11]  # the newest ones survive, in order
            # Caught up: new updates flow again, without a marker.
            cluster.push_update(user.id, numbered(100))
            item = await stream.__anext__()
            assert isinstance(item, ReceivedUpdate) and item.parse().date == 100
            await stream.aclose()


async def test_gap_markers_merge(cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, updates_buffer=3) as pool:
            user = await pool.sign_in(cluster.world.test_phone(2, 7777), "22222")
            for i in range(4):
                cluster.push_update(user.id, numbered(i))
            await barrier(pool)
            for i in range(4, 10):
                cluster.push_update(user.id, numbered(i))
            await barrier(pool)
            stream = pool.updates()
            items = [await stream.__anext__() for _ in range(4)]
            assert items[0] == UpdatesGap(dropped=7)  # one marker for both losses
            assert [u.parse().date for u in items[1:]] == [7, 8, 9]
            await stream.aclose()


async def test_updates_stream_ends_when_the_pool_closes(cluster):
    with trio.fail_after(TIMEOUT):
        ended = trio.Event()
        async with trio.open_nursery() as nursery:
            async with pool_for(cluster) as pool:
                async def consume() -> None:
                    async for _ in pool.updates():
                        pass
                    ended.set()

                nursery.start_soon(consume)
                await pool.invoke(api.help.GetNearestDc())
            await ended.wait()
