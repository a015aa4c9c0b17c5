"""Bridge throughput and latency: ``python tools/bench_bridge.py [--source emulator|memory]
[--events N] [--subscribers K] [--rate R]``.

``--source emulator`` (default, the real path): an emulated cluster in this process (loopback
sockets), one account as a real pool with the real updates manager (``dcpool.updates``), a
bridge with a SQLite outbox, a local webhook receiver and K Pusher-protocol subscribers
(trio-websocket clients).  Test users send messages through the emulator's messaging
(``dcpool.testing.messaging``), which pushes them to the account's session.  Two phases:

* throughput: a burst of N messages sent as fast as possible; events/s delivered to the
  webhook (max_connections 40, per-chat order) and summed over the WebSocket subscribers;
* latency: N messages paced at R per second (well below the throughput, so that queueing does
  not dominate), p50/p99 from the emulator's push (the ``send_message`` call, which hands the
  push to the session) to the webhook receiver's handler and to each subscriber's receipt.

``--source memory``: the bridge alone, fed by an in-memory source with the updates manager's
contract shapes (no pool, no emulator).  Everything runs in one process on one core: the
numbers include the emulator's and the receivers' work.  Numbers only: nothing passes or
fails; ``tools/bench.py --only bridge`` runs this as a scenario.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio  # noqa: E402

from dcpool.bridge.app import BridgeConfig, open_bridge  # noqa: E402
from dcpool.bridge.httpserver import serve_http  # noqa: E402
from dcpool.bridge.memsource import MemoryUpdateSource, simulated_update  # noqa: E402
from dcpool.bridge.pusher import account_channel, sign_channel  # noqa: E402
from dcpool.bridge.webhook import WebhookConfig  # noqa: E402


def _pts(body: dict) -> int:
    data = body["data"]
    return data["id"] if "id" in data else data["maxId"] + 1


def _percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    q = statistics.quantiles(samples, n=100, method="inclusive") if len(samples) > 1 else samples * 99
    return {"p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000}


async def bench(events: int, subscribers: int, chats: int = 50, args_max: int = 40) -> dict:
    """The bridge alone, from an in-memory source (see the module docstring)."""
    pushed_at: dict[int, float] = {}
    hook_lat: list[float] = []
    ws_lat: list[float] = []
    done_hook = trio.Event()
    hook_seen: set[int] = set()

    async def receiver(request, responder):
        body = json.loads(request.body)
        pts = _pts(body)
        if pts not in hook_seen:
            hook_seen.add(pts)
            hook_lat.append(time.perf_counter() - pushed_at[pts])
            if len(hook_seen) == events:
                done_hook.set()
        await responder.send(200, "ok")

    results: dict = {"events": events, "subscribers": subscribers, "chats": chats}
    with tempfile.TemporaryDirectory() as tmp:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_http, receiver, "127.0.0.1", 0)
            cfg = BridgeConfig(outbox=str(Path(tmp) / "o.db"), port=0, api_token="t", pusher_key="k",
                               pusher_secret="s", accounts=("acc",), poll_interval=0.5,
                               webhooks=(WebhookConfig(url=f"http://127.0.0.1:{port}/h", max_connections=args_max),))
            async with open_bridge(cfg) as bridge:
                import trio_websocket  # noqa: PLC0415

                ready = 0
                all_ready = trio.Event()
                ws_done = trio.Event()
                received = [0]

                async def subscriber() -> None:
                    nonlocal ready
                    url = f"ws://127.0.0.1:{bridge.port}/app/k?protocol=7"
                    async with trio_websocket.open_websocket_url(url) as ws:
                        hello = json.loads(await ws.get_message())
                        sid = json.loads(hello["data"])["socket_id"]
                        ch = account_channel("acc")
                        await ws.send_message(json.dumps({"event": "pusher:subscribe", "data": {
                            "channel": ch, "auth": f"k:{sign_channel('s', sid, ch)}"}}))
                        await ws.get_message()
                        ready += 1
                        if ready == subscribers:
                            all_ready.set()
                        n = 0
                        while n < events:
                            frame = json.loads(await ws.get_message())
                            if frame.get("channel") == ch:
                                n += 1
                                ws_lat.append(time.perf_counter() - pushed_at[_pts(json.loads(frame["data"]))])
                        received[0] += n
                        if received[0] == events * subscribers:
                            ws_done.set()

                for _ in range(subscribers):
                    nursery.start_soon(subscriber)
                if subscribers:
                    await all_ready.wait()
                source = MemoryUpdateSource()
                nursery.start_soon(bridge.run_account, "acc", source)
                t0 = time.perf_counter()
                for pts in range(1, events + 1):
                    update, users = simulated_update(pts, chats)
                    pushed_at[pts] = time.perf_counter()
                    source.push(update, users=users)
                    if pts % 50 == 0:
                        await trio.sleep(0)
                await done_hook.wait()
                t_hook = time.perf_counter() - t0
                if subscribers:
                    await ws_done.wait()
                t_ws = time.perf_counter() - t0
                nursery.cancel_scope.cancel()
    results["webhook"] = {"events_per_s": events / t_hook, **_percentiles(hook_lat)}
    if subscribers:
        results["websocket"] = {"events_per_s": events * subscribers / t_ws, **_percentiles(ws_lat)}
    return results


async def _subscribe(port: int, on_event: Any, ready: Any) -> None:
    """A Pusher-protocol client on the account's channel: ``on_event(data)`` per event."""
    import trio_websocket  # noqa: PLC0415

    async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}/app/k?protocol=7") as ws:
        hello = json.loads(await ws.get_message())
        sid = json.loads(hello["data"])["socket_id"]
        ch = account_channel("acc")
        await ws.send_message(json.dumps({"event": "pusher:subscribe", "data": {
            "channel": ch, "auth": f"k:{sign_channel('s', sid, ch)}"}}))
        await ws.get_message()
        ready()
        while True:
            frame = json.loads(await ws.get_message())
            if frame.get("channel") == ch and frame.get("event") == "message":
                on_event(json.loads(frame["data"]))


