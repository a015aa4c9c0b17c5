"""Webhook delivery with Bot-API semantics (EVENTS.md §1.1-1.2): sans-IO scheduler + trio shell.

:class:`WebhookScheduler` decides; :func:`run_webhook` moves bytes (httpx under trio) and time.

* One queue per chat (the event's ``chat`` key; events without one get a queue each), only the
  head of a queue is in flight: **ordered per chat**, parallel across chats up to
  ``max_connections`` (telegram-bot-api's ``webhook_queue_id``).
* Retry (``on_update_error``): the first failure is retried at once, then after 2, 4, 8 … s up
  to a random 60–120 s; a ``Retry-After`` is honoured, clamped to 3600 s.
* TTL: an event is dropped when its next attempt would pass ``created + ttl`` (24 h default);
  the drop is counted (outbox ``bridge_hook.dropped``) and announced as a
  ``dcpool:event``/``webhook_dropped`` event.
* 410 Gone answered continuously for ``gone_disable_after`` (23 h, ``WEBHOOK_DROP_TIMEOUT``)
  disables the webhook (persisted).
* ``allowed_updates``: event names (``message``, ``messageStatus``, ``dcpool:event``) or types
  (``message.new`` …); others are settled as ``filtered`` without a request.

Request: ``POST`` JSON (:meth:`OutboxEvent.to_json`), ``Content-Type: application/json``,
``X-Dcpool-Secret-Token: <secret_token>`` (the Bot API's secret header idea), and
``X-Dcpool-Signature: sha256=<hex HMAC-SHA256(signing_secret, body)>``; ``X-Dcpool-Event-Id``
lets receivers dedupe (delivery is at-least-once).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import attrs
import trio

from .events import NewEvent, OutboxEvent

__all__ = ["WebhookConfig", "WebhookScheduler", "Outcome", "run_webhook", "sign_body",
           "SECRET_HEADER", "SIGNATURE_HEADER"]

log = logging.getLogger("dcpool.bridge.webhook")

SECRET_HEADER = "X-Dcpool-Secret-Token"
SIGNATURE_HEADER = "X-Dcpool-Signature"
MAX_RETRY_AFTER = 3600.0


def sign_body(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@attrs.frozen
class WebhookConfig:
    url: str
    name: str = "default"
    secret_token: str | None = None
    signing_secret: str | None = None
    allowed_updates: frozenset[str] | None = None
    max_connections: int = 40
    ttl: float = 86400.0
    gone_disable_after: float = 23 * 3600.0
    timeout: float = 10.0
    #: seconds per step of the backoff (1: 2, 4, 8 … s as telegram-bot-api; tests shrink it)
    retry_unit: float = 1.0

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.max_connections <= 100000:
            raise ValueError("max_connections must be 1..100000")
        if self.secret_token is not None and not (
                1 <= len(self.secret_token) <= 256
                and all(c.isalnum() or c in "_-" for c in self.secret_token)):
            raise ValueError("secret_token: 1-256 characters of A-Z a-z 0-9 _ -")

    def allows(self, event: OutboxEvent) -> bool:
        return (self.allowed_updates is None or not self.allowed_updates
                or event.event in self.allowed_updates or event.type in self.allowed_updates)


class Outcome:
    DELIVERED = "delivered"
    RETRY = "retry"
    DROPPED = "dropped"
    DISABLED = "disabled"


@attrs.define
class _Queue:
    events: deque[tuple[OutboxEvent, float]] = attrs.field(factory=deque)  # (event, expires_at)
    failures: int = 0
    next_at: float = 0.0
    in_flight: bool = False


class WebhookScheduler:
    def __init__(self, config: WebhookConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self._rng = rng or random.Random()
        self._queues: dict[str, _Queue] = {}
        self._known: set[int] = set()
        self.in_flight = 0
        self._gone_since: float | None = None
        self.disabled = False

    @property
    def loaded(self) -> int:
        return len(self._known)

    def offer(self, events: Iterable[OutboxEvent], now: float, wall: float) -> list[OutboxEvent]:
        """Queue new events; returns those filtered out by ``allowed_updates`` (to settle)."""
        filtered = []
        for ev in events:
            if ev.id in self._known:
                continue
            if not self.config.allows(ev):
                filtered.append(ev)
                continue
            self._known.add(ev.id)
            key = ev.chat or f"event:{ev.id}"
            expires = now + self.config.ttl - max(0.0, wall - ev.time)
            self._queues.setdefault(key, _Queue()).events.append((ev, expires))
        return filtered

    def ready(self, now: float) -> tuple[list[OutboxEvent], list[OutboxEvent]]:
        """Events to send now (marked in flight) and events dropped because they expired."""
        sends, drops = [], []
        for key in list(self._queues):
            queue = self._queues[key]
            while queue.events and not queue.in_flight and queue.events[0][1] <= now:
                drops.append(self._pop(key, queue))
            if not queue.events:
                self._queues.pop(key, None)
                continue
            if queue.in_flight or queue.next_at > now or self.in_flight >= self.config.max_connections:
                continue
            queue.in_flight = True
            self.in_flight += 1
            sends.append(queue.events[0][0])
        return sends, drops

    def settled(self, event_id: int) -> None:
        """The outcome of ``event_id`` is stored: it may be forgotten.  Until then the id stays
        known, so a reload of pending events racing the store cannot offer it twice."""
        self._known.discard(event_id)

    def _pop(self, key: str, queue: _Queue) -> OutboxEvent:
        ev, _ = queue.events.popleft()
        queue.failures = 0
        queue.next_at = 0.0
        return ev

    def on_result(self, event: OutboxEvent, status: int | None, now: float,
                  retry_after: float | None = None) -> str:
        """Record one attempt's answer (``status`` None = no HTTP answer) and decide."""
        key = event.chat or f"event:{event.id}"
        queue = self._queues[key]
        queue.in_flight = False
        self.in_flight -= 1
        if status is not None and 200 <= status < 300:
            self._gone_since = None
            self._pop(key, queue)
            if not queue.events:
                del self._queues[key]
            return Outcome.DELIVERED
        if status == 410:
            self._gone_since = now if self._gone_since is None else self._gone_since
            if now - self._gone_since >= self.config.gone_disable_after:
                self.disabled = True
                return Outcome.DISABLED
        else:
            self._gone_since = None
        queue.failures += 1
        delay = self.retry_delay(queue.failures)
        if retry_after is not None:
            delay = max(delay, min(max(retry_after, 0.0), MAX_RETRY_AFTER))
        queue.next_at = now + delay
        if queue.next_at > queue.events[0][1]:
            self._pop(key, queue)
            if not queue.events:
                del self._queues[key]
            return Outcome.DROPPED
        return Outcome.RETRY

    def retry_delay(self, failures: int) -> float:
        """0 after the first failure, then 2, 4, 8 … s, capped at a random 60–120 s."""
        if failures <= 1:
            return 0.0
        delay = float(2 ** (failures - 1))
        if delay >= 60.0:
            delay = 60.0 + self._rng.random() * 60.0
        return delay * self.config.retry_unit

    def next_wakeup(self) -> float | None:
        times = [q.next_at for q in self._queues.values() if not q.in_flight and q.events]
        times += [q.events[0][1] for q in self._queues.values() if not q.in_flight and q.events]
        return min(times) if times else None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None  # HTTP-date form: treat as absent (the backoff still applies)


