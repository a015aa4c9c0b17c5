"""Two ``dcpool bridge`` processes share a PostgreSQL fleet of 20 emulator accounts (real pools,
sessions in PostgreSQL, the real updates manager): each account runs in exactly one process,
they split the accounts, and killing one moves its accounts to the other within the lease TTL,
which continues the same sessions (no second sign-in).  Messages sent to every account through
the emulator's control channel all the while (``dcpool emulator --json --control``) each become
exactly one event: none lost across the handover and the kill, none numbered twice."""

import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import trio

from dcpool.bridge.cli import fleet_phone

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TTL = 10.0
N = 20
CONTACT = "9996619999"  # a reserved test number on DC 1: the sender of every message


class Emulator:
    """``dcpool emulator --json --control`` in a subprocess, scripted over its stdin/stdout."""

    def __init__(self, proc):
        self.proc = proc
        self._buffer = b""

    async def line(self):
        while b"\n" not in self._buffer:
            chunk = await self.proc.stdout.receive_some(65536)
            assert chunk, "emulator exited early"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    async def command(self, **cmd):
        await self.proc.stdin.send_all(json.dumps(cmd).encode() + b"\n")
        answer = await self.line()
        assert answer["ok"], answer
        return answer["result"]


async def start_emulator(tmp_path):
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "dcpool.cli", "emulator", "--json", "--control"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": ROOT})
    emulator = Emulator(proc)
    info = await emulator.line()
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps(info) + "\n")
    return emulator, str(path), info


async def start(dsn, owner, info_path):
    argv = [sys.executable, "-m", "dcpool.cli", "bridge", "--port", "0", "--outbox", dsn,
            "--fleet-simulated", str(N), "--fleet-emulator", info_path,
            "--lease-ttl", str(TTL), "--owner", owner,
            "--ready-json", "--api-token", "t"]
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
    """Per account: its number of message events, the number of repeated dedupe keys, and
    the accounts with a stored update state."""
    with psycopg.connect(dsn) as conn:
        counts = dict(conn.execute("SELECT account, COUNT(*) FROM bridge_events WHERE event = 'message' "
                                   "GROUP BY account").fetchall())
        dups = conn.execute("SELECT COUNT(*) FROM (SELECT account, dedupe_key FROM bridge_events "
                            "GROUP BY account, dedupe_key HAVING COUNT(*) > 1) d").fetchone()[0]
        states = {a: json.loads(s)["pts"] for a, s in conn.execute("SELECT account, state FROM bridge_state").fetchall()}
    return counts, dups, states


PHASE = {"name": "start", "last": None}


async def wait_until(predicate, interval=0.2):
    """Poll ``predicate`` on a thread until it is true; the caller's line and the last value
    seen are kept in PHASE for the failure message of a timeout."""
    import inspect  # noqa: PLC0415

    PHASE["name"] = inspect.stack()[1].code_context[0].strip()
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
    emulator, info_path, info = await start_emulator(tmp_path)
    dc_ids = sorted(int(d) for d in info["dcs"])
    names = [f"sim{i:03d}" for i in range(N)]
    sent = dict.fromkeys(names, 0)

    async def send_round():
        for name in names:
            sent[name] += 1
            await emulator.command(cmd="send_message", from_user=CONTACT, to_user=fleet_phone(name, dc_ids)[0],
                                   text=f"{name}:{sent[name]}")

    async def keep_sending(cancel_scope):
        with cancel_scope:
            while True:
                await send_round()
                await trio.sleep(0.3)

    try:
        with trio.fail_after(300):
            procs.append(await start(pg_dsn, "A", info_path))
            await wait_until(lambda: len(live_owners(pg_dsn)) == N)
            # A alone signs every account in (a handover during a sign-in may sign in twice),
            # and every account's updates manager has its first position (getState)
            await wait_until(lambda: len({a for a, _ in sign_ins(pg_dsn)[0]}) == N)
            await wait_until(lambda: len(writers(pg_dsn)[2]) == N)
            async with trio.open_nursery() as nursery:
                sending = trio.CancelScope()
                nursery.start_soon(keep_sending, sending)
                await wait_until(lambda: len(writers(pg_dsn)[0]) == N)  # A delivers to every account
                procs.append(await start(pg_dsn, "B", info_path))

                def split():
                    owners = live_owners(pg_dsn)
                    by = [o for o, _ in owners.values()]
                    return len(owners) == N and by.count("A") == N // 2 and by.count("B") == N // 2

                await wait_until(split)
                before = live_owners(pg_dsn)
                a_accounts = {acc for acc, (o, _) in before.items() if o == "A"}
                procs[0].send_signal(signal.SIGKILL)
                await procs[0].wait()
                killed = trio.current_time()
                await wait_until(lambda: {o for o, _ in live_owners(pg_dsn).values()} == {"B"}
                                 and len(live_owners(pg_dsn)) == N)
                takeover = trio.current_time() - killed
                after = live_owners(pg_dsn)
                await trio.sleep(1.0)  # a few more rounds, now all on B
                sending.cancel()
            # every message sent becomes one event, on whichever process holds the account
            await wait_until(lambda: writers(pg_dsn)[0] == sent)
    except trio.TooSlowError:
        counts, dups, states = await trio.to_thread.run_sync(writers, pg_dsn)
        owners = await trio.to_thread.run_sync(live_owners, pg_dsn)
        missing = {a: (sent[a], counts.get(a)) for a in names if counts.get(a) != sent[a]}
        raise AssertionError(f"timed out at {PHASE['name']}: owners {owners}, states {len(states)}, "
                             f"dups {dups}, (sent, delivered) where they differ {missing}, "
                             f"bridges alive {[p.returncode for p in procs]}") from None
    finally:
        with trio.move_on_after(5):
            await emulator.proc.stdin.aclose()  # end of stdin stops the emulator
        procs.append(emulator.proc)
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
    assert sorted(a for a, _ in signed) == names
    assert len(sessions) == N and all(s["user_id"] for s in sessions.values())
    homes = {d["homeDc"] for _, d in signed}
    assert homes == {1, 2, 3, 4, 5}  # PHONE_MIGRATE sent most of them home from DC 2
    counts, dups, _states = await trio.to_thread.run_sync(writers, pg_dsn)
    assert dups == 0
    assert counts == sent and min(sent.values()) > 5
    with psycopg.connect(pg_dsn) as conn:
        texts = conn.execute("SELECT account, data FROM bridge_events WHERE event = 'message' ORDER BY id").fetchall()
    per_account = {}
    for acc, data in texts:
        per_account.setdefault(acc, []).append(json.loads(data)["text"])
    for acc in names:  # in the order sent, each once
        assert per_account[acc] == [f"{acc}:{k}" for k in range(1, sent[acc] + 1)]
