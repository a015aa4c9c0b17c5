"""kill -9 of a ``dcpool bridge`` process during a burst of 1,000 messages sent through the
emulator, then a restart: every event reaches the webhook, none is lost, none is numbered twice.

The emulator lives in the test (real loopback sockets) and outlives the bridge, which runs in a
subprocess (``--emulator --emulator-info``) with the real updates manager: messages sent while
it is dead come back by getDifference after the restart, from the state the outbox stored with
the last durable event."""

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest
import trio

from dcpool.bridge.httpserver import serve_http
from dcpool.cli import emulator_info
from dcpool.testing import messaging as M

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHONE = "9996620001"
N = 1000
KILL_AT = 400  # messages sent when the bridge is killed (after 100 were delivered)


class Receiver:
    def __init__(self):
        self.by_event_id = {}
        self.order = []
        self.requests = 0
        self.changed = trio.Event()

    async def handle(self, request, responder):
        self.requests += 1
        body = json.loads(request.body)
        if body["id"] not in self.by_event_id:
            self.by_event_id[body["id"]] = body
            self.order.append(body["id"])
        self.changed.set()
        await responder.send(200, "ok")

    def texts(self):
        return {e["data"]["text"] for e in self.by_event_id.values() if e["event"] == "message"}

    async def wait_for(self, n):
        while len(self.texts()) < n:
            self.changed = trio.Event()
            await self.changed.wait()


async def start_bridge(info_path, outbox, session, hook_url):
    argv = [sys.executable, "-m", "dcpool.cli", "bridge", "--emulator", "--emulator-info", info_path,
            "--session", session, "--phone", PHONE, "--simulate", "0", "--port", "0",
            "--outbox", outbox, "--ready-json", "--webhook", hook_url,
            "--webhook-max-connections", "8", "--api-token", "t"]
    proc = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": ROOT})
    line = b""
    while not line.endswith(b"\n"):
        chunk = await proc.stdout.receive_some(4096)
        assert chunk, "bridge exited before it was ready"
        line += chunk
    return proc


def stored_state(outbox):
    if not os.path.exists(outbox):
        return None
    db = sqlite3.connect(outbox)
    try:
        row = db.execute("SELECT state FROM bridge_state WHERE account = 'demo'").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        db.close()
    return None if row is None else json.loads(row[0])


async def test_kill_9_during_a_burst_of_1000_messages_then_restart_loses_nothing(cluster, tmp_path):
    world = cluster.world
    contact = world.user_by_phone(world.test_phone(3, 4242))
    info_path = str(tmp_path / "emulator.json")
    with open(info_path, "w") as fh:
        fh.write(json.dumps(emulator_info(cluster, ())) + "\n")
    outbox, session = str(tmp_path / "outbox.db"), str(tmp_path / "demo.session")
    receiver = Receiver()
    sent = 0
    with trio.fail_after(240):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_http, receiver.handle, "127.0.0.1", 0)
            url = f"http://127.0.0.1:{port}/hook"
            proc = await start_bridge(info_path, outbox, session, url)
            # the bridge signed in and its updates manager knows its position (getState)
            while await trio.to_thread.run_sync(stored_state, outbox) is None:
                await trio.sleep(0.05)
            me = world.user_by_phone(PHONE)

            killed = trio.Event()

            async def burst():
                nonlocal sent
                while sent < N:  # paced: 10 messages every 10 ms
                    if sent == KILL_AT:
                        await killed.wait()  # the kill falls inside the burst, whatever the load
                    for _ in range(10):
                        M.send_message(world, contact.id, me.id, f"m{sent}")
                        sent += 1
                    await trio.sleep(0.01)

            nursery.start_soon(burst)
            await receiver.wait_for(100)  # deliveries are under way
            while sent < KILL_AT:
                await trio.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            killed.set()
            proc = await start_bridge(info_path, outbox, session, url)
            try:
                await receiver.wait_for(N)
            finally:
                proc.send_signal(signal.SIGTERM)
                with trio.move_on_after(20):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
            nursery.cancel_scope.cancel()
    assert proc.returncode == 0  # SIGTERM stops the restarted bridge cleanly
    assert receiver.texts() == {f"m{i}" for i in range(N)}
    # one chat: the first receipts came in event id order, and message ids follow the texts
    # (pool lifecycle events have no chat, so they are not ordered with the messages)
    in_chat = [i for i in receiver.order if receiver.by_event_id[i]["event"] == "message"]
    assert in_chat == sorted(in_chat)
    db = sqlite3.connect(outbox)
    rows = db.execute("SELECT id, dedupe_key, data FROM bridge_events WHERE event = 'message' ORDER BY id").fetchall()
    assert len(rows) == N and len({k for _, k, _ in rows}) == N  # none lost, none twice
    assert [json.loads(d)["text"] for _, _, d in rows] == [f"m{i}" for i in range(N)]
    assert stored_state(outbox)["pts"] == world.user(me.id).pts
    # stable ids: what the receiver got under an id is what the outbox holds under it
    stored = {i: json.loads(d)["text"] for i, _, d in rows}
    for event_id, body in receiver.by_event_id.items():
        if body["event"] == "message":
            assert stored[event_id] == body["data"]["text"]
