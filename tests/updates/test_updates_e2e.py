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
