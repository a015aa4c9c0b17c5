"""The pool: one object through which a client talks to every DC.

Theory of operation
-------------------
Like httpcore's pool, the pool *decides synchronously* and *then awaits*:

* :meth:`Pool.invoke` resolves the target DC (home unless ``dc_id``), makes sure the DC is
  usable (auth key, authorization transfer when needed: both single-flight per DC), then picks
  a connection of the right *lane* in one synchronous step (:meth:`_DcState.pick`: the least
  loaded live connection, or a new one while the lane is under its maximum), submits the call,
  and awaits its outcome.  Nothing is mutated across an await except by the task that owns it.
* Each DC (:class:`_DcState`) has an auth key (created on first need, persisted), a ``main``
  lane (one connection) and a ``download`` lane (up to ``download_connections``, opened on
  demand).  Connections of foreign DCs, and download connections, close after
  ``idle_timeout`` without traffic.
* Every connection is a task in the pool's nursery: no task outlives ``async with open_pool()``.

Migrations and authorization transfers (spec §9, §11.3) are handled by
:mod:`dcpool.migrate`, which the pool calls around each attempt.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import EllipsisType
from typing import Any

import attrs
import trio

from .. import tl
from ..crypto.rsa import TELEGRAM_PRODUCTION_KEYS, TELEGRAM_TEST_KEYS, RsaKeysSpec, rsa_keys_from_user
from ..dcs import DcListSpec, DcTable, EndpointHealth, EndpointPolicy
from ..errors import (
    ConnectionLost,
    DcPoolError,
    HandshakeError,
    LocalProtocolError,
    PoolClosed,
    RequestTimeout,
    RpcError,
    UnknownDc,
)
from ..methods import IDEMPOTENT
from ..mtproto import AuthKey
from ..mtproto.handshake import ClientHandshake, HandshakeResult
from ..net.connection import Call, MtprotoConnection, wall_clock
from ..net.dial import Endpoint
from ..storage import Storage, open_storage
from ..transport import ClientTransport, Frame, TransportErrorFrame, TransportKind

log = logging.getLogger("dcpool.pool")

class KeyState:
    NONE = "none"
    KEYED = "keyed"
    AUTHORIZED = "authorized"


# --------------------------------------------------------------------------- public values


@attrs.frozen
class PoolEvent:
    """A lifecycle event (connected, disconnected, backoff, key_created, config_refreshed,
    migrated, home_changed, transfer_started, transfer_done, transfer_failed,
    transfer_flood_wait, idle_closed)."""

    kind: str
    dc_id: int | None
    time: float
    data: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class UpdatesGap:
    """Updates were dropped because the consumer lagged: run getDifference-style recovery."""

    dropped: int


@attrs.frozen
class ReceivedUpdate:
    dc_id: int
    body: bytes

    def parse(self) -> Any:
        return tl.loads(self.body)


@attrs.frozen
class DcStatistics:
    dc_id: int
    endpoint: str | None
    key_state: str
    connections: Mapping[str, int]  # live connections per lane
    in_flight: int
    reconnects: int
    backoff_until: float | None
    requests: int
    migrations: int
    exports: int
    imports: int
    bytes_received: int


@attrs.frozen
class PoolStatistics:
    home_dc: int
    dcs: Mapping[int, DcStatistics]
    in_flight: int
    tasks: int
    migrations: int
    transfers: int
    # authorization transfers by outcome (transfers = the completed ones), see dcpool.migrate
    transfers_started: int = 0
    transfers_failed: int = 0
    transfer_flood_waits: int = 0

    def __getitem__(self, dc_id: int) -> DcStatistics:
        return self.dcs[dc_id]


class EventStream:
    """One subscription to :meth:`Pool.events` (see there)."""

    def __init__(self, pool: Pool, buffer: int) -> None:
        self._pool = pool
        self._buffer = buffer
        self._send: trio.MemorySendChannel | None = None
        self._recv: trio.MemoryReceiveChannel | None = None

    def _subscribe(self) -> trio.MemoryReceiveChannel:
        if self._recv is None:
            self._send, self._recv = trio.open_memory_channel[PoolEvent](self._buffer)
            if self._pool._closing:
                self._send.close()
            else:
                self._pool._subscribers.append(self._send)
        return self._recv

    def close(self) -> None:
        if self._send is not None:
            if self._send in self._pool._subscribers:
                self._pool._subscribers.remove(self._send)
            self._send.close()

    async def __aenter__(self) -> trio.MemoryReceiveChannel:
        return self._subscribe()

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> PoolEvent:
        try:
            return await self._subscribe().receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            self.close()
            raise StopAsyncIteration from None


# --------------------------------------------------------------------------- per-DC state


class _DcState:
    """One DC: its key, salt, lanes and counters.  Implements the connection-owner interface."""

    def __init__(self, pool: Pool, dc_id: int) -> None:
        self.pool = pool
        self.dc_id = dc_id
        record = pool.storage.get_dc(dc_id)
        self.auth_key: AuthKey | None = AuthKey.from_bytes(record.auth_key) if record else None
        self.salt: int = (record.salt or 0) if record else 0
        self.time_offset: float = pool._time_offset
        self.authorized_user: int | None = record.authorized_user_id if record else None
        self.key_lock = trio.Lock()
        #: bumped whenever the DC forgets our key (an authorization is bound to one key)
        self.key_generation = 0
        self.transfer_lock = trio.Lock()
        self.lanes: dict[str, list[MtprotoConnection]] = {"main": [], "download": []}
        self.requests = 0
        self.migrations = 0
        self.exports = 0
        self.imports = 0
        self.bytes_received = 0
        self.reconnects_closed = 0  # reconnect counts of connections already gone
        self.flood_until: float | None = None  # export FLOOD_WAIT deadline (trio clock)

    # ---------------------------------------------------------------- owner interface

    def endpoints(self, lane: str) -> list[Endpoint]:
        opts = self.pool._policy.candidates(
            self.dc_id,
            lane=lane,
            prefer_ipv6=self.pool.prefer_ipv6,
            allow_ipv6=self.pool.allow_ipv6,
            health=self.pool._health,
            now=trio.current_time(),
        )
        self._options = {(o.ip_address, o.port): o for o in opts}
        return [Endpoint(o.ip_address, o.port) for o in opts]

    def transport_for(self, endpoint: Endpoint) -> ClientTransport:
        opt = getattr(self, "_options", {}).get((endpoint.host, endpoint.port))
        if opt is not None and opt.requires_obfuscation:
            kind = self.pool.transport_kind
            if opt.secret and len(opt.secret) == 17 and opt.secret[0] == 0xDD:
                kind = TransportKind.PADDED_INTERMEDIATE
            return ClientTransport(kind, obfuscated=True, secret=opt.secret or None,
                                   dc_id=self.wire_dc, rng=self.pool.rng)
        return ClientTransport(self.pool.transport_kind, obfuscated=self.pool.obfuscated,
                               rng=self.pool.rng)

    @property
    def wire_dc(self) -> int:
        return self.dc_id + 10000 if self.pool.test_mode else self.dc_id

    async def ensure_key(self, conn: MtprotoConnection, stream: trio.SocketStream,
                         transport: ClientTransport) -> None:
        if self.auth_key is not None:
            return
        async with self.key_lock:
            if self.auth_key is not None:
                return
            result = await self._handshake(stream, transport)
            key = result.auth_key
            self.auth_key = key
            self.salt = result.server_salt
            self.time_offset = result.time_offset
            self.pool._time_offset = result.time_offset
            self.authorized_user = None
            self.pool.storage.save_auth_key(self.dc_id, key.key, key.key_id, time.time())
            self.pool.storage.set_salt(self.dc_id, self.salt, key_id=key.key_id)
            self.pool._emit("key_created", self.dc_id, key_id=key.key_id)

    async def _handshake(self, stream: trio.SocketStream, transport: ClientTransport) -> HandshakeResult:
        """Create an auth key on this stream (spec §5); trio errors become dcpool errors here."""
        hs = ClientHandshake(self.pool.rsa_keys, self.wire_dc, self.pool.rng)
        transport.send_frame(hs.start(wall_clock()))
        try:
            with trio.fail_after(self.pool.handshake_timeout):
                await stream.send_all(transport.data_to_send())
                while True:
                    data = await stream.receive_some(1 << 16)
                    if not data:
                        raise HandshakeError("the server closed the connection during the handshake")
                    for event in transport.receive_data(data):
                        if isinstance(event, TransportErrorFrame):
                            raise HandshakeError(f"transport error {event.code} during the handshake",
                                                 transport_code=event.code)
                        if not isinstance(event, Frame):
                            continue
                        out = hs.receive(event.payload, wall_clock())
                        if isinstance(out, HandshakeResult):
                            return out
                        transport.send_frame(out)
                    pending = transport.data_to_send()
                    if pending:
                        await stream.send_all(pending)
        except trio.TooSlowError:
            raise HandshakeError(
                f"DC {self.dc_id}: no handshake answer within {self.pool.handshake_timeout} s"
            ) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise ConnectionLost(f"DC {self.dc_id}: connection lost during the handshake: {exc}") from exc

    def key_invalid(self, key_id: int) -> None:
        if self.auth_key is not None and self.auth_key.key_id == key_id:
            log.warning("DC %s forgot our auth key %s: creating a new one", self.dc_id, key_id)
            self.auth_key = None
            self.authorized_user = None
            self.key_generation += 1
            self.pool.storage.drop_auth_key(self.dc_id)
            # Every other connection of this DC still talks with the forgotten key: retire
            # them too, or a transfer could authorize the dead key while the new one stays
            # unauthorized.
            for conns in self.lanes.values():
                for conn in conns:
                    session = conn.session
                    if session is not None and session.auth_key.key_id == key_id:
                        conn.kill()

    def wrap_init(self, body: bytes) -> bytes:
        return self.pool._init_prefix + body

    def on_salt(self, salt: int) -> None:
        self.salt = salt
        if self.auth_key is not None:
            self.pool.storage.set_salt(self.dc_id, salt, key_id=self.auth_key.key_id)

    def on_clock(self, offset: float) -> None:
        self.time_offset = offset
        self.pool._time_offset = offset

    def on_update(self, body: bytes) -> None:
        self.pool._on_update(self.dc_id, body)

    def on_event(self, kind: str, **data: Any) -> None:
        self.pool._emit(kind, self.dc_id, **data)

    def endpoint_result(self, endpoint: Endpoint, ok: bool) -> None:
        opt = getattr(self, "_options", {}).get((endpoint.host, endpoint.port))
        if opt is None:
            return
        if ok:
            self.pool._health.record_ok(opt, trio.current_time())
        else:
            self.pool._health.record_error(opt, trio.current_time())

    # ---------------------------------------------------------------- lanes

    def pick(self, lane: str) -> MtprotoConnection:
        """Choose the connection for a call (synchronous: the httpcore way)."""
        conns = [c for c in self.lanes[lane] if not c.closed]
        self.lanes[lane] = conns
        limit = 1 if lane == "main" else self.pool.download_connections
        ready = [c for c in conns if c.state == "ready"]
        best = min(ready or conns, key=lambda c: c.load, default=None)
        if best is None or (best.load > 0 and len(conns) < limit):
            return self._open(lane)
        return best

    def warm(self, lane: str) -> None:
        """Start dialing (and creating the key) now if the lane has no connection yet: used
        while an authorization transfer is on its way, so that the target's key exchange
        overlaps the export instead of following it."""
        if not any(not c.closed for c in self.lanes[lane]):
            self._open(lane)

    def _open(self, lane: str) -> MtprotoConnection:
        pool = self.pool
        if pool._nursery is None or pool._closing:
            raise PoolClosed("the pool is closed")
        foreign = self.dc_id != pool.home_dc
        idle = pool.idle_timeout if (lane == "download" or foreign) else None
        conn = MtprotoConnection(
            self,
            lane,
            rng=pool.rng,
            ping_interval=pool.ping_interval,
            connect_timeout=pool.connect_timeout,
            connect_attempts=pool.connect_attempts,
            idle_timeout=idle,
            gzip_requests=lane == "main",
        )
        self.lanes[lane].append(conn)
        pool._nursery.start_soon(self._run_conn, conn)
        return conn

    async def _run_conn(self, conn: MtprotoConnection) -> None:
        self.pool._tasks += 1
        try:
            await conn.run()
        finally:
            self.pool._tasks -= 1
            self.reconnects_closed += conn.reconnects
            if conn in self.lanes[conn.lane]:
                self.lanes[conn.lane].remove(conn)

    def statistics(self) -> DcStatistics:
        conns = [c for lane in self.lanes.values() for c in lane if not c.closed]
        stats = [c.statistics() for c in conns]
        endpoint = next((s.endpoint for s in stats if s.lane == "main" and s.endpoint), None)
        endpoint = endpoint or next((s.endpoint for s in stats if s.endpoint), None)
        backoffs = [s.backoff_until for s in stats if s.backoff_until is not None]
        if self.auth_key is None:
            key_state = KeyState.NONE
        elif self.authorized_user is not None or (
            self.dc_id == self.pool.home_dc and self.pool.user_id is not None
        ):
            key_state = KeyState.AUTHORIZED
        else:
            key_state = KeyState.KEYED
        return DcStatistics(
            dc_id=self.dc_id,
            endpoint=endpoint,
            key_state=key_state,
            connections={lane: sum(1 for s in stats if s.lane == lane and s.state == "ready")
                         for lane in self.lanes},
            in_flight=sum(s.in_flight for s in stats),
            reconnects=self.reconnects_closed + sum(s.reconnects for s in stats),
            backoff_until=min(backoffs) if backoffs else None,
            requests=self.requests,
            migrations=self.migrations,
            exports=self.exports,
            imports=self.imports,
            bytes_received=self.bytes_received,
        )


# --------------------------------------------------------------------------- the pool


class Pool:
    """Talk to every DC through one object.  Create it with :func:`open_pool`."""

    def __init__(
        self,
        *,
        api_id: int,
        api_hash: str,
        storage: Storage,
        test_mode: bool,
        dc_list: DcListSpec | None,
        rsa_keys: RsaKeysSpec | None,
        home_dc: int,
        transport: TransportKind = TransportKind.ABRIDGED,
        obfuscated: bool = False,
        download_connections: int = 4,
        idle_timeout: float = 60.0,
        ping_interval: float = 60.0,
        connect_timeout: float = 10.0,
        connect_attempts: int = 3,
        handshake_timeout: float = 30.0,
        request_timeout: float | None = 60.0,
        prefer_ipv6: bool | None = None,
        allow_ipv6: bool = True,
        max_hops: int = 5,
        wait_flood: float = 0.0,
        updates_buffer: int = 1000,
        device_model: str = "dcpool",
        system_version: str = "Python",
        app_version: str = "0.1.0",
        lang_code: str = "en",
        rng: Callable[[int], bytes] = os.urandom,
        fetch_config: bool = True,
    ) -> None:
        self.api_id = api_id
        self.api_hash = api_hash
        self.storage = storage
        self.test_mode = test_mode
        self.rng = rng
        self.transport_kind = transport
        self.obfuscated = obfuscated
        self.download_connections = download_connections
        self.idle_timeout = idle_timeout
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        self.connect_attempts = connect_attempts
        self.handshake_timeout = handshake_timeout
        self.request_timeout = request_timeout
        self.prefer_ipv6 = prefer_ipv6
        self.allow_ipv6 = allow_ipv6
        self.max_hops = max_hops
        self.fetch_config = fetch_config
        if rsa_keys is None:
            rsa_keys = TELEGRAM_TEST_KEYS if test_mode else TELEGRAM_PRODUCTION_KEYS
        self.rsa_keys = rsa_keys_from_user(rsa_keys)  # PEM text, key lists, {fp: key}
        self.table = DcTable.for_user(dc_list, test_mode=test_mode)  # also {dc_id: (host, port)}
        self._health = EndpointHealth()
        self._policy = EndpointPolicy(self.table)
        stored_home = storage.get_home_dc()
        self.home_dc = stored_home if stored_home is not None else home_dc
        if stored_home is None:
            storage.set_home_dc(self.home_dc)
        self.user_id: int | None = storage.get_user_id()
        #: where the key signed in; a stored session was (as far as we know) signed in at home
        self.login_dc: int | None = self.home_dc if self.user_id is not None else None
        self._time_offset = 0.0
        self._dcs: dict[int, _DcState] = {}
        self._nursery: trio.Nursery | None = None
        self._closing = False
        self._tasks = 0
        self._subscribers: list[trio.MemorySendChannel] = []
        self._updates: deque[ReceivedUpdate | UpdatesGap] = deque()
        self._updates_max = updates_buffer
        self._updates_event = trio.Event()
        self._config_refresh = trio.Event()
        self._migrations = 0
        self._transfers = 0
        self._home_generation = 0
        self._init_prefix = self._build_init_prefix(device_model, system_version, app_version, lang_code)
        # DCs with a stored key show up in statistics() before they are used.
        for record in storage.list_dcs():
            if self.table.knows(record.dc_id):
                self._dcs[record.dc_id] = _DcState(self, record.dc_id)
        self._restore_config()
        from ..migrate import Migrator

        #: FLOOD_WAIT on an authorization export up to this many seconds is waited out
        self.migrator = Migrator(self, wait_flood=wait_flood)

    def __repr__(self) -> str:
        return f"<Pool home={self.home_dc} dcs={sorted(self._dcs)} test_mode={self.test_mode}>"

    def _build_init_prefix(self, device_model: str, system_version: str, app_version: str,
                           lang_code: str) -> bytes:
        # invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X;
        # initConnection#c1cd5ea9 {X:Type} flags:# api_id:int device_model:string ... query:!X = X;
        # Both wrappers end with their query, so the serialized prefix + the body is the call.
        wrapped = tl.api.InvokeWithLayer(
            layer=tl.LAYER,
            query=tl.api.InitConnection(
                api_id=self.api_id,
                device_model=device_model,
                system_version=system_version,
                app_version=app_version,
                system_lang_code=lang_code,
                lang_pack="",
                lang_code=lang_code,
                query=tl.Raw(b""),
            ),
        )
        return wrapped.to_bytes()

    # ------------------------------------------------------------------ DCs

    def _dc(self, dc_id: int) -> _DcState:
        state = self._dcs.get(dc_id)
        if state is None:
            if not self.table.knows(dc_id):
                raise UnknownDc(dc_id)
            state = _DcState(self, dc_id)
            self._dcs[dc_id] = state
        return state

    def known_dcs(self) -> list[int]:
        return self.table.dc_ids()

    # ------------------------------------------------------------------ config

    def _restore_config(self) -> None:
        snap = self.storage.get_config()
        if snap is None:
            return
        try:
            config = tl.loads(snap.blob)
            self.table.apply_config(config)
        except (DcPoolError, ValueError) as exc:
            log.warning("ignoring the stored config: %s", exc)
            return
        self._config_expires = snap.expires
        # Time to live left: the TTL the DC gave (its own clock: expires - date) minus the time
        # elapsed here since the fetch (our clock); both differences ignore clock skew.
        ttl = float(snap.expires) - float(getattr(config, "date", snap.fetched_at))
        self._config_ttl_left = ttl - (time.time() - snap.fetched_at)

    #: unix time the config expires (as Telegram said; kept for storage and introspection)
    _config_expires: float | None = None
    #: seconds of validity left when the stored config was restored (converted to a deadline
    #: on trio's clock by the config loop, since __init__ may run before trio's clock is usable)
    _config_ttl_left: float | None = None
    #: when the config expires, on trio's clock: timers must use trio's clock (which tests may
    #: fake) and must not compare Telegram's unix times with a local clock that may be skewed
    _config_deadline: float | None = None

    async def refresh_config(self) -> Any:
        """Fetch ``help.getConfig`` through the home DC, apply and persist it."""
        config = await self.invoke(tl.api.help.GetConfig())
        changed = self.table.apply_config(config)
        self.storage.set_config(config.to_bytes(), float(config.expires), time.time())
        self._config_expires = float(config.expires)
        # config#cc1a241e ... date:int expires:int ...: the TTL is expires - date (server clock).
        self._config_deadline = trio.current_time() + max(1.0, float(config.expires - config.date))
        self._emit("config_refreshed", self.home_dc, expires=config.expires, changed=sorted(changed))
        return config

    async def _config_loop(self) -> None:
        """Keep the config fresh: at start if missing or expired, then when ``expires`` passes
        (with jitter, so a fleet of clients does not stampede), and on updateConfig."""
        if self._config_deadline is None and self._config_ttl_left is not None:
            self._config_deadline = trio.current_time() + self._config_ttl_left
        while True:
            deadline = self._config_deadline
            now = trio.current_time()
            if deadline is None or deadline <= now:
                try:
                    await self.refresh_config()
                    continue
                except (DcPoolError, OSError) as exc:
                    log.warning("config refresh failed: %s", exc)
                    wait = 30.0
            else:
                left = deadline - now
                wait = left + random.uniform(0, min(60.0, left * 0.1 + 1))
            with trio.move_on_after(wait):
                await self._config_refresh.wait()
                self._config_refresh = trio.Event()
                self._config_deadline = None

    # ------------------------------------------------------------------ invoke

    async def invoke(self, request: Any, *, dc_id: int | None = None, timeout: float | None | EllipsisType = ...,
                     lane: str = "main") -> Any:
        """Send a TL function to the home DC (or ``dc_id``) and return its parsed result.

        Migrations (``*_MIGRATE_X``) are followed; RPC errors raise :class:`RpcError`
        subclasses; ``timeout`` (seconds, default ``request_timeout``) raises RequestTimeout.
        """
        if not getattr(type(request), "IS_FUNCTION", False):
            raise LocalProtocolError(f"invoke wants a TL function, got {type(request).__name__}")
        name = type(request).QUALNAME
        body = await self.migrator.run(
            name, request.to_bytes(), dc_id=dc_id, timeout=timeout, lane=lane
        )
        return type(request).read_result(body)

    async def invoke_raw(self, body: bytes, *, dc_id: int | None = None, timeout: float | None | EllipsisType = ...,
                         name: str | None = None, idempotent: bool = False, lane: str = "main") -> bytes:
        """Like :meth:`invoke` for a pre-serialized request; returns the raw result bytes."""
        if name is None:
            try:
                name = tl.loads(body).QUALNAME
            except DcPoolError:
                name = f"0x{int.from_bytes(body[:4], 'little'):08x}"
        result = await self.migrator.run(name, bytes(body), dc_id=dc_id, timeout=timeout, lane=lane,
                                         idempotent=idempotent or name in IDEMPOTENT)
        return bytes(result)

    async def _send_once(self, name: str, body: bytes, dc_id: int, *, timeout: float | None | EllipsisType,
                         lane: str, idempotent: bool) -> bytes | memoryview:
        """One attempt on one DC: pick a connection, submit, await the outcome."""
        if self._closing or self._nursery is None:
            raise PoolClosed("the pool is closed")
        state = self._dc(dc_id)
        call = Call(body=body, name=name, idempotent=idempotent, dc_id=dc_id)
        conn = state.pick(lane)
        state.requests += 1
        conn.submit(call)
        if timeout is ...:
            timeout = self.request_timeout
        try:
            with trio.fail_after(timeout if timeout is not None else math.inf):
                await call.done.wait()
        except trio.TooSlowError:
            raise RequestTimeout(f"{name} on DC {dc_id}: no answer within {timeout} s") from None
        finally:
            if not call.done.is_set() and call.conn is not None:
                call.conn.withdraw(call)
        if call.error is not None:
            error = call.error
            if isinstance(error, RpcError) and error.request_name is None:
                error.request_name = name
            raise error
        assert call.result is not None
        state.bytes_received += len(call.result)
        return call.result

    # ------------------------------------------------------------------ updates & events

    def _on_update(self, dc_id: int, body: bytes) -> None:
        if _is_config_update(body):
            self._config_refresh.set()
        if len(self._updates) >= self._updates_max:
            # A lagging consumer must never block a connection: drop the oldest and say so.
            dropped = 0
            while len(self._updates) >= self._updates_max:
                item = self._updates.popleft()
                dropped += item.dropped if isinstance(item, UpdatesGap) else 1
            self._updates.appendleft(UpdatesGap(dropped))
        self._updates.append(ReceivedUpdate(dc_id, body))
        self._updates_event.set()

    async def updates(self) -> AsyncIterator[ReceivedUpdate | UpdatesGap]:
        """Server-pushed updates in arrival order; an :class:`UpdatesGap` marks lost ones."""
        while True:
            while self._updates:
                yield self._updates.popleft()
            if self._closing:
                return
            self._updates_event = trio.Event()
            await self._updates_event.wait()

    def _emit(self, kind: str, dc_id: int | None, **data: Any) -> None:
        event = PoolEvent(kind, dc_id, trio.current_time(), data)
        log.debug("event %s dc=%s %s", kind, dc_id, data)
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                pass  # a slow observer loses events rather than stalling the pool
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self._subscribers.remove(channel)

    def events(self, buffer: int = 1000) -> EventStream:
        """Lifecycle events, two ways::

            async with pool.events() as events:     # subscribed for the block
                async for event in events: ...
            async for event in pool.events(): ...   # subscribed from the first iteration

        A subscriber that falls ``buffer`` events behind loses the newest ones rather than
        stalling the pool.  The stream ends when the pool closes.
        """
        return EventStream(self, buffer)

    # ------------------------------------------------------------------ state

    def set_home_dc(self, dc_id: int) -> None:
        if dc_id == self.home_dc:
            return
        old = self.home_dc
        self._dc(dc_id)  # validates the id
        self.home_dc = dc_id
        self._home_generation += 1
        self.storage.set_home_dc(dc_id)
        self._emit("home_changed", dc_id, old=old)

    def set_user(self, user_id: int | None) -> None:
        """Signed in as ``user_id`` on the home DC (None: logged out).  A different user
        invalidates every authorization mark."""
        if user_id != self.user_id:
            self.storage.clear_all_authorizations()
            for state in self._dcs.values():
                state.authorized_user = None
        self.user_id = user_id
        #: where the key signed in (exports may have to come from there after the user moved)
        self.login_dc = self.home_dc if user_id is not None else None
        self.storage.set_user_id(user_id)
        if user_id is not None:
            home = self._dc(self.home_dc)
            home.authorized_user = user_id
            if home.auth_key is not None:
                self.storage.set_authorized(self.home_dc, user_id, key_id=home.auth_key.key_id)

    def statistics(self) -> PoolStatistics:
        dcs = {dc: s.statistics() for dc, s in sorted(self._dcs.items())}
        return PoolStatistics(
            home_dc=self.home_dc,
            dcs=dcs,
            in_flight=sum(d.in_flight for d in dcs.values()),
            tasks=self._tasks,
            migrations=self._migrations,
            transfers=self._transfers,
            transfers_started=self.migrator.counts["transfers_started"],
            transfers_failed=self.migrator.counts["transfers_failed"],
            transfer_flood_waits=self.migrator.counts["transfer_flood_waits"],
        )

    def drop_connections(self, dc_id: int | None = None) -> None:
        """Break the TCP connections of one DC (or all): they reconnect (for tests)."""
        for dc, state in self._dcs.items():
            if dc_id is None or dc == dc_id:
                for conns in state.lanes.values():
                    for conn in conns:
                        conn.kill()

    # ------------------------------------------------------------------ downloads

    def download(self, location: Any, *, dc_id: int | None = None, size: int | None = None,
                 part_size: int = 512 * 1024, parallel: int = 4, offset: int = 0):
        """Async iterator of the file's chunks, in order (see :mod:`dcpool.migrate.download`)."""
        from ..migrate.download import Download

        return Download(self, location, dc_id=dc_id, size=size, part_size=part_size,
                        parallel=parallel, offset=offset)

    async def download_to(self, location: Any, path, *, dc_id: int | None = None,
                          size: int | None = None, progress: Callable[[int, int | None], None] | None = None,
                          **kwargs: Any) -> int:
        """Download to a file; ``progress(done_bytes, total)`` after each chunk.  Returns bytes."""
        done = 0
        with open(path, "wb") as f:
            async for chunk in self.download(location, dc_id=dc_id, size=size, **kwargs):
                f.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, size)
        return done

    # ------------------------------------------------------------------ sign-in helpers

    async def send_code(self, phone: str) -> Any:
        """auth.sendCode, following PHONE/NETWORK_MIGRATE (the home DC moves)."""
        return await self.invoke(
            tl.api.auth.SendCode(
                phone_number=phone, api_id=self.api_id, api_hash=self.api_hash,
                settings=tl.api.CodeSettings(),
            )
        )

    async def sign_in(self, phone: str, code: str, phone_code_hash: str | None = None,
                      *, first_name: str = "dcpool", last_name: str = "") -> Any:
        """Sign in (signing up if the number is new); returns the user."""
        if phone_code_hash is None:
            sent = await self.send_code(phone)
            phone_code_hash = sent.phone_code_hash
        auth = await self.invoke(
            tl.api.auth.SignIn(phone_number=phone, phone_code_hash=phone_code_hash, phone_code=code)
        )
        if type(auth).QUALNAME == "auth.authorizationSignUpRequired":
            auth = await self.invoke(
                tl.api.auth.SignUp(phone_number=phone, phone_code_hash=phone_code_hash,
                                   first_name=first_name, last_name=last_name)
            )
        self.set_user(auth.user.id)
        return auth.user

    async def log_out(self) -> None:
        try:
            await self.invoke(tl.api.auth.LogOut())
        finally:
            self.set_user(None)


