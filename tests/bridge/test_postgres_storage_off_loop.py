"""PostgresStorage's writes never block the event loop: the pool's storage writer runs them on
a worker thread.  A write made slow for real (another PostgreSQL transaction holds the
session row's lock, so the storage's UPDATE waits) does not stop the pool: it signs in and
answers requests meanwhile, and the write lands once the lock is released."""

import functools
import json
import threading

import psycopg
import pytest
import trio

from dcpool import tl
from dcpool.pool import open_pool
from dcpool.storage.postgres import PostgresStorage

pytestmark = pytest.mark.e2e


def open_store(dsn):
    store = PostgresStorage(dsn, "acc", "prod", epoch=1)
    store.set_home_dc(2)  # the row exists (written here, on a worker thread)
    return store


class RowLock:
    """Holds the account's session row locked (SELECT ... FOR UPDATE in an open transaction)
    until released, or ``limit`` s later (so a regression fails instead of hanging)."""

    def __init__(self, dsn, limit=30.0):
        self.conn = psycopg.connect(dsn, autocommit=False)
        self.conn.execute("SELECT 1 FROM dcpool_sessions WHERE account = 'acc' FOR UPDATE")
        self.released = threading.Event()
        self.timer = threading.Timer(limit, self.release)
        self.timer.start()

    def release(self):
        if not self.released.is_set():
            self.released.set()
            self.conn.rollback()
            self.conn.close()
            self.timer.cancel()


def stored_user(dsn):
    with psycopg.connect(dsn) as conn:
        (text,) = conn.execute("SELECT session FROM dcpool_sessions WHERE account = 'acc'").fetchone()
    return json.loads(text)["user_id"]


async def test_slow_postgres_writes_do_not_block_the_pool(cluster, pg_dsn):
    store = await trio.to_thread.run_sync(open_store, pg_dsn)
    lock = await trio.to_thread.run_sync(RowLock, pg_dsn)
    try:
        with trio.fail_after(60):
            async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(),
                                 rsa_keys=cluster.rsa_keys(), storage=store, home_dc=2,
                                 fetch_config=False) as pool:
                # the key exchange queues save_auth_key; its UPDATE waits for the row lock
                user = await pool.sign_in("9996625555", "22222")
                me = await pool.invoke(tl.api.users.GetUsers(id=[tl.api.InputUserSelf()]))
                backlog = pool.statistics().storage_backlog
                assert not lock.released.is_set()  # the pool did all that while a write waited
                assert backlog > 0
                assert await trio.to_thread.run_sync(stored_user, pg_dsn) is None
                await trio.to_thread.run_sync(lock.release)
                await pool.flush_storage()
                assert pool.statistics().storage_backlog == 0
        assert me[0].id == user.id
        assert await trio.to_thread.run_sync(stored_user, pg_dsn) == user.id
    finally:
        await trio.to_thread.run_sync(lock.release)
        await trio.to_thread.run_sync(functools.partial(store.close))