async def bench_emulator(events: int, subscribers: int, rate: float, senders: int = 20,
                         max_connections: int = 40) -> dict:
    """The real path (see the module docstring)."""
    from dcpool.bridge.emulated import EmulatorTarget, reserved_phone, run_emulator_account  # noqa: PLC0415
    from dcpool.testing import messaging as M  # noqa: PLC0415
    from dcpool.testing import open_cluster  # noqa: PLC0415

    sent_at: dict[str, float] = {}
    hook_at: dict[str, float] = {}
    ws_at: list[dict[str, float]] = [{} for _ in range(subscribers)]
    changed = trio.Event()

    async def receiver(request: Any, responder: Any) -> None:
        nonlocal changed
        body = json.loads(request.body)
        if body["event"] == "message":
            hook_at.setdefault(body["data"]["text"], time.perf_counter())
            changed.set()
        await responder.send(200, "ok")

    def on_ws(i: int) -> Any:
        def record(data: dict) -> None:
            nonlocal changed
            ws_at[i].setdefault(data["data"]["text"], time.perf_counter())
            changed.set()
        return record

    async def wait_all(texts: list[str]) -> tuple[float, float]:
        """When the webhook, and when every subscriber, had every text."""
        nonlocal changed
        t_hook = t_ws = None
        while t_hook is None or t_ws is None:
            if t_hook is None and all(t in hook_at for t in texts):
                t_hook = max(hook_at[t] for t in texts)
            if t_ws is None and all(t in w for w in ws_at for t in texts):
                t_ws = max((w[t] for w in ws_at for t in texts), default=0.0)
            if t_hook is None or t_ws is None:
                changed = trio.Event()
                await changed.wait()
        return t_hook, t_ws

    results: dict = {"source": "emulator", "events": events, "subscribers": subscribers,
                     "chats": senders, "rate_per_s": rate}
    with tempfile.TemporaryDirectory() as tmp:
        async with open_cluster() as cluster, trio.open_nursery() as nursery:
            world = cluster.world
            port = await nursery.start(serve_http, receiver, "127.0.0.1", 0)
            cfg = BridgeConfig(outbox=str(Path(tmp) / "o.db"), port=0, api_token="t", pusher_key="k",
                               pusher_secret="s", accounts=("acc",), poll_interval=0.5,
                               webhooks=(WebhookConfig(url=f"http://127.0.0.1:{port}/h",
                                                       max_connections=max_connections),))
            async with open_bridge(cfg) as bridge:
                target = EmulatorTarget(dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                                        dc_ids=tuple(sorted(world.dc_ids)))
                phone = reserved_phone(2, 4000)[0]
                nursery.start_soon(lambda: run_emulator_account(bridge, "acc", target, phone=phone))
                while await bridge.outbox.load_state("acc") is None:  # signed in, getState done
                    await trio.sleep(0.01)
                me = world.user_by_phone(phone)
                users = [world.user_by_phone(world.test_phone(2, 4100 + i)) for i in range(senders)]
                ready = trio.Event()
                count = 0

                def one_ready() -> None:
                    nonlocal count
                    count += 1
                    if count == subscribers:
                        ready.set()

                for i in range(subscribers):
                    nursery.start_soon(_subscribe, bridge.port, on_ws(i), one_ready)
                if subscribers:
                    await ready.wait()

                def send(label: str, i: int) -> str:
                    text = f"{label}{i}"
                    sent_at[text] = time.perf_counter()
                    M.send_message(world, users[i % senders].id, me.id, text)
                    return text

                # throughput: a burst
                t0 = time.perf_counter()
                burst = []
                for i in range(events):
                    burst.append(send("t", i))
                    if i % 100 == 99:
                        await trio.sleep(0)  # let the sockets move
                t_hook, t_ws = await wait_all(burst)
                results["throughput"] = {
                    "webhook_events_per_s": events / (t_hook - t0),
                    "websocket_events_per_s": events * subscribers / (t_ws - t0) if subscribers else None}
                # latency: paced
                paced = []
                start = trio.current_time()
                for i in range(events):
                    await trio.sleep_until(start + i / rate)
                    paced.append(send("l", i))
                await wait_all(paced)
                results["latency"] = {
                    "webhook": _percentiles([hook_at[t] - sent_at[t] for t in paced]),
                    "websocket": _percentiles([w[t] - sent_at[t] for w in ws_at for t in paced]),
                }
                nursery.cancel_scope.cancel()
    return results


