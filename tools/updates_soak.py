"""Updates soak: every message once, in order per box, while pushes are dropped, duplicated and
reordered, connections are killed, the session is lost and the client restarts.

Usage::

    python tools/updates_soak.py --messages 10000 [--seed 1] [--json]

Theory of operation
-------------------
One 5-DC :func:`dcpool.testing.open_cluster`; the receiving account (home DC 2) is driven by a
real :func:`dcpool.open_pool` with a SQLite session file and :func:`dcpool.updates.open_updates`
(the consumer acknowledges every item; the state is written every ``--persist-every``
acknowledgements).  A seeded plan of ``--messages`` events is produced by the emulator's helpers
(:mod:`dcpool.testing.messaging`): private messages from ``--senders`` users (common box) and
posts in ``--channels`` channels (one box each), ``--rate`` events per second.  Every text names its box and its number in
that box.

Faults, all seeded: each push is dropped with ``--drop`` probability, duplicated with ``--dup``,
held back and sent after the next push with ``--reorder``; ``--reconnects`` times the DC kills
every connection; once the server forgets the session (``new_session_created``); once the
client crashes (writes after the last periodic save are lost) and opens its pool again from the
session file (``--restarts``): it replays from the saved state, and events produced while it is
down reach it only through getDifference.  After the plan, faults stop and
one last message per box is sent (a trailing dropped push is otherwise found only by the
15-minute idle rule).

Counted: ``lost`` (produced, never delivered), ``duplicates_after_dedupe`` (delivered twice
with different dedupe keys: must be 0), ``duplicates_deduped`` (repeats the consumer dropped by
``dedupe_key``, e.g. replays after the restart), ``out_of_order`` (a box's numbers going back),
recovery latency of the messages whose push was dropped (produce → delivery, trio clock).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dcpool import tl  # noqa: E402
from dcpool.pool import open_pool  # noqa: E402
from dcpool.testing import open_cluster  # noqa: E402
from dcpool.testing import messaging as M  # noqa: E402
from dcpool.updates import Update, open_updates, store_for  # noqa: E402

api = tl.api


class Tally:
    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.dropped: set[str] = set()
        self.delivered_at: dict[str, float] = {}
        self.keys: dict[str, str] = {}  # dedupe key -> text
        self.deduped = 0
        self.twice = 0
        self.out_of_order = 0
        self.last_number: dict[Any, int] = {}
        self.stats: list[Any] = []
        self.items = 0
        self.states_lost = 0

    def record(self, item: Any, now: float) -> None:
        self.items += 1
        if not isinstance(item, Update):
            self.states_lost += 1
            return
        message = getattr(item.update, "message", None)
        text = getattr(message, "message", None)
        if not isinstance(text, str) or ":" not in text:
            return
        if item.dedupe_key in self.keys:
            self.deduped += 1
            return
        self.keys[item.dedupe_key] = text
        if text in self.delivered_at:
            self.twice += 1
            return
        self.delivered_at[text] = now
        box, number = text.rsplit(":", 1)
        n = int(number)
        if n < self.last_number.get(box, -1):
            self.out_of_order += 1
        self.last_number[box] = max(n, self.last_number.get(box, -1))


def pool_for(cluster: Any, path: Path) -> Any:
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                     home_dc=2, fetch_config=False, storage=path)


class CrashableStore:
    """The session store, until :attr:`crashed`: then writes are lost, like a killed process's
    (the flush on a clean shutdown must not hide the replay a crash causes)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.crashed = False

    async def load_updates_state(self) -> Any:
        return await self.inner.load_updates_state()

    async def save_updates_state(self, state: Any) -> None:
        if not self.crashed:
            await self.inner.save_updates_state(state)

    async def load_channel_access_hashes(self) -> dict[int, int]:
        return await self.inner.load_channel_access_hashes()

    async def save_channel_access_hash(self, channel_id: int, access_hash: int) -> None:
        if not self.crashed:
            await self.inner.save_channel_access_hash(channel_id, access_hash)


