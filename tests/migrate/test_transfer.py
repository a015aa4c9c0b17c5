"""Authorization transfer end to end (issue 5): single-flight per DC, persisted marks, and each
error case produced by the emulator: FLOOD_WAIT on export, AUTH_BYTES_INVALID, DC_ID_INVALID,
AUTH_KEY_UNREGISTERED on a foreign DC, and sign-in/log-out invalidating the marks."""

from __future__ import annotations

import hashlib

import pytest
import trio

import dcpool
from dcpool import tl
from dcpool.errors import AuthKeyUnregistered, FloodWait, LoggedOut, TransferError
from dcpool.storage import open_storage
from dcpool.testing import Cluster, StoredFile

from migrate_helpers import CODE_DC2, PHONE_DC2, drain, kinds, pool_args

api = tl.api
PART = 64 * 1024


async def fetch(pool, f: StoredFile) -> None:
    h = hashlib.sha256()
    async for chunk in pool.download(f.input_location(), dc_id=f.dc_id, size=f.size, part_size=PART):
        h.update(chunk)
    assert h.hexdigest() == f.sha256


def export_calls(cluster: Cluster, dc: int = 2) -> int:
    return cluster.statistics()[dc].requests.get("auth.exportAuthorization", 0)


async def test_transfer_is_single_flight_per_dc_and_persisted(cluster: Cluster, tmp_path) -> None:
    path = str(tmp_path / "s.sqlite")
    files = {dc: cluster.add_file(dc, size=3 * PART + 5) for dc in (3, 4)}
    with trio.fail_after(30):
        async with dcpool.open_pool(storage=path, home_dc=2, **pool_args(cluster)) as pool:
            user = await pool.sign_in(PHONE_DC2, CODE_DC2)
            async with pool.events(10_000) as events:
                async with trio.open_nursery() as nursery:
                    for _ in range(25):
                        for f in files.values():
                            nursery.start_soon(fetch, pool, f)
                seen = drain(events)
            s = cluster.statistics()
            assert s[2].exports == 2 and export_calls(cluster) == 2
            assert (s[3].imports, s[4].imports) == (1, 1)
            assert sorted(e.dc_id for e in kinds(seen, "transfer_started")) == [3, 4]
            assert sorted(e.dc_id for e in kinds(seen, "transfer_done")) == [3, 4]
            st = pool.statistics()
            assert (st.transfers, st.transfers_started, st.transfers_failed) == (2, 2, 0)
            assert (st[2].exports, st[3].imports, st[4].imports) == (2, 1, 1)
            assert st[4].key_state == "authorized"
        store = open_storage(path, mode="prod")
        try:
            assert {dc: store.get_dc(dc).authorized_user_id for dc in (2, 3, 4)} == dict.fromkeys((2, 3, 4), user.id)
        finally:
            store.close()
        # a restarted process on the same file never re-exports (nor creates keys)
        async with dcpool.open_pool(storage=path, home_dc=2, **pool_args(cluster)) as pool:
            await fetch(pool, files[3])
            await fetch(pool, files[4])
            assert pool.statistics().transfers_started == 0
        s2 = cluster.statistics()
        assert s2.total("exports") == 2 and s2.total("handshakes") == s.total("handshakes")


async def test_flood_wait_on_export_is_remembered_and_raised(cluster: Cluster) -> None:
    f = cluster.add_file(4, size=PART)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            cluster.faults(2).flood_wait("auth.exportAuthorization", 120, count=1)
            async with pool.events() as events:
                with pytest.raises(FloodWait) as first:
                    await fetch(pool, f)
                t0 = trio.current_time()
                assert first.value.seconds == 120
                assert t0 <= first.value.deadline <= t0 + 120
                assert export_calls(cluster) == 1
                # Until the deadline every caller gets the same typed error, with no new export
                # (the emulator's fault is spent: a re-export would succeed and show up).
                results = []

                async def again() -> None:
                    with pytest.raises(FloodWait) as info:
                        await fetch(pool, f)
                    results.append(info.value)

                async with trio.open_nursery() as nursery:
                    for _ in range(10):
                        nursery.start_soon(again)
                seen = drain(events)
            assert len(results) == 10
            assert {r.deadline for r in results} == {first.value.deadline}
            assert all(0 < r.seconds <= 120 for r in results)
            assert export_calls(cluster) == 1 and cluster.statistics()[4].imports == 0
            assert [e.data["seconds"] for e in kinds(seen, "transfer_flood_wait")] == [120]
            assert [e.data["error"] for e in kinds(seen, "transfer_failed")] == ["FLOOD_WAIT_X"]
            assert len(kinds(seen, "transfer_started")) == 1
            st = pool.statistics()
            assert (st.transfer_flood_waits, st.transfers_failed, st.transfers) == (1, 1, 0)
            assert st.in_flight == 0


