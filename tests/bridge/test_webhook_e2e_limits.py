"""Webhook TTL drops and the 410 shutdown, over real sockets, against the outbox."""

import pytest
import trio

from dcpool.bridge.app import BridgeConfig, open_bridge
from dcpool.bridge.httpserver import serve_http
from dcpool.bridge.memsource import MemoryUpdateSource
from dcpool.bridge.webhook import WebhookConfig

from .bridge_helpers import push_simulated

pytestmark = pytest.mark.e2e


def answering(status):
    calls = []

    async def handle(request, responder):
        calls.append(request.path)
        await responder.send(status, "no")

    return handle, calls


async def test_expired_events_are_dropped_counted_and_announced(tmp_path):
    handle, calls = answering(500)
    source = MemoryUpdateSource()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_http, handle, "127.0.0.1", 0)
            hook = WebhookConfig(url=f"http://127.0.0.1:{port}/", name="h", ttl=0.5, retry_unit=0.05,
                                 allowed_updates=frozenset({"message"}))
            async with open_bridge(BridgeConfig(outbox=str(tmp_path / "o.db"), port=0, api_token="t",
                                                accounts=("acc",), webhooks=(hook,))) as bridge:
                nursery.start_soon(bridge.run_account, "acc", source)
                push_simulated(source, 1, 3)  # three messages in three chats
                while (await bridge.outbox.hook_backlog("h")) != {"pending": 0, "disabled": 0, "dropped": 3}:
                    await trio.sleep(0.05)  # the drops, then their announcements (filtered here)
                events = await bridge.outbox.read_after(0)
                status = await bridge.status()
            nursery.cancel_scope.cancel()
    dropped = [e for e in events if e.type == "webhook_dropped"]
    assert sorted(e.data["eventId"] for e in dropped) == [1, 2, 3]
    assert status["webhooks"][0]["dropped"] == 3 and status["webhooks"][0]["pending"] == 0
    assert len(calls) >= 6  # each was tried (at once, then again) before its TTL ran out


async def test_a_long_run_of_410_disables_the_webhook_persistently(tmp_path):
    handle, calls = answering(410)
    source = MemoryUpdateSource()
    outbox = str(tmp_path / "o.db")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_http, handle, "127.0.0.1", 0)
            hook = WebhookConfig(url=f"http://127.0.0.1:{port}/", name="h", gone_disable_after=0.3,
                                 retry_unit=0.05)
            cfg = BridgeConfig(outbox=outbox, port=0, api_token="t", accounts=("acc",), webhooks=(hook,))
            async with open_bridge(cfg) as bridge:
                nursery.start_soon(bridge.run_account, "acc", source)
                push_simulated(source, 1, 2)
                while not (await bridge.status())["webhooks"][0]["disabled"]:
                    await trio.sleep(0.05)
            n = len(calls)
            async with open_bridge(cfg) as bridge:  # a restart keeps it disabled
                await trio.sleep(0.5)
                assert (await bridge.status())["webhooks"][0]["disabled"]
            nursery.cancel_scope.cancel()
    assert len(calls) == n
