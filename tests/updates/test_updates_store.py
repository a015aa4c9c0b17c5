"""The persisted updates state: values, the SQLite session tables (schema v3, migrated from v2)
and the rule that only acknowledged state is written."""

from __future__ import annotations

import sqlite3

import trio

from dcpool.storage import CURRENT_VERSION, SqliteStorage
from dcpool.testing import messaging as M
from dcpool.updates import MemoryUpdatesStore, SessionUpdatesStore, UpdatesState, open_updates, store_for

from ._world_pool import WorldPool, settle, two_users


def test_state_json_round_trip_and_equality():
    state = UpdatesState(pts=5, qts=2, date=100, seq=7, channels={10: 3, 11: 9})
    data = state.to_json()
    assert data == {"pts": 5, "qts": 2, "date": 100, "seq": 7, "channels": {"10": 3, "11": 9}}
    assert UpdatesState.from_json(data) == state
    assert hash(UpdatesState.from_json(data)) == hash(state)
    assert state != UpdatesState(pts=5, qts=2, date=100, seq=7, channels={10: 4, 11: 9})
    assert UpdatesState(pts=1, qts=0, date=0, seq=0).channels == {}


async def test_session_store_round_trip(tmp_path):
    storage = SqliteStorage(tmp_path / "s.session", mode="test")
    store = store_for(storage)
    assert isinstance(store, SessionUpdatesStore)
    assert await store.load_updates_state() is None
    await store.save_updates_state(UpdatesState(pts=5, qts=1, date=9, seq=2, channels={7: 4, 8: 1}))
    await store.save_channel_access_hash(7, -123)
    await store.save_updates_state(UpdatesState(pts=6, qts=1, date=9, seq=2, channels={7: 5}))  # 8 forgotten
    storage.close()
    storage = SqliteStorage(tmp_path / "s.session", mode="test")
    store = SessionUpdatesStore(storage)
    assert await store.load_updates_state() == UpdatesState(pts=6, qts=1, date=9, seq=2, channels={7: 5})
    assert await store.load_channel_access_hashes() == {7: -123}
    storage.close()
    assert isinstance(store_for(None), MemoryUpdatesStore)


def test_v2_session_file_is_migrated_to_v3(tmp_path):
    path = tmp_path / "old.session"
    SqliteStorage(path, mode="test").close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE updates_state")
    conn.execute("DROP TABLE updates_channels")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    storage = SqliteStorage(path, mode="test")
    assert CURRENT_VERSION == 3
    assert storage.get_updates_state() is None
    storage.set_updates_state(1, 0, 0, 0, {})
    assert storage.get_updates_state() == ((1, 0, 0, 0), {})
    storage.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    conn.close()


async def test_only_acknowledged_state_is_persisted(clock):
    async def scenario():
        world, a, b = two_users()
        pool = WorldPool(world, b.id)
        store = MemoryUpdatesStore()
        async with open_updates(pool, store=store) as stream:
            await settle()
            assert store.state is not None and store.state.pts == 1  # getState, nothing to ack
            for i in range(4):
                M.send_message(world, a.id, b.id, f"m{i}")
            items = []
            async for item in stream:
                items.append(item)
                if len(items) == 4:
                    break
            await settle(1)
            assert store.state.pts == 1  # delivered, not acknowledged: not written
            await stream.ack(items[1])
            assert store.state.pts == 3
            assert store.state == items[1].state_after
        # closing flushes nothing more: items 3 and 4 were never acknowledged
        assert store.state.pts == 3

    with trio.fail_after(60):
        await scenario()