def report_lines(results: dict) -> list[str]:
    if results.get("source") == "emulator":
        t, lat = results["throughput"], results["latency"]
        ws = t["websocket_events_per_s"]
        return [
            f"throughput (burst of {results['events']} messages from {results['chats']} users)",
            f"  webhook    {t['webhook_events_per_s']:9.0f} events/s",
            f"  websocket  {ws:9.0f} events/s summed over {results['subscribers']} subscribers" if ws else "",
            f"latency (emulator push -> receipt; {results['events']} messages paced at {results['rate_per_s']:.0f}/s)",
            f"  webhook    p50 {lat['webhook']['p50_ms']:7.1f} ms   p99 {lat['webhook']['p99_ms']:7.1f} ms",
            f"  websocket  p50 {lat['websocket']['p50_ms']:7.1f} ms   p99 {lat['websocket']['p99_ms']:7.1f} ms",
        ]
    out = []
    for name in ("webhook", "websocket"):
        if name in results:
            r = results[name]
            out.append(f"{name:9s}  {r['events_per_s']:9.0f} events/s   latency p50 {r['p50_ms']:7.1f} ms   "
                       f"p99 {r['p99_ms']:7.1f} ms")
    return out


def run(source: str = "emulator", events: int = 2000, subscribers: int = 4, chats: int = 50,
        rate: float = 100.0) -> dict:
    if source == "memory":
        return dict(trio.run(bench, events, subscribers, chats), source="memory")
    return trio.run(bench_emulator, events, subscribers, rate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_bridge", description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("emulator", "memory"), default="emulator")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--chats", type=int, default=50, help="memory: distinct chats (webhook order is per chat)")
    parser.add_argument("--rate", type=float, default=100.0, help="emulator: messages/s of the latency phase")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    results = run(args.source, args.events, args.subscribers, args.chats, args.rate)
    for line in report_lines(results):
        if line:
            print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
