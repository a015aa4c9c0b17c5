import random

import pytest

from dcpool.bridge.events import OutboxEvent
from dcpool.bridge.webhook import Outcome, WebhookConfig, WebhookScheduler


def ev(i, chat="user:1", t=0.0, event="message", type_="message.new"):
    return OutboxEvent(id=i, account="a", event=event, type=type_, chat=chat, dedupe_key=str(i), time=t, data={})


def test_one_in_flight_per_chat_parallel_across_chats():
    s = WebhookScheduler(WebhookConfig(url="x", max_connections=2))
    s.offer([ev(1, "c1"), ev(2, "c1"), ev(3, "c2"), ev(4, "c3")], now=0, wall=0)
    sends, drops = s.ready(0)
    assert [e.id for e in sends] == [1, 3] and drops == []  # max_connections=2, c1 head only
    assert s.ready(0) == ([], [])
    assert s.on_result(sends[0], 200, 0) == Outcome.DELIVERED
    sends, _ = s.ready(0)
    assert [e.id for e in sends] == [2]


def test_retry_schedule_and_retry_after():
    s = WebhookScheduler(WebhookConfig(url="x"), rng=random.Random(1))
    assert [s.retry_delay(n) for n in range(1, 7)] == [0, 2, 4, 8, 16, 32]
    capped = [s.retry_delay(n) for n in (7, 8, 20)]
    assert all(60 <= d <= 120 for d in capped)
    s.offer([ev(1)], now=0, wall=0)
    (e,), _ = s.ready(0)
    assert s.on_result(e, 500, 0) == Outcome.RETRY
    (e,), _ = s.ready(0)  # the first failure is retried at once
    assert s.on_result(e, 503, 0) == Outcome.RETRY
    assert s.ready(1.9) == ([], []) and s.next_wakeup() == 2
    (e,), _ = s.ready(2)
    assert s.on_result(e, 429, 2, retry_after=30) == Outcome.RETRY
    assert s.ready(31.9)[0] == []
    assert s.ready(32)[0] == [e]
    assert s.on_result(e, 429, 32, retry_after=10**6) == Outcome.RETRY
    assert s.next_wakeup() == 32 + 3600  # Retry-After is clamped to one hour


def test_ttl_drop():
    s = WebhookScheduler(WebhookConfig(url="x", ttl=100))
    s.offer([ev(1, t=1000.0), ev(2, t=1000.0)], now=0, wall=1090.0)  # created 90 s ago
    (e,), _ = s.ready(0)
    assert s.on_result(e, 500, 0) == Outcome.RETRY
    (e,), _ = s.ready(0)
    assert s.on_result(e, 500, 9) == Outcome.DROPPED  # next attempt (9 + 2) passes expiry (10)
    sends, drops = s.ready(20)  # event 2 expired while waiting in the queue
    assert sends == [] and [d.id for d in drops] == [2]


def test_long_run_of_410_disables():
    s = WebhookScheduler(WebhookConfig(url="x", gone_disable_after=100, ttl=10**9), rng=random.Random(0))
    s.offer([ev(1)], now=0, wall=0)
    now = 0.0
    outcome = None
    while outcome != Outcome.DISABLED:
        sends, _ = s.ready(now)
        if sends:
            outcome = s.on_result(sends[0], 410, now)
        now = s.next_wakeup() if outcome != Outcome.DISABLED else now
    assert now >= 100 and s.disabled


def test_410_interrupted_does_not_disable():
    s = WebhookScheduler(WebhookConfig(url="x", gone_disable_after=10, ttl=10**9))
    s.offer([ev(1), ev(2, "c2")], now=0, wall=0)
    a, b = s.ready(0)[0]
    assert s.on_result(a, 410, 0) == Outcome.RETRY
    assert s.on_result(b, 500, 5) == Outcome.RETRY  # not 410: the run is broken
    sends, _ = s.ready(5)
    assert a in sends
    assert s.on_result(a, 410, 11) == Outcome.RETRY  # 11 s of 410 answers, but not continuous


def test_allowed_updates_filters():
    s = WebhookScheduler(WebhookConfig(url="x", allowed_updates=frozenset({"messageStatus", "message.new"})))
    filtered = s.offer([ev(1), ev(2, event="dcpool:event", type_="pool.reconnect"),
                        ev(3, event="messageStatus", type_="status.read_in"),
                        ev(4, type_="message.edited")], now=0, wall=0)
    assert [e.id for e in filtered] == [2, 4]


def test_config_validation():
    with pytest.raises(ValueError):
        WebhookConfig(url="x", secret_token="bad token!")
    with pytest.raises(ValueError):
        WebhookConfig(url="x", max_connections=0)
