"""An independent client vouches for the emulator's update history: unmodified Telethon 1.45,
with its own update handling (MessageBox, getDifference / getChannelDifference on gaps),
receives every private message and channel post of a run, including the pushes the emulator
dropped.

The cluster runs with ``trio.run`` in a helper thread and Telethon with ``asyncio.run`` in the
test thread (as in tests/testing/test_cluster_telethon.py); the world is only touched from the
trio thread (``served.call``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import trio

from dcpool.testing import Cluster
from dcpool.testing import messaging as M
from dcpool.testing.threaded import ThreadedCluster as ClusterThread

telethon = pytest.importorskip("telethon")
from telethon import TelegramClient, events  # noqa: E402
from telethon.crypto import rsa as telethon_rsa  # noqa: E402

pytestmark = [pytest.mark.telethon, pytest.mark.e2e]

TIMEOUT = 60
PHONE = "9996624444"  # reserved test number of DC 2
CODE = "22222"
N_PRIVATE = 30
N_POSTS = 20
DROPPED_PRIVATE = {4, 5, 11, 20, 27}
DROPPED_POSTS = {3, 9, 10, 15}


def _setup(cluster: Cluster) -> tuple[int, int]:
    world = cluster.world
    M.messaging(world).now = time.time()
    sender = world.user_by_phone(world.test_phone(2, 4445))
    me = world.user_by_phone(PHONE)
    channel = M.create_channel(world, sender.id, "news", members=[me.id], now=time.time())
    return sender.id, channel.id


def _send(world: Any, sender: int, me: int, i: int) -> None:
    m = M.messaging(world)
    m.now = time.time()
    if i in DROPPED_PRIVATE:
        m.faults.drop_next = 1
    M.send_message(world, sender, me, f"m{i}")


def _post(world: Any, channel: int, i: int) -> None:
    m = M.messaging(world)
    m.now = time.time()
    if i in DROPPED_POSTS:
        m.faults.drop_next = 1
    M.post(world, channel, f"p{i}")


async def telethon_run(served: ClusterThread, sender: int, channel: int) -> dict[str, Any]:
    cluster = served.cluster
    assert cluster is not None
    telethon_rsa.add_key(cluster.rsa_public_pem(), old=False)
    TelegramClient._config = None
    client = TelegramClient(None, 12345, "0123456789abcdef0123456789abcdef", retry_delay=0)
    client.session.set_dc(2, *cluster.endpoint(2))
    got: list[str] = []
    done = asyncio.Event()

    @client.on(events.NewMessage)
    async def on_message(event: Any) -> None:
        got.append(event.raw_text)
        if len(got) >= N_PRIVATE + N_POSTS:
            done.set()

    await client.connect()
    try:
        await client.send_code_request(PHONE)
        me = await client.sign_in(PHONE, code=CODE)
        await asyncio.sleep(0.3)  # Telethon loads its update state after login
        world = cluster.world
        for i in range(N_PRIVATE):
            served.call(_send, world, sender, me.id, i)
            await asyncio.sleep(0.01)
        # first post: Telethon learns the channel (it has no pts for it yet)
        for i in range(N_POSTS):
            served.call(_post, world, channel, i)
            await asyncio.sleep(0.01)
        await asyncio.wait_for(done.wait(), TIMEOUT / 2)
        await asyncio.sleep(0.5)  # anything delivered twice would show up now
        return {"got": got, "dropped": served.call(lambda: M.messaging(world).faults.dropped)}
    finally:
        await client.disconnect()


def test_telethon_receives_every_message_including_dropped_pushes():
    with ClusterThread() as served:
        sender, channel = served.call(_setup, served.cluster)
        result = asyncio.run(asyncio.wait_for(telethon_run(served, sender, channel), TIMEOUT))
        stats = served.call(served.cluster.statistics)
    got = result["got"]
    assert result["dropped"] == len(DROPPED_PRIVATE) + len(DROPPED_POSTS)
    assert sorted(t for t in got if t.startswith("m")) == sorted(f"m{i}" for i in range(N_PRIVATE))
    assert sorted(t for t in got if t.startswith("p")) == sorted(f"p{i}" for i in range(N_POSTS))
    assert len(got) == N_PRIVATE + N_POSTS  # nothing twice
    assert stats[2].requests["updates.getDifference"] >= 1
    assert stats[2].requests["updates.getChannelDifference"] >= 1
