"""Updates soak: every message once, in order per box, while pushes are dropped, duplicated and
reordered, connections are killed, the session is lost and the client process is SIGKILLed and
started again.

Usage::

    python tools/updates_soak.py --messages 10000 [--seed 1] [--json]

Theory of operation
-------------------
The parent process runs one 5-DC :func:`dcpool.testing.open_cluster` (the emulator, with the
senders and the push faults).  The client runs in a child process (this file with ``--child``):
a real :func:`dcpool.open_pool` on a SQLite session file, :func:`dcpool.updates.open_updates`
on it, and a consumer that appends every delivered item (dedupe key, box, pts, text, wall time,
generation) to a JSON-lines file and ``fsync``\\ s it BEFORE acknowledging the item (items already
waiting are written with it: one fsync per batch, at most 256); the updates
state is written every ``--persist-every`` acknowledgements.  So the file holds everything the
client ever acknowledged, and the session file a state at or before it: at-least-once.

A seeded plan of ``--messages`` events is produced by the emulator's helpers
(:mod:`dcpool.testing.messaging`): private messages from ``--senders`` users (the common box)
and posts in ``--channels`` channels (one box each), ``--rate`` events per second.  Every text
names its box and its number in that box; the parent keeps the server pts of each.

Faults, all seeded: each push is dropped with ``--drop`` probability, duplicated with ``--dup``,
held back and sent after the next push with ``--reorder``; ``--reconnects`` times the DC kills
every connection; once the server forgets the session (``new_session_created``); ``--restarts``
times the child is killed with SIGKILL mid-run, 20 events are produced while it is down, and it
is started again on the same session file (it resumes from the persisted state with
getDifference).  After the plan, faults stop and one last message per box is sent (a trailing
dropped push is otherwise found only by the 15-minute idle rule).

Counted from the consumer's file: ``lost`` (produced, never delivered); ``duplicates_after_dedupe``
(one message delivered under two dedupe keys: must be 0); ``redelivered_after_crash`` (a key
delivered again by a later generation of the client: the at-least-once replay, removed by
``dedupe_key``); ``repeated_within_run`` (a key delivered twice by one generation); ``out_of_order``
(per box, a first delivery whose server pts is below an earlier one); recovery latency of the
messages whose push was dropped (produced → written by the consumer, wall clock).  Differences
and gaps: the server's request counters and the manager's statistics (each generation writes a
snapshot every 0.25 s; a killed generation's last snapshot counts).  The manager's
``duplicates_dropped`` is ``duplicate_pushes`` (a push received again: at most the emulator's
``duplicated``) plus ``already_applied`` (a push that a difference returned too: every push held
in a gap buffer or received while a difference was in flight; most of them).  Exit status 1 when anything
is lost, delivered twice after dedupe or out of order.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dcpool import tl  # noqa: E402

api = tl.api
COMMON = "common"


# --------------------------------------------------------------------------- the client (child)


def box_name(box: int | None) -> str:
    return COMMON if box is None else f"c{box}"


MAX_BATCH = 256


def record_of(item: Any, generation: int, now: float) -> dict[str, Any]:
    """One line of the consumer's file."""
    from dcpool.updates import Update

    if not isinstance(item, Update):
        return {"g": generation, "lost": box_name(item.box), "t": now}
    message = getattr(item.update, "message", None)
    text = getattr(message, "message", None)
    return {"g": generation, "k": item.dedupe_key, "b": box_name(item.box), "p": item.pts,
            "x": text if isinstance(text, str) else None, "t": now}