async def consume(cluster: Any, path: Path, phone: str, first: bool, channels: list[Any], tally: Tally,
                  persist_every: int, stores: list[CrashableStore],
                  task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    async with pool_for(cluster, path) as pool:
        if first:
            await pool.sign_in(phone, "22222")
        store = CrashableStore(store_for(pool.storage))
        stores.append(store)
        async with open_updates(pool, store=store, persist_every=persist_every) as stream:
            while not stream.box.known:
                await trio.sleep(0.01)
            for ch in channels:
                stream.track_channel(ch.id, ch.access_hash, 1)  # a stored pts wins
            task_status.started(stream)
            try:
                async for item in stream:
                    tally.record(item, trio.current_time())
                    await stream.ack(item)
            finally:
                tally.stats.append(stream.statistics())


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    t_start = time.monotonic()
    tally = Tally()
    async with open_cluster() as cluster:
        world = cluster.world
        m = M.messaging(world)
        m.faults.rng = random.Random(args.seed + 1)
        phone = world.test_phone(2, 1)
        me = world.user_by_phone(phone)
        senders = [world.user_by_phone(world.test_phone(2, 100 + i)) for i in range(args.senders)]
        channels = [M.create_channel(world, senders[i % len(senders)].id, f"c{i}", members=[me.id])
                    for i in range(args.channels)]
        n = args.messages
        reconnect_at = {n * (k + 1) // (args.reconnects + 1) for k in range(args.reconnects)}
        restart_at = {n * (k + 1) // (args.restarts + 2) + n // 7 for k in range(args.restarts)}
        lose_session_at = n // 5
        counters = {"common": 0, **{f"c{ch.id}": 0 for ch in channels}}
        events = {"reconnects": 0, "sessions_lost": 0, "restarts": 0}

        def produce(box: str) -> None:
            number = counters[box]
            counters[box] += 1
            text = f"{box}:{number}"
            before = m.faults.dropped
            m.now = time.time()
            if box == "common":
                M.send_message(world, rng.choice(senders).id, me.id, text)
            else:
                M.post(world, int(box[1:]), text)
            tally.sent_at[text] = trio.current_time()
            if m.faults.dropped > before:
                tally.dropped.add(text)

        async with trio.open_nursery() as nursery:
            stream_scope = trio.CancelScope()
            stores: list[CrashableStore] = []

            async def run_consumer(first: bool, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
                with stream_scope:
                    await consume(cluster, Path(args.session), phone, first, channels, tally,
                                  args.persist_every, stores, task_status=task_status)

            await nursery.start(run_consumer, True)
            t_plan = trio.current_time()
            m.faults.drop_rate, m.faults.duplicate_rate, m.faults.reorder_rate = args.drop, args.dup, args.reorder
            for i in range(n):
                if i in reconnect_at:
                    cluster.drop_connections(2)
                    events["reconnects"] += 1
                if i == lose_session_at:
                    events["sessions_lost"] += M.lose_sessions(cluster, me.id) > 0
                if i in restart_at:
                    stores[-1].crashed = True  # a crash: acknowledged but unsaved state is lost
                    stream_scope.cancel()
                    await trio.sleep(0.05)
                    for _ in range(20):  # produced while the client is down
                        produce(rng.choice(list(counters)) if rng.random() < 0.3 else "common")
                        await trio.sleep(1 / args.rate)
                    stream_scope = trio.CancelScope()
                    await nursery.start(run_consumer, False)
                    events["restarts"] += 1
                box = "common" if rng.random() < args.private_share else f"c{rng.choice(channels).id}"
                produce(box)
                await trio.sleep_until(t_plan + (i + 1) / args.rate)
            m.release()
            m.faults.clear()
            for box in counters:
                produce(box)  # the last message of every box: no push of it is faulted
            deadline = trio.current_time() + args.settle
            while len(tally.delivered_at) < len(tally.sent_at) and trio.current_time() < deadline:
                await trio.sleep(0.05)
            await trio.sleep(0.5)  # late repeats would show up now
            stream_scope.cancel()
        stats = cluster.statistics()[2]
        push_faults = {"dropped": m.faults.dropped, "duplicated": m.faults.duplicated,
                       "reordered": m.faults.reordered}
    lost = sorted(set(tally.sent_at) - set(tally.delivered_at))
    recovery = sorted(tally.delivered_at[t] - tally.sent_at[t] for t in tally.dropped if t in tally.delivered_at)
    latency = sorted(tally.delivered_at[t] - tally.sent_at[t] for t in tally.delivered_at if t in tally.sent_at)

    def pct(values: list[float], q: float) -> float | None:
        return round(values[min(len(values) - 1, int(q * len(values)))], 4) if values else None

    agg = {k: sum(getattr(s, k) for s in tally.stats) for k in
           ("gaps_opened", "differences", "channel_differences", "duplicates_dropped", "overflow_dropped",
            "retries")}
    return {
        "messages": len(tally.sent_at),
        "delivered": len(tally.delivered_at),
        "lost": len(lost),
        "lost_examples": lost[:10],
        "duplicates_after_dedupe": tally.twice,
        "duplicates_deduped": tally.deduped,
        "out_of_order": tally.out_of_order,
        "states_lost": tally.states_lost,
        "push_faults": push_faults,
        **events,
        "server_getDifference": stats.requests.get("updates.getDifference", 0),
        "server_getChannelDifference": stats.requests.get("updates.getChannelDifference", 0),
        "manager": agg,
        "recovery_latency_s": {"n": len(recovery), "p50": pct(recovery, 0.5), "p99": pct(recovery, 0.99),
                               "max": pct(recovery, 1.0)},
        "latency_s": {"p50": pct(latency, 0.5), "p99": pct(latency, 0.99), "max": pct(latency, 1.0)},
        "elapsed_s": round(time.monotonic() - t_start, 1),
        "mean_latency_s": round(statistics.fmean(latency), 4) if latency else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--senders", type=int, default=4)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--private-share", type=float, default=0.6)
    p.add_argument("--drop", type=float, default=0.05)
    p.add_argument("--dup", type=float, default=0.02)
    p.add_argument("--reorder", type=float, default=0.02)
    p.add_argument("--rate", type=float, default=500.0, help="events produced per second")
    p.add_argument("--reconnects", type=int, default=3)
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--persist-every", type=int, default=20)
    p.add_argument("--settle", type=float, default=120.0, help="seconds to wait for stragglers")
    p.add_argument("--session", default=None, help="session file (default: a temporary one)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.session is None:
            args.session = str(Path(tmp) / "soak.session")
        report = trio.run(soak, args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:28} {value}")
    ok = report["lost"] == 0 and report["duplicates_after_dedupe"] == 0 and report["out_of_order"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
