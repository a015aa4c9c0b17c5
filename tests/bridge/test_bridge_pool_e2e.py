"""A real pool on the emulator feeds the bridge its lifecycle events (migrations, home changes,
connections), and keeps its session in the fleet's PostgreSQL storage."""

import httpx
import pytest
import trio

import dcpool
from dcpool import tl
from dcpool.bridge.app import BridgeConfig, open_bridge
from dcpool.storage.postgres import PostgresStorage
from dcpool.testing import open_cluster

from .bridge_helpers import iter_sse

pytestmark = pytest.mark.e2e

PHONE_DC2, CODE_DC2 = "9996621234", "22222"


async def test_pool_lifecycle_events_reach_sse_and_session_lives_in_postgres(tmp_path, pg_dsn):
    with trio.fail_after(60):
        async with open_cluster() as cluster, open_bridge(BridgeConfig(
                outbox=pg_dsn, port=0, api_token="t", accounts=("acc",), poll_interval=0.2)) as bridge:
            args = dict(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys())
            store = PostgresStorage(pg_dsn, "acc", "prod", epoch=1)
            async with dcpool.open_pool(storage=store, home_dc=1, **args) as pool:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(bridge.watch_pool, "acc", pool)
                    await trio.sleep(0)
                    user = await pool.sign_in(PHONE_DC2, CODE_DC2)
                    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}", timeout=10) as http:
                        async with http.stream("GET", "/events?token=t&account=acc") as r:
                            got = []
                            types = set()
                            async for item in iter_sse(r):
                                got.append(item)
                                types.add(item[2]["type"])
                                if {"pool.migrated", "pool.home_changed"} <= types:
                                    break
                        status = (await http.get("/status")).json()
                    nursery.cancel_scope.cancel()
            store.close()
            migrated = next(d for _, _, d in got if d["type"] == "pool.migrated")
            assert migrated["event"] == "dcpool:event"
            assert migrated["data"]["error"] == "PHONE_MIGRATE_X" and migrated["data"]["dcId"] == 1
            assert status["accounts"][0]["home_dc"] == 2
            assert any(r["dc_id"] == 2 for r in status["accounts"][0]["routing"])
            # the session came back from PostgreSQL: signed in at home, no new handshake
            before = cluster.statistics().total("handshakes")
            store = PostgresStorage(pg_dsn, "acc", "prod", epoch=1)
            async with dcpool.open_pool(storage=store, home_dc=1, **args) as pool:
                assert pool.home_dc == 2 and pool.user_id == user.id
                me = await pool.invoke(tl.api.users.GetUsers(id=[tl.api.InputUserSelf()]))
                assert me[0].id == user.id
            store.close()
            assert cluster.statistics().total("handshakes") == before