def replace_file(path: Path, data: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(data)
    tmp.replace(path)


def append_durably(fd: int, line: bytes) -> None:
    os.write(fd, line)
    os.fsync(fd)


async def child(config_path: str, generation: int, sign_in: bool) -> None:
    """The client process: pool + updates manager + a consumer that fsyncs before acking."""
    from dcpool.crypto.rsa import RsaPublicKey
    from dcpool.dcs import DcOption
    from dcpool.pool import open_pool
    from dcpool.updates import open_updates, store_for

    config = json.loads(Path(config_path).read_text())
    key = RsaPublicKey.from_pem(config["rsa_public_key"])
    dc_list = [DcOption(**d) for d in config["dc_list"]]
    out_path = Path(config["records"])
    stats_path = Path(config["stats_dir"]) / f"stats-{generation}.json"
    # A record torn by the previous generation's SIGKILL must not swallow our first one.
    if out_path.exists() and out_path.stat().st_size:
        with out_path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
    else:
        torn = False
    fd = os.open(out_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    if torn:
        os.write(fd, b"\n")
    async with open_pool(api_id=1, api_hash="x", dc_list=dc_list, rsa_keys={key.fingerprint: key},
                         home_dc=2, fetch_config=False, storage=config["session"]) as pool:
        if sign_in:
            await pool.sign_in(config["phone"], "22222")
        async with open_updates(pool, store=store_for(pool.storage),
                                persist_every=config["persist_every"]) as stream:
            while not stream.box.known:
                await trio.sleep(0.01)
            for channel_id, access_hash in config["channels"]:
                stream.track_channel(channel_id, access_hash, 1)  # a stored pts wins
            print("ready", flush=True)

            async with trio.open_nursery() as nursery:

                async def until_stdin_closes() -> None:
                    # The parent closes our stdin to stop us cleanly (SIGKILL is the crash).
                    stdin = trio.lowlevel.FdStream(os.dup(0))
                    while await stdin.receive_some():
                        pass
                    nursery.cancel_scope.cancel()

                async def snapshots() -> None:
                    while True:
                        data = json.dumps(attrs.asdict(stream.statistics()))
                        await trio.to_thread.run_sync(replace_file, stats_path, data)
                        await trio.sleep(0.25)

                nursery.start_soon(until_stdin_closes)
                nursery.start_soon(snapshots)
                async for item in stream:
                    # Group commit: what is already waiting joins this write, one fsync for all.
                    batch = [item]
                    while stream.statistics().pending and len(batch) < MAX_BATCH:
                        batch.append(await anext(stream))  # returns at once: it is waiting
                    now = time.time()
                    lines = b"".join((json.dumps(record_of(i, generation, now)) + "\n").encode() for i in batch)
                    # On disk before the state after them may be persisted (in a thread: no
                    # blocking I/O on the event loop).
                    await trio.to_thread.run_sync(append_durably, fd, lines)
                    for done in batch:
                        await stream.ack(done)


# --------------------------------------------------------------------------- the emulator (parent)


class Records:
    """The consumer's file, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.first: dict[str, dict[str, Any]] = {}  # dedupe key -> first record
        self.by_text: dict[str, str] = {}  # text -> dedupe key of its first delivery
        self.order: dict[str, list[str]] = {}  # box -> texts in first-delivery order
        self.twice = 0
        self.redelivered = 0
        self.repeated = 0
        self.states_lost = 0
        self.torn = 0

    def poll(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if line.strip():
                self.take(line)

    def take(self, line: bytes) -> None:
        try:
            rec = json.loads(line)
        except ValueError:
            self.torn += 1  # a write cut by SIGKILL (never acknowledged)
            return
        if "lost" in rec:
            self.states_lost += 1
            return
        text = rec["x"]
        if text is None or ":" not in text:
            return
        first = self.first.get(rec["k"])
        if first is not None:
            if rec["g"] > first["g"]:
                self.redelivered += 1
            else:
                self.repeated += 1
            return
        self.first[rec["k"]] = rec
        if text in self.by_text:
            self.twice += 1
            return
        self.by_text[text] = rec["k"]
        self.order.setdefault(text.rsplit(":", 1)[0], []).append(text)

    def delivered_at(self, text: str) -> float:
        return self.first[self.by_text[text]]["t"]


class Client:
    """One generation of the child process."""

    def __init__(self, config_path: Path, generation: int) -> None:
        self.config_path = config_path
        self.generation = generation
        self.process: trio.Process | None = None

    async def start(self, sign_in: bool, timeout: float = 60.0) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(self.config_path),
               "--generation", str(self.generation)] + (["--sign-in"] if sign_in else [])
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.process = process = await trio.lowlevel.open_process(cmd, stdin=subprocess.PIPE,
                                                                  stdout=subprocess.PIPE, env=env)
        assert process.stdout is not None
        seen = b""
        with trio.fail_after(timeout):
            while b"ready\n" not in seen:
                chunk = await process.stdout.receive_some()
                if not chunk:
                    raise RuntimeError(f"client generation {self.generation} exited before ready")
                seen += chunk

    async def kill(self) -> None:
        """The crash: SIGKILL, nothing flushed."""
        assert self.process is not None
        self.process.kill()
        await self.process.wait()
        await self.close_pipes()

    def abandon(self) -> None:
        """Kill the process if it still runs (the parent is failing; no waiting)."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    async def stop(self) -> int:
        assert self.process is not None and self.process.stdin is not None
        await self.process.stdin.aclose()
        with trio.move_on_after(30):
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
        status = await self.process.wait()
        await self.close_pipes()
        return status

    async def close_pipes(self) -> None:
        assert self.process is not None
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                await pipe.aclose()


def pct(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 4) if values else None


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    from dcpool.testing import open_cluster
    from dcpool.testing import messaging as M

    rng = random.Random(args.seed)
    t_start = time.monotonic()
    work = Path(args.workdir)
    records = Records(work / "delivered.jsonl")
    sent_at: dict[str, float] = {}
    server_pts: dict[str, int] = {}
    dropped: set[str] = set()
    async with open_cluster() as cluster:
        world = cluster.world
        m = M.messaging(world)
        m.faults.rng = random.Random(args.seed + 1)
        phone = world.test_phone(2, 1)
        def account(phone: str) -> Any:
            user = world.user_by_phone(phone)
            assert user is not None, phone  # test phones sign up on first sight
            return user

        me = account(phone)
        senders = [account(world.test_phone(2, 100 + i)) for i in range(args.senders)]
        channels = [M.create_channel(world, senders[i % len(senders)].id, f"c{i}", members=[me.id])
                    for i in range(args.channels)]
        config_path = work / "client.json"
        config_path.write_text(json.dumps({
            "dc_list": [attrs.asdict(o) for o in cluster.dc_list()],
            "rsa_public_key": cluster.rsa_public_pem(),
            "phone": phone,
            "channels": [[ch.id, ch.access_hash] for ch in channels],
            "persist_every": args.persist_every,
            "session": args.session,
            "records": str(records.path),
            "stats_dir": str(work),
        }))
        n = args.messages
        reconnect_at = {n * (k + 1) // (args.reconnects + 1) for k in range(args.reconnects)}
        restart_at = {n * (k + 1) // (args.restarts + 2) + n // 7 for k in range(args.restarts)}
        lose_session_at = n // 5
        counters = {COMMON: 0, **{f"c{ch.id}": 0 for ch in channels}}
        events = {"reconnects": 0, "sessions_lost": 0, "restarts": 0}
        restart_s: list[float] = []

        def produce(box: str) -> None:
            number = counters[box]
            counters[box] += 1
            text = f"{box}:{number}"
            before = m.faults.dropped
            m.now = time.time()
            if box == COMMON:
                _, received = M.send_message(world, rng.choice(senders).id, me.id, text)
                assert received is not None
                server_pts[text] = received.pts
            else:
                server_pts[text] = M.post(world, int(box[1:]), text).pts
            sent_at[text] = time.time()
            if m.faults.dropped > before:
                dropped.add(text)

        generation = 1
        client = Client(config_path, generation)
        try:
            await client.start(sign_in=True)
            t_plan = trio.current_time()
            m.faults.drop_rate, m.faults.duplicate_rate, m.faults.reorder_rate = args.drop, args.dup, args.reorder
            for i in range(n):
                if i in reconnect_at:
                    cluster.drop_connections(2)
                    events["reconnects"] += 1
                if i == lose_session_at:
                    events["sessions_lost"] += M.lose_sessions(cluster, me.id) > 0
                if i in restart_at:
                    await client.kill()  # SIGKILL: acknowledged but unsaved state is lost
                    t_down = time.monotonic()
                    for _ in range(20):  # produced while the client is down
                        produce(rng.choice(list(counters)) if rng.random() < 0.3 else COMMON)
                        await trio.sleep(1 / args.rate)
                    generation += 1
                    client = Client(config_path, generation)
                    await client.start(sign_in=False)
                    restart_s.append(time.monotonic() - t_down)
                    events["restarts"] += 1
                    t_plan = trio.current_time() - (i + 1) / args.rate  # keep the pace, not catch up
                box = COMMON if rng.random() < args.private_share else f"c{rng.choice(channels).id}"
                produce(box)
                await trio.sleep_until(t_plan + (i + 1) / args.rate)
            m.release()
            m.faults.clear()
            for box in counters:
                produce(box)  # the last message of every box: no push of it is faulted
            deadline = trio.current_time() + args.settle
            while trio.current_time() < deadline:
                records.poll()
                if all(text in records.by_text for text in sent_at):
                    break
                await trio.sleep(0.1)
            await trio.sleep(0.5)  # late repeats would show up now
            records.poll()
            exit_status = await client.stop()
            records.poll()
        finally:
            client.abandon()  # an error or a cancellation must not leave the child running
        stats = cluster.statistics()[2]
        push_faults = {"dropped": m.faults.dropped, "duplicated": m.faults.duplicated,
                       "reordered": m.faults.reordered}

    out_of_order = 0
    for texts in records.order.values():
        highest = -1
        for text in texts:
            if server_pts[text] < highest:
                out_of_order += 1
            highest = max(highest, server_pts[text])
    delivered = [t for t in sent_at if t in records.by_text]
    lost = sorted(set(sent_at) - set(delivered))
    recovery = sorted(records.delivered_at(t) - sent_at[t] for t in dropped if t in records.by_text)
    latency = sorted(records.delivered_at(t) - sent_at[t] for t in delivered)
    manager: dict[str, int] = {}
    for path in sorted(work.glob("stats-*.json")):
        snap = json.loads(path.read_text())
        for k in ("gaps_opened", "gaps_filled", "differences", "channel_differences", "duplicates_dropped",
                  "duplicate_pushes", "already_applied",
                  "overflow_dropped", "retries"):
            manager[k] = manager.get(k, 0) + snap[k]
    return {
        "sent": len(sent_at),
        "delivered": len(delivered),
        "lost": len(lost),
        "lost_examples": lost[:10],
        "duplicates_after_dedupe": records.twice,
        "redelivered_after_crash": records.redelivered,
        "repeated_within_run": records.repeated,
        "out_of_order": out_of_order,
        "states_lost": records.states_lost,
        "torn_records": records.torn,
        "push_faults": push_faults,
        **events,
        "client_down_s": [round(s, 2) for s in restart_s],
        "client_exit_status": exit_status,
        "server_getDifference": stats.requests.get("updates.getDifference", 0),
        "server_getChannelDifference": stats.requests.get("updates.getChannelDifference", 0),
        "manager": manager,
        "recovery_latency_s": {"n": len(recovery), "p50": pct(recovery, 0.5), "p99": pct(recovery, 0.99),
                               "max": pct(recovery, 1.0)},
        "latency_s": {"p50": pct(latency, 0.5), "p99": pct(latency, 0.99), "max": pct(latency, 1.0),
                      "mean": round(statistics.fmean(latency), 4) if latency else None},
        "elapsed_s": round(time.monotonic() - t_start, 1),
    }


def ok(report: dict[str, Any]) -> bool:
    return report["lost"] == 0 and report["duplicates_after_dedupe"] == 0 and report["out_of_order"] == 0


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
    p.add_argument("--restarts", type=int, default=1, help="SIGKILLs of the client process")
    p.add_argument("--persist-every", type=int, default=20)
    p.add_argument("--settle", type=float, default=120.0, help="seconds to wait for stragglers")
    p.add_argument("--workdir", default=None, help="session, records and stats (default: temporary)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", metavar="CONFIG", help=argparse.SUPPRESS)
    p.add_argument("--generation", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--sign-in", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        trio.run(child, args.child, args.generation, args.sign_in)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        args.workdir = args.workdir or tmp
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        args.session = str(Path(args.workdir) / "soak.session")
        report = trio.run(soak, args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:28} {value}")
    return 0 if ok(report) else 1


if __name__ == "__main__":
    sys.exit(main())