# updateConfig#a229dd06 = Update;  updateDcOptions#8e5e9873 dc_options:Vector<DcOption> = Update;
_CONFIG_UPDATE_IDS: frozenset[bytes] = frozenset({bytes.fromhex("06dd29a2"), bytes.fromhex("73985e8e")})
# updateShort#78d4dec1 update:Update date:int = Updates;
_UPDATE_SHORT = bytes.fromhex("c1ded478")
# updates#74ae4240 ... ;  updatesCombined#725b04c3 ...  (both carry updates:Vector<Update>)
_UPDATES_LISTS = frozenset({bytes.fromhex("4042ae74"), bytes.fromhex("c3045b72")})


def _is_config_update(body: bytes) -> bool:
    """Does this update ask for a config refresh (updateConfig / updateDcOptions)?  They only
    come wrapped in an Updates object, so look cheaply at the constructor ids first and parse
    only a list that may hold one."""
    head = body[:4]
    if head == _UPDATE_SHORT:
        return body[4:8] in _CONFIG_UPDATE_IDS
    if head in _UPDATES_LISTS and any(cid in body for cid in _CONFIG_UPDATE_IDS):
        try:
            updates = tl.loads(body).updates
        except DcPoolError:
            return False
        return any(type(u).QUALNAME in ("updateConfig", "updateDcOptions") for u in updates)
    return False


