"""End-to-end: the updates manager on a real pool over loopback sockets against the emulated
cluster: pushes, dropped pushes, killed connections, lost sessions, and a restart with the
state in the SQLite session file."""

from __future__ import annotations

import trio

from dcpool import tl
from dcpool.pool import open_pool
from dcpool.testing import Cluster
from dcpool.testing import messaging as M
from dcpool.updates import Update, open_updates

api = tl.api
TIMEOUT = 30
GD = "updates.getDifference"


def pool_for(cluster: Cluster, **kwargs):
    kwargs.setdefault("home_dc", 2)
    kwargs.setdefault("fetch_config", False)
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(), **kwargs)


def texts(items) -> list[str]:
    return [i.update.message.message for i in items if isinstance(i, Update)]


async def take(stream, n: int) -> list:
    items = []
    async for item in stream:
        items.append(item)
        await stream.ack(item)
        if len(items) == n:
            break
    return items


async def test_messages_arrive_and_dropped_pushes_are_recovered(cluster):
    world = cluster.world
    sender = world.user_by_phone(world.test_phone(2, 9001))
    m = M.messaging(world)
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            me = await pool.sign_in(world.test_phone(2, 9002), "22222")
            async with open_updates(pool) as stream:
                while not stream.box.known:
                    await trio.sleep(0.01)
                for i in range(10):
                    if i in (3, 4, 7):
                        m.faults.drop_next = 1
                    M.send_message(world, sender.id, me.id, f"m{i}")
                items = await take(stream, 10)
                assert texts(items) == [f"m{i}" for i in range(10)]
                assert [i.pts for i in items if i.pts is not None] == sorted(
                    i.pts for i in items if i.pts is not None
                )
    assert cluster.statistics()[2].requests.get(GD, 0) >= 1
    assert m.faults.dropped == 3


async def test_killed_connection_and_lost_session_are_caught_up(cluster):
    world = cluster.world
    sender = world.user_by_phone(world.test_phone(2, 9011))
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            me = await pool.sign_in(world.test_phone(2, 9012), "22222")
            async with open_updates(pool) as stream:
                while not stream.box.known:
                    await trio.sleep(0.01)
                before = cluster.statistics()[2].requests.get(GD, 0)
                cluster.drop_connections(2)
                M.send_message(world, sender.id, me.id, "while reconnecting")  # nobody to push to
                await pool.invoke(api.help.GetNearestDc())  # the pool reconnects
                (item,) = await take(stream, 1)
                assert texts([item]) == ["while reconnecting"]
                assert cluster.statistics()[2].requests.get(GD, 0) > before

                before = cluster.statistics()[2].requests.get(GD, 0)
                assert M.lose_sessions(cluster, me.id) >= 1
                M.send_message(world, sender.id, me.id, "while the session was lost")
                await pool.invoke(api.help.GetNearestDc())  # answered with new_session_created
                (item,) = await take(stream, 1)
                assert texts([item]) == ["while the session was lost"]
                assert cluster.statistics()[2].requests.get(GD, 0) > before


async def test_state_persists_in_the_session_file_across_restarts(cluster, tmp_path):
    world = cluster.world
    sender = world.user_by_phone(world.test_phone(2, 9021))
    path = tmp_path / "me.session"
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster, storage=path) as pool:
            me = await pool.sign_in(world.test_phone(2, 9022), "22222")
            async with open_updates(pool) as stream:
                while not stream.box.known:
                    await trio.sleep(0.01)
                for i in range(3):
                    M.send_message(world, sender.id, me.id, f"m{i}")
                assert texts(await take(stream, 3)) == ["m0", "m1", "m2"]
        for i in range(3, 6):
            M.send_message(world, sender.id, me.id, f"m{i}")  # while the client is down
        async with pool_for(cluster, storage=path) as pool:
            async with open_updates(pool) as stream:
                assert texts(await take(stream, 3)) == ["m3", "m4", "m5"]
    assert cluster.statistics()[2].requests["updates.getState"] == 1


async def test_home_connection_lost_with_no_call_after_it_is_caught_up(cluster):
    """The pool keeps only the home DC's main-lane pushes and the DC pushes to the last active
    session only: after the home connections die, nothing but the manager's own getDifference
    revives the main session, and that difference returns what was pushed to nobody."""
    world = cluster.world
    sender = world.user_by_phone(world.test_phone(2, 9031))
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            me = await pool.sign_in(world.test_phone(2, 9032), "22222")
            async with open_updates(pool) as stream:
                while not stream.box.known:
                    await trio.sleep(0.01)
                before = cluster.statistics()[2].requests.get(GD, 0)
                assert cluster.drop_connections(2) >= 1
                while cluster.live_connections(2):  # the DC has closed them
                    await trio.sleep(0.01)
                M.send_message(world, sender.id, me.id, "pushed to nobody")
                (item,) = await take(stream, 1)  # no call of ours reconnects the pool
                assert texts([item]) == ["pushed to nobody"]
                assert cluster.statistics()[2].requests.get(GD, 0) > before
                M.send_message(world, sender.id, me.id, "pushed to the new main session")
                assert texts(await take(stream, 1)) == ["pushed to the new main session"]
                assert pool.statistics().updates_dropped == 0


async def test_file_transfers_on_the_home_dc_do_not_take_the_pushes(cluster, tmp_path):
    """Downloads and uploads on the home DC use their own connections; the account's pushes
    still reach the main session (the pool drops any other lane's) after them."""
    world = cluster.world
    stored = cluster.add_file(2, size=3 * 65536)
    sender = world.user_by_phone(world.test_phone(2, 9041))
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            me = await pool.sign_in(world.test_phone(2, 9042), "22222")
            async with open_updates(pool) as stream:
                while not stream.box.known:
                    await trio.sleep(0.01)
                before = cluster.statistics()[2].requests.get(GD, 0)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(pool.download_to, stored.input_location(), tmp_path / "f.bin")
                    nursery.start_soon(pool.upload, b"u" * (600 * 1024))
                lanes = pool.statistics().dcs[2].connections
                assert lanes["download"] >= 1 and lanes["upload"] >= 1  # the home DC's own file lanes
                M.send_message(world, sender.id, me.id, "after the transfers")
                assert texts(await take(stream, 1)) == ["after the transfers"]
                assert pool.statistics().updates_dropped == 0
                # it came as a push: no difference was needed to find it
                assert cluster.statistics()[2].requests.get(GD, 0) == before