async def test_flood_wait_on_export_is_waited_out_when_allowed(cluster: Cluster, autojump_clock) -> None:
    # trio's fake clock: the 30 s FLOOD_WAIT passes at once (the emulator reads the wall clock
    # only for msg_ids, which a jump of trio's clock does not touch).
    f = cluster.add_file(5, size=PART + 1)
    with trio.fail_after(300):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            pool.router.flood_sleep_threshold = 60
            cluster.faults(2).flood_wait("auth.exportAuthorization", 30, count=1)
            start = trio.current_time()
            async with pool.events() as events:
                async with trio.open_nursery() as nursery:
                    for _ in range(5):
                        nursery.start_soon(fetch, pool, f)
                seen = drain(events)
            assert trio.current_time() - start >= 30
            assert export_calls(cluster) == 2 and cluster.statistics()[2].exports == 1
            assert cluster.statistics()[5].imports == 1
            assert len(kinds(seen, "transfer_flood_wait")) == 1
            assert kinds(seen, "transfer_failed") == []
            st = pool.statistics()
            assert (st.transfer_flood_waits, st.transfers_started, st.transfers) == (1, 1, 1)


async def test_remembered_flood_deadline_is_waited_for_when_allowed(cluster: Cluster, autojump_clock) -> None:
    f = cluster.add_file(3, size=PART)
    with trio.fail_after(300):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            pool.router.flood_sleep_threshold = 0  # this caller does not wait
            cluster.faults(2).flood_wait("auth.exportAuthorization", 40, count=1)
            with pytest.raises(FloodWait) as info:
                await fetch(pool, f)
            # the caller now accepts waiting: the next request sleeps until the deadline and
            # exports only then
            pool.router.flood_sleep_threshold = 60
            await fetch(pool, f)
            assert trio.current_time() >= info.value.deadline
            assert export_calls(cluster) == 2 and cluster.statistics()[3].imports == 1


async def test_auth_bytes_invalid_reexports_once(cluster: Cluster) -> None:
    f = cluster.add_file(4, size=PART)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            cluster.faults(4).auth_bytes_invalid(count=1)
            await fetch(pool, f)
            s = cluster.statistics()
            assert s[2].exports == 2 and s[4].imports == 1
            assert s[4].errors.get("AUTH_BYTES_INVALID") == 1
            st = pool.statistics()
            assert (st.transfers_started, st.transfers, st.transfers_failed) == (1, 1, 0)


async def test_auth_bytes_invalid_twice_is_a_transfer_error(cluster: Cluster) -> None:
    f = cluster.add_file(4, size=PART)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            cluster.faults(4).auth_bytes_invalid(count=2)
            async with pool.events() as events:
                with pytest.raises(TransferError) as info:
                    await fetch(pool, f)
                seen = drain(events)
            assert info.value.__cause__.message == "AUTH_BYTES_INVALID"
            s = cluster.statistics()
            assert s[2].exports == 2 and s[4].imports == 0
            # the first part rode behind the first import (invokeAfterMsg) and was refused with
            # it: no byte of the file left DC 4 without an authorization
            assert s[4].requests.get("upload.getFile", 0) <= 1 and s[4].bytes_served == 0
            assert [e.dc_id for e in kinds(seen, "transfer_failed")] == [4]
            st = pool.statistics()
            assert (st.transfers_started, st.transfers, st.transfers_failed) == (1, 0, 1)
            # the fault is spent: the next request transfers for real
            await fetch(pool, f)
            assert cluster.statistics()[4].imports == 1


async def test_dc_id_invalid_means_nothing_to_transfer(cluster: Cluster) -> None:
    f = cluster.add_file(4, size=2 * PART)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            user = await pool.sign_in(PHONE_DC2, CODE_DC2)
            # Give the pool a key on DC 4 and make DC 4 consider that key logged in (as if it
            # were the user's home too): exporting to it answers DC_ID_INVALID.
            await pool.invoke(api.help.GetNearestDc(), dc_id=4)
            await pool.flush_storage()  # (writes happen off the event loop)
            key_id = pool.storage.get_dc(4).key_id
            cluster.world.authorize(4, key_id, user.id)
            cluster.faults(2).fail("auth.exportAuthorization", 400, "DC_ID_INVALID", count=1)
            async with pool.events() as events:
                await fetch(pool, f)
                await fetch(pool, f)
                seen = drain(events)
            assert export_calls(cluster) == 1  # asked once, not per request
            s = cluster.statistics()
            assert s[2].exports == 0 and s[4].imports == 0
            done = kinds(seen, "transfer_done")
            assert [(e.dc_id, e.data.get("skipped")) for e in done] == [(4, True)]
            assert kinds(seen, "transfer_failed") == []


