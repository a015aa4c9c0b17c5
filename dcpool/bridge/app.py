"""The bridge: accounts' updates into the outbox, the outbox out to webhooks, Pusher and SSE.

``async with open_bridge(config) as bridge`` serves HTTP (loopback by default) and runs the
configured webhooks; accounts are fed with :meth:`Bridge.run_account` (one source each: the
updates manager via :func:`dcpool.bridge.source.open_account_updates`, or an in-memory source)
and pools' lifecycle events with :meth:`Bridge.watch_pool`.  Fleets use :meth:`Bridge.run_fleet`.

Per item, the account loop decides synchronously (translate the update to events), then awaits
one outbox transaction holding the events *and* ``state_after``, then acks: kill -9 anywhere
loses nothing (the manager resumes from the stored state and the outbox drops repeats by
``dedupe_key``).

Routes::

    GET  /                 status page (HTML, live over /status/stream)
    GET  /status           status JSON;  GET /status/stream: SSE, one ``status`` event a second
    GET  /events           SSE of the outbox; resumes after ``Last-Event-ID`` (header, or
                           ``?lastEventId=`` for first connections); ``?account=`` filters;
                           bearer token (header or ``?token=``)
    POST /pusher/auth      bearer token; form or JSON ``socket_id``, ``channel_name``
    GET  /app/<key>        Pusher protocol v7 WebSocket
"""

from __future__ import annotations

import functools
import hmac
import itertools
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import attrs
import trio

from .events import event_from_pool_event, events_from_update, state_lost_event
from .httpserver import Request, Responder, WebSocket, WebSocketClosed, serve_http
from .outbox import Lease, Outbox, StaleLease, open_outbox_db
from .pusher import (Close, PusherAuthError, PusherConnection, Send, account_channel,
                     authorize_channel)
from .source import is_update
from .status_page import status_html
from .webhook import WebhookConfig, run_webhook

__all__ = ["BridgeConfig", "Bridge", "open_bridge", "AccountStatus"]

log = logging.getLogger("dcpool.bridge")


@attrs.frozen
class BridgeConfig:
    outbox: str = "bridge.db"
    host: str = "127.0.0.1"
    port: int = 8080
    #: bearer token for /pusher/auth and /events; generated (and logged once) when None
    api_token: str | None = None
    pusher_key: str = "dcpool"
    pusher_secret: str | None = None
    activity_timeout: float = 120.0
    pong_timeout: float = 30.0
    webhooks: tuple[WebhookConfig, ...] = ()
    accounts: tuple[str, ...] = ()
    lease_ttl: float = 15.0
    owner: str | None = None
    poll_interval: float = 1.0
    sse_keepalive: float = 15.0


@attrs.define
class AccountStatus:
    name: str
    running: bool = False
    pts: int | None = None
    events: int = 0
    last_update_date: int | None = None
    home_dc: int | None = None
    pool: Any = None
    epoch: int | None = None

    def to_json(self) -> dict[str, Any]:
        routing = []
        if self.pool is not None:
            try:
                stats = self.pool.statistics()
                self.home_dc = stats.home_dc
                routing = [{"dc_id": dc, "endpoint": s.endpoint,
                            "connections": sum(s.connections.values())} for dc, s in sorted(stats.dcs.items())]
            except Exception:  # noqa: BLE001  (a closing pool: show what we have)
                routing = []
        lag = None if not self.last_update_date else max(0.0, time.time() - self.last_update_date)
        return {"name": self.name, "running": self.running, "pts": self.pts, "events": self.events,
                "home_dc": self.home_dc, "lag_seconds": lag, "routing": routing, "epoch": self.epoch}


