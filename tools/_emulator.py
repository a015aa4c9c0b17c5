"""A controllable emulator process for the benchmarks (``tools/bench.py``).

Theory of operation
-------------------
Client CPU time is only meaningful if the server's work is done by *another* process, so
the benchmarks never run the emulator in the measuring process.  This script runs
:func:`dcpool.testing.open_cluster` in its own process and talks over its stdio:

* the **first stdout line** is one JSON object, the same shape as ``python -m dcpool.cli
  emulator --json``::

      {"dcs": [{"dc_id": 1, "host": "127.0.0.1", "port": 40001}, ...],
       "host": "127.0.0.1", "port": <DC 2's port>,
       "rsa_public_key": "-----BEGIN RSA PUBLIC KEY-----...", "rsa_fingerprint": <int64>,
       "latency_ms": 25.0,
       "files": [{"dc_id": 4, "id": ..., "access_hash": ..., "file_reference": "<hex>",
                  "size": ..., "sha256": "<hex>"}]}

* then it reads **commands on stdin**, one per line, and answers each with one JSON line:

  ``stats``            per-DC counters (handshakes, exports, imports, requests, errors,
                       bytes served, connections) -- how the benchmarks count exports;
  ``reset``            zero the counters;
  ``latency <ms>``     change the injected latency (per direction, every DC);
  ``ping``             ``{"ok": true}``;
  ``quit``             exit (end of stdin does the same, so a dead parent never leaves an
                       emulator behind; ``--max-seconds`` is a last safety net).

Before announcing itself the emulator warms up (one key exchange and one request per DC from an
in-process client, counters reset afterwards), so that no measured client pays its first-use
costs.  Latency is the emulator's own delay line (``DcFaults.latency``): every packet waits that long
in *each* direction, so ``--latency-ms 25`` is a 50 ms round trip.

Usage: ``python tools/_emulator.py [--latency-ms MS] [--file DC:BYTES]... [--max-seconds S]``
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from typing import Any

import trio

from dcpool.testing import open_cluster


def _parse_file(spec: str) -> tuple[int, int]:
    dc, _, size = spec.partition(":")
    return int(dc), int(size)


def _stats_json(cluster: Any) -> dict[str, Any]:
    snap = cluster.statistics()
    out: dict[str, Any] = {}
    for dc, s in snap.dcs.items():
        out[str(dc)] = {
            "handshakes": s.handshakes,
            "exports": s.exports,
            "imports": s.imports,
            "requests": dict(s.requests),
            "errors": dict(s.errors),
            "bytes_served": s.bytes_served,
            "connections_live": s.connections_live,
            "connections_total": s.connections_total,
        }
    return out


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _warm_up(cluster: Any) -> None:
    """One key exchange and one request per DC from an in-process client, before announcing.

    The first handshake a fresh emulator serves costs it ~100 ms more (lazy TL classes, first
    big-int paths): without this, whichever client a benchmark measures first pays for it.
    The counters are reset afterwards."""
    import dcpool
    from dcpool import tl

    latency = {dc: cluster.faults(dc).latency for dc in cluster.world.dc_ids}
    for dc in cluster.world.dc_ids:
        cluster.faults(dc).latency = 0.0
    try:
        with trio.fail_after(30):
            async with dcpool.open_pool(api_id=1, api_hash="warm-up", dc_list=cluster.dc_list(),
                                        rsa_keys=cluster.rsa_keys(), home_dc=2, fetch_config=False) as pool:
                async with trio.open_nursery() as nursery:
                    for dc in cluster.world.dc_ids:
                        nursery.start_soon(functools.partial(pool.invoke, tl.api.help.GetNearestDc(), dc_id=dc))
    finally:
        for dc, value in latency.items():
            cluster.faults(dc).latency = value
        cluster.world.cluster_stats.reset()


async def serve(latency_ms: float, files: list[tuple[int, int]], max_seconds: float, warm_up: bool) -> None:
    with trio.move_on_after(max_seconds):
        async with open_cluster(latency=latency_ms / 1000.0) as cluster:
            for dc in cluster.world.dc_ids:
                # Long benchmarks do not need the per-message duplicate tracking (memory, CPU).
                cluster.world.stats(dc).track_executions = False
            if warm_up:
                await _warm_up(cluster)
            stored = [cluster.add_file(dc, size=size) for dc, size in files]
            dcs = []
            for dc in cluster.world.dc_ids:
                host, port = cluster.endpoint(dc)
                dcs.append({"dc_id": dc, "host": host, "port": port})
            home = next((d for d in dcs if d["dc_id"] == 2), dcs[0])
            _emit(
                {
                    "dcs": dcs,
                    "host": home["host"],
                    "port": home["port"],
                    "rsa_public_key": cluster.rsa_public_pem(),
                    "rsa_fingerprint": cluster.rsa_public_key().fingerprint,
                    "latency_ms": latency_ms,
                    "files": [
                        {
                            "dc_id": f.dc_id,
                            "id": f.id,
                            "access_hash": f.access_hash,
                            "file_reference": f.file_reference.hex(),
                            "size": f.size,
                            "sha256": f.sha256,  # also materializes the content up front
                        }
                        for f in stored
                    ],
                }
            )
            while True:
                line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
                if not line:
                    return  # the parent is gone (or closed our stdin): stop
                cmd, _, arg = line.strip().partition(" ")
                if cmd == "stats":
                    _emit({"stats": _stats_json(cluster)})
                elif cmd == "reset":
                    cluster.world.cluster_stats.reset()
                    _emit({"ok": True})
                elif cmd == "latency":
                    for dc in cluster.world.dc_ids:
                        cluster.faults(dc).latency = float(arg) / 1000.0
                    _emit({"ok": True, "latency_ms": float(arg)})
                elif cmd == "ping":
                    _emit({"ok": True})
                elif cmd == "quit":
                    _emit({"ok": True})
                    return
                else:
                    _emit({"error": f"unknown command {cmd!r}"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="injected latency per direction, every DC (default 0)")
    parser.add_argument("--file", action="append", default=[], type=_parse_file, metavar="DC:BYTES",
                        help="add a pseudo-random file of BYTES bytes on DC (repeatable)")
    parser.add_argument("--max-seconds", type=float, default=1800.0,
                        help="exit after this long whatever happens (safety net)")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help="skip the in-process warm-up (one handshake + request per DC)")
    args = parser.parse_args(argv)
    trio.run(serve, args.latency_ms, args.file, args.max_seconds, args.warm_up)
    return 0


if __name__ == "__main__":
    sys.exit(main())
