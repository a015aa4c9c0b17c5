"""Cold cross-DC first part, pipelined (issue 18 item 4): the target's TCP connect and key
exchange overlap the home DC's export, and the parts waiting for the authorization go out
right behind ``auth.importAuthorization``, wrapped in ``invokeAfterMsg`` -- one round trip for
the import and the first part.

On trio's fake clock with a latency injected in each direction, round trips are counted
exactly (the clock only moves on the emulator's delays; see tests/pool/test_pool_timers.py):
the floor is 3 (key exchange: req_pq, req_DH_params, set_client_DH_params) + 1 (import and
first part; the export runs during the key exchange).  The emulator does not delay the TCP
connect."""

from __future__ import annotations

import hashlib

import pytest
import trio
import trio.testing

import dcpool
from dcpool.testing import Cluster, open_cluster

from migrate_helpers import CODE_DC2, PHONE_DC2, drain, kinds, pool_args

PART = 64 * 1024
LATENCY = 0.5  # fake seconds per direction


@pytest.fixture
def clock(mock_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    mock_clock.autojump_threshold = 0.02
    return mock_clock


async def first_chunk_round_trips(cluster: Cluster, pool: dcpool.Pool, size: int) -> tuple[float, bytes]:
    f = cluster.add_file(4, size=size)
    for dc in range(1, 6):
        cluster.faults(dc).latency = LATENCY
    h = hashlib.sha256()
    t0 = trio.current_time()
    elapsed = None
    async with pool.download(f.input_location(), dc_id=4, size=f.size, part_size=PART, parallel=4) as chunks:
        async for chunk in chunks:
            if elapsed is None:
                elapsed = trio.current_time() - t0
            h.update(chunk)
    assert h.hexdigest() == f.sha256
    assert elapsed is not None
    return elapsed / (2 * LATENCY), h.digest()


async def test_cold_first_part_rides_behind_the_import(clock) -> None:
    async with open_cluster() as cluster:
        with trio.fail_after(600):
            async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                async with pool.events() as events:
                    rtts, _ = await first_chunk_round_trips(cluster, pool, 6 * PART)
                    seen = drain(events)
                # 3 for the key exchange + 1 for the import and the first parts together
                # (sequentially, import then part, it was 5)
                assert rtts == pytest.approx(4, abs=0.05)
                s = cluster.statistics()
                assert s[2].exports == 1 and s[4].imports == 1 and s[4].handshakes == 1
                assert s[4].requests["upload.getFile"] == 6  # no part was sent twice
                assert s[4].errors.get("AUTH_KEY_UNREGISTERED", 0) == 0
                assert [e.dc_id for e in kinds(seen, "transfer_done")] == [4]
                assert pool.statistics().in_flight == 0


async def test_parts_behind_a_refused_import_are_sent_again(clock) -> None:
    async with open_cluster() as cluster:
        with trio.fail_after(600):
            async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                # the first import is refused: the parts that rode behind it are refused with
                # it (the emulator runs them unauthorized), one fresh export, then every part
                # goes again and the file is whole
                cluster.faults(4).auth_bytes_invalid(count=1)
                rtts, _ = await first_chunk_round_trips(cluster, pool, 6 * PART)
                s = cluster.statistics()
                assert s[2].exports == 2 and s[4].imports == 1
                refused = s[4].errors.get("AUTH_KEY_UNREGISTERED", 0)
                assert refused >= 1
                assert s[4].requests["upload.getFile"] == 6 + refused
                assert s[4].bytes_served == 6 * PART
                assert pool.statistics().in_flight == 0


async def test_warm_first_part_is_one_round_trip(clock, tmp_path) -> None:
    """Stored key and authorization (a second pool on the same session file): one round trip
    for the first part (plus the TCP connect on a real network)."""
    path = str(tmp_path / "s.sqlite")
    async with open_cluster() as cluster:
        with trio.fail_after(600):
            async with dcpool.open_pool(storage=path, home_dc=2, **pool_args(cluster)) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                await first_chunk_round_trips(cluster, pool, PART)
                await pool.flush_storage()
            for dc in range(1, 6):
                cluster.faults(dc).latency = 0
            async with dcpool.open_pool(storage=path, home_dc=2, **pool_args(cluster)) as pool:
                rtts, _ = await first_chunk_round_trips(cluster, pool, 2 * PART)
                assert rtts == pytest.approx(1, abs=0.05)
                assert cluster.statistics()[2].exports == 1  # none by the second pool
