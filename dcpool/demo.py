"""``dcpool demo``: watch the pool route requests across DCs against the embedded emulator.

What it does (and why each step matters):

1. starts a 5-DC emulated cluster in this process, with documents stored on DCs 1, 3, 4, 5;
2. opens a pool on a fresh session file, homed on DC 1 — the *wrong* DC for the test number
   ``9996621234`` — and signs in: DC 1 answers ``PHONE_MIGRATE_2``, the pool moves home to DC 2;
3. downloads every file in parallel, each straight from the DC that stores it: the pool creates
   an auth key per DC and transfers the authorization (export on DC 2, import on the target)
   exactly once per DC, however many parts race for it;
4. prints a routing table, then runs again on the same session file: stored keys and
   authorization marks mean no key exchange and no export the second time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from typing import Any

import trio

from . import tl
from .errors import DcPoolError, HandshakeError, NetworkError, RequestTimeout

TEST_PHONE = "9996621234"
FILE_SIZES = {1: 3 << 20, 3: 2 << 20, 4: 6 << 20, 5: 4 << 20}


def _console(json_mode: bool):
    from rich.console import Console

    return Console(stderr=json_mode, quiet=json_mode, width=max(110, Console().width))


async def _run_once(cluster, path: str, files, console, *, label: str, parallel: int) -> dict[str, Any]:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    from .pool import open_pool

    before = cluster.statistics()
    t0 = time.perf_counter()
    migrations: list[dict[str, Any]] = []
    async with open_pool(api_id=1, api_hash="dcpool-demo", storage=path, dc_list=cluster.dc_list(),
                         rsa_keys=cluster.rsa_keys(), home_dc=1) as pool:
        async with pool.events() as events:

            async def watch():
                async for ev in events:
                    if ev.kind == "migrated":
                        migrations.append({"from": ev.dc_id, **ev.data})
                        console.print(f"  [yellow]↪ {ev.data['error']}[/] on DC {ev.dc_id}: "
                                      f"{ev.data['request']} goes to DC {ev.data['to']}")
                    elif ev.kind == "home_changed":
                        console.print(f"  [green]⌂ home DC is now {ev.dc_id}[/] (was {ev.data['old']})")
                    elif ev.kind == "transfer_done" and not ev.data.get("skipped"):
                        console.print(f"  [cyan]⇄ authorization transferred to DC {ev.dc_id}[/]")
                    elif ev.kind == "key_created":
                        console.print(f"  [magenta]🔑 auth key created on DC {ev.dc_id}[/]")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                if pool.user_id is None:
                    console.print(f"[bold]{label}:[/] signing in as {TEST_PHONE} starting from DC 1")
                    user = await pool.sign_in(TEST_PHONE, "22222")
                    console.print(f"  signed in as user {user.id}, home DC {pool.home_dc}")
                else:
                    console.print(f"[bold]{label}:[/] session already signed in as user "
                                  f"{pool.user_id}, home DC {pool.home_dc}")
                console.print(f"  downloading {len(files)} files from DCs "
                              f"{', '.join(str(f.dc_id) for f in files)} ({parallel} parts in parallel each)")
                results: dict[int, bool] = {}
                with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                              TransferSpeedColumn(), console=console, transient=False) as progress:

                    async def fetch(f):
                        task = progress.add_task(f"DC {f.dc_id} file {f.id & 0xffff:04x}", total=f.size)
                        digest = hashlib.sha256()
                        async with pool.download(f.input_location(), dc_id=f.dc_id,
                                                 size=f.size, parallel=parallel) as chunks:
                            async for chunk in chunks:
                                digest.update(chunk)
                                progress.update(task, advance=len(chunk))
                        results[f.id] = digest.hexdigest() == f.sha256

                    async with trio.open_nursery() as downloads:
                        for f in files:
                            downloads.start_soon(fetch, f)
                nursery.cancel_scope.cancel()
        stats = pool.statistics()
    elapsed = time.perf_counter() - t0
    after = cluster.statistics()
    total_bytes = sum(f.size for f in files)
    per_dc = {}
    for dc in sorted(cluster.servers):
        s, b, mine = after[dc], before[dc], stats.dcs.get(dc)
        per_dc[dc] = {
            "endpoint": mine.endpoint if mine else None,
            "key_state": mine.key_state if mine else "none",
            "handshakes": s.handshakes - b.handshakes,
            "exports": s.exports - b.exports,
            "imports": s.imports - b.imports,
            "requests": s.total_requests - b.total_requests,
            "bytes": s.bytes_served - b.bytes_served,
            "migrations": mine.migrations if mine else 0,
        }
    return {
        "label": label,
        "home_dc": stats.home_dc,
        "elapsed_s": round(elapsed, 3),
        "bytes": total_bytes,
        "throughput_mb_s": round(total_bytes / elapsed / 1e6, 2),
        "files_ok": all(results.values()) and len(results) == len(files),
        "migrations": migrations,
        "handshakes": sum(d["handshakes"] for d in per_dc.values()),
        "exports": sum(d["exports"] for d in per_dc.values()),
        "imports": sum(d["imports"] for d in per_dc.values()),
        "dcs": per_dc,
    }


def _table(run: dict[str, Any], console) -> None:
    from rich.table import Table

    table = Table(title=f"{run['label']}: routing table (home DC {run['home_dc']})")
    for col in ("DC", "endpoint", "key", "handshakes", "exports", "imports", "requests", "bytes", "migrations"):
        table.add_column(col, justify="right" if col not in ("endpoint", "key") else "left")
    for dc, d in run["dcs"].items():
        table.add_row(str(dc), d["endpoint"] or "-", d["key_state"], str(d["handshakes"]), str(d["exports"]),
                      str(d["imports"]), str(d["requests"]), f"{d['bytes']:,}", str(d["migrations"]))
    console.print(table)
    console.print(f"  {run['bytes'] / 1e6:.1f} MB in {run['elapsed_s']:.2f} s = "
                  f"[bold]{run['throughput_mb_s']} MB/s[/]; key exchanges: {run['handshakes']}, "
                  f"exports: {run['exports']}, imports: {run['imports']}")


async def run_demo(*, json_mode: bool = False, session: str | None = None, parallel: int = 4) -> int:
    from .testing import open_cluster

    console = _console(json_mode)
    with trio.fail_after(120):
        async with open_cluster() as cluster:
            files = [cluster.add_file(dc, size=size) for dc, size in FILE_SIZES.items()]
            tmp = None
            if session is None:
                tmp = tempfile.mkdtemp(prefix="dcpool-demo-")
                session = os.path.join(tmp, "demo.session")
            console.print(f"[bold]dcpool demo[/]: emulated DCs {sorted(cluster.servers)} on 127.0.0.1, "
                          f"session file {session}")
            first = await _run_once(cluster, session, files, console, label="run 1 (fresh session)",
                                    parallel=parallel)
            _table(first, console)
            second = await _run_once(cluster, session, files, console,
                                     label="run 2 (same session file)", parallel=parallel)
            _table(second, console)
    foreign = [dc for dc in FILE_SIZES if dc != first["home_dc"]]
    checks = {
        "files_ok": first["files_ok"] and second["files_ok"],
        "phone_migrate_followed": any(m["error"] == "PHONE_MIGRATE_X" for m in first["migrations"])
        and first["home_dc"] == 2,
        "one_export_per_foreign_dc": first["exports"] == len(foreign)
        and all(first["dcs"][dc]["imports"] == 1 for dc in foreign),
        "second_run_no_key_exchange": second["handshakes"] == 0,
        "second_run_no_export": second["exports"] == 0,
    }
    summary = {"ok": all(checks.values()), "checks": checks, "runs": [first, second]}
    if json_mode:
        print(json.dumps(summary, default=str))
    else:
        for name, ok in checks.items():
            console.print(f"  {'[green]✔' if ok else '[red]✘'}[/] {name.replace('_', ' ')}")
    if not summary["ok"]:
        failed = ", ".join(k for k, v in checks.items() if not v)
        print(f"dcpool demo: FAILED: {failed}", file=sys.stderr)
        return 1
    return 0


async def run_telegram_test(*, api_id: int, api_hash: str, phone: str, session: str | None,
                            json_mode: bool = False, timeout: float = 15.0) -> int:
    """The same flow against Telegram's real test DCs (built-in test list and key)."""
    from .pool import open_pool

    console = _console(json_mode)
    dc = int(phone[5]) if phone.startswith("99966") and len(phone) == 10 else 2
    code = str(dc) * 5
    try:
        with trio.fail_after(timeout * 4):
            async with open_pool(api_id=api_id, api_hash=api_hash, storage=session, test_mode=True,
                                 home_dc=2, connect_timeout=timeout / 3, connect_attempts=1,
                                 request_timeout=timeout, fetch_config=False) as pool:
                config = await pool.invoke(tl.api.help.GetConfig())
                console.print(f"config: this_dc={config.this_dc}, {len(config.dc_options)} options")
                user = await pool.sign_in(phone, code)
                console.print(f"signed in as {user.id}, home DC {pool.home_dc}")
                if json_mode:
                    print(json.dumps({"ok": True, "home_dc": pool.home_dc, "user_id": user.id}))
                return 0
    except (NetworkError, HandshakeError, RequestTimeout, trio.TooSlowError, OSError) as exc:
        print(f"dcpool demo: cannot reach Telegram's test DCs ({type(exc).__name__}: {exc}); "
              "this machine may have no internet access", file=sys.stderr)
        return 2
    except DcPoolError as exc:
        print(f"dcpool demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
