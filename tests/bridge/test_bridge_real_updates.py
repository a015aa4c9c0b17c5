"""The bridge on the real path: an account on the emulator (real pool, real updates manager)
receives messages that other test users send through the emulator's messaging; the events
reach a webhook that fails for a while and then recovers (every event once after dedupe, in
order per chat), and SSE."""

import httpx
import pytest
import trio

from dcpool.bridge.app import BridgeConfig, open_bridge
from dcpool.bridge.emulated import EmulatorTarget, reserved_phone, run_emulator_account
from dcpool.bridge.httpserver import serve_http
from dcpool.bridge.webhook import WebhookConfig
from dcpool.testing import messaging as M

from .bridge_helpers import iter_sse
from .test_bridge_e2e import FlakyReceiver

pytestmark = pytest.mark.e2e


def target_of(cluster):
    return EmulatorTarget(dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                          dc_ids=tuple(sorted(cluster.world.dc_ids)))


async def test_real_messages_reach_a_failing_then_recovering_webhook_once_in_order_per_chat(cluster, tmp_path):
    world = cluster.world
    contacts = [world.user_by_phone(world.test_phone(dc, 8100 + dc)) for dc in (1, 3)]
    receiver = FlakyReceiver(failures=20)
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_http, receiver.handle, "127.0.0.1", 0)
            hook = WebhookConfig(url=f"http://127.0.0.1:{port}/hook", secret_token="s3cret",
                                 signing_secret="sign-me", max_connections=4, retry_unit=0.01,
                                 allowed_updates=frozenset({"message", "messageStatus"}))
            cfg = BridgeConfig(outbox=str(tmp_path / "o.db"), port=0, api_token="t", accounts=("acc",),
                               poll_interval=0.1, webhooks=(hook,))
            async with open_bridge(cfg) as bridge:
                nursery.start_soon(lambda: run_emulator_account(bridge, "acc", target_of(cluster),
                                                                phone=reserved_phone(2, 8101)[0]))
                while await bridge.outbox.load_state("acc") is None:  # the manager's getState
                    await trio.sleep(0.02)
                me = world.user_by_phone(reserved_phone(2, 8101)[0])
                sent = {c.id: [] for c in contacts}
                for i in range(30):
                    c = contacts[i % 2]
                    ev, got = M.send_message(world, c.id, me.id, f"{c.id}:{i}")
                    sent[c.id].append(f"{c.id}:{i}")
                    if i == 10:
                        M.edit(world, c.id, me.id, ev.update.message.id, f"{c.id}:{i} edited")
                M.send_message(world, me.id, contacts[0].id, "answer")
                M.read(world, contacts[0].id, me.id, 10**6)  # a read receipt of "answer"
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}", timeout=10) as http:
                    async with http.stream("GET", "/events?token=t&account=acc") as r:
                        sse = []
                        async for item in iter_sse(r):
                            if item[1] != "dcpool:event":
                                sse.append(item)
                            if item[1] == "messageStatus":
                                break
                while len({e["id"] for e in receiver.received}) < len(sse):
                    receiver.event = trio.Event()
                    await receiver.event.wait()
                nursery.cancel_scope.cancel()
    assert receiver.requests > len(sse)  # it did fail for a while
    by_id = {}
    for body in receiver.received:
        by_id.setdefault(body["id"], body)
    assert sorted(by_id) == [i for i, _, _ in sse]  # every event, once after dedupe
    # in order per chat: the first receipt of each chat's events follows their ids
    firsts = {}
    order = []
    for body in receiver.received:
        if body["id"] not in firsts:
            firsts[body["id"]] = body
            order.append(body)
    for c in contacts:
        ids = [b["id"] for b in order if b["data"]["chat"]["id"] == c.id]
        assert ids == sorted(ids) and ids
    texts = {}
    for b in order:
        if b["event"] == "message" and b["data"]["type"] == "new" and not b["data"]["out"]:
            texts.setdefault(b["data"]["chat"]["id"], []).append(b["data"]["text"])
    assert texts == sent  # every message a contact sent, in the order sent
    edited = [b for b in order if b["event"] == "message" and b["data"]["type"] == "edited"]
    assert [b["data"]["text"] for b in edited] == [f"{contacts[0].id}:10 edited"]
    status = [b for b in order if b["event"] == "messageStatus"]
    assert [(b["data"]["direction"], b["data"]["chat"]["id"]) for b in status] == [("out", contacts[0].id)]


async def test_session_file_account_on_the_emulator_feeds_a_pusher_subscriber(cluster, tmp_path):
    """A TOML-style session-file account (``session``, ``emulator_info``, ``phone``) runs the
    real updates manager; a Pusher-protocol client authorised through /pusher/auth receives
    its messages as ``message`` events; a restart reuses the session file (no new sign-in)."""
    import json

    import trio_websocket

    from dcpool.bridge.cli import run_session_account
    from dcpool.bridge.pusher import account_channel
    from dcpool.cli import emulator_info

    world = cluster.world
    info_path = tmp_path / "emulator.json"
    info_path.write_text(json.dumps(emulator_info(cluster, ())) + "\n")
    phone = reserved_phone(3, 8201)[0]
    account = {"name": "main", "session": str(tmp_path / "main.session"),
               "emulator_info": str(info_path), "phone": phone}
    contact = world.user_by_phone(world.test_phone(2, 8202))
    cfg = BridgeConfig(outbox=str(tmp_path / "o.db"), port=0, api_token="t", accounts=("main",),
                       pusher_key="k", pusher_secret="s", poll_interval=0.1)
    channel = account_channel("main")
    with trio.fail_after(60):
        async with open_bridge(cfg) as bridge:
            for round_ in range(2):
                handshakes = cluster.statistics().total("handshakes")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(run_session_account, bridge, account)
                    while await bridge.outbox.load_state("main") is None:
                        await trio.sleep(0.02)
                    me = world.user_by_phone(phone)
                    async with trio_websocket.open_websocket_url(
                            f"ws://127.0.0.1:{bridge.port}/app/k?protocol=7") as ws:
                        hello = json.loads(await ws.get_message())
                        socket_id = json.loads(hello["data"])["socket_id"]
                        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bridge.port}") as http:
                            r = await http.post("/pusher/auth", data={"socket_id": socket_id, "channel_name": channel},
                                                headers={"Authorization": "Bearer t"})
                        await ws.send_message(json.dumps({"event": "pusher:subscribe", "data": {
                            "channel": channel, "auth": r.json()["auth"]}}))
                        assert json.loads(await ws.get_message())["event"] == "pusher_internal:subscription_succeeded"
                        for i in range(3):
                            M.send_message(world, contact.id, me.id, f"r{round_}:{i}")
                        got = []
                        while len(got) < 3:
                            frame = json.loads(await ws.get_message())
                            if frame.get("event") == "message":
                                assert frame["channel"] == channel
                                got.append(json.loads(frame["data"])["data"]["text"])
                    nursery.cancel_scope.cancel()
                assert got == [f"r{round_}:{i}" for i in range(3)]
                if round_ == 1:  # the session file carried the key and the sign-in
                    assert cluster.statistics().total("handshakes") == handshakes
            events = [e for e in await bridge.outbox.read_after(0, 100, account="main") if e.event == "message"]
            assert [e.data["text"] for e in events] == [f"r{r}:{i}" for r in range(2) for i in range(3)]
