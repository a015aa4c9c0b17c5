"""kill -9 of a ``dcpool bridge`` process during a burst of 1,000 updates, then a restart:
every event reaches the webhook, none is lost, none is numbered twice (subprocess, real sockets)."""

import json
import os
import signal
import sqlite3
import sys

import pytest
import trio

from dcpool.bridge.httpserver import serve_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Receiver:
    def __init__(self):
        self.by_event_id = {}
        self.requests = 0
        self.changed = trio.Event()

    async def handle(self, request, responder):
        self.requests += 1
        body = json.loads(request.body)
        self.by_event_id.setdefault(body["id"], body)
        self.changed.set()
        await responder.send(200, "ok")

    def update_pts(self):
        out = set()
        for e in self.by_event_id.values():
            if e["event"] == "message":
                out.add(e["data"]["id"])
            elif e["event"] == "messageStatus":
                out.add(e["data"]["maxId"] + 1)
        return out


async def start_bridge(outbox, hook_url):
    argv = [sys.executable, "-m", "dcpool.cli", "bridge", "--emulator", "--port", "0",
            "--outbox", outbox, "--simulate", "1000", "--interval", "0.002", "--ready-json",
            "--webhook", hook_url, "--webhook-max-connections", "8", "--api-token", "t"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = await trio.lowlevel.open_process(argv, stdout=__import__("subprocess").PIPE, env=env)
    line = b""
    while not line.endswith(b"\n"):
        chunk = await proc.stdout.receive_some(4096)
        assert chunk, "bridge exited before it was ready"
        line += chunk
    return proc, json.loads(line.decode())


async def test_kill_9_during_burst_then_restart_loses_nothing(tmp_path):
    outbox = str(tmp_path / "outbox.db")
    receiver = Receiver()
    with trio.fail_after(180):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_http, receiver.handle, "127.0.0.1", 0)
            url = f"http://127.0.0.1:{port}/hook"
            proc, _ = await start_bridge(outbox, url)
            while len(receiver.update_pts()) < 150:
                receiver.changed = trio.Event()
                await receiver.changed.wait()
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            killed_at = len(receiver.update_pts())
            assert killed_at < 1000, "the burst ended before the kill: the test proves nothing"
            proc, _ = await start_bridge(outbox, url)
            try:
                while len(receiver.update_pts()) < 1000:
                    receiver.changed = trio.Event()
                    await receiver.changed.wait()
            finally:
                proc.send_signal(signal.SIGTERM)
                with trio.move_on_after(20):
                    await proc.wait()
                if proc.returncode is None:
                    proc.kill()
            nursery.cancel_scope.cancel()
    assert proc.returncode == 0  # SIGTERM stops the restarted bridge cleanly
    assert receiver.update_pts() == set(range(1, 1001))
    db = sqlite3.connect(outbox)
    rows = db.execute("SELECT id, dedupe_key FROM bridge_events WHERE event != 'dcpool:event' ORDER BY id").fetchall()
    assert len(rows) == 1000 and len({k for _, k in rows}) == 1000  # none lost, none twice
    state = json.loads(db.execute("SELECT state FROM bridge_state WHERE account = 'demo'").fetchone()[0])
    assert state["pts"] == 1000
    # stable ids: what the receiver got under an id is what the outbox holds under it
    stored = dict(rows)
    for event_id, body in receiver.by_event_id.items():
        if body["event"] == "message":
            assert stored[event_id] == f"common:{body['data']['id']}"
        elif body["event"] == "messageStatus":
            assert stored[event_id] == f"common:{body['data']['maxId'] + 1}"
