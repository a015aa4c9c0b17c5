"""End to end over loopback sockets: webhooks, Pusher protocol clients, SSE, the status page."""

import hashlib
import hmac
import json
from collections import defaultdict

import httpx
import pusher
import pytest
import trio
import trio_websocket

from dcpool.bridge.app import BridgeConfig, open_bridge
from dcpool.bridge.httpserver import serve_http
from dcpool.bridge.memsource import MemoryUpdateSource
from dcpool.bridge.pusher import account_channel
from dcpool.bridge.webhook import SECRET_HEADER, SIGNATURE_HEADER, WebhookConfig

from .bridge_helpers import push_simulated, read_sse

pytestmark = pytest.mark.e2e

TOKEN = "test-token"
KEY, SECRET = "dcpool-key", "dcpool-secret"


def config(tmp_path, **kw):
    return BridgeConfig(outbox=str(tmp_path / "outbox.db"), port=0, api_token=TOKEN,
                        pusher_key=KEY, pusher_secret=SECRET, accounts=("acc",),
                        poll_interval=0.2, **kw)


class FlakyReceiver:
    """A webhook receiver that answers 500 / 429 / 502 for its first
    ``failures`` requests, then 200; it checks the secret header and body signature."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests = 0
        self.received: list[dict] = []
        self.bad_auth = 0
        self.event = trio.Event()

    async def handle(self, request, responder):
        self.requests += 1
        sig = "sha256=" + hmac.new(b"sign-me", request.body, hashlib.sha256).hexdigest()
        if request.header(SECRET_HEADER) != "s3cret" or request.header(SIGNATURE_HEADER) != sig \
                or request.header("content-type") != "application/json":
            self.bad_auth += 1
            await responder.send(403, "bad auth")
            return
        if self.requests <= self.failures:
            kind = self.requests % 3
            if kind == 0:
                await responder.send(429, "slow down", headers={"retry-after": "0"})
            elif kind == 1:
                await responder.send(500, "boom")
            else:
                await responder.send(502, "bad gateway")
            return
        self.received.append(json.loads(request.body))
        self.event.set()
        await responder.send(200, "ok")


async def test_failing_then_recovering_webhook_gets_every_event_once_in_order(tmp_path):
    receiver = FlakyReceiver(failures=25)
    source = MemoryUpdateSource()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_http, receiver.handle, "127.0.0.1", 0)
            hook = WebhookConfig(url=f"http://127.0.0.1:{port}/hook", secret_token="s3cret",
                                 signing_secret="sign-me", max_connections=4, retry_unit=0.01,
                                 allowed_updates=frozenset({"message", "messageStatus"}))
            async with open_bridge(config(tmp_path, webhooks=(hook,))) as bridge:
                nursery.start_soon(bridge.run_account, "acc", source)
                push_simulated(source, 1, 40)
                await trio.sleep(0.05)
                push_simulated(source, 41, 40)  # more arrive while the receiver is failing
                while len({e["id"] for e in receiver.received}) < 80:
                    receiver.event = trio.Event()
                    await receiver.event.wait()
                while (status := await bridge.status())["webhooks"][0]["pending"]:
                    await trio.sleep(0.01)  # the last answers are being recorded
            nursery.cancel_scope.cancel()
    assert receiver.bad_auth == 0
    assert receiver.requests > 80  # failures really happened and were retried
    by_id = {}
    for e in receiver.received:
        by_id.setdefault(e["id"], e)
    # exactly once after dedupe: 80 distinct events, one per pts (message ids = pts)
    pts_seen = sorted(e["data"].get("id") or e["data"].get("maxId") + 1 for e in by_id.values())
    assert pts_seen == list(range(1, 81))
    # in order per chat: each chat's events arrive with increasing event ids
    per_chat = defaultdict(list)
    for e in receiver.received:
        per_chat[e["data"]["chat"]["id"]].append(e["id"])
    assert len(per_chat) == 3
    for ids in per_chat.values():
        assert ids == sorted(ids)
    assert status["webhooks"][0]["pending"] == 0 and status["webhooks"][0]["dropped"] == 0
    assert source.acked and source.acked[-1].state_after.pts == 80


async def test_pusher_client_refused_without_signature_then_receives_messages(tmp_path):
    source = MemoryUpdateSource()
    channel = account_channel("acc")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, open_bridge(config(tmp_path)) as bridge:
            nursery.start_soon(bridge.run_account, "acc", source)
            base = f"http://127.0.0.1:{bridge.port}"
            # a wrong app key is refused with 4001 (do not reconnect)
            async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{bridge.port}/app/nope?protocol=7") as ws:
                with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                    while True:
                        await ws.get_message()
                assert closed.value.reason.code == 4001
            url = f"ws://127.0.0.1:{bridge.port}/app/{KEY}?protocol=7&client=js&version=8.4.0"
            async with trio_websocket.open_websocket_url(url) as ws:
                hello = json.loads(await ws.get_message())
                assert hello["event"] == "pusher:connection_established"
                socket_id = json.loads(hello["data"])["socket_id"]
                await ws.send_message(json.dumps({"event": "pusher:subscribe",
                                                  "data": {"channel": channel, "auth": f"{KEY}:{'0' * 64}"}}))
                refused = json.loads(await ws.get_message())
                assert refused["event"] == "pusher:subscription_error"
                async with httpx.AsyncClient(base_url=base) as http:
                    form = {"socket_id": socket_id, "channel_name": channel}
                    assert (await http.post("/pusher/auth", data=form)).status_code == 401
                    forged = {"socket_id": f"{socket_id}:private-x", "channel_name": channel}
                    r = await http.post("/pusher/auth", data=forged, headers={"Authorization": f"Bearer {TOKEN}"})
                    assert r.status_code == 403
                    r = await http.post("/pusher/auth", data=form, headers={"Authorization": f"Bearer {TOKEN}"})
                    assert r.status_code == 200
                    auth = r.json()
                # the official server library computes the same signature
                assert auth == pusher.Pusher(app_id="1", key=KEY, secret=SECRET).authenticate(
                    channel=channel, socket_id=socket_id)
                await ws.send_message(json.dumps({"event": "pusher:subscribe",
                                                  "data": {"channel": channel, "auth": auth["auth"]}}))
                ok = json.loads(await ws.get_message())
                assert ok == {"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"}
                await ws.send_message(json.dumps({"event": "pusher:ping", "data": {}}))
                assert json.loads(await ws.get_message())["event"] == "pusher:pong"
                push_simulated(source, 1, 6)
                got = []
                while len(got) < 6:
                    frame = json.loads(await ws.get_message())
                    assert frame["channel"] == channel
                    got.append(frame)
            nursery.cancel_scope.cancel()
    assert [f["event"] for f in got] == ["message"] * 6
    bodies = [json.loads(f["data"]) for f in got]
    assert [b["data"]["id"] for b in bodies] == [1, 2, 3, 4, 5, 6]
    assert bodies[0]["data"]["from"]["name"] == "Contact1 Sim"


async def test_sse_resumes_from_last_event_id_without_gaps(tmp_path):
    source = MemoryUpdateSource()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, open_bridge(config(tmp_path)) as bridge:
            nursery.start_soon(bridge.run_account, "acc", source)
            push_simulated(source, 1, 25)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}", timeout=10) as http:
                assert (await http.get("/events")).status_code == 401
                headers = {"Authorization": f"Bearer {TOKEN}"}
                async with http.stream("GET", "/events", headers=headers) as r:
                    assert r.headers["content-type"] == "text/event-stream"
                    first = await read_sse(r, 10)
                push_simulated(source, 26, 25)  # more while disconnected
                async with http.stream("GET", "/events", headers={**headers, "Last-Event-ID": str(first[-1][0])}) as r:
                    second = await read_sse(r, 40)
                bad = await http.get("/events", headers={**headers, "Last-Event-ID": "x"})
                assert bad.status_code == 400
            nursery.cancel_scope.cancel()
    ids = [i for i, _, _ in first + second]
    assert ids == list(range(1, 51))
    assert [d["data"].get("id") or d["data"]["maxId"] + 1 for _, _, d in first + second] == list(range(1, 51))


async def test_status_page_and_stream(tmp_path):
    source = MemoryUpdateSource()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery, open_bridge(config(tmp_path)) as bridge:
            nursery.start_soon(bridge.run_account, "acc", source)
            push_simulated(source, 1, 3)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}", timeout=10) as http:
                page = await http.get("/")
                assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
                for marker in ('id="accounts"', 'id="webhooks"', 'id="last-event-id"', "EventSource('status/stream')"):
                    assert marker in page.text
                async with http.stream("GET", "/status/stream") as r:
                    lines = r.aiter_lines()
                    async for line in lines:
                        if line.startswith("data: "):
                            snap = json.loads(line[6:])
                            if snap["last_event_id"] == 3:
                                break
                assert snap["accounts"][0]["name"] == "acc" and snap["accounts"][0]["pts"] == 3
                assert (await http.get("/nope")).status_code == 404
            nursery.cancel_scope.cancel()
