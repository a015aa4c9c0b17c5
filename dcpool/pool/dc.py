"""Per-DC state: one owner for a DC's auth key, salt, clock offset, lanes of connections,
authorization mark and counters.

Theory of operation
-------------------
Like httpcore's pool, a :class:`DcState` *decides synchronously* and the caller *then awaits*:
:meth:`DcState.submit` picks the connection of the right lane for a call in one synchronous
step (the least loaded live connection, or a new one while the lane is under its maximum) and
queues the call there; the caller (the router) awaits the call's outcome.

Each DC has an auth key (created on first need, single-flight, persisted), a ``main`` lane (one
connection) and a ``download`` lane (up to ``download_connections``, opened on demand).
Connections of foreign DCs, and download, upload and CDN connections, close after
``idle_timeout`` without traffic.

With ``pfs`` the connections of a (non-CDN) DC talk with one shared temporary key bound to the
permanent key (:mod:`.tempkey`); :attr:`DcState.auth_key` is then that temp key and
:attr:`DcState.permanent_key` the permanent one.  The temp key is replaced after 75 % of its
lifetime at a moment when no call of the DC is in flight (connections are broken and re-made
on a new key; at 90 % even with calls in flight, which the connections re-send or report as
OutcomeUnknown), and after a -404 on it (the DC forgot it) without touching the permanent key
or the authorization.  Every connection is a task in the pool's nursery (:class:`~.runtime.PoolRuntime`).

A DcState is the :class:`~dcpool.net.connection.ConnectionOwner` of its connections: they call
back (synchronously, from the receive path) with salts, clock corrections, updates, a forgotten
key.  Those callbacks change memory at once and *queue* the storage write (see :mod:`.writer`).

It knows nothing about the home DC, migrations or transfers: the router above decides those
and uses the public methods here (:meth:`mark_authorized`, :meth:`forget_authorization`,
``record_*``).
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import trio

from ..dcs import DcOption, Lane
from ..errors import DcPoolError, UnknownDc
from ..mtproto import AuthKey
from ..mtproto.handshake import ClientHandshake
from ..net.connection import Call, ConnectionState, MtprotoConnection, wall_clock
from ..net.dial import Endpoint
from ..net.handshake import drive_handshake
from ..transport import ClientTransport, TransportKind
from .runtime import PoolRuntime
from .tempkey import BindRejected, TempKey, create_bound_temp_key
from .statistics import DcStatistics, KeyState

__all__ = ["DcState", "DcRegistry"]

log = logging.getLogger("dcpool.pool")

#: the lanes of a DC, in statistics order
LANES = (Lane.MAIN, Lane.DOWNLOAD, Lane.UPLOAD, Lane.CDN)

#: Largest transport frame accepted from a DC: well above the largest legal message (a 1 MiB
#: file part plus its envelope), refused as soon as its length is read (spec §7).
MAX_FRAME_SIZE = 2 * 1024 * 1024

#: Consecutive security failures (a message or key exchange failing a check, an oversized
#: frame) after which a DC's waiting and new calls fail at once with that error.
SECURITY_FAILURES_TO_REFUSE = 2
#: How long new calls are refused before one is let through to probe the DC again (doubling
#: per further failure, capped).
REFUSAL_BASE = 1.0
REFUSAL_CAP = 30.0


def _load(conn: MtprotoConnection) -> int:
    return conn.load


class DcState:
    """One DC (see the module docstring)."""

    def __init__(self, runtime: PoolRuntime, dc_id: int) -> None:
        self._rt = runtime
        self.dc_id = dc_id
        record = runtime.storage.get_dc(dc_id)
        self._auth_key: AuthKey | None = AuthKey.from_bytes(record.auth_key) if record and record.auth_key else None
        self.salt: int = (record.salt or 0) if record else 0
        self.time_offset: float = runtime.time_offset
        self._authorized_user: int | None = record.authorized_user_id if record else None
        self._key_lock = trio.Lock()
        #: the bound temp key (pfs), replaced when stale (at a quiet moment) or forgotten
        self._temp: TempKey | None = None
        self._temp_stale = False
        #: temp keys created (statistics for tests)
        self.temp_keys_created = 0
        self._key_generation = 0
        self._lanes: dict[Lane, list[MtprotoConnection]] = {lane: [] for lane in LANES}
        #: candidate endpoints of the last dial, by address (endpoint -> its DC option)
        self._options: dict[tuple[str, int], DcOption] = {}
        self.requests = 0
        self.migrations = 0
        self.exports = 0
        self.imports = 0
        self.bytes_received = 0
        self._reconnects_closed = 0  # reconnect counts of connections already gone
        self._thread_decryptions_closed = 0  # the same for frames decrypted in a thread
        self._security_failures = 0  # in a row, on any connection of this DC
        self._refusal: DcPoolError | None = None
        self._refused_until = 0.0

    def __repr__(self) -> str:
        return f"<DcState dc={self.dc_id} key={self._auth_key!r} lanes={self._lane_sizes()}>"

    def _lane_sizes(self) -> dict[str, int]:
        return {str(lane): len(conns) for lane, conns in self._lanes.items()}

    # ---------------------------------------------------------------- read-only views

    @property
    def auth_key(self) -> AuthKey | None:
        """The key connections talk with: the bound temp key with pfs, else the permanent."""
        if self._uses_temp_keys():
            return None if self._temp is None else self._temp.key
        return self._auth_key

    @property
    def permanent_key(self) -> AuthKey | None:
        return self._auth_key

    @property
    def temp_key(self) -> TempKey | None:
        return self._temp

    def _uses_temp_keys(self) -> bool:
        # spec §11.4: CDN DCs never bind (they know nothing of our permanent keys)
        return self._rt.config.pfs and self.dc_id not in self._rt.cdn_rsa_keys

    @property
    def key_generation(self) -> int:
        """Bumped whenever the DC forgets our key (an authorization is bound to one key)."""
        return self._key_generation

    @property
    def authorized_user(self) -> int | None:
        """The user this DC's key is logged in as (as far as we know), or None."""
        return self._authorized_user

    @property
    def wire_dc(self) -> int:
        return self.dc_id + 10000 if self._rt.test_mode else self.dc_id

    def connections(self, lane: Lane | str | None = None) -> list[MtprotoConnection]:
        """The live connection slots (of one lane, or all)."""
        lanes = LANES if lane is None else (Lane(lane),)
        return [c for ln in lanes for c in self._lanes[ln] if not c.closed]

    # ---------------------------------------------------------------- decisions (sync)

    def submit(self, call: Call, lane: Lane, *, foreign: bool) -> MtprotoConnection:
        """Choose the connection for ``call`` and queue it there (synchronous: httpcore's way).
        ``foreign``: this is not the home DC (its connections close when idle).

        While the DC keeps failing security checks, this raises that error instead (a probe
        goes through once the refusal period is over)."""
        if self._refusal is not None and trio.current_time() < self._refused_until:
            raise copy.copy(self._refusal)
        conn = self._pick(lane, foreign)
        self.requests += 1
        conn.submit(call)
        return conn

    def submit_after(self, call: Call, first: Call) -> bool:
        """Queue ``call`` on the connection of ``first`` (just submitted), to be run after it
        (invokeAfterMsg): both go out together.  False when ``first`` is on no connection."""
        conn = first.conn
        if conn is None or conn.closed:
            return False
        call.after = first
        self.requests += 1
        conn.submit(call)
        return True

    def _pick(self, lane: Lane, foreign: bool) -> MtprotoConnection:
        """The least loaded connection of the lane (ready ones first), or a new one while the
        lane and the DC have room.  MTProto multiplexes a connection, so when neither has room
        calls share what is open -- at the DC's cap even another lane's connections."""
        conns = [c for c in self._lanes[lane] if not c.closed]
        self._lanes[lane] = conns
        limit = 1 if lane is Lane.MAIN else self._rt.config.download_connections
        room = len(conns) < limit and self._below_cap()
        ready = [c for c in conns if c.state is ConnectionState.READY]
        best = min(ready or conns, key=_load, default=None)
        if best is None:
            shared = self.connections()
            if shared and not self._below_cap():
                return min(shared, key=_load)
            return self._open(lane, foreign)
        if best.load > 0 and room:
            return self._open(lane, foreign)
        return best

    def _below_cap(self) -> bool:
        cap = self._rt.config.max_connections_per_dc
        return cap is None or len(self.connections()) < cap

    def warm(self, lane: Lane, *, foreign: bool) -> None:
        """Start dialing (and creating the key) now if the lane has no connection yet: used
        while an authorization transfer is on its way, so that the target's key exchange
        overlaps the export instead of following it."""
        if not self.connections(lane) and self._rt.open and self._below_cap():
            self._open(lane, foreign)

    def _open(self, lane: Lane, foreign: bool) -> MtprotoConnection:
        cfg = self._rt.config
        idle = cfg.idle_timeout if (lane is not Lane.MAIN or foreign) else None
        conn = MtprotoConnection(
            self,
            lane,
            rng=cfg.rng,
            ping_interval=cfg.ping_interval,
            connect_timeout=cfg.connect_timeout,
            connect_attempts=cfg.connect_attempts,
            decrypt_in_thread=cfg.decrypt_in_thread,
            idle_timeout=idle,
            gzip_requests=lane is Lane.MAIN,
        )

        async def run() -> None:
            await self._run_connection(conn, lane)

        self._rt.spawn(run)
        self._lanes[lane].append(conn)
        return conn

    async def _run_connection(self, conn: MtprotoConnection, lane: Lane) -> None:
        self._rt.tasks += 1
        try:
            await conn.run()
        finally:
            self._rt.tasks -= 1
            self._reconnects_closed += conn.reconnects
            self._thread_decryptions_closed += conn.thread_decryptions
            if conn in self._lanes[lane]:
                self._lanes[lane].remove(conn)

    def mark_authorized(self, user_id: int | None, *, persist: bool = True) -> None:
        """This DC's key is logged in as ``user_id`` (None: not logged in)."""
        self._authorized_user = user_id
        key = self._auth_key
        if persist and key is not None:
            dc, key_id = self.dc_id, key.key_id
            self._rt.writer.submit(lambda s: s.set_authorized(dc, user_id, key_id=key_id))

    def forget_authorization(self) -> None:
        """The DC no longer knows our authorization (memory and storage)."""
        self.mark_authorized(None)

    def record_migration(self) -> None:
        self.migrations += 1

    def record_export(self) -> None:
        self.exports += 1

    def record_import(self) -> None:
        self.imports += 1

    def record_answer(self, size: int) -> None:
        self.bytes_received += size
        if self._temp_stale:
            self._maybe_rotate()

    def kill_connections(self) -> None:
        """Break every TCP connection (they reconnect)."""
        for conn in self.connections():
            conn.kill()

    def close_connections(self) -> None:
        for conns in self._lanes.values():
            for conn in conns:
                conn.close()

    # ---------------------------------------------------------------- owner interface

    def endpoints(self, lane: str) -> list[Endpoint]:
        rt = self._rt
        opts = rt.policy.candidates(
            self.dc_id,
            lane=Lane(lane),
            prefer_ipv6=rt.config.prefer_ipv6,
            allow_ipv6=rt.config.allow_ipv6,
            health=rt.health,
            now=trio.current_time(),
        )
        self._options.update({(o.ip_address, o.port): o for o in opts})
        return [Endpoint(o.ip_address, o.port) for o in opts]

    def transport_for(self, endpoint: Endpoint) -> ClientTransport:
        cfg = self._rt.config
        opt = self._options.get((endpoint.host, endpoint.port))
        if opt is not None and opt.requires_obfuscation:
            kind = cfg.transport
            if opt.secret and len(opt.secret) == 17 and opt.secret[0] == 0xDD:
                kind = TransportKind.PADDED_INTERMEDIATE
            return ClientTransport(kind, obfuscated=True, secret=opt.secret or None,
                                   dc_id=self.wire_dc, rng=cfg.rng, max_frame_size=MAX_FRAME_SIZE)
        return ClientTransport(cfg.transport, obfuscated=cfg.obfuscated, rng=cfg.rng,
                               max_frame_size=MAX_FRAME_SIZE)

    async def ensure_key(self, conn: MtprotoConnection, stream: trio.abc.Stream,
                         transport: ClientTransport) -> None:
        """Create the DC's auth key on this stream unless it has one (single-flight); with
        pfs, then its bound temp key too."""
        await self._ensure_permanent_key(stream, transport)
        if self._uses_temp_keys() and self._temp is None:
            async with self._key_lock:
                if self._temp is None:
                    await self._new_temp_key(stream, transport)

    async def _new_temp_key(self, stream: trio.abc.Stream, transport: ClientTransport) -> None:
        perm = self._auth_key
        assert perm is not None
        cfg = self._rt.config
        try:
            temp = await create_bound_temp_key(
                stream, transport, perm_key=perm, rsa_keys=self._rt.rsa_keys,
                wire_dc=self.wire_dc, rng=cfg.rng, lifetime=cfg.temp_key_lifetime,
                clock=wall_clock, timeout=cfg.handshake_timeout, describe=f"DC {self.dc_id}")
        except BindRejected as exc:
            if exc.rpc_message == "ENCRYPTED_MESSAGE_INVALID":
                # the DC does not know our permanent key any more (spec §5.11): a new one
                # (and its binding) on the next connection, as after a -404 without pfs
                self.key_invalid(perm.key_id)
            raise
        self._temp = temp
        self._temp_stale = False
        self.salt = temp.server_salt
        self.temp_keys_created += 1
        self._rt.events.emit("temp_key_bound", self.dc_id, key_id=temp.key.key_id,
                             expires_at=temp.expires_at)
        self._rt.spawn(lambda: self._renew_timer(temp))

    async def _renew_timer(self, temp: TempKey) -> None:
        """Mark ``temp`` stale at its renew time, then rotate at the first quiet moment (or at
        its force time).  Ends when another key replaced it."""
        await trio.sleep_until(temp.renew_at)
        while self._temp is temp:
            self._temp_stale = True
            self._maybe_rotate()
            if self._temp is not temp:
                return
            await trio.sleep_until(min(temp.force_at, trio.current_time() + 1.0))

    def _maybe_rotate(self) -> None:
        temp = self._temp
        if temp is None or not self._temp_stale:
            return
        busy = any(c.calls for c in self.connections())
        if busy and trio.current_time() < temp.force_at:
            return
        self._drop_temp_key("renewed")

    def temp_key_unbound(self, key_id: int) -> None:
        """The DC answered AUTH_KEY_PERM_EMPTY to a call sent with temp key ``key_id``: if that
        is still our temp key, drop it (the connections reconnect and bind a new one)."""
        if self._temp is not None and self._temp.key.key_id == key_id:
            self._drop_temp_key("unbound")

    def _drop_temp_key(self, reason: str) -> None:
        temp, self._temp, self._temp_stale = self._temp, None, False
        if temp is None:
            return
        self._rt.events.emit("temp_key_dropped", self.dc_id, key_id=temp.key.key_id, reason=reason)
        for conn in self.connections():
            session = conn.session
            if session is not None and session.auth_key.key_id == temp.key.key_id:
                conn.kill()  # it reconnects, and its first connection binds a new key

    async def _ensure_permanent_key(self, stream: trio.abc.Stream,
                                    transport: ClientTransport) -> None:
        if self._auth_key is not None:
            return
        async with self._key_lock:
            if self._auth_key is not None:
                return
            cdn_key = self._rt.cdn_rsa_keys.get(self.dc_id)
            keys = self._rt.rsa_keys if cdn_key is None else {cdn_key.fingerprint: cdn_key}
            handshake = ClientHandshake(keys, self.wire_dc, self._rt.config.rng)
            result = await drive_handshake(stream, transport, handshake,
                                           timeout=self._rt.config.handshake_timeout,
                                           clock=wall_clock, describe=f"DC {self.dc_id}")
            key = result.auth_key
            self._auth_key = key
            self.salt = result.server_salt
            self.on_clock(result.time_offset)
            self._authorized_user = None
            dc, salt, created = self.dc_id, self.salt, time.time()

            def save(s: Any) -> None:
                s.save_auth_key(dc, key.key, key.key_id, created)
                s.set_salt(dc, salt, key_id=key.key_id)

            self._rt.writer.submit(save)
            self._rt.events.emit("key_created", self.dc_id, key_id=key.key_id)

    def drop_key(self, reason: str) -> None:
        """Our auth key on this DC is dead (406 AUTH_KEY_DUPLICATED): forget it and make a new
        one on the next connection (LOGIN.md §5.4)."""
        if self._auth_key is not None:
            log.warning("DC %s: %s: dropping the auth key", self.dc_id, reason)
            self.key_invalid(self._auth_key.key_id)

    def key_invalid(self, key_id: int) -> None:
        if self._temp is not None and self._temp.key.key_id == key_id:
            # -404 on the temp key (expired, or the DC forgot it): a new temp key, bound to the
            # same permanent key; the permanent key and its authorization stay.
            log.info("DC %s forgot our temp key %s: binding a new one", self.dc_id, key_id)
            self._drop_temp_key("forgotten")
            return
        if self._auth_key is None or self._auth_key.key_id != key_id:
            return
        log.warning("DC %s forgot our auth key %s: creating a new one", self.dc_id, key_id)
        self._auth_key = None
        self._authorized_user = None
        self._key_generation += 1
        dc = self.dc_id
        self._rt.writer.submit(lambda s: s.drop_auth_key(dc))
        # Every other connection of this DC still talks with the forgotten key: retire them
        # too, or a transfer could authorize the dead key while the new one stays unauthorized.
        for conn in self.connections():
            session = conn.session
            if session is not None and session.auth_key.key_id == key_id:
                conn.kill()
        if self._rt.on_key_lost is not None:
            # (the router decides whether that was the signed-in user's home key: a logout)
            self._rt.on_key_lost(self.dc_id)

    def wrap_init(self, body: bytes) -> bytes:
        return self._rt.init_prefix + body

    def on_salt(self, salt: int) -> None:
        self.salt = salt
        if self._auth_key is not None:
            dc, key_id = self.dc_id, self._auth_key.key_id
            self._rt.writer.submit(lambda s: s.set_salt(dc, salt, key_id=key_id))

    def on_clock(self, offset: float) -> None:
        self.time_offset = offset
        self._rt.time_offset = offset

    def on_update(self, body: bytes, lane: str = "main") -> None:
        self._rt.on_update(self.dc_id, body, lane)

    def on_event(self, kind: str, **data: Any) -> None:
        self._rt.events.emit(kind, self.dc_id, **data)

    def security_failure(self, error: DcPoolError) -> None:
        """A connection of this DC failed a security check (it is dropped already).  Twice in a
        row: every call waiting on the DC fails now with that error, and new calls fail the
        same way until a connection passes the checks again."""
        self._security_failures += 1
        if self._security_failures < SECURITY_FAILURES_TO_REFUSE:
            return
        excess = self._security_failures - SECURITY_FAILURES_TO_REFUSE
        self._refusal = error
        self._refused_until = trio.current_time() + min(REFUSAL_CAP, REFUSAL_BASE * 2 ** excess)
        log.warning("DC %s failed security checks %d times in a row (%s: %s): failing its calls",
                    self.dc_id, self._security_failures, type(error).__name__, error)
        self._rt.events.emit("security_refused", self.dc_id, error=type(error).__name__,
                             failures=self._security_failures)
        for conn in self.connections():
            conn.fail_waiting(error)

    def security_passed(self) -> None:
        """A message from this DC passed every check: it is trusted again."""
        self._security_failures = 0
        self._refusal = None

    def endpoint_result(self, endpoint: Endpoint, ok: bool) -> None:
        opt = self._options.get((endpoint.host, endpoint.port))
        if opt is None:
            return
        if ok:
            self._rt.health.record_ok(opt, trio.current_time())
        else:
            self._rt.health.record_error(opt, trio.current_time())

    # ---------------------------------------------------------------- statistics

    def statistics(self, *, signed_in_here: bool = False) -> DcStatistics:
        """``signed_in_here``: the pool's user signed in on this DC (the router knows)."""
        stats = [c.statistics() for c in self.connections()]
        endpoint = next((s.endpoint for s in stats if s.lane == Lane.MAIN and s.endpoint), None)
        endpoint = endpoint or next((s.endpoint for s in stats if s.endpoint), None)
        backoffs = [s.backoff_until for s in stats if s.backoff_until is not None]
        if self._auth_key is None:
            key_state = KeyState.NONE
        elif self._authorized_user is not None or signed_in_here:
            key_state = KeyState.AUTHORIZED
        else:
            key_state = KeyState.KEYED
        return DcStatistics(
            dc_id=self.dc_id,
            endpoint=endpoint,
            key_state=key_state,
            connections={str(lane): sum(1 for s in stats if s.lane == lane
                                        and s.state is ConnectionState.READY) for lane in LANES},
            in_flight=sum(s.in_flight for s in stats),
            reconnects=self._reconnects_closed + sum(s.reconnects for s in stats),
            backoff_until=min(backoffs) if backoffs else None,
            requests=self.requests,
            migrations=self.migrations,
            exports=self.exports,
            imports=self.imports,
            bytes_received=self.bytes_received,
            thread_decryptions=self._thread_decryptions_closed
            + sum(c.thread_decryptions for ln in LANES for c in self._lanes[ln]),
        )


class DcRegistry:
    """The pool's DCs, created on first use (only DCs the table knows)."""

    def __init__(self, runtime: PoolRuntime) -> None:
        self._rt = runtime
        self._dcs: dict[int, DcState] = {}
        # DCs with a stored key show up in statistics() before they are used.
        for record in runtime.storage.list_dcs():
            if runtime.table.knows(record.dc_id):
                self._dcs[record.dc_id] = DcState(runtime, record.dc_id)

    def get(self, dc_id: int) -> DcState:
        """The DC's state (UnknownDc for an id the DC table does not know)."""
        state = self._dcs.get(dc_id)
        if state is None:
            if not self._rt.table.knows(dc_id):
                raise UnknownDc(dc_id)
            state = DcState(self._rt, dc_id)
            self._dcs[dc_id] = state
        return state

    def find(self, dc_id: int) -> DcState | None:
        """The DC's state if it exists already."""
        return self._dcs.get(dc_id)

    def all(self) -> list[DcState]:
        return [self._dcs[dc] for dc in sorted(self._dcs)]

    def ids(self) -> list[int]:
        return sorted(self._dcs)
