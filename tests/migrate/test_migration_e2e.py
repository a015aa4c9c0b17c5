"""Migrations end to end: the pool against the emulated cluster over loopback (issue 5).

PHONE/NETWORK/USER_MIGRATE move the home DC (persisted) and retry there; FILE/STATS_MIGRATE
retry elsewhere and leave home alone; loops and long chains end with MigrationError; many
requests hitting one migration switch home once.  Every migration is an event and a counter.
"""

from __future__ import annotations


import pytest
import trio

import dcpool
from dcpool import tl
from dcpool.errors import MigrationError
from dcpool.storage import open_storage
from dcpool.testing import Cluster, open_cluster

from migrate_helpers import CODE_DC2, PHONE_DC2, drain, kinds, pool_args

api = tl.api


async def test_sign_in_from_dc1_moves_home_to_dc2_and_persists(cluster: Cluster, tmp_path) -> None:
    path = str(tmp_path / "s.sqlite")
    with trio.fail_after(20):
        async with dcpool.open_pool(storage=path, home_dc=1, **pool_args(cluster)) as pool:
            async with pool.events() as events:
                user = await pool.sign_in(PHONE_DC2, CODE_DC2)
                seen = drain(events)
            assert pool.home_dc == 2
            assert pool.user_id == user.id
            homes = kinds(seen, "home_changed")
            assert [(e.dc_id, e.data["old"]) for e in homes] == [(2, 1)]
            migrated = kinds(seen, "migrated")
            assert [(e.dc_id, e.data["error"], e.data["to"]) for e in migrated] == [
                (1, "PHONE_MIGRATE_X", 2)
            ]
            stats = pool.statistics()
            assert stats.home_dc == 2 and stats.migrations == 1 and stats[1].migrations == 1
            assert stats[2].key_state == "authorized"

        # The storage says so on its own...
        store = open_storage(path, mode="prod")
        try:
            assert store.get_home_dc() == 2
            assert store.get_user_id() == user.id
            assert store.get_dc(2).authorized_user_id == user.id
        finally:
            store.close()
        # ... and a new process starts at home, signed in, without migrating again.
        before = cluster.statistics()
        async with dcpool.open_pool(storage=path, home_dc=1, **pool_args(cluster)) as pool:
            assert pool.home_dc == 2 and pool.user_id == user.id
            me = await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert me[0].id == user.id and me[0].self_
            assert pool.statistics().migrations == 0
        after = cluster.statistics()
        assert after.total("handshakes") == before.total("handshakes")
        assert after[1].requests.get("auth.sendCode", 0) == before[1].requests.get("auth.sendCode", 0)


async def test_send_code_and_sign_in_follow_network_migrate_and_sign_up(tmp_path) -> None:
    phone = "+15550001111"
    with trio.fail_after(20):
        async with open_cluster(nearest_dc=3) as cluster:
            async with dcpool.open_pool(home_dc=1, **pool_args(cluster)) as pool:
                async with pool.events() as events:
                    sent = await pool.send_code(phone)
                    assert pool.home_dc == 3
                    user = await pool.sign_in(phone, "33333", sent.phone_code_hash,
                                              first_name="Ada", last_name="L")
                    seen = drain(events)
                assert [e.data["error"] for e in kinds(seen, "migrated")] == ["NETWORK_MIGRATE_X"]
                assert len(kinds(seen, "home_changed")) == 1
                account = cluster.world.user(user.id)
                assert account.home_dc == 3 and account.phone == "15550001111"
                assert account.first_name == "Ada"
                assert pool.user_id == user.id
                me = await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
                assert me[0].id == user.id
            s = cluster.statistics()
            assert s[1].errors.get("NETWORK_MIGRATE_3") == 1
            assert s[3].requests.get("auth.signUp") == 1


async def test_sign_in_helper_alone_follows_phone_migrate(cluster: Cluster) -> None:
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=5, **pool_args(cluster)) as pool:
            user = await pool.sign_in(cluster.world.test_phone(4, 77), "44444")
            assert pool.home_dc == 4
            assert cluster.world.user(user.id).home_dc == 4


