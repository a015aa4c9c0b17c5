"""End-to-end: cancelling a call at any await leaves the pool clean (issue 4).

Each test sweeps ``n = 0, 1, 2, ...``: a helper task yields ``n`` times (``checkpoint()``) and
then cancels the scope around the call, so the call is cut at a different point of its progress
every time (before it is submitted, while its DC's key is being created, while it waits in the
backlog, on the wire, unanswered...), until ``n`` is large enough for the call to finish
first.  After every cut: nothing is in flight, no request lingers in a connection or its
session, and the pool's task count stays bounded; at the end the pool still works.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from dcpool import tl
from dcpool.pool import Pool, open_pool
from dcpool.storage import MemoryStorage
from dcpool.testing import Cluster

api = tl.api
MAX_N = 600


def pool_for(cluster: Cluster, **kwargs):
    kwargs.setdefault("home_dc", 2)
    kwargs.setdefault("fetch_config", False)
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                     **kwargs)


async def cut_after(n: int, fn: Callable[[], Awaitable[object]]) -> bool:
    """Run ``fn`` and cancel it after ``n`` checkpoints of a helper task; True if it finished."""
    finished = False
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            async def canceller() -> None:
                for _ in range(n):
                    await trio.lowlevel.checkpoint()
                scope.cancel()

            nursery.start_soon(canceller)
            await fn()
            finished = True
            nursery.cancel_scope.cancel()
    return finished


def assert_clean(pool: Pool, max_tasks: int) -> None:
    stats = pool.statistics()
    assert stats.in_flight == 0, stats
    assert stats.tasks <= max_tasks, stats
    for state in pool.dc_states():
        for conn in state.connections():
            assert not conn.calls and not conn.backlog, conn
            if conn.session is not None:
                assert conn.session.pending_requests() == [], conn.session


async def sweep(fn: Callable[[], Awaitable[object]], check: Callable[[], None]) -> int:
    """Cut ``fn`` after 0, 1, 2... checkpoints until it finishes 3 times in a row."""
    in_a_row = 0
    for n in range(MAX_N):
        finished = await cut_after(n, fn)
        check()
        in_a_row = in_a_row + 1 if finished else 0
        if in_a_row == 3:
            return n
    raise AssertionError(f"the call never finished within {MAX_N} checkpoints")


async def cut_in_fresh_pool(cluster: Cluster, storage: MemoryStorage, n: int) -> bool:
    """A fresh pool per cut: the call opens DC 4's connection (and creates its key if
    ``storage`` has none), so cuts land in the dial, the handshake, the backlog, on the wire."""
    async with pool_for(cluster, storage=storage) as pool:
        finished = await cut_after(n, lambda: pool.invoke(api.help.GetNearestDc(), dc_id=4))
        assert_clean(pool, max_tasks=1)
        # The connection task goes on after the cut: the next call uses it.
        assert (await pool.invoke(api.help.GetNearestDc(), dc_id=4)).this_dc == 4
        assert_clean(pool, max_tasks=1)
        assert sorted(pool.statistics().dcs) == [4]
    assert pool.statistics().tasks == 0
    return finished


async def test_cancel_call_while_its_dc_key_is_created(cluster):
    # A key exchange costs ~0.1 s of CPU: sample the cuts instead of trying every one.
    with trio.fail_after(40):
        for n in (0, 2, 5, 9, 14, 20):
            before = cluster.statistics()[4].handshakes
            await cut_in_fresh_pool(cluster, MemoryStorage("prod"), n)
            assert cluster.statistics()[4].handshakes == before + 1  # one key, cut or not


async def test_cancel_call_to_a_new_connection_at_every_checkpoint(cluster):
    storage = MemoryStorage("prod")
    with trio.fail_after(40):
        await cut_in_fresh_pool(cluster, storage, 10_000)  # creates DC 4's key, once
        in_a_row = 0
        n = 0
        while in_a_row < 2:
            in_a_row = in_a_row + 1 if await cut_in_fresh_pool(cluster, storage, n) else 0
            n += 1
            assert n < MAX_N
        assert n > 3  # the sweep really cut the call in flight
        assert cluster.statistics()[4].handshakes == 1
        assert cluster.statistics().duplicates() == {}


async def test_cancel_warm_calls_at_every_checkpoint(cluster):
    with trio.fail_after(40):
        async with pool_for(cluster) as pool:
            await pool.invoke(api.help.GetNearestDc())
            await pool.invoke(api.help.GetNearestDc(), dc_id=3)

            def check() -> None:
                assert_clean(pool, max_tasks=2)

            sent_code = lambda: pool.invoke(api.auth.SendCode(  # noqa: E731  (not idempotent)
                phone_number="9996621234", api_id=1, api_hash="x", settings=api.CodeSettings()))
            assert await sweep(lambda: pool.invoke(api.help.GetNearestDc()), check) > 0
            assert await sweep(lambda: pool.invoke(api.help.GetConfig(), dc_id=3), check) > 0
            assert await sweep(sent_code, check) > 0
            assert await sweep(lambda: pool.invoke_raw(bytes(api.help.GetNearestDc())), check) > 0
            # Still fully usable, on the same two connections.
            assert (await pool.invoke(api.help.GetNearestDc(), dc_id=3)).this_dc == 3
            stats = cluster.statistics()
            assert stats[2].connections_total == 1 and stats[3].connections_total == 1
            assert stats.duplicates() == {}
            check()


async def test_cancel_downloads_at_every_checkpoint(cluster):
    with trio.fail_after(40):
        async with pool_for(cluster) as pool:
            await pool.sign_in(cluster.world.test_phone(2, 3333), "22222")
            stored = cluster.add_file(2, size=5 * 65536 + 7)

            async def download() -> None:
                data = b"".join([c async for c in pool.download(
                    stored.input_location(), dc_id=2, size=stored.size, part_size=65536, parallel=3)])
                assert data == stored.data

            async def settled() -> None:
                # The download's workers live in the pool's nursery: their cancellation
                # completes at their next scheduling.
                for _ in range(10):
                    await trio.lowlevel.checkpoint()

            n = 0
            in_a_row = 0
            while in_a_row < 3:
                finished = await cut_after(n, download)
                await settled()
                assert_clean(pool, max_tasks=1 + pool.config.download_connections)
                in_a_row = in_a_row + 1 if finished else 0
                n += 1
                assert n < MAX_N
            assert n > 3
