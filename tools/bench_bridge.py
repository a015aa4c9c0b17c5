"""Bridge throughput and latency: ``python tools/bench_bridge.py [--events N] [--subscribers K]``.

Pushes N updates through the update-source seam (an in-memory source with the updates
manager's contract shapes) into a bridge with a SQLite outbox, and measures
* webhook: events/s delivered to a local receiver (max_connections 40, per-chat order), and
  end-to-end latency p50/p99 from the push to the receiver's handler;
* WebSocket: events/s summed over K Pusher-protocol subscribers (trio-websocket clients), and
  latency p50/p99 from the push to the client's receipt.
Numbers only: nothing passes or fails.  To be registered as a scenario of tools/bench.py when
the branches merge (``main(argv)`` returns the results as a dict too).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_bridge", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--chats", type=int, default=50, help="distinct chats (webhook order is per chat)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    results = trio.run(bench, args.events, args.subscribers, args.chats)
    for name in ("webhook", "websocket"):
        if name in results:
            r = results[name]
            print(f"{name:9s}  {r['events_per_s']:9.0f} events/s   latency p50 {r['p50_ms']:7.1f} ms   p99 {r['p99_ms']:7.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
