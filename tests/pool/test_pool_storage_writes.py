"""Storage writes never block the event loop (issue 11): they run on a worker thread, in
order, so a slow disk cannot stall the receive path or the other DCs."""

from __future__ import annotations

import threading

import trio

from dcpool import tl
from dcpool.pool import open_pool
from dcpool.storage import MemoryStorage
from dcpool.testing import Cluster

api = tl.api


class GatedStorage(MemoryStorage):
    """A storage whose writes wait for ``gate`` (a disk that stalls), recording the thread
    each write ran on."""

    writes_block = True  # a disk that stalls: the pool must write it on a worker thread

    def __init__(self) -> None:
        super().__init__("prod")
        self.gate = threading.Event()
        self.write_threads: set[int] = set()

    def _write(self) -> None:
        self.write_threads.add(threading.get_ident())
        if not self.gate.wait(timeout=30):
            raise RuntimeError("the test never opened the gate")

    def save_auth_key(self, *args, **kwargs):
        self._write()
        return super().save_auth_key(*args, **kwargs)

    def set_salt(self, *args, **kwargs):
        self._write()
        return super().set_salt(*args, **kwargs)

    def set_authorized(self, *args, **kwargs):
        self._write()
        return super().set_authorized(*args, **kwargs)


async def test_a_stalled_disk_does_not_stall_the_dcs(cluster: Cluster) -> None:
    storage = GatedStorage()
    try:
        with trio.fail_after(20):
            async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(),
                                 rsa_keys=cluster.rsa_keys(), storage=storage,
                                 fetch_config=False) as pool:
                # DC 2's new key is being written (stuck on the disk) ...
                assert (await pool.invoke(api.help.GetNearestDc())).this_dc == 2
                assert pool.statistics().storage_backlog >= 1
                # ... and every other DC keeps working meanwhile, keys and all
                for dc in (1, 3, 4, 5):
                    assert (await pool.invoke(api.help.GetNearestDc(), dc_id=dc)).this_dc == dc
                assert storage.list_dcs() == []  # nothing reached the disk yet
                assert pool.statistics().storage_backlog >= 5
                storage.gate.set()
                await pool.flush_storage()
                assert pool.statistics().storage_backlog == 0
                keys = {r.dc_id: r.key_id for r in storage.list_dcs()}
                assert keys == {dc: pool.dc(dc).auth_key.key_id for dc in (1, 2, 3, 4, 5)}
        assert threading.get_ident() not in storage.write_threads
    finally:
        storage.gate.set()


async def test_writes_queued_at_close_are_written(cluster: Cluster, tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    with trio.fail_after(20):
        async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(),
                             rsa_keys=cluster.rsa_keys(), storage=path, fetch_config=False) as pool:
            await pool.invoke(api.help.GetNearestDc(), dc_id=3)
            key_id = pool.dc(3).auth_key.key_id
            pool.set_home_dc(3)
        # no flush: closing the pool wrote what was queued
        async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(),
                             rsa_keys=cluster.rsa_keys(), storage=path, fetch_config=False) as pool:
            assert pool.home_dc == 3 and pool.dc(3).auth_key.key_id == key_id
            await pool.invoke(api.help.GetNearestDc())
    assert cluster.statistics()[3].handshakes == 1
