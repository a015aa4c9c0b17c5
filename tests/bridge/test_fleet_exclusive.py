"""Two bridges sharing a PostgreSQL fleet never run one account at once: an account handed back
(rebalancing when a second member joins) or released (a clean stop) is closed, pool and all,
before its lease is released, so the next holder never connects with an auth key the previous
one still uses (what Telegram answers with AUTH_KEY_DUPLICATED).  Real pools on the emulator,
sessions in PostgreSQL, the real updates manager; messages sent throughout each become one event."""

import functools

import pytest
import trio

from dcpool.bridge.app import BridgeConfig, open_bridge
from dcpool.bridge.cli import fleet_phone
from dcpool.bridge.emulated import EmulatorTarget, run_emulator_account
from dcpool.storage.postgres import PostgresStorage
from dcpool.testing import messaging as M

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TTL = 6.0  # long enough that a loaded machine does not let a renewal lapse
NAMES = [f"sim{i:03d}" for i in range(6)]


async def test_an_account_never_runs_in_two_bridges_at_once(cluster, pg_dsn):
    world = cluster.world
    target = EmulatorTarget(dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                            dc_ids=tuple(sorted(world.dc_ids)))
    live: dict[str, str] = {}
    overlaps: list[tuple[str, str, str]] = []
    runs: list[tuple[str, str]] = []

    def run_one_for(owner, bridge):
        async def run_one(name, lease):
            if name in live:
                overlaps.append((name, live[name], owner))
            live[name] = owner
            runs.append((name, owner))
            store = await trio.to_thread.run_sync(functools.partial(
                PostgresStorage, pg_dsn, name, "prod", epoch=lease.epoch))
            try:
                await run_emulator_account(bridge, name, target, storage=store,
                                           phone=fleet_phone(name, list(target.dc_ids))[0], epoch=lease.epoch)
            finally:
                # the pool is closed here (run_emulator_account's block has ended); the rest of
                # the account's shutdown takes a while (a slow storage flush, say), and the
                # lease must not be released before it is over
                with trio.CancelScope(shield=True):
                    await trio.sleep(TTL / 6)
                if live.get(name) == owner:
                    del live[name]
                await trio.to_thread.run_sync(store.close)
        return run_one

    contact = world.user_by_phone(world.test_phone(1, 8999))
    sent = dict.fromkeys(NAMES, 0)

    def send_round():
        for name in NAMES:
            me = world.user_by_phone(fleet_phone(name, list(target.dc_ids))[0])
            sent[name] += 1
            M.send_message(world, contact.id, me.id, f"{name}:{sent[name]}")

    def config(owner):
        return BridgeConfig(outbox=pg_dsn, port=0, api_token="t", owner=owner, lease_ttl=TTL, poll_interval=0.1)

    with trio.fail_after(120):
        async with open_bridge(config("A")) as a, open_bridge(config("B")) as b:
            async def states():
                return [await a.outbox.load_state(n) for n in NAMES]

            async with trio.open_nursery() as outer:
                a_scope = trio.CancelScope()

                async def run_a():
                    with a_scope:
                        await a.run_fleet(NAMES, run_one_for("A", a))

                outer.start_soon(run_a)
                while None in await states():  # A signed every account in; getState done
                    await trio.sleep(0.05)
                send_round()
                outer.start_soon(b.run_fleet, NAMES, run_one_for("B", b))
                while not any(o == "B" for _, o in runs) or len(live) < len(NAMES) or \
                        sorted(live.values()).count("B") != len(NAMES) // 2:
                    send_round()
                    await trio.sleep(0.1)
                a_scope.cancel()  # A stops cleanly: its accounts close, then their leases go
                while sorted(live.values()) != ["B"] * len(NAMES):
                    send_round()
                    await trio.sleep(0.1)
                send_round()

                async def delivered():
                    events = await a.outbox.read_after(0, 100_000)
                    return {n: sum(1 for e in events if e.account == n and e.event == "message") for n in NAMES}

                while await delivered() != sent:
                    await trio.sleep(0.1)
                outer.cancel_scope.cancel()
    assert overlaps == []
    moved = {n for n, o in runs if o == "B"}
    assert moved == set(NAMES)  # every account ran in B at the end, after A, never beside it
