"""dcpool.aio from plain ``asyncio.run`` programs: three DCs in parallel, updates, events,
cancellation both ways, clean shutdown (no thread, task or connection left)."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import pytest

import dcpool.aio
from dcpool import tl
from dcpool.errors import PoolClosed
from dcpool.testing.threaded import ThreadedCluster

pytestmark = [pytest.mark.e2e]

TIMEOUT = 60
API = dict(api_id=12345, api_hash="0123456789abcdef0123456789abcdef")
PHONE, CODE = "9996621234", "22222"
SIZES = {1: 600_001, 3: 1_100_000, 4: 300_000}


def _location(f):
    return tl.api.InputDocumentFileLocation(id=f.id, access_hash=f.access_hash,
                                            file_reference=f.file_reference, thumb_size="")


def _setup(cluster):
    return {dc: cluster.add_file(dc, size=size) for dc, size in SIZES.items()}


def _trio_threads() -> int:
    return sum(t.name == "dcpool-trio" for t in threading.enumerate())


def test_asyncio_program_downloads_three_files_from_three_dcs_in_parallel(tmp_path):
    with ThreadedCluster(_setup, timeout=TIMEOUT * 2) as served:
        cluster, files = served.cluster, served.setup_result
        options = dict(API, dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(), home_dc=2)

        async def program():
            async with dcpool.aio.open_pool(**options) as pool:
                async with pool.events() as events:
                    await pool.sign_in(PHONE, CODE)
                    # A barrier proves the parallelism: each download, after its first chunk,
                    # waits until every other one has received its first chunk too.  Downloads
                    # served one after another would never get past it (and time out).
                    first = {dc: asyncio.Event() for dc in SIZES}

                    async def fetch(dc):
                        chunks = []
                        async for chunk in pool.download(_location(files[dc]), dc_id=dc,
                                                         size=SIZES[dc], part_size=128 * 1024):
                            chunks.append(chunk)
                            if len(chunks) == 1:
                                first[dc].set()
                                await asyncio.gather(*(e.wait() for e in first.values()))
                        return b"".join(chunks)

                    blobs = await asyncio.gather(*(fetch(dc) for dc in SIZES))
                    path = tmp_path / "four.bin"
                    written = await pool.download_to(_location(files[4]), path, dc_id=4, size=SIZES[4])
                    seen = []
                    async for event in events:
                        seen.append(event.kind)
                        if seen.count("transfer_done") == 3:
                            break
                stats = pool.statistics()
            return blobs, written, path.read_bytes(), seen, stats

        blobs, written, on_disk, seen, stats = asyncio.run(asyncio.wait_for(program(), TIMEOUT))
        shas = served.call(lambda: {dc: f.sha256 for dc, f in files.items()})
        server = served.call(cluster.statistics)

    for (dc, sha), blob in zip(shas.items(), blobs):
        assert hashlib.sha256(blob).hexdigest() == sha, dc
    assert written == SIZES[4] and hashlib.sha256(on_disk).hexdigest() == shas[4]
    assert "key_created" in seen and seen.count("transfer_done") == 3
    assert {dc: server[dc].imports for dc in (1, 3, 4)} == {1: 1, 3: 1, 4: 1}
    assert stats.in_flight == 0
    assert _trio_threads() == 0


def test_cancellation_both_ways_and_clean_shutdown():
    with ThreadedCluster(timeout=TIMEOUT * 2) as served:
        cluster = served.cluster
        options = dict(API, dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(), home_dc=2)

        async def program():
            results = {}
            async with dcpool.aio.open_pool(**options) as pool:
                await pool.sign_in(PHONE, CODE)
                # asyncio -> trio: a call that cannot finish (latency) cancelled from asyncio
                served.call(lambda: setattr(cluster.faults(5), "latency", 30.0))
                call = asyncio.ensure_future(pool.invoke(tl.api.help.GetConfig(), dc_id=5))
                await asyncio.sleep(0.2)
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
                results["in_flight_after_cancel"] = pool.statistics().in_flight
                results["still_works"] = type(await pool.invoke(tl.api.help.GetNearestDc())).__name__

                # a download left early: the trio side stops its part requests
                stored = served.call(lambda: cluster.add_file(3, size=2_000_000))
                location = _location(stored)
                async with pool.download(location, dc_id=3, size=stored.size, part_size=64 * 1024,
                                         parallel=4) as chunks:
                    async for _ in chunks:
                        break
                results["in_flight_after_break"] = pool.statistics().in_flight
                results["open_iterators"] = len(pool._iterators)

                # an updates iterator cancelled from asyncio
                consumer = asyncio.ensure_future(pool.updates().__anext__())
                await asyncio.sleep(0.1)
                consumer.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await consumer

                # trio -> asyncio: pending calls and iterators end when the pool closes
                pending = asyncio.ensure_future(pool.invoke(tl.api.help.GetConfig(), dc_id=5))
                events = pool.events()
                waiting = asyncio.ensure_future(events.__anext__())
                await asyncio.sleep(0.2)
            results["pending"] = await asyncio.gather(pending, return_exceptions=True)
            results["waiting"] = await asyncio.gather(waiting, return_exceptions=True)
            try:
                await pool.invoke(tl.api.help.GetConfig())
            except PoolClosed as exc:
                results["after_close"] = exc
            return results

        results = asyncio.run(asyncio.wait_for(program(), TIMEOUT))
        # DC 5 still sleeps on its injected latency before it notices the close
        live = served.call(lambda: sum(cluster.live_connections(dc) for dc in (1, 2, 3, 4)))

    assert results["in_flight_after_cancel"] == 0
    assert results["in_flight_after_break"] == 0 and results["open_iterators"] == 0
    assert results["still_works"] == "NearestDc"
    assert isinstance(results["pending"][0], asyncio.CancelledError)
    assert isinstance(results["waiting"][0], StopAsyncIteration)
    assert isinstance(results["after_close"], PoolClosed)
    assert _trio_threads() == 0
    assert live == 0


def test_open_failure_is_raised_in_asyncio():
    async def program():
        async with dcpool.aio.open_pool(**API, storage=object()):
            pass

    with pytest.raises(Exception, match="Storage"):
        asyncio.run(program())
    assert _trio_threads() == 0