async def run_webhook(config: WebhookConfig, outbox: Any, *, client: Any = None,
                      stats: dict[str, Any] | None = None) -> None:
    """Deliver the outbox to ``config.url`` until cancelled (or disabled)."""
    import httpx  # noqa: PLC0415

    sched = WebhookScheduler(config)
    stats = stats if stats is not None else {}
    stats.update({"delivered": 0, "failed_attempts": 0, "dropped": 0, "disabled": False})
    wake = trio.Event()
    owns_client = client is None
    if client is None:
        client = httpx.AsyncClient(timeout=config.timeout, limits=httpx.Limits(
            max_connections=config.max_connections, max_keepalive_connections=config.max_connections))

    async def attempt(ev: OutboxEvent) -> None:
        nonlocal wake
        body = ev.dumps().encode()
        headers = {"Content-Type": "application/json", "X-Dcpool-Event-Id": str(ev.id)}
        if config.secret_token:
            headers[SECRET_HEADER] = config.secret_token
        if config.signing_secret:
            headers[SIGNATURE_HEADER] = sign_body(config.signing_secret, body)
        status: int | None = None
        retry_after = None
        try:
            response = await client.post(config.url, content=body, headers=headers)
            status = response.status_code
            retry_after = _retry_after(response.headers.get("retry-after"))
        except (httpx.HTTPError, OSError) as exc:
            log.info("webhook %s: event %d: %s", config.name, ev.id, type(exc).__name__)
        outcome = sched.on_result(ev, status, trio.current_time(), retry_after)
        if outcome == Outcome.DELIVERED:
            stats["delivered"] += 1
            delivered.append(ev.id)  # recorded in batches by ``record``
            recorded_wanted.set()
        elif outcome == Outcome.DROPPED:
            await drop(ev)
        elif outcome == Outcome.DISABLED:
            stats["disabled"] = True
            await outbox.hook_disable(config.name)
        else:
            stats["failed_attempts"] += 1
        wake.set()

    delivered: list[int] = []
    recorded_wanted = trio.Event()

    async def record() -> None:
        """Store delivery outcomes many at a time (one transaction per batch): under load a
        commit per event, not the HTTP requests, would bound the throughput."""
        nonlocal recorded_wanted
        while True:
            await recorded_wanted.wait()
            recorded_wanted = trio.Event()
            batch, delivered[:] = list(delivered), []
            await outbox.hook_settle_many(config.name, [(i, "delivered") for i in batch])
            for event_id in batch:
                sched.settled(event_id)
            wake.set()

    async def drop(ev: OutboxEvent) -> None:
        stats["dropped"] += 1
        log.warning("webhook %s: event %d dropped after its TTL", config.name, ev.id)
        await outbox.hook_settle(config.name, ev.id, "dropped")
        sched.settled(ev.id)
        if ev.type != "webhook_dropped":
            await outbox.append(ev.account, [NewEvent(
                "dcpool:event", "webhook_dropped", None, f"webhook_dropped:{config.name}:{ev.id}",
                {"type": "webhook_dropped", "webhook": config.name, "eventId": ev.id})])

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(record)
            # Query the outbox only when it may hold events we have not loaded: after an append
            # (or a poll period: other processes of a fleet), or when the last query was cut
            # at its limit.  A query per finished request would cost more than the request.
            maybe_more = True
            while not sched.disabled:
                wake = trio.Event()  # before any await: an attempt finishing later sets this one
                if maybe_more and sched.loaded < config.max_connections * 2:
                    limit = sched.loaded + config.max_connections * 2
                    pending, disabled = await outbox.hook_pending(config.name, limit)
                    maybe_more = len(pending) >= limit
                    if disabled:
                        stats["disabled"] = True
                        log.warning("webhook %s is disabled (410 Gone for too long)", config.name)
                        break
                    filtered = sched.offer(pending, trio.current_time(), time.time())
                    if filtered:
                        await outbox.hook_settle_many(config.name, [(ev.id, "filtered") for ev in filtered])
                sends, drops = sched.ready(trio.current_time())
                for ev in drops:
                    await drop(ev)
                for ev in sends:
                    nursery.start_soon(attempt, ev)
                deadline = sched.next_wakeup()
                with trio.move_on_at(deadline if deadline is not None else trio.current_time() + 3600):
                    async with trio.open_nursery() as waiters:
                        async def on_wake() -> None:
                            await wake.wait()
                            waiters.cancel_scope.cancel()

                        async def on_new() -> None:
                            nonlocal maybe_more
                            await outbox.wait_for_new()
                            maybe_more = True
                            if sched.loaded < config.max_connections * 2:
                                waiters.cancel_scope.cancel()

                        waiters.start_soon(on_wake)
                        waiters.start_soon(on_new)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            if delivered:  # a clean stop records what was delivered (a crash redelivers it)
                with trio.move_on_after(5):
                    await outbox.hook_settle_many(config.name, [(i, "delivered") for i in delivered])
            if owns_client:
                await client.aclose()