@asynccontextmanager
async def open_pool(
    *,
    api_id: int,
    api_hash: str,
    storage: Any = None,
    test_mode: bool = False,
    dc_list: DcListSpec | None = None,
    rsa_keys: RsaKeysSpec | None = None,
    home_dc: int = 2,
    **options: Any,
) -> AsyncIterator[Pool]:
    """Open a pool; every connection and background task ends with the block.

    ``storage``: a path (SQLite), a Storage object, or None (memory).  ``dc_list`` /
    ``rsa_keys`` replace the built-in production or test DC list and Telegram's keys (this is
    how the emulator plugs in: ``cluster.dc_list()``, ``cluster.rsa_keys()``).  ``dc_list`` may
    also be ``{dc_id: (host, port)}``, ``rsa_keys`` PEM text (PKCS#1 or SPKI) or a list of keys.
    """
    mode = "test" if test_mode else "prod"
    store = open_storage(storage, mode=mode)
    owns_storage = storage is None or isinstance(storage, (str, os.PathLike))
    pool = Pool(api_id=api_id, api_hash=api_hash, storage=store, test_mode=test_mode,
                dc_list=dc_list, rsa_keys=rsa_keys, home_dc=home_dc, **options)
    try:
        try:
            async with trio.open_nursery() as nursery:
                pool._nursery = nursery
                if pool.fetch_config:
                    nursery.start_soon(pool._config_loop)
                try:
                    yield pool
                finally:
                    pool._closing = True
                    pool._updates_event.set()
                    for channel in pool._subscribers:  # event streams end with the pool
                        channel.close()
                    pool._subscribers.clear()
                    for state in pool._dcs.values():
                        for conns in state.lanes.values():
                            for conn in conns:
                                conn.close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # Users see one exception, not a group, from a public context manager.
            single = _single_exception(group)
            if single is None:
                raise
            raise single from None
    finally:
        pool._nursery = None
        if owns_storage:
            store.close()


def _single_exception(group: BaseExceptionGroup) -> BaseException | None:
    """The one meaningful exception inside a nursery's group (Cancelled ones aside), or None."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for sub in exc.exceptions:
                walk(sub)
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)

    walk(group)
    return leaves[0] if len(leaves) == 1 else None
