"""Two ``dcpool bridge`` processes share a PostgreSQL fleet of 20 emulator accounts (real pools,
sessions in PostgreSQL): each account runs in exactly one process, they split the accounts, and
killing one moves its accounts to the other within the lease TTL, which continues the same
sessions (no second sign-in), with no event lost or numbered twice."""

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import trio

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TTL = 10.0
N = 20


async def start_emulator(tmp_path):
    proc = await trio.lowlevel.open_process([sys.executable, "-m", "dcpool.cli", "emulator", "--json"],
                                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": ROOT})
    line = b""
    while not line.endswith(b"\n"):
        chunk = await proc.stdout.receive_some(65536)
        assert chunk, "emulator exited early"
        line += chunk
    path = tmp_path / "emulator.json"
    path.write_bytes(line.split(b"\n")[0] + b"\n")
    return proc, str(path)


async def start(dsn, owner, info_path):
    argv = [sys.executable, "-m", "dcpool.cli", "bridge", "--port", "0", "--outbox", dsn,
            "--fleet-simulated", str(N), "--fleet-emulator", info_path,
            "--lease-ttl", str(TTL), "--owner", owner,
            "--interval", "0.2", "--ready-json", "--api-token", "t"]
    proc = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": ROOT})
    line = b""
    while not line.endswith(b"\n"):
        chunk = await proc.stdout.receive_some(4096)
        assert chunk, f"bridge {owner} exited early"
        line += chunk
    return proc


def live_owners(dsn):
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT account, owner, epoch, expires_at FROM bridge_lease").fetchall()
    now = time.time()
    return {a: (o, e) for a, o, e, x in rows if x >= now}


def writers(dsn):
    """Per account: the (epoch) of its state row and its number of events."""
    with psycopg.connect(dsn) as conn:
        counts = dict(conn.execute("SELECT account, COUNT(*) FROM bridge_events GROUP BY account").fetchall())
        dups = conn.execute("SELECT COUNT(*) FROM (SELECT account, dedupe_key FROM bridge_events "
                            "GROUP BY account, dedupe_key HAVING COUNT(*) > 1) d").fetchone()[0]
        states = {a: json.loads(s)["pts"] for a, s in conn.execute("SELECT account, state FROM bridge_state").fetchall()}
    return counts, dups, states


async def wait_until(predicate, interval=0.2):
    while True:
        value = await trio.to_thread.run_sync(predicate)
        if value:
            return value
        await trio.sleep(interval)


def sign_ins(dsn):
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT account, data FROM bridge_events WHERE type = 'pool.signed_in'").fetchall()
        sessions = conn.execute("SELECT account, session FROM dcpool_sessions").fetchall()
    return [(a, json.loads(d)) for a, d in rows], {a: json.loads(s) for a, s in sessions}


async def test_two_processes_share_a_fleet_and_take_over(pg_dsn, tmp_path):
    procs = []
    emulator, info_path = await start_emulator(tmp_path)
    try:
        with trio.fail_after(240):
            procs.append(await start(pg_dsn, "A", info_path))
            await wait_until(lambda: len(live_owners(pg_dsn)) == N)
            # A alone signs every account in (a handover during a sign-in may sign in twice)
            await wait_until(lambda: len({a for a, _ in sign_ins(pg_dsn)[0]}) == N)
            procs.append(await start(pg_dsn, "B", info_path))

            def split():
                owners = live_owners(pg_dsn)
                by = [o for o, _ in owners.values()]
                return len(owners) == N and by.count("A") == N // 2 and by.count("B") == N // 2

            await wait_until(split)
            before = live_owners(pg_dsn)
            a_accounts = {acc for acc, (o, _) in before.items() if o == "A"}
            counts_before, _, states_before = await trio.to_thread.run_sync(writers, pg_dsn)
            procs[0].send_signal(signal.SIGKILL)
            await procs[0].wait()
            killed = trio.current_time()
            await wait_until(lambda: {o for o, _ in live_owners(pg_dsn).values()} == {"B"}
                             and len(live_owners(pg_dsn)) == N)
            takeover = trio.current_time() - killed
            after = live_owners(pg_dsn)

            def progressed():
                _, _, states = writers(pg_dsn)
                return all(states.get(a, 0) > states_before.get(a, 0) + 3 for a in a_accounts)

            await wait_until(progressed)
    finally:
        procs.append(emulator)
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            with trio.move_on_after(15):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
    # A's accounts moved to B with a new epoch (fencing token) each
    for acc in a_accounts:
        assert after[acc][0] == "B" and after[acc][1] > before[acc][1]
    # one TTL for the leases to expire, plus one renewal period of B's loop, plus slack
    assert takeover < TTL + TTL / 3 + 5.0
    # the sessions moved with the accounts: each signed in once for the whole run
    signed, sessions = await trio.to_thread.run_sync(sign_ins, pg_dsn)
    assert sorted(a for a, _ in signed) == [f"sim{i:03d}" for i in range(N)]
    assert len(sessions) == N and all(s["user_id"] for s in sessions.values())
    homes = {d["homeDc"] for _, d in signed}
    assert homes == {1, 2, 3, 4, 5}  # PHONE_MIGRATE sent most of them home from DC 2
    counts, dups, states = await trio.to_thread.run_sync(writers, pg_dsn)
    assert dups == 0
    with psycopg.connect(pg_dsn) as conn:
        updates = dict(conn.execute("SELECT account, COUNT(*) FROM bridge_events WHERE event != 'dcpool:event' "
                                    "GROUP BY account").fetchall())
    for acc, pts in states.items():
        assert updates[acc] == pts  # one event per update: none lost, none twice