class Bridge:
    def __init__(self, config: BridgeConfig, outbox: Outbox, nursery: trio.Nursery) -> None:
        self.config = config
        self.outbox = outbox
        self._nursery = nursery
        self.api_token = config.api_token or secrets.token_urlsafe(24)
        self.pusher_secret = config.pusher_secret or secrets.token_hex(16)
        self.owner = config.owner or f"bridge-{secrets.token_hex(4)}"
        self.port = 0
        self.accounts: dict[str, AccountStatus] = {n: AccountStatus(n) for n in config.accounts}
        self.webhook_stats: dict[str, dict[str, Any]] = {}
        self._socket_ids = itertools.count(1)
        self._socket_prefix = secrets.randbelow(10**9)
        self._pool_seq = itertools.count(1)

    # ------------------------------------------------------------------ accounts

    async def run_account(self, name: str, source: Any, *, epoch: int | None = None,
                          batch: int = 200) -> None:
        """Consume one account's update source into the outbox until it ends or is cancelled.

        Items already waiting are written together (up to ``batch``) in one transaction with
        the last item's ``state_after``, then acknowledged in order: the same guarantee as one
        transaction per item (the stored state never runs ahead of the stored events), at a
        fraction of the commits.
        """
        status = self.accounts.setdefault(name, AccountStatus(name))
        status.running, status.epoch = True, epoch
        send, receive = trio.open_memory_channel[Any](batch)
        # users seen on this account, to name the senders of updates that carry none
        # (updateShortMessage); bounded, oldest forgotten first
        known: dict[int, Any] = {}

        def remember(users: Any) -> None:
            for user in users:
                if getattr(user, "id", None) is not None:
                    known.pop(user.id, None)
                    known[user.id] = user
            while len(known) > 10_000:
                del known[next(iter(known))]

        async def pull() -> None:
            async with send:
                async for item in source:
                    await send.send(item)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pull)
                async with receive:
                    async for first in receive:
                        items = [first]
                        while len(items) < batch:
                            try:
                                items.append(receive.receive_nowait())
                            except (trio.WouldBlock, trio.EndOfChannel):
                                break
                        new = []
                        for item in items:
                            if is_update(item):
                                new += events_from_update(item, known.values())
                                remember(item.users)
                            else:
                                new.append(state_lost_event(item))
                        state = items[-1].state_after.to_json()
                        await self.outbox.append(name, new, state, epoch=epoch)
                        status.events += len(new)
                        status.pts = state.get("pts")
                        status.last_update_date = state.get("date") or status.last_update_date
                        for item in items:
                            await source.ack(item)
        finally:
            status.running = False

    async def watch_pool(self, name: str, pool: Any) -> None:
        """Record ``pool``'s lifecycle events as ``dcpool:event`` events of account ``name``."""
        status = self.accounts.setdefault(name, AccountStatus(name))
        status.pool = pool
        async for event in pool.events():
            new = event_from_pool_event(event, next(self._pool_seq))
            if new is not None:
                await self.outbox.append(name, [new])
                status.events += 1

    async def run_fleet(self, accounts: list[str],
                        run_one: Callable[[str, Lease], Any]) -> None:
        """Run this process's share of ``accounts`` under leases, until cancelled.

        Every ``lease_ttl / 3`` s: heartbeat as a fleet member, renew held leases (an account
        whose renewal fails is cancelled at once: another process has it or will within the
        TTL), hand back accounts above the fair share ``ceil(len(accounts) / live members)``
        (released leases are taken at once by the others), and claim free or expired ones up
        to the share.  ``run_one(name, lease)`` runs one account and must pass ``lease.epoch``
        to :meth:`run_account` (fencing).  A process that dies simply stops renewing.
        """
        ttl = self.config.lease_ttl
        running: dict[str, tuple[Lease, trio.CancelScope, trio.Event]] = {}
        # Leases get their own connection: renewals must not queue behind the accounts' appends
        # (a starved renewal is a lost lease and a needless takeover).
        leases = Outbox(await trio.to_thread.run_sync(open_outbox_db, self.config.outbox))

        async def supervise(name: str, lease: Lease, scope: trio.CancelScope, done: trio.Event) -> None:
            try:
                with scope:
                    await run_one(name, lease)
            except StaleLease:
                log.warning("account %s: lease lost (fenced)", name)
            finally:
                done.set()
                if running.get(name, (None,))[0] is lease:
                    del running[name]

        async with trio.open_nursery() as nursery:
            try:
                while True:
                    members = await leases.member_heartbeat(self.owner, ttl)
                    share = -(-len(accounts) // max(1, members))
                    held = sorted(running)
                    renewed_all = await leases.lease_renew_all([running[n][0] for n in held], ttl)
                    for name, renewed in zip(held, renewed_all):
                        _lease, scope, done = running[name]
                        if renewed is None:
                            log.warning("account %s: lease lost", name)
                            scope.cancel()
                            running.pop(name, None)
                        else:
                            running[name] = (renewed, scope, done)
                    for name in sorted(running)[share:]:  # above the fair share: hand back
                        lease, scope, done = running.pop(name)
                        scope.cancel()
                        # Release only once the account's pool is closed: the next holder must
                        # not connect with the auth key while this process still uses it
                        # (AUTH_KEY_DUPLICATED).  If closing takes too long, the lease simply
                        # expires (it is no longer renewed).
                        with trio.move_on_after(ttl / 3):
                            await done.wait()
                        if done.is_set():
                            await leases.lease_release(lease)
                    for name in accounts:
                        if len(running) >= share:
                            break
                        if name in running:
                            continue
                        lease = await leases.lease_claim(name, self.owner, ttl)
                        if lease is not None:
                            scope, done = trio.CancelScope(), trio.Event()
                            running[name] = (lease, scope, done)
                            nursery.start_soon(supervise, name, lease, scope, done)
                    await trio.sleep(ttl / 3)
            finally:
                # the accounts end first (their pools close), then their leases are released
                for _lease, scope, _done in list(running.values()):
                    scope.cancel()
                with trio.CancelScope(shield=True):
                    held_now = list(running.values())
                    with trio.move_on_after(ttl / 3):
                        for _lease, _scope, done in held_now:
                            await done.wait()
                    for lease, _scope, done in held_now:
                        if not done.is_set():
                            continue
                        try:
                            await leases.lease_release(lease)
                        except Exception:  # noqa: BLE001
                            pass
                    try:
                        await leases.member_leave(self.owner)
                    except Exception:  # noqa: BLE001
                        pass
                    await leases.aclose()
                nursery.cancel_scope.cancel()

    def start_webhook(self, config: WebhookConfig) -> None:
        stats: dict[str, Any] = {"url": config.url}
        self.webhook_stats[config.name] = stats
        self._nursery.start_soon(functools.partial(run_webhook, config, self.outbox, stats=stats))

    # ------------------------------------------------------------------ status

    async def status(self) -> dict[str, Any]:
        hooks = []
        for name, stats in self.webhook_stats.items():
            backlog = await self.outbox.hook_backlog(name)
            hooks.append({"name": name, "url": stats.get("url"), "pending": backlog["pending"],
                          "delivered": stats.get("delivered", 0),
                          "failed_attempts": stats.get("failed_attempts", 0),
                          "dropped": backlog["dropped"], "disabled": bool(backlog["disabled"])})
        return {"last_event_id": await self.outbox.last_id(),
                "accounts": [a.to_json() for a in self.accounts.values()], "webhooks": hooks}

    # ------------------------------------------------------------------ HTTP

    def _authorized(self, request: Request) -> bool:
        given = request.header("authorization", "") or ""
        token = given[7:] if given.lower().startswith("bearer ") else request.query.get("token", "")
        return bool(token) and hmac.compare_digest(token.encode(), self.api_token.encode())

    def _channel_exists(self, channel: str) -> bool:
        return any(account_channel(name) == channel for name in self.accounts)

    async def handle(self, request: Request, responder: Responder) -> None:
        path = request.path
        if request.method == "GET" and path == "/":
            await responder.send(200, status_html(await self.status()), "text/html; charset=utf-8")
        elif request.method == "GET" and path == "/status":
            await responder.send_json(200, await self.status())
        elif request.method == "GET" and path == "/status/stream":
            await self._status_stream(responder)
        elif request.method == "GET" and path == "/events":
            if not self._authorized(request):
                await responder.send_json(401, {"error": "bearer token required"},
                                          {"www-authenticate": "Bearer"})
                return
            await self._sse(request, responder)
        elif request.method == "POST" and path == "/pusher/auth":
            await self._pusher_auth(request, responder)
        elif request.method == "GET" and path.startswith("/app/"):
            await self._pusher_socket(request, responder)
        else:
            await responder.send(404, "not found")

    async def _pusher_auth(self, request: Request, responder: Responder) -> None:
        if not self._authorized(request):
            await responder.send_json(401, {"error": "bearer token required"}, {"www-authenticate": "Bearer"})
            return
        ctype = request.header("content-type", "") or ""
        try:
            if "json" in ctype:
                form = json.loads(request.body or b"{}")
            else:
                form = dict(parse_qsl(request.body.decode("utf-8")))
            socket_id, channel = str(form["socket_id"]), str(form["channel_name"])
            answer = authorize_channel(self.config.pusher_key, self.pusher_secret, socket_id, channel,
                                       self._channel_exists)
        except (ValueError, KeyError, UnicodeDecodeError, TypeError) as exc:
            await responder.send_json(403, {"error": str(exc) if isinstance(exc, PusherAuthError) else "bad request"})
            return
        await responder.send_json(200, answer)

    async def _status_stream(self, responder: Responder) -> None:
        write = await responder.stream(200, "text/event-stream")
        while True:
            body = json.dumps(await self.status())
            await write(f"event: status\ndata: {body}\n\n".encode())
            await trio.sleep(1.0)

    async def _sse(self, request: Request, responder: Responder) -> None:
        raw = request.header("last-event-id") or request.query.get("lastEventId") or "0"
        try:
            cursor = int(raw)
        except ValueError:
            await responder.send_json(400, {"error": "Last-Event-ID must be an event id"})
            return
        account = request.query.get("account")
        write = await responder.stream(200, "text/event-stream")
        await write(b"retry: 1000\n\n")
        while True:
            batch = await self.outbox.read_after(cursor, 500, account=account)
            for ev in batch:
                await write(f"id: {ev.id}\nevent: {ev.event}\ndata: {ev.dumps()}\n\n".encode())
                cursor = ev.id
            if not batch:
                with trio.move_on_after(self.config.sse_keepalive) as idle:
                    await self.outbox.wait_for_new()
                if idle.cancelled_caught:
                    await write(b": keep-alive\n\n")

    async def _pusher_socket(self, request: Request, responder: Responder) -> None:
        refusal = PusherConnection.check_url(request.path, request.query, self.config.pusher_key)
        ws = await responder.accept_websocket()
        if refusal is not None:
            await ws.send_text(json.dumps({"event": "pusher:error", "data": json.dumps(
                {"message": refusal.reason, "code": refusal.code})}))
            await ws.close(refusal.code, refusal.reason)
            return
        machine = PusherConnection(
            socket_id=f"{self._socket_prefix}.{next(self._socket_ids)}", key=self.config.pusher_key,
            secret=self.pusher_secret, now=trio.current_time(),
            activity_timeout=self.config.activity_timeout, pong_timeout=self.config.pong_timeout,
            channel_exists=self._channel_exists)
        cursor = await self.outbox.last_id()  # Pusher is a live feed: no replay (SSE replays)

        async with trio.open_nursery() as nursery:
            async def apply(outputs: Sequence[Send | Close]) -> None:
                for out in outputs:
                    if isinstance(out, Send):
                        await ws.send_text(out.text)
                    else:
                        await ws.close(out.code, out.reason)
                        nursery.cancel_scope.cancel()

            async def reader() -> None:
                try:
                    while True:
                        await apply(machine.receive(await ws.receive_text(), trio.current_time()))
                except WebSocketClosed:
                    nursery.cancel_scope.cancel()

            async def timers() -> None:
                while True:
                    await trio.sleep_until(machine.next_deadline())
                    await apply(machine.poll(trio.current_time()))

            async def feeder() -> None:
                nonlocal cursor
                while True:
                    batch = await self.outbox.read_after(cursor, 500)
                    for ev in batch:
                        cursor = ev.id
                        await apply(machine.publish(account_channel(ev.account), ev.event, ev.dumps()))
                    if not batch:
                        await self.outbox.wait_for_new()

            async def guarded(fn: Callable[[], Any]) -> None:
                try:
                    await fn()
                except WebSocketClosed:
                    nursery.cancel_scope.cancel()

            await apply(machine.established())
            nursery.start_soon(reader)
            nursery.start_soon(guarded, timers)
            nursery.start_soon(guarded, feeder)


@asynccontextmanager
async def open_bridge(config: BridgeConfig, *, outbox: Outbox | None = None) -> AsyncIterator[Bridge]:
    """Open the outbox, serve HTTP and run the webhooks; all end with the block."""
    own = outbox is None
    if outbox is None:
        db = await trio.to_thread.run_sync(open_outbox_db, config.outbox)
        outbox = Outbox(db, poll_interval=config.poll_interval)
    try:
        async with trio.open_nursery() as nursery:
            bridge = Bridge(config, outbox, nursery)
            bridge.port = await nursery.start(serve_http, bridge.handle, config.host, config.port)
            for hook in config.webhooks:
                bridge.start_webhook(hook)
            try:
                yield bridge
            finally:
                nursery.cancel_scope.cancel()
    finally:
        if own:
            with trio.CancelScope(shield=True):
                await outbox.aclose()

