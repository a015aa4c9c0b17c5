"""The network shell of one emulated DC: trio sockets around the sans-IO server core.

Theory of operation
-------------------
Everything protocol-shaped lives elsewhere and is reused, not re-implemented:

* framing and transport detection: :class:`dcpool.transport.ServerTransport`;
* the auth-key handshake: :class:`dcpool.mtproto.handshake.ServerHandshake`;
* decryption, sessions, salts, acks, service messages: :class:`dcpool.mtproto.server.ServerCore`
  (one per DC) and :class:`~dcpool.mtproto.server.ServerConnection` (one per TCP connection);
* what Telegram answers: :class:`dcpool.testing.world.World` (shared by every DC).

This module only moves bytes and time.  Each accepted connection runs three tasks:

* a *receiver* that reads chunks from the socket and stamps each with ``arrival + latency``;
* a *processor* that takes the stamped chunks in order, waits until each is due, and processes
  the client's frames strictly in order (Telethon sends ``importAuthorization`` and
  ``upload.getFile`` back to back and relies on that order);
* a *writer* that sends every outgoing batch once it is due (``now + latency``).

Both directions are therefore *delay lines*: an injected latency delays packets without
serialising them (pipelined requests stay pipelined, as on a real long link: two chunks that
arrive 10 ms apart are processed 10 ms apart, not one latency apart).  A deliberate close
(transport error, drop fault, protocol violation) first closes the writer's channel and waits
for the writer to send everything queued, so the client really sees the −404 or the answers
it was owed, whatever the latency.

Faults (:class:`dcpool.testing.faults.DcFaults`) are consulted at the points where a real
network or DC would misbehave: on accept (refuse / drop after N messages), per encrypted packet
(transport error, salt rotation), for the clock (``clock_offset`` feeds the core), and per
packet sent (latency).  RPC-level faults are applied by the world's handlers.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable

import attrs
import trio

from .. import tl
from ..crypto.rsa import RsaPrivateKey
from ..errors import DcPoolError, FramingError, HandshakeError, RpcError
from ..mtproto.handshake import ServerHandshake
from ..mtproto.server import (
    CloseConnection,
    IncomingRequest,
    PingDelayDisconnect,
    ServerConnection,
    ServerCore,
    SessionKey,
    UnencryptedMessage,
)
from ..transport import Frame, ServerTransport
from . import pfs
from .handlers import WRAPPERS
from .world import ConnectionContext, World

log = logging.getLogger(__name__)

Rng = Callable[[int], bytes]

_conn_ids = itertools.count(1)
#: chunks read from a socket and waiting (for their latency) to be processed
_INBOUND_CHUNKS = 1024


def _innermost_qualname(body: bytes) -> str | None:
    """QUALNAME of the method inside the generic wrappers of a query (None if unparsable)."""
    try:
        query = tl.loads(body)
        for _ in range(16):
            if isinstance(query, tl.Raw):
                query = tl.loads(query.to_bytes())
            name = getattr(type(query), "QUALNAME", None)
            if name not in WRAPPERS:
                return name
            query = query.query
    except DcPoolError:
        pass
    return None


def wall_clock() -> float:
    """The emulator's clock: real unix time.  Server msg_ids must be derived from the real
    current time (spec §3.3), so this is deliberately not trio's (possibly fake) clock."""
    return time.time()


@attrs.define(eq=False)
class _SessionHandle:
    """What the world's update routing holds for one live session on one connection."""

    conn: _LiveConnection
    session_key: SessionKey

    @property
    def layer(self) -> int | None:
        return self.conn.ctx.layer


