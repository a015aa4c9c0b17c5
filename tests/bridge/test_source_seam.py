"""The seam to the updates manager: ``open_account_updates`` runs the real
``dcpool.updates.open_updates`` on a real pool against the emulator, with a state store backed
by the outbox.  Messages sent by another test user (``dcpool.testing.messaging``) become
``message`` / ``messageStatus`` events; the outbox's state row is the manager's
``UpdatesState.to_json()``; a restart resumes from that row with getDifference, so what was sent
while the bridge was down arrives once and nothing is numbered twice."""

import pytest
import trio

from dcpool.bridge.app import BridgeConfig, open_bridge
from dcpool.bridge.source import OutboxStateStore, open_account_updates
from dcpool.pool import open_pool
from dcpool.testing import messaging as M
from dcpool.updates import UpdatesState

pytestmark = pytest.mark.e2e

GD = "updates.getDifference"


def pool_for(cluster):
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                     home_dc=2, fetch_config=False)


async def wait_events(outbox, account, n):
    """The account's non-pool events once there are at least ``n`` of them."""
    while True:
        events = [e for e in await outbox.read_after(0, 10_000, account=account) if e.event != "dcpool:event"]
        if len(events) >= n:
            return events
        with trio.move_on_after(0.5):
            await outbox.wait_for_new()


async def test_real_updates_manager_feeds_the_outbox_and_resumes_after_a_restart(cluster, tmp_path):
    world = cluster.world
    contact = world.user_by_phone(world.test_phone(2, 7001))
    cfg = BridgeConfig(outbox=str(tmp_path / "o.db"), port=0, api_token="t", accounts=("acc",),
                       poll_interval=0.1)
    with trio.fail_after(60):
        async with open_bridge(cfg) as bridge, pool_for(cluster) as pool:
            me = await pool.sign_in(world.test_phone(2, 7002), "22222")

            async def run_once():
                async with open_account_updates(pool, bridge.outbox, "acc") as stream:
                    await bridge.run_account("acc", stream)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_once)
                # no stored state: the manager starts with getState (nothing before it is
                # delivered), so wait for it to know its position before sending
                while await bridge.outbox.load_state("acc") is None:
                    await trio.sleep(0.02)
                for i in range(5):
                    M.send_message(world, contact.id, me.id, f"m{i}")
                events = await wait_events(bridge.outbox, "acc", 5)
                nursery.cancel_scope.cancel()
            assert [e.data["text"] for e in events] == [f"m{i}" for i in range(5)]
            assert all(e.event == "message" and e.data["type"] == "new" for e in events)
            assert events[0].data["from"]["id"] == contact.id
            assert events[0].data["chat"] == {"id": contact.id, "type": "user", **{
                k: v for k, v in events[0].data["chat"].items() if k not in ("id", "type")}}
            saved = await bridge.outbox.load_state("acc")
            # the row is the real manager's UpdatesState.to_json(): it round-trips
            assert set(saved) == {"pts", "qts", "date", "seq", "channels"}
            state = UpdatesState.from_json(saved)
            assert state.pts == world.user(me.id).pts and state.date > 0
            status = (await bridge.status())["accounts"][0]
            assert status["pts"] == state.pts

            # down: more messages and a read receipt of our own outgoing chat
            for i in range(5, 8):
                M.send_message(world, contact.id, me.id, f"m{i}")
            M.send_message(world, me.id, contact.id, "mine")
            M.read(world, contact.id, me.id, 10**6)  # the contact reads what we sent
            before = cluster.statistics()[2].requests.get(GD, 0)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_once)
                events = await wait_events(bridge.outbox, "acc", 10)
                await trio.sleep(0.3)  # a repeat would be written by now
                events = await wait_events(bridge.outbox, "acc", 10)
                nursery.cancel_scope.cancel()
            assert cluster.statistics()[2].requests.get(GD, 0) > before  # resumed by difference
            texts = [e.data.get("text") for e in events if e.event == "message"]
            assert texts == [f"m{i}" for i in range(8)] + ["mine"]
            assert events[8].data["out"] is True
            status_events = [e for e in events if e.event == "messageStatus"]
            assert [(e.data["status"], e.data["direction"]) for e in status_events] == [("read", "out")]
            assert len({e.dedupe_key for e in events}) == len(events) == 10
            assert (await bridge.outbox.load_state("acc"))["pts"] == world.user(me.id).pts


async def test_outbox_state_store_channel_hashes(tmp_path):
    cfg = BridgeConfig(outbox=str(tmp_path / "o.db"), port=0, api_token="t")
    async with open_bridge(cfg) as bridge:
        store = OutboxStateStore(bridge.outbox, "acc", UpdatesState)
        assert await store.load_updates_state() is None
        assert await store.load_channel_access_hashes() == {}
        await store.save_channel_access_hash(5, -77)
        await store.save_channel_access_hash(6, 88)
        assert await store.load_channel_access_hashes() == {5: -77, 6: 88}
        # the first position (getState of a fresh account) is stored; later saves are no-ops:
        # the bridge writes states with their events
        await store.save_updates_state(UpdatesState(pts=3, qts=0, date=5, seq=0))
        assert await store.load_updates_state() == UpdatesState(pts=3, qts=0, date=5, seq=0)
        await store.save_updates_state(UpdatesState(pts=9, qts=0, date=6, seq=0))
        assert (await bridge.outbox.load_state("acc"))["pts"] == 3
        # a row written with events is never replaced by a first position
        await bridge.outbox.append("other", [], {"pts": 7, "qts": 0, "date": 1, "seq": 0})
        other = OutboxStateStore(bridge.outbox, "other", UpdatesState)
        await other.save_updates_state(UpdatesState(pts=1, qts=0, date=0, seq=0))
        assert (await other.load_updates_state()).pts == 7