async def test_concurrent_phone_migrate_switches_home_once(cluster: Cluster) -> None:
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=1, fetch_config=False, **pool_args(cluster)) as pool:
            async with pool.events() as events:
                async with trio.open_nursery() as nursery:
                    for i in range(20):
                        nursery.start_soon(pool.send_code, cluster.world.test_phone(3, i))
                seen = drain(events)
            assert pool.home_dc == 3
            assert len(kinds(seen, "home_changed")) == 1
            migrated = kinds(seen, "migrated")
            assert 1 <= len(migrated) <= 20
            assert pool.statistics().migrations == len(migrated)


async def test_user_migrate_mid_run_moves_home_once_and_all_complete(cluster: Cluster, tmp_path) -> None:
    path = str(tmp_path / "s.sqlite")
    n_requests, move_after = 100, 10
    with trio.fail_after(30):
        async with dcpool.open_pool(storage=path, home_dc=2, **pool_args(cluster)) as pool:
            user = await pool.sign_in(PHONE_DC2, CODE_DC2)
            # Move the user on the server while the batch is being served: the first
            # `move_after` getUsers are answered by DC 2, the rest find the user gone to DC 4.
            world = cluster.world
            real_handle = world.handle
            served = 0

            def handle(dc_id, ctx, key_id, body, now, **kw):
                nonlocal served
                result = real_handle(dc_id, ctx, key_id, body, now, **kw)
                if dc_id == 2 and world.user(user.id).home_dc == 2:
                    served += 1
                    if served == move_after:
                        cluster.move_user(user.id, 4)
                return result

            world.handle = handle
            got: list[int] = []

            async def one() -> None:
                users = await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
                got.append(users[0].id)

            async with pool.events(10_000) as events:
                async with trio.open_nursery() as nursery:
                    for _ in range(n_requests):
                        nursery.start_soon(one)
                seen = drain(events)

            assert got == [user.id] * n_requests
            assert pool.home_dc == 4
            homes = kinds(seen, "home_changed")
            assert [(e.dc_id, e.data["old"]) for e in homes] == [(4, 2)]
            s = cluster.statistics()
            bounced = s[2].errors.get("USER_MIGRATE_4", 0)
            assert bounced >= 1  # the test really caught requests in flight
            migrated = kinds(seen, "migrated")
            assert len(migrated) == bounced == pool.statistics().migrations
            assert all(e.data["error"] == "USER_MIGRATE_X" and e.data["to"] == 4 for e in migrated)
            # the authorization followed the user: one export from 2, one import on 4
            assert (s[2].exports, s[4].imports) == (1, 1)
            # and the new home serves the next request without bouncing
            await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert cluster.statistics()[2].errors.get("USER_MIGRATE_4", 0) == bounced
        store = open_storage(path, mode="prod")
        try:
            assert store.get_home_dc() == 4
        finally:
            store.close()


async def test_stats_migrate_retries_on_stats_dc_and_keeps_home(cluster: Cluster) -> None:
    channel = cluster.world.add_channel(5, title="news", followers=42)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            async with pool.events() as events:
                stats = await pool.invoke(api.stats.GetBroadcastStats(channel=channel.input_channel()))
                again = await pool.invoke(api.stats.GetBroadcastStats(channel=channel.input_channel()))
                seen = drain(events)
            assert stats.followers.current == 42.0 and again.followers.current == 42.0
            assert pool.home_dc == 2
            assert kinds(seen, "home_changed") == []
            migrated = kinds(seen, "migrated")
            assert [(e.dc_id, e.data["error"], e.data["to"]) for e in migrated] == [
                (2, "STATS_MIGRATE_X", 5),
                (2, "STATS_MIGRATE_X", 5),
            ]
            assert [e.dc_id for e in kinds(seen, "transfer_done")] == [5]
            s = cluster.statistics()
            assert (s[2].exports, s[5].imports) == (1, 1)
            assert s[5].requests.get("stats.getBroadcastStats") == 2


async def test_user_migrate_loop_ends_with_migration_error(cluster: Cluster) -> None:
    cluster.faults(2).fail("users.getUsers", 303, "USER_MIGRATE_3")
    cluster.faults(3).fail("users.getUsers", 303, "USER_MIGRATE_2")
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, fetch_config=False, **pool_args(cluster)) as pool:
            async with pool.events() as events:
                with pytest.raises(MigrationError, match="loop"):
                    await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
                seen = drain(events)
            # the followed hop is an event; the refused one is the MigrationError
            assert [(e.dc_id, e.data["to"]) for e in kinds(seen, "migrated")] == [(2, 3)]
            assert len(kinds(seen, "home_changed")) == 1
            assert pool.statistics().in_flight == 0
        s = cluster.statistics()
        assert s.requests("users.getUsers") == 2


