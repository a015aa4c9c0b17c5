"""The seam to the updates manager: ``open_account_updates`` plugs ``dcpool.updates.open_updates``
in with a state store backed by the outbox.  The manager is stood in by a module with the
contract's names, so this test exercises exactly the lines the integrator will run."""

import sys
import types
from contextlib import asynccontextmanager

import trio

from dcpool.bridge.app import BridgeConfig, open_bridge
from dcpool.bridge.memsource import MemoryUpdateSource, UpdatesStateStandIn, simulated_update
from dcpool.bridge.source import OutboxStateStore, open_account_updates


def contract_module(log):
    """A stand-in ``dcpool.updates`` honouring the contract: resumes from the store's state."""
    module = types.ModuleType("dcpool.updates")
    module.UpdatesState = UpdatesStateStandIn

    @asynccontextmanager
    async def open_updates(pool, *, store):
        start = await store.load_updates_state()
        history = MemoryUpdateSource()  # the account's history: pts 1..10
        for pts in range(1, 11):
            update, users = simulated_update(pts)
            history.push(update, users=users)
        stream = history.replay_from(start)  # what the manager delivers: after ``start``
        stream.close()
        log.append(start)
        yield stream

    module.open_updates = open_updates
    return module


async def test_open_account_updates_resumes_from_the_outbox_state(tmp_path, monkeypatch):
    log = []
    monkeypatch.setitem(sys.modules, "dcpool.updates", contract_module(log))
    cfg = BridgeConfig(outbox=str(tmp_path / "o.db"), port=0, api_token="t", accounts=("acc",))
    with trio.fail_after(20):
        async with open_bridge(cfg) as bridge:
            async with open_account_updates(object(), bridge.outbox, "acc") as stream:
                await bridge.run_account("acc", stream)
            assert log == [None]
            assert (await bridge.outbox.load_state("acc"))["pts"] == 10
            # a restart resumes after pts 10: nothing is replayed, nothing is numbered twice
            async with open_account_updates(object(), bridge.outbox, "acc") as stream:
                await bridge.run_account("acc", stream)
            assert log[1] == UpdatesStateStandIn(pts=10, date=0)
            assert await bridge.outbox.last_id() == 10


async def test_outbox_state_store_channel_hashes(tmp_path):
    cfg = BridgeConfig(outbox=str(tmp_path / "o.db"), port=0, api_token="t")
    async with open_bridge(cfg) as bridge:
        store = OutboxStateStore(bridge.outbox, "acc", UpdatesStateStandIn)
        assert await store.load_updates_state() is None
        assert await store.load_channel_access_hashes() == {}
        await store.save_channel_access_hash(5, -77)
        await store.save_channel_access_hash(6, 88)
        assert await store.load_channel_access_hashes() == {5: -77, 6: 88}
        await store.save_updates_state(UpdatesStateStandIn(pts=3))  # no-op: the outbox writes it
        assert await store.load_updates_state() is None
