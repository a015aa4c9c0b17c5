"""Issue 12, item 8: updates come from the home DC's main connection only.  Requests to other
DCs and on download lanes are wrapped in invokeWithoutUpdates (so the emulator, like Telegram,
never routes updates there: UPDATES.md §1.1); anything arriving elsewhere is dropped and
counted."""

from __future__ import annotations

import trio

from dcpool import tl
from dcpool.crypto.rsa import TELEGRAM_TEST_KEYS
from dcpool.dcs import DcTable
from dcpool.pool import PoolConfig, open_pool
from dcpool.pool.events import EventBus, UpdatesQueue
from dcpool.pool.runtime import PoolRuntime
from dcpool.pool.writer import StorageWriter
from dcpool.storage import open_storage
from dcpool.testing import Cluster

api = tl.api
PART = 64 * 1024


def pool_for(cluster: Cluster, **kwargs):
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                     home_dc=2, fetch_config=False, **kwargs)


async def fetch(pool, f) -> None:
    async for _ in pool.download(f.input_location(), dc_id=f.dc_id, size=f.size, part_size=PART):
        pass


def numbered(i: int):
    return api.UpdateShort(update=api.UpdateLoginToken(), date=i)


async def test_only_the_home_main_session_gets_updates(cluster: Cluster) -> None:
    files = [cluster.add_file(2, size=3 * PART), cluster.add_file(4, size=3 * PART)]
    with trio.fail_after(30):
        async with pool_for(cluster) as pool:
            user = await pool.sign_in(cluster.world.test_phone(2, 5555), "22222")
            for f in files:  # the home DC's download lane, then a foreign DC
                await fetch(pool, f)
            # the emulator routes to the last active session that did not ask for none: still
            # the home DC's main connection
            assert cluster.push_update(user.id, numbered(1)) == 1
            updates = pool.updates()
            got = await updates.__anext__()
            assert got.dc_id == 2 and got.parse().date == 1
            assert pool.statistics().updates_dropped == 0
            # were the user to live on DC 4, no session there may receive updates: every
            # request the pool sent to DC 4 asked for none
            cluster.move_user(user.id, 4)
            assert cluster.push_update(user.id, numbered(2)) == 0


def test_updates_from_elsewhere_are_dropped_and_counted() -> None:
    storage = open_storage(None, mode="test")
    rt = PoolRuntime(config=PoolConfig(), test_mode=True, rsa_keys=dict(TELEGRAM_TEST_KEYS),
                     table=DcTable.for_user(None, test_mode=True), storage=storage,
                     writer=StorageWriter(storage), events=EventBus(), updates=UpdatesQueue(10),
                     init_prefix=b"", home_dc=2)
    body = numbered(1).to_bytes()
    rt.on_update(4, body, "main")  # another DC
    rt.on_update(2, body, "download")  # the home DC's download lane
    assert rt.updates_dropped == 2
    rt.on_update(2, body, "main")
    assert rt.updates_dropped == 2
    storage.close()