async def test_file_migrate_loop_and_hop_budget(cluster: Cluster) -> None:
    f = cluster.add_file(4, size=4096)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, fetch_config=False, max_hops=2,
                                    **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            # a loop: 4 -> 5 -> 4
            cluster.faults(4).fail("upload.getFile", 303, "FILE_MIGRATE_5", count=1)
            cluster.faults(5).fail("upload.getFile", 303, "FILE_MIGRATE_4", count=1)
            with pytest.raises(MigrationError, match="loop"):
                await pool.invoke(api.upload.GetFile(location=f.input_location(), offset=0, limit=4096),
                                  dc_id=4)
            # a chain longer than max_hops=2: 1 -> 3 -> 5 -> 4
            cluster.faults(1).fail("upload.getFile", 303, "FILE_MIGRATE_3", count=1)
            cluster.faults(3).fail("upload.getFile", 303, "FILE_MIGRATE_5", count=1)
            cluster.faults(5).fail("upload.getFile", 303, "FILE_MIGRATE_4", count=1)
            with pytest.raises(MigrationError, match="gave up"):
                await pool.invoke(api.upload.GetFile(location=f.input_location(), offset=0, limit=4096),
                                  dc_id=1)
            assert cluster.statistics()[4].requests.get("upload.getFile") == 1
            # within budget: 1 -> 3 -> 4 works
            cluster.faults(1).fail("upload.getFile", 303, "FILE_MIGRATE_3", count=1)
            part = await pool.invoke(api.upload.GetFile(location=f.input_location(), offset=0, limit=4096),
                                     dc_id=1)
            assert bytes(part.bytes) == f.data
            assert pool.home_dc == 2
            assert pool.statistics().migrations == 1 + 2 + 2


async def test_phone_migrate_while_signed_in_carries_nothing_over(cluster: Cluster) -> None:
    # Signed in as one user on DC 2, signing in as a user of DC 4: PHONE_MIGRATE moves home
    # without exporting the old user's authorization, and the old marks are dropped.
    f = cluster.add_file(3, size=4096)
    with trio.fail_after(20):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            first = await pool.sign_in(PHONE_DC2, CODE_DC2)
            async for _ in pool.download(f.input_location(), dc_id=3, size=f.size, part_size=4096):
                pass
            assert cluster.statistics()[2].exports == 1
            second = await pool.sign_in(cluster.world.test_phone(4, 1), "44444")
            assert pool.home_dc == 4 and pool.user_id == second.id != first.id
            assert cluster.statistics().total("exports") == 1
            await pool.flush_storage()  # (writes happen off the event loop)
            assert pool.storage.get_dc(3).authorized_user_id is None
            await pool.flush_storage()  # (writes happen off the event loop)
            assert pool.storage.get_dc(4).authorized_user_id == second.id
            me = await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert me[0].id == second.id


async def test_user_moved_twice_is_followed_through_the_sign_in_dc(cluster: Cluster) -> None:
    # 2 -> 4 -> 5: after the first move home is DC 4, whose key was *imported*; the emulator
    # (like a cautious server) refuses exports from an imported key, so the transfer to DC 5
    # must come from DC 2, where the key signed in.
    me = [api.InputUserSelf()]
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            user = await pool.sign_in(PHONE_DC2, CODE_DC2)
            cluster.move_user(user.id, 4)
            (got,) = await pool.invoke(api.users.GetUsers(id=me))
            assert got.id == user.id and pool.home_dc == 4
            cluster.move_user(user.id, 5)
            (got,) = await pool.invoke(api.users.GetUsers(id=me))
            assert got.id == user.id and pool.home_dc == 5
            assert pool.login_dc == 2
    stats = cluster.statistics()
    assert stats[2].exports == 2 and stats[4].exports == 0
    assert stats[4].imports == 1 and stats[5].imports == 1
