"""Routed downloads end to end (issue 5): many files over many DCs with one transfer per DC,
a second process with no transfer and no key exchange, bounded buffering, early exit, and
FILE_MIGRATE with a wrong hint."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest
import trio

import dcpool
from dcpool import tl
from dcpool.errors import LocalProtocolError
from dcpool.testing import Cluster, StoredFile

from migrate_helpers import CODE_DC2, PHONE_DC2, drain, pool_args

api = tl.api
KIB = 1024
PART = 64 * KIB


async def fetch(pool, f: StoredFile, *, dc_id: int | None = ..., size: int | None = ...,
                **kw: Any) -> str:
    h = hashlib.sha256()
    async for chunk in pool.download(
        f.input_location(),
        dc_id=f.dc_id if dc_id is ... else dc_id,
        size=f.size if size is ... else size,
        part_size=kw.pop("part_size", PART),
        **kw,
    ):
        h.update(chunk)
    return h.hexdigest()


async def until(predicate) -> None:
    """Let the pool and the emulator run until ``predicate()`` holds (callers bound the wait
    with fail_after)."""
    while not predicate():
        await trio.sleep(0)


async def settled(read, quiet: float = 0.05):
    """The value of ``read()`` once it has stayed the same for ``quiet`` seconds."""
    value = read()
    while True:
        await trio.sleep(quiet)
        now = read()
        if now == value:
            return value
        value = now


async def test_200_concurrent_downloads_one_transfer_per_dc_then_none(cluster: Cluster, tmp_path) -> None:
    rng = random.Random(5)
    foreign = (1, 3, 4, 5)
    files = [cluster.add_file(foreign[i % 4], size=rng.randrange(64 * KIB, 300 * KIB))
             for i in range(200)]
    path = str(tmp_path / "s.sqlite")
    with trio.fail_after(60):
        async with dcpool.open_pool(storage=path, home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            digests: dict[int, str] = {}

            async def one(f: StoredFile) -> None:
                digests[f.id] = await fetch(pool, f)

            async with trio.open_nursery() as nursery:
                for f in files:
                    nursery.start_soon(one, f)
            assert digests == {f.id: f.sha256 for f in files}
            s = cluster.statistics()
            assert s[2].exports == 4
            assert {dc: s[dc].imports for dc in foreign} == dict.fromkeys(foreign, 1)
            assert s[2].requests.get("upload.getFile", 0) == 0  # straight to each file's DC
            assert s.total("bytes_served") == sum(f.size for f in files)
            st = pool.statistics()
            assert st.transfers == 4 and st.in_flight == 0 and st.migrations == 0
            assert sum(st[dc].bytes_received for dc in foreign) >= sum(f.size for f in files)
        handshakes = s.total("handshakes")

        # A second process on the same session file: no export, no key exchange.
        async with dcpool.open_pool(storage=path, home_dc=1, **pool_args(cluster)) as pool:
            assert pool.home_dc == 2
            sample = [f for dc in foreign for f in files if f.dc_id == dc][::25]
            assert {f.dc_id for f in sample} == set(foreign)
            async with trio.open_nursery() as nursery:
                for f in sample:
                    nursery.start_soon(one, f)
            assert all(digests[f.id] == f.sha256 for f in sample)
            assert pool.statistics().transfers_started == 0
        s2 = cluster.statistics()
        assert s2.total("exports") == 4 and s2.total("imports") == 4
        assert s2.total("handshakes") == handshakes


async def test_peak_buffering_is_bounded_by_parallel_parts(cluster: Cluster) -> None:
    parallel, part = 3, 32 * KIB
    f = cluster.add_file(4, size=40 * part + 123)
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            dl = pool.download(f.input_location(), dc_id=4, size=f.size, part_size=part,
                               parallel=parallel)
            h = hashlib.sha256()
            consumed = 0
            async for chunk in dl:
                h.update(chunk)
                consumed += len(chunk)
                assert dl.buffered_bytes <= parallel * part
                # A slow consumer: let every part the download wants arrive before taking the
                # next one.  While the consumer holds a chunk, the download reads ahead
                # parallel - 1 parts (the one it holds is the constant of the bound).
                ahead = min((parallel - 1) * part, f.size - consumed)
                await until(lambda: dl.buffered_bytes >= ahead and pool.statistics().in_flight == 0)
                assert dl.buffered_bytes == ahead
            assert h.hexdigest() == f.sha256
            assert (parallel - 1) * part <= dl.peak_buffered_bytes <= parallel * part
            assert dl.buffered_bytes == 0
            # the emulator served every byte exactly once: nothing was fetched twice
            assert cluster.statistics()[4].bytes_served == f.size


async def test_bounded_with_unknown_size_too(cluster: Cluster) -> None:
    f = cluster.add_file(3, size=8 * PART)  # an exact multiple: the end is an empty part
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            dl = pool.download(f.input_location(), dc_id=3, part_size=PART, parallel=4)
            h = hashlib.sha256()
            async for chunk in dl:
                h.update(chunk)
            assert h.hexdigest() == f.sha256
            assert dl.peak_buffered_bytes <= 4 * PART and dl.buffered_bytes == 0


async def test_bare_iteration_leaves_nothing_in_flight(cluster: Cluster) -> None:
    # A bare `async for` owns no task between two steps: each step fetches the free room
    # (parallel parts, in parallel) and waits for them.  Leaving the loop, however, leaves
    # nothing in flight, at once.
    parallel = 6
    f = cluster.add_file(5, size=64 * PART)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            dl = pool.download(f.input_location(), dc_id=5, size=f.size, part_size=PART,
                               parallel=parallel)
            got = 0
            async for chunk in dl:
                got += len(chunk)
                break
            assert got == PART
            assert pool.statistics().in_flight == 0
            assert cluster.statistics()[5].bytes_served == parallel * PART  # nothing more
            with pytest.raises(KeyError):
                async for _ in pool.download(f.input_location(), dc_id=5, size=f.size,
                                             part_size=PART, parallel=parallel):
                    raise KeyError("consumer failed")
            assert pool.statistics().in_flight == 0
            with trio.move_on_after(3600) as scope:
                async for _ in pool.download(f.input_location(), dc_id=5, size=f.size,
                                             part_size=PART, parallel=parallel):
                    scope.cancel()
                    await trio.sleep(0)
            assert scope.cancelled_caught
            assert pool.statistics().in_flight == 0
            assert cluster.statistics()[5].bytes_served == 3 * parallel * PART
            # the pool still works
            assert await fetch(pool, f) == f.sha256


@pytest.mark.parametrize("how", ["break", "exception", "cancel"])
async def test_leaving_early_with_8_parts_in_flight_is_clean_at_once(
        cluster: Cluster, autojump_clock, how: str) -> None:
    # Done means (issue 11): leaving a download early (break, exception, cancellation) with
    # 8 parts in flight leaves pool.statistics() clean at once -- no quiet-window wait.
    f = cluster.add_file(3, size=64 * PART)
    with trio.fail_after(600):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            assert await fetch(pool, f, parallel=2) == f.sha256  # key, transfer, connections
            cluster.faults(3).latency = 30  # no part answers while we look (fake clock)
            dl = pool.download(f.input_location(), dc_id=3, size=f.size, part_size=PART,
                               parallel=8)
            inner = trio.CancelScope()
            async with trio.open_nursery() as watchers:
                with trio.CancelScope() as outer:

                    async def cut() -> None:
                        await until(lambda: pool.statistics().in_flight == 8)
                        (outer if how == "cancel" else inner).cancel()

                    try:
                        async with dl as chunks:
                            with inner:
                                watchers.start_soon(cut)
                                async for _ in chunks:
                                    pass
                            if how == "exception":
                                raise KeyError("consumer failed")
                            # how == "break": the block is left with the loop unfinished
                    except KeyError:
                        assert how == "exception"
                # no waiting: the block cancelled its 8 parts and waited for them
                st = pool.statistics()
                assert st.in_flight == 0 and dl.buffered_bytes == 0, st
                for state in pool.dc_states():  # (connection slots stay: they are the pool's)
                    assert all(not c.calls and not c.backlog for c in state.connections())
            cluster.faults(3).latency = 0
            assert await fetch(pool, f) == f.sha256  # the pool still works


async def test_file_migrate_with_wrong_hint_is_followed_and_remembered(cluster: Cluster) -> None:
    parallel = 2
    f = cluster.add_file(4, size=10 * PART + 7)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            async with pool.events() as events:
                assert await fetch(pool, f, dc_id=3, parallel=parallel) == f.sha256
                seen = drain(events)
            s = cluster.statistics()
            bounced = s[3].errors.get("FILE_MIGRATE_4", 0)
            # only the parts sent before the first answer went to the wrong DC
            assert 1 <= bounced <= parallel
            assert s[3].requests["upload.getFile"] == bounced
            migrated = [e for e in seen if e.kind == "migrated"]
            assert len(migrated) == bounced
            assert all((e.dc_id, e.data["error"], e.data["to"]) == (3, "FILE_MIGRATE_X", 4) for e in migrated)
            assert pool.home_dc == 2
            # remembered: the same wrong hint again goes straight to DC 4
            assert await fetch(pool, f, dc_id=3, parallel=parallel) == f.sha256
            # and so does a download without any hint
            assert await fetch(pool, f, dc_id=None, size=None, parallel=parallel) == f.sha256
            s2 = cluster.statistics()
            assert s2[3].requests["upload.getFile"] == bounced
            assert s2[2].requests.get("upload.getFile", 0) == 0
            assert pool.statistics().migrations == bounced


async def test_file_migrate_without_hint_goes_via_home_once(cluster: Cluster) -> None:
    f = cluster.add_file(5, size=4 * PART)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            assert await fetch(pool, f, dc_id=None, parallel=1) == f.sha256
            s = cluster.statistics()
            assert s[2].errors.get("FILE_MIGRATE_5") == 1
            assert s[5].requests["upload.getFile"] == 4
            assert s[2].exports == 1 and s[5].imports == 1


async def test_async_with_closes_deterministically(cluster: Cluster) -> None:
    parallel = 8
    f = cluster.add_file(3, size=64 * PART)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            async with pool.download(f.input_location(), dc_id=3, size=f.size, part_size=PART,
                                     parallel=parallel) as dl:
                async for _ in dl:
                    break
            # no waiting: leaving the block cancelled the outstanding parts and dropped the rest
            assert pool.statistics().in_flight == 0
            assert dl.buffered_bytes == 0
            served = cluster.statistics()[3].bytes_served
            assert served <= parallel * PART
            for _ in range(50):
                await trio.sleep(0)
            assert cluster.statistics()[3].bytes_served <= parallel * PART
            assert pool.statistics().in_flight == 0 and dl.buffered_bytes == 0


async def test_aclose_from_another_task_is_not_a_silent_end(cluster: Cluster) -> None:
    f = cluster.add_file(4, size=16 * PART)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            dl = pool.download(f.input_location(), dc_id=4, size=f.size, part_size=PART, parallel=2)
            got = 0
            with pytest.raises(LocalProtocolError, match="closed"):
                async for chunk in dl:
                    got += len(chunk)
                    await dl.aclose()  # e.g. a supervisor giving up on this download
            assert got == PART
            assert pool.statistics().in_flight == 0 and dl.buffered_bytes == 0


async def test_download_to_writes_the_file_off_the_event_loop(cluster: Cluster, tmp_path) -> None:
    f = cluster.add_file(4, size=5 * PART + 17)
    path = tmp_path / "file.bin"
    seen: list[tuple[int, int | None]] = []
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            written = await pool.download_to(f.input_location(), path, dc_id=4, size=f.size,
                                             part_size=PART, parallel=3,
                                             progress=lambda done, total: seen.append((done, total)))
            assert pool.statistics().in_flight == 0
    assert written == f.size == path.stat().st_size
    assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256
    assert seen[-1] == (f.size, f.size) and len(seen) == 6