@attrs.define(eq=False)
class _LiveConnection:
    id: int
    dc: DcServer
    stream: trio.SocketStream
    transport: ServerTransport
    mconn: ServerConnection
    ctx: ConnectionContext
    out_send: trio.MemorySendChannel
    handshake: ServerHandshake | None = None
    frames_received: int = 0
    registered: dict[SessionKey, tuple[int, _SessionHandle]] = attrs.field(factory=dict)
    disconnect_scope: trio.CancelScope | None = None
    closing: bool = False
    #: set when the writer task has ended (everything queued was sent, or it failed)
    writer_done: trio.Event = attrs.field(factory=trio.Event)

    def flush(self) -> None:
        """Encrypt what the core has queued and hand it to the delay line (never blocks)."""
        if self.closing:
            return
        now = self.dc.now()
        for payload in self.mconn.data_to_send(now):
            self.transport.send_frame(payload)
        data = self.transport.data_to_send()
        if data:
            due = trio.current_time() + self.dc.world.faults(self.dc.dc_id).latency
            try:
                self.out_send.send_nowait((due, data))
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                # The writer is gone or hopelessly behind: the connection is dying anyway.
                self.closing = True


class DcServer:
    """One emulated DC: a ServerCore, its listeners, and the connections they accepted."""

    def __init__(
        self,
        dc_id: int,
        world: World,
        private_key: RsaPrivateKey,
        *,
        rng: Rng = os.urandom,
        clock: Callable[[], float] = wall_clock,
    ) -> None:
        self.dc_id = dc_id
        self.world = world
        self.private_key = private_key
        self.rng = rng
        self.clock = clock
        self.core = ServerCore(rng=rng)
        self.connections: dict[int, _LiveConnection] = {}
        self.ports: list[tuple[str, int]] = []

    def __repr__(self) -> str:
        return f"<DcServer {self.dc_id} ports={self.ports} connections={len(self.connections)}>"

    def now(self) -> float:
        # The core adds its own clock_offset to `now`; keep it equal to the armed fault.
        self.core.clock_offset = self.world.faults(self.dc_id).clock_offset
        self.core.strict_ordering = self.world.strict_msg_order
        return self.clock()

    @property
    def faults(self):
        return self.world.faults(self.dc_id)

    @property
    def stats(self):
        return self.world.stats(self.dc_id)

    # ------------------------------------------------------------------ listening

    async def serve(
        self, host: str, port: int = 0, *, task_status=trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on (host, port) until cancelled; reports the bound (host, port)."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = listeners[0].socket.getsockname()[:2]
        self.ports.append((bound[0], bound[1]))
        task_status.started((bound[0], bound[1]))
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        verdict = self.faults.on_connection()
        if verdict.refuse:
            await trio.aclose_forcefully(stream)
            return
        out_send, out_recv = trio.open_memory_channel[tuple[float, bytes]](10_000)
        conn = _LiveConnection(
            id=next(_conn_ids),
            dc=self,
            stream=stream,
            transport=ServerTransport(rng=self.rng),
            mconn=ServerConnection(self.core, self.rng),
            ctx=ConnectionContext(),
            out_send=out_send,
        )
        self.connections[conn.id] = conn
        self.stats.connection_opened()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, conn, out_recv)
                with trio.CancelScope() as conn.disconnect_scope:
                    await self._reader(conn, verdict.drop_after_messages)
                nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went away
        finally:
            conn.closing = True
            self._unregister(conn)
            conn.mconn.connection_lost()
            del self.connections[conn.id]
            self.stats.connection_closed()
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await trio.aclose_forcefully(stream)

    async def _writer(self, conn: _LiveConnection, out_recv: trio.MemoryReceiveChannel) -> None:
        try:
            async with out_recv:
                async for due, data in out_recv:
                    if due > trio.current_time():
                        await trio.sleep_until(due)
                    await conn.stream.send_all(data)
        finally:
            conn.writer_done.set()

    async def _drain(self, conn: _LiveConnection) -> None:
        """Send everything queued so far, then stop sending (before closing on purpose).

        Closing the channel ends the writer's loop once it has written (after its latency) every
        batch already queued; nothing is sent after this."""
        conn.flush()
        conn.closing = True
        conn.out_send.close()
        with trio.move_on_after(5 + self.faults.latency):
            await conn.writer_done.wait()

    async def _receiver(self, conn: _LiveConnection, in_send: trio.MemorySendChannel) -> None:
        """Read chunks and stamp each with the time it is due (arrival + latency); b"" is EOF."""
        async with in_send:
            while True:
                data = await conn.stream.receive_some(1 << 20)
                await in_send.send((trio.current_time() + self.faults.latency, data))
                if not data:
                    return

    async def _reader(self, conn: _LiveConnection, drop_after: int | None) -> None:
        """Process the client's bytes until EOF, a deliberate close, or cancellation."""
        if drop_after == 0:
            return  # DcFaults.drop_connections(0): close right after accepting
        # Roomy, so that the receiver (almost) never waits for the processor: a chunk stamped
        # late would be delayed twice.  Bounded, so that a client flooding a slow DC meets
        # back-pressure (TCP's, in the end) instead of filling memory.
        in_send, in_recv = trio.open_memory_channel[tuple[float, bytes]](_INBOUND_CHUNKS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._receiver, conn, in_send)
            try:
                await self._process(conn, in_recv, drop_after)
            finally:
                nursery.cancel_scope.cancel()

    async def _process(
        self, conn: _LiveConnection, in_recv: trio.MemoryReceiveChannel, drop_after: int | None
    ) -> None:
        async for due, data in in_recv:
            if due > trio.current_time():
                await trio.sleep_until(due)
            if not data:
                return
            try:
                events = conn.transport.receive_data(data)
            except FramingError as exc:
                log.info("DC %s conn %s: bad framing: %s", self.dc_id, conn.id, exc)
                return
            for event in events:
                if not isinstance(event, Frame):
                    continue
                conn.frames_received += 1
                if drop_after is not None and conn.frames_received > drop_after:
                    # The first N packets were processed: their answers still go out.
                    log.info("DC %s conn %s: dropping (fault)", self.dc_id, conn.id)
                    await self._drain(conn)
                    return
                if not await self._on_frame(conn, event.payload):
                    return
            conn.flush()

    async def _on_frame(self, conn: _LiveConnection, payload: bytes) -> bool:
        """Process one client frame; False closes the connection."""
        now = self.now()
        encrypted = len(payload) >= 8 and payload[:8] != b"\0" * 8
        if encrypted:
            key_id = int.from_bytes(payload[:8], "little", signed=True)
            if pfs.key_expired(self.world, self.dc_id, key_id, now):
                self.forget_key(key_id)  # spec §5.11: an expired temp key gets −404
            code = self.faults.take_transport_error()
            if code is not None:
                if code == -404:
                    # −404 means "this DC does not know the key": make it true (issue 13).
                    self.forget_key(key_id)
                await self._transport_error(conn, code)
                return False
            if self.faults.take_forget_key():
                self.forget_key(key_id)  # the core now answers −404 (unknown key)
            if self.faults.take_lose_session():
                self.core.drop_sessions(key_id)
            if self.faults.take_salt_rotation():
                if self.core.has_key(key_id):
                    self.core.rotate_salt(key_id, now)
        for event in conn.mconn.receive(payload, now):
            if isinstance(event, UnencryptedMessage):
                if not await self._on_handshake(conn, event.payload, now):
                    return False
            elif isinstance(event, IncomingRequest):
                if self.faults.drops_after_ack() and self.faults.take_drop_after_ack(
                    _innermost_qualname(event.body)
                ):
                    # Fault: the query is acknowledged (its msgs_ack is queued since it was
                    # received), then the connection dies before it is executed.
                    log.info("DC %s conn %s: ack then drop (fault)", self.dc_id, conn.id)
                    await self._drain(conn)
                    return False
                self._on_request(conn, event, now)
            elif isinstance(event, CloseConnection):
                if event.transport_error is not None:
                    await self._transport_error(conn, event.transport_error)
                else:
                    await self._drain(conn)
                return False
            elif isinstance(event, PingDelayDisconnect):
                assert conn.disconnect_scope is not None
                conn.disconnect_scope.deadline = trio.current_time() + event.disconnect_delay
        return True

    async def _transport_error(self, conn: _LiveConnection, code: int) -> None:
        conn.flush()
        conn.transport.send_transport_error(code)
        await self._drain(conn)

    async def _on_handshake(self, conn: _LiveConnection, payload: bytes, now: float) -> bool:
        if conn.handshake is None:
            conn.handshake = ServerHandshake(
                [self.private_key],
                self.rng,
                key_exists=self.core.has_key,
                expected_dc=self.dc_id,
                test_mode=self.world.test_mode,
                # ids from the DC's (possibly offset) clock, like its server_time below
                msg_ids=lambda t: self.core.msg_ids.next(t, answer=True),
            )
        try:
            # server_DH_inner_data.server_time is the DC's clock, offset included (a client
            # learns its time offset from it, §5.6).
            reply, result = conn.handshake.receive(payload, self.core.server_time(now))
        except HandshakeError as exc:
            log.info("DC %s conn %s: handshake refused: %s", self.dc_id, conn.id, exc)
            await self._transport_error(conn, getattr(exc, "transport_code", -404) or -404)
            return False
        if result is not None:
            self.core.add_key(result.auth_key, now=now, server_salt=result.server_salt)
            pfs.key_created(self.world, self.dc_id, result.auth_key, result.temp_expires_in, now)
            self.stats.record_handshake()
        if reply is not None:
            conn.transport.send_frame(reply)
        return True

    def _on_request(self, conn: _LiveConnection, incoming: IncomingRequest, now: float) -> None:
        skey = incoming.session_key
        try:
            result = self.world.handle(
                self.dc_id,
                conn.ctx,
                skey.key_id,
                incoming.body,
                now,
                session_id=skey.session_id,
                msg_id=incoming.msg_id,
            )
        except RpcError as exc:
            conn.mconn.send_error(incoming, exc.code, exc.message)
        except DcPoolError as exc:  # a request the world could not even parse
            conn.mconn.send_error(incoming, 400, "INPUT_REQUEST_INVALID")
            log.info("DC %s: bad request: %s", self.dc_id, exc)
        else:
            conn.mconn.send_result(incoming, result)
        self._register(conn, skey)

    # ------------------------------------------------------------------ updates

    def _register(self, conn: _LiveConnection, skey: SessionKey) -> None:
        """After each request: a logged-in session that did not ask for no updates becomes its
        user's last active session (the world then routes that user's updates here, if this
        is the user's home DC); one that used invokeWithoutUpdates stops getting them."""
        user_id = conn.ctx.user_id
        known = conn.registered.get(skey)
        if known is not None and (known[0] != user_id or conn.ctx.without_updates):
            self.world.unregister_session(known[0], known[1])
            del conn.registered[skey]
            known = None
        if user_id is None or conn.ctx.without_updates:
            return
        handle = known[1] if known is not None else _SessionHandle(conn, skey)
        conn.registered[skey] = (user_id, handle)
        self.world.register_session(user_id, handle, dc_id=self.dc_id)

    def _unregister(self, conn: _LiveConnection) -> None:
        for user_id, handle in conn.registered.values():
            self.world.unregister_session(user_id, handle)
        conn.registered.clear()

    def deliver_update(self, handle: _SessionHandle, payload: bytes) -> None:
        conn = handle.conn
        if conn.closing:
            return
        try:
            conn.mconn.send_update(handle.session_key, payload)
        except DcPoolError:
            return  # the session was forgotten meanwhile
        conn.flush()

    # ------------------------------------------------------------------ control

    def forget_key(self, key_id: int) -> bool:
        """Forget an auth key as a DC that lost it would: the core's key, salts and sessions,
        the world's authorization, layer and initConnection for it, and its update routes.
        The client's next packet with it gets −404.  Returns False for an unknown key."""
        known = self.core.has_key(key_id)
        self.core.drop_key(key_id)
        self.world.forget_key(self.dc_id, key_id)
        pfs.forget_key(self.world, self.dc_id, key_id)
        for conn in self.connections.values():
            for skey in [k for k in conn.registered if k.key_id == key_id]:
                user_id, handle = conn.registered.pop(skey)
                self.world.unregister_session(user_id, handle)
        return known

    def drop_all_connections(self) -> int:
        """Close every live connection abruptly (fault injection from tests)."""
        n = 0
        for conn in list(self.connections.values()):
            if conn.disconnect_scope is not None:
                conn.disconnect_scope.cancel()
                n += 1
        return n
