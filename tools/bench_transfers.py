"""Issue 15's benchmark scenarios, loaded by tools/bench.py (which passes itself to :func:`bind`):

* ``upload``: ``pool.upload`` (parallel 1, 4, 8) against Telethon's ``upload_file`` (one part at
  a time), same emulator, same file size, loopback and 50 ms RTT; every upload is then used in
  ``messages.uploadMedia`` (not timed) so a broken upload cannot count;
* ``cdn``: the same file downloaded through a CDN DC (``upload.fileCdnRedirect``, AES-256-CTR,
  SHA-256 per 128 KiB) and straight from its master DC, loopback and 50 ms RTT.

Numbers only; no pass/fail.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import time
from typing import Any

B: Any = None  # tools/bench.py, set by bind()

CDN_DC = 203
PARALLELS = (1, 4, 8)


def bind(bench: Any) -> None:
    global B
    B = bench


def _upload_bytes(cfg: dict[str, Any]) -> int:
    # big enough for saveBigFilePart (> 10 MiB) in both modes
    return 12 << 20 if cfg["file_bytes"] <= 8 << 20 else cfg["file_bytes"]


# --------------------------------------------------------------------------- orchestrator side


def scenario_upload(cfg: dict[str, Any], report: Any, profile: bool) -> dict[str, Any]:
    size = _upload_bytes(cfg)
    timeout = cfg["worker_timeout"]
    out: dict[str, Any] = {"file_bytes": size, "part_size": B.PART, "networks": {}}
    rows: list[list[Any]] = []
    with B.Emulator() as emu:
        for latency in (0.0, 25.0):
            label = "loopback" if latency == 0 else f"{2 * latency:.0f} ms RTT"
            emu.command(f"latency {latency}")
            emu.command("reset")
            common = {"info": emu.info, "size": size, "repeats": cfg["dl_repeats"], "timeout": timeout}
            net: dict[str, Any] = {"latency_ms_per_direction": latency}
            for key, worker, params in (("telethon", "ul_telethon", common),
                                        ("dcpool", "ul_dcpool", dict(common, parallels=list(PARALLELS)))):
                try:
                    net[key] = B.run_worker(worker, params, timeout)
                except B.BenchError as exc:
                    net[key] = {"error": str(exc)}
            out["networks"][label] = net
            tele = net["telethon"]
            base = float("nan")
            if "error" in tele:
                rows.append([label, "telethon upload_file", "1", "error", "", ""])
            else:
                base = B._median([r["mbps"] for r in tele["runs"]])
                tele["mbps_median"] = base
                rows.append([label, "telethon upload_file", "1", B._f(base), "1.00",
                             B._f(B._median([r["mb_per_cpu_s"] for r in tele["runs"]]), 0)])
            dc = net["dcpool"]
            if "error" in dc:
                rows.append([label, "dcpool upload", "-", "error", "", ""])
                continue
            for entry in dc["results"]:
                mbps = B._median([r["mbps"] for r in entry["runs"]])
                entry.update(mbps_median=mbps, ratio_vs_telethon=mbps / base)
                rows.append([label, "dcpool upload", str(entry["parallel"]), B._f(mbps), B._f(mbps / base, 2),
                             B._f(B._median([r["mb_per_cpu_s"] for r in entry["runs"]]), 0)])
    caption = (f"{size / (1 << 20):.0f} MiB of random bytes to the home DC (saveBigFilePart, 512 KiB parts), "
               f"key and login in place; median of {cfg['dl_repeats']} run(s); MB = 10^6 B. Each upload is "
               f"then used in messages.uploadMedia (not timed), which checks every part arrived.")
    report.table("6. Upload", ["network", "client", "parts in flight", "MB/s", "× Telethon", "MB per CPU-s"],
                 rows, caption)
    return out


def scenario_cdn(cfg: dict[str, Any], report: Any, profile: bool) -> dict[str, Any]:
    size = cfg["file_bytes"]
    timeout = cfg["worker_timeout"]
    out: dict[str, Any] = {"file_bytes": size, "networks": {}}
    rows: list[list[Any]] = []
    with B.Emulator(files=[(B.FILE_DC, size)], extra_args=["--cdn-dcs", str(CDN_DC)]) as emu:
        f = emu.info["files"][0]
        emu.control({"cmd": "serve_from_cdn", "file_id": f["id"], "cdn_dc": CDN_DC})
        for latency in (0.0, 25.0):
            label = "loopback" if latency == 0 else f"{2 * latency:.0f} ms RTT"
            emu.command(f"latency {latency}")
            emu.command("reset")
            try:
                res = B.run_worker("cdn_dcpool", {"info": emu.info, "file": f, "repeats": cfg["dl_repeats"],
                                                  "parallel": 4, "timeout": timeout}, timeout)
            except B.BenchError as exc:
                res = {"error": str(exc)}
            out["networks"][label] = res
            if "error" in res:
                rows.append([label, "error", "", "", ""])
                continue
            master = B._median([r["mbps"] for r in res["master"]])
            via_cdn = B._median([r["mbps"] for r in res["cdn"]])
            res.update(master_mbps_median=master, cdn_mbps_median=via_cdn)
            rows.append([label, B._f(master), B._f(via_cdn), B._f(via_cdn / master, 2),
                         B._f(B._median([r["mb_per_cpu_s"] for r in res["cdn"]]), 0)])
    caption = (f"{size / (1 << 20):.0f} MiB on DC {B.FILE_DC} (pool homed on DC {B.HOME_DC}), 512 KiB parts, "
               f"4 in flight; master: upload.getFile without cdn_supported; CDN: fileCdnRedirect to DC {CDN_DC}, "
               f"AES-256-CTR decryption and a SHA-256 check per 128 KiB on the client. Median of "
               f"{cfg['dl_repeats']} run(s).")
    report.table("7. CDN download", ["network", "master MB/s", "CDN MB/s", "CDN / master", "CDN MB per CPU-s"],
                 rows, caption)
    return out


SCENARIO_FUNCS = {"upload": scenario_upload, "cdn": scenario_cdn}


# --------------------------------------------------------------------------- worker side


def w_ul_dcpool(p: dict[str, Any]) -> dict[str, Any]:
    import trio

    import dcpool
    from dcpool import tl

    api = tl.api
    size = p["size"]
    data = os.urandom(size)
    result: dict[str, Any] = {"results": []}

    async def check(pool: Any, input_file: Any, expected: int = size) -> None:
        media = api.InputMediaUploadedDocument(file=input_file, mime_type="application/octet-stream",
                                               attributes=[])
        got = await pool.invoke(api.messages.UploadMedia(peer=api.InputPeerSelf(), media=media))
        if got.document.size != expected:
            raise B.BenchError("dcpool upload: wrong size on the DC")

    async def run() -> None:
        with trio.fail_after(p["timeout"]):
            async with dcpool.open_pool(**B._dcpool_options(p["info"])) as pool:
                await pool.sign_in(B.PHONE, B.CODE)
                await check(pool, await pool.upload(data[: 1 << 20]), 1 << 20)  # warm-up: upload lane open
                for par in p["parallels"]:
                    runs = []
                    for _ in range(p["repeats"]):
                        gc.collect()
                        t0, c0 = time.perf_counter(), time.process_time()
                        input_file = await pool.upload(data, parallel=par)
                        t1, c1 = time.perf_counter(), time.process_time()
                        await check(pool, input_file)
                        runs.append(B._run_stats(size, t1 - t0, c1 - c0))
                    result["results"].append({"parallel": par, "runs": runs})

    trio.run(run)
    return result


def w_ul_telethon(p: dict[str, Any]) -> dict[str, Any]:
    from telethon.tl import functions, types

    size = p["size"]
    data = os.urandom(size)
    out: dict[str, Any] = {"part_size_kb": 512, "runs": []}

    async def run() -> None:
        client = await B._telethon_client(p["info"])
        try:
            async def check(handle: Any) -> None:
                media = types.InputMediaUploadedDocument(file=handle, mime_type="application/octet-stream",
                                                         attributes=[])
                got = await client(functions.messages.UploadMediaRequest(peer=types.InputPeerSelf(), media=media))
                if got.document.size != size:
                    raise B.BenchError("telethon upload: wrong size on the DC")

            await check(await client.upload_file(data, part_size_kb=512, file_size=size, file_name="w.bin"))
            for _ in range(p["repeats"]):
                gc.collect()
                t0, c0 = time.perf_counter(), time.process_time()
                handle = await client.upload_file(data, part_size_kb=512, file_size=size, file_name="b.bin")
                t1, c1 = time.perf_counter(), time.process_time()
                await check(handle)
                out["runs"].append(B._run_stats(size, t1 - t0, c1 - c0))
        finally:
            await client.disconnect()

    asyncio.run(asyncio.wait_for(run(), p["timeout"]))
    return out


def w_cdn_dcpool(p: dict[str, Any]) -> dict[str, Any]:
    import trio

    import dcpool
    from dcpool.dcs import DcOption

    f, size = p["file"], p["file"]["size"]
    loc = B._dcpool_location(f)
    options = B._dcpool_options(p["info"])
    cdn_ids = {int(dc) for dc in p["info"].get("cdn_dcs", {})}
    options["dc_list"] = [DcOption(id=o.id, ip_address=o.ip_address, port=o.port, cdn=o.id in cdn_ids)
                          for o in options["dc_list"]]
    out: dict[str, Any] = {"master": [], "cdn": []}

    async def one(pool: Any, cdn: bool, hashing: bool = False) -> dict[str, Any]:
        h = hashlib.sha256()
        n = 0
        t0, c0 = time.perf_counter(), time.process_time()
        async with pool.download(loc, dc_id=B.FILE_DC, size=size, parallel=p["parallel"],
                                 cdn_supported=cdn) as chunks:
            async for chunk in chunks:
                n += len(chunk)
                if hashing:
                    h.update(chunk)
        t1, c1 = time.perf_counter(), time.process_time()
        if n != size or (hashing and h.hexdigest() != f["sha256"]):
            raise B.BenchError("CDN bench: wrong content")
        return B._run_stats(n, t1 - t0, c1 - c0)

    async def run() -> None:
        with trio.fail_after(p["timeout"]):
            async with dcpool.open_pool(**options) as pool:
                await pool.sign_in(B.PHONE, B.CODE)
                await one(pool, True, hashing=True)  # warm-up: both paths verified, keys in place
                await one(pool, False, hashing=True)
                for _ in range(p["repeats"]):
                    gc.collect()
                    out["master"].append(await one(pool, False))
                    gc.collect()
                    out["cdn"].append(await one(pool, True))

    trio.run(run)
    return out


WORKERS = {"ul_dcpool": w_ul_dcpool, "ul_telethon": w_ul_telethon, "cdn_dcpool": w_cdn_dcpool}