async def test_auth_key_unregistered_on_foreign_dc_transfers_again_once(cluster: Cluster) -> None:
    f = cluster.add_file(4, size=3 * PART)
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            await fetch(pool, f)
            assert cluster.statistics()[4].imports == 1
            # DC 4 forgets the authorization of our key; 20 parallel downloads all hear
            # AUTH_KEY_UNREGISTERED, and exactly one transfer repairs it.
            await pool.flush_storage()  # (writes happen off the event loop)
            cluster.world.deauthorize(4, pool.storage.get_dc(4).key_id)
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(fetch, pool, f)
            s = cluster.statistics()
            assert s[2].exports == 2 and s[4].imports == 2
            assert s[4].errors.get("AUTH_KEY_UNREGISTERED", 0) >= 1
            # ... but only once per request: if the DC refuses again, the caller hears it
            cluster.faults(4).fail("upload.getFile", 401, "AUTH_KEY_UNREGISTERED", count=2)
            with pytest.raises(AuthKeyUnregistered):
                await pool.invoke(api.upload.GetFile(location=f.input_location(), offset=0, limit=PART),
                                  dc_id=4)
            s = cluster.statistics()
            assert s[2].exports == 3 and s[4].imports == 3
            assert s[4].requests["upload.getFile"] - s[4].errors["AUTH_KEY_UNREGISTERED"] == 3 + 20 * 3


async def test_auth_key_unregistered_on_home_is_raised(cluster: Cluster) -> None:
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            await pool.flush_storage()  # (writes happen off the event loop)
            cluster.world.deauthorize(2, pool.storage.get_dc(2).key_id)
            # on the home DC that is a logout (issue 12: tests/pool/test_pool_login.py)
            with pytest.raises(LoggedOut):
                await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert export_calls(cluster) == 0 and pool.user_id is None


async def test_sign_in_as_another_user_and_log_out_invalidate_every_mark(cluster: Cluster, tmp_path) -> None:
    path = str(tmp_path / "s.sqlite")
    files = [cluster.add_file(dc, size=PART) for dc in (3, 4)]
    with trio.fail_after(30):
        async with dcpool.open_pool(storage=path, home_dc=2, **pool_args(cluster)) as pool:
            first = await pool.sign_in(PHONE_DC2, CODE_DC2)
            for f in files:
                await fetch(pool, f)
            assert cluster.statistics()[2].exports == 2
            await pool.flush_storage()  # (writes happen off the event loop)
            assert pool.storage.get_dc(4).authorized_user_id == first.id
            # the same user again: marks stay
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            await pool.flush_storage()  # (writes happen off the event loop)
            assert pool.storage.get_dc(4).authorized_user_id == first.id
            # somebody else: every foreign mark is gone, in memory and on disk
            second = await pool.sign_in(cluster.world.test_phone(2, 5678), CODE_DC2)
            assert second.id != first.id
            await pool.flush_storage()  # (writes happen off the event loop)
            assert [pool.storage.get_dc(dc).authorized_user_id for dc in (3, 4)] == [None, None]
            await pool.flush_storage()  # (writes happen off the event loop)
            assert pool.storage.get_dc(2).authorized_user_id == second.id
            for f in files:
                await fetch(pool, f)
            s = cluster.statistics()
            assert s[2].exports == 4 and (s[3].imports, s[4].imports) == (2, 2)
            await pool.flush_storage()  # (writes happen off the event loop)
            assert cluster.world.user_for_key(4, pool.storage.get_dc(4).key_id) == second.id
            # logging out forgets everything
            await pool.log_out()
            assert pool.user_id is None
            await pool.flush_storage()  # (writes happen off the event loop)
            assert [pool.storage.get_dc(dc).authorized_user_id for dc in (2, 3, 4)] == [None] * 3
            await pool.flush_storage()  # (writes happen off the event loop)
            assert cluster.world.user_for_key(2, pool.storage.get_dc(2).key_id) is None
        store = open_storage(path, mode="prod")
        try:
            assert store.get_user_id() is None
            assert all(r.authorized_user_id is None for r in store.list_dcs())
        finally:
            store.close()
