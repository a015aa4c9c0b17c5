"""One MTProto connection over trio: the thin shell around transport + handshake + session.

Theory of operation
-------------------
A :class:`MtprotoConnection` is a *slot*: it keeps one :class:`~dcpool.mtproto.session.ClientSession`
(one session_id) across TCP reconnects, so that requests the server never acknowledged are
re-sent in the same session after a reconnect (spec §8.2: "unacked CR messages are re-sent on
reconnect").  Its life is one task, :meth:`MtprotoConnection.run`, owned by the pool's nursery:

    loop until closed:
        dial (happy eyeballs over the DC's candidate endpoints)
        create the DC's auth key on this stream if the DC has none (single-flight per DC, through
        the owner, which runs the one handshake driver, :mod:`dcpool.net.handshake`)
        reader task + writer task + keep-alive task until something breaks
        classify what was in flight: never acked -> re-sent next time; acked -> the caller's
        policy (idempotent: re-sent; otherwise OutcomeUnknown)
        back off (capped exponential, jittered, reset once a connection was healthy)

This module is the one place where trio/socket exceptions become dcpool exceptions
(:class:`~dcpool.errors.ConnectionLost`).  It knows nothing about DC routing or migrations:
the pool decides which slot serves a call (synchronously), then awaits the call's outcome.
"""

from __future__ import annotations

import enum
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import copy

import attrs
import trio

from ..errors import (
    ConnectError,
    ConnectionLost,
    DcPoolError,
    FramingError,
    HandshakeError,
    MsgIdOutOfWindow,
    OutcomeUnknown,
    PoolClosed,
    RemoteProtocolError,
    SecurityError,
    TransportErrorCode,
)
from ..mtproto import AuthKey
from ..mtproto.session import (
    ClientSession,
    ClockCorrected,
    NewSessionCreated,
    PendingRequest,
    Pong,
    RequestFailed,
    RequestOutcomeUnknown,
    RequestState,
    RpcErrorReceived,
    RpcResult,
    SaltChanged,
    Update,
)
from ..transport import ClientTransport, Frame, TransportErrorFrame
from .dial import DialFailure, Endpoint, dial

log = logging.getLogger("dcpool.net")


def wall_clock() -> float:
    """MTProto msg_ids are unix time (spec §3.3): the session needs the real clock, while
    timeouts and backoff use trio's (possibly fake) clock."""
    return time.time()


#: bytes one read may take from the socket (the reusable receive buffer of a busy connection:
#: held while calls are in flight, so it counts against a download's memory; 256 KiB is a few
#: reads per 512 KiB part)
RECEIVE_BUFFER = 256 * 1024

#: What ends one TCP connection (and only it): run() reconnects after any of these.
_LOSS_ERRORS = (ConnectError, ConnectionLost, RemoteProtocolError, HandshakeError, OSError,
                trio.BrokenResourceError, trio.ClosedResourceError)


def _loss_of(group: BaseExceptionGroup) -> BaseException:
    """The connection-loss error inside ``group`` (cancellations of the sibling tasks aside),
    or the group itself when it holds anything else (a bug must not look like a lost link)."""
    matched, rest = group.split(_LOSS_ERRORS)
    if matched is None or (rest is not None and rest.split(trio.Cancelled)[1] is not None):
        return group
    leaf: BaseException = matched
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


# --------------------------------------------------------------------------- calls


@attrs.define(eq=False)
class Call:
    """One request travelling through a connection, and its outcome."""

    body: bytes
    name: str
    idempotent: bool
    dc_id: int
    done: trio.Event = attrs.field(factory=trio.Event)
    result: bytes | memoryview | None = None
    error: BaseException | None = None
    pending: PendingRequest | None = None
    conn: MtprotoConnection | None = None
    wrapped: bool = False
    #: wrap this call in invokeWithLayer(initConnection(...)) even if the connection already
    #: sent one (the DC answered CONNECTION_NOT_INITED / CONNECTION_LAYER_INVALID)
    force_init: bool = False
    sends: int = 0
    #: a call on the same connection the server must finish first (invokeAfterMsg): an
    #: authorization import and the requests that need it share one round trip
    after: Call | None = None

    def resolve(self, body: bytes | memoryview) -> None:
        if not self.done.is_set():
            self.result = body
            self.done.set()

    def fail(self, error: BaseException) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


# --------------------------------------------------------------------------- owner interface


class ConnectionState(enum.StrEnum):
    """Where a connection slot is in its life (see :meth:`MtprotoConnection.run`)."""

    IDLE = "idle"  # no TCP connection (not yet, or between two)
    CONNECTING = "connecting"  # dialing
    HANDSHAKE = "handshake"  # creating the DC's auth key on the new stream
    READY = "ready"  # serving calls
    BACKOFF = "backoff"  # waiting before the next attempt
    CLOSED = "closed"  # for good


class ConnectionOwner(Protocol):
    """What a connection needs from the per-DC state that owns it (``dcpool.pool.dc.DcState``)."""

    dc_id: int
    salt: int
    time_offset: float

    @property
    def auth_key(self) -> AuthKey | None: ...  # pragma: no cover
    def endpoints(self, lane: str) -> list[Endpoint]: ...  # pragma: no cover
    def transport_for(self, endpoint: Endpoint) -> ClientTransport: ...  # pragma: no cover
    async def ensure_key(self, conn: MtprotoConnection, stream: trio.abc.Stream,
                         transport: ClientTransport) -> None: ...  # pragma: no cover
    def key_invalid(self, key_id: int) -> None: ...  # pragma: no cover
    def wrap_init(self, body: bytes) -> bytes: ...  # pragma: no cover
    def on_salt(self, salt: int) -> None: ...  # pragma: no cover
    def on_clock(self, offset: float) -> None: ...  # pragma: no cover
    def on_update(self, body: bytes, lane: str = "main") -> None: ...  # pragma: no cover
    def on_event(self, kind: str, **data: Any) -> None: ...  # pragma: no cover
    def endpoint_result(self, endpoint: Endpoint, ok: bool) -> None: ...  # pragma: no cover
    def security_failure(self, error: DcPoolError) -> None: ...  # pragma: no cover
    def security_passed(self) -> None: ...  # pragma: no cover


@attrs.frozen
class ConnectionStatistics:
    lane: str
    state: ConnectionState
    endpoint: str | None
    in_flight: int
    reconnects: int
    backoff_until: float | None


class MtprotoConnection:
    """A connection slot of one lane of one DC (see the module docstring)."""

    def __init__(
        self,
        owner: ConnectionOwner,
        lane: str,
        *,
        rng: Callable[[int], bytes] = os.urandom,
        ping_interval: float = 60.0,
        ping_disconnect_delay: int | None = None,
        connect_timeout: float = 10.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        idle_timeout: float | None = None,
        gzip_requests: bool = True,
        connect_attempts: int = 3,
        decrypt_in_thread: int | None = None,
    ) -> None:
        self.owner = owner
        self.lane = lane
        self.rng = rng
        self.ping_interval = ping_interval
        # ping_delay_disconnect (spec §8.5): the DC closes the connection if no ping comes within
        # this delay, so it must outlast the interval between two pings plus a network margin
        # (Telethon: every 60 s, delay 75 s).
        if ping_disconnect_delay is None:
            ping_disconnect_delay = math.ceil(ping_interval) + 15
        self.ping_disconnect_delay = ping_disconnect_delay
        self.connect_timeout = connect_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.idle_timeout = idle_timeout
        self.gzip_requests = gzip_requests
        #: after this many consecutive failed connection attempts, calls still waiting for a
        #: connection fail with the last error instead of waiting out their timeout
        self.connect_attempts = connect_attempts
        #: frames of more than this many bytes are decrypted (and their msg_key checked) in a
        #: worker thread, see _on_frame; None: always on the trio thread
        self.decrypt_in_thread = decrypt_in_thread
        #: frames decrypted in a worker thread so far (statistics, tests)
        self.thread_decryptions = 0
        self._last_error: DcPoolError | None = None
        self.session: ClientSession | None = None
        self.state = ConnectionState.IDLE
        self.endpoint: Endpoint | None = None
        self.calls: set[Call] = set()
        self.backlog: list[Call] = []  # submitted while no session exists yet
        self.reconnects = 0
        self.backoff_until: float | None = None
        self.last_activity = trio.current_time()
        self._needs_init = True
        self._wakeup = trio.Event()
        self._closed = False
        self._cancel: trio.CancelScope | None = None
        self._failures = 0
        self._ping_id = 0
        self._awaiting_pong: int | None = None
        #: a message of the current TCP connection passed every check (§4.5)
        self._verified = False
        #: requests of this connection that the DC refused with −404 (see _reader)
        self._refused: set[PendingRequest] = set()

    def __repr__(self) -> str:
        return (
            f"<MtprotoConnection dc={self.owner.dc_id} lane={self.lane} state={self.state} "
            f"in_flight={len(self.calls)}>"
        )

    # ------------------------------------------------------------------ control (sync)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def load(self) -> int:
        return len(self.calls)

    def statistics(self) -> ConnectionStatistics:
        return ConnectionStatistics(
            lane=self.lane,
            state=self.state,
            endpoint=str(self.endpoint) if self.endpoint else None,
            in_flight=len(self.calls),
            reconnects=self.reconnects,
            backoff_until=self.backoff_until,
        )

    def submit(self, call: Call) -> None:
        """Queue ``call`` on this connection (never blocks)."""
        if self._closed:
            raise PoolClosed("connection closed")
        call.conn = self
        self.calls.add(call)
        self.last_activity = trio.current_time()
        if self.session is None or self.state is not ConnectionState.READY:
            self.backlog.append(call)
        else:
            self._to_session(call)
        self._wake()

    def withdraw(self, call: Call) -> None:
        """Forget ``call`` (its caller was cancelled or timed out)."""
        self.calls.discard(call)
        if call in self.backlog:
            self.backlog.remove(call)
        if call.pending is not None and self.session is not None:
            if call.wrapped and call.pending.state is RequestState.QUEUED:
                # It carried initConnection but never went out: the next call must carry it
                # (the server answers an unwrapped first call CONNECTION_NOT_INITED, §10).
                self._needs_init = True
                call.wrapped = False
            self.session.cancel(call.pending)
        call.conn = None
        self.last_activity = trio.current_time()

    def close(self) -> None:
        self._closed = True
        if self._cancel is not None:
            self._cancel.cancel()
        self._wake()

    def kill(self) -> None:
        """Drop the current TCP connection (it will reconnect): for tests and keep-alive."""
        if self._cancel is not None:
            self._cancel.cancel()

    def _wake(self) -> None:
        self._wakeup.set()

    def _to_session(self, call: Call) -> None:
        assert self.session is not None
        body = call.body
        if (self._needs_init or call.force_init) and not call.wrapped:
            body = self.owner.wrap_init(body)
            call.wrapped = True
            self._needs_init = False
        call.sends += 1
        after = call.after
        call.pending = self.session.send_request(
            body, now=wall_clock(), token=call, idempotent=call.idempotent,
            after=after.pending if after is not None and after.conn is self else None)

    # ------------------------------------------------------------------ life

    async def run(self) -> None:
        """The connection's whole life; returns when closed (idle or pool shutdown)."""
        try:
            while not self._closed:
                healthy = False
                try:
                    healthy = await self._connect_and_serve()
                except (ConnectError, ConnectionLost, RemoteProtocolError, HandshakeError,
                        OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    if self._closed:
                        break
                    log.info("DC %s %s connection: %s: %s", self.owner.dc_id, self.lane,
                             type(exc).__name__, exc)
                    self._last_error = exc if isinstance(exc, DcPoolError) else ConnectError(
                        f"DC {self.owner.dc_id}: {type(exc).__name__}: {exc}")
                    self.owner.on_event("disconnected", lane=self.lane, reason=f"{type(exc).__name__}: {exc}")
                    if isinstance(exc, (SecurityError, FramingError)):
                        # (the owner fails every waiting call after two in a row)
                        self.owner.security_failure(exc)
                    offset = getattr(exc, "server_time_offset", None)
                    if isinstance(exc, MsgIdOutOfWindow) and offset is not None:
                        self.owner.on_clock(offset)
                        if self.session is not None:
                            self.session.time_offset = offset
                finally:
                    self._after_loss()
                if self._closed:
                    break
                if healthy:
                    self._failures = 0
                    if not self.calls and self._idle_expired():
                        break
                    continue
                self._failures += 1
                if self._failures >= self.connect_attempts and self.backlog:
                    # Nobody is served by waiting longer: tell the callers now (fail fast when
                    # the DC is unreachable), keep reconnecting for the calls to come.
                    error = self._last_error or ConnectError(f"DC {self.owner.dc_id} unreachable")
                    for call in self.take_unsent():
                        call.fail(error)
                delay = min(self.backoff_cap, self.backoff_base * 2 ** (self._failures - 1))
                delay *= 0.5 + random.random() / 2  # jitter: avoid reconnect storms
                self.backoff_until = trio.current_time() + delay
                self.state = ConnectionState.BACKOFF
                self.owner.on_event("backoff", lane=self.lane, seconds=delay)
                if (self.idle_timeout is not None and not self.calls
                        and self._failures >= self.connect_attempts):
                    # An idle-closable lane (foreign DC, downloads) that keeps failing with
                    # nobody waiting: stop dialing (each redial may cost a key exchange); the
                    # pool opens a fresh connection when the next call comes.
                    break
                with trio.move_on_after(delay):
                    while not self._closed:
                        await self._wait_wakeup()
                self.backoff_until = None
        finally:
            self.state = ConnectionState.CLOSED
            self._closed = True
            self._fail_all(PoolClosed("connection closed"))

    def _idle_expired(self) -> bool:
        return (
            self.idle_timeout is not None
            and trio.current_time() - self.last_activity >= self.idle_timeout
        )

    async def _wait_wakeup(self) -> None:
        await self._wakeup.wait()
        self._wakeup = trio.Event()

    async def _connect_and_serve(self) -> bool:
        """One TCP connection.  Returns True if it ended cleanly after being healthy."""
        self.state = ConnectionState.CONNECTING
        endpoints = self.owner.endpoints(self.lane)
        failures: list[DialFailure] = []
        try:
            stream, endpoint, failures = await dial(endpoints, timeout=self.connect_timeout)
        except ConnectError as exc:
            failures = getattr(exc, "failures", [])
            raise
        finally:
            for failure in failures:
                self.owner.endpoint_result(failure.endpoint, False)
        self.endpoint = endpoint
        self._verified = False
        healthy = False
        try:
            with trio.CancelScope() as self._cancel:
                if self._closed:  # close() came while dialing, when there was nothing to cancel
                    self._cancel.cancel()
                transport = self.owner.transport_for(endpoint)
                self.state = ConnectionState.HANDSHAKE
                await self.owner.ensure_key(self, stream, transport)
                key = self.owner.auth_key
                assert key is not None
                if self.session is None or self.session.auth_key.key_id != key.key_id:
                    old = self.session
                    self._new_session(key)
                    if old is not None:
                        self._adopt_unsent(old)
                assert self.session is not None
                self.session.salt = self.owner.salt
                self.session.time_offset = self.owner.time_offset
                self._needs_init = True
                # Requests re-queued from a lost connection go first: the first of them carries
                # invokeWithLayer(initConnection(...)) on the new connection.
                for req in self.session.pending_requests():
                    call = req.token
                    if isinstance(call, Call) and not call.wrapped:
                        req.body = self.owner.wrap_init(req.body)
                        call.wrapped = True
                        self._needs_init = False
                        break
                self.state = ConnectionState.READY
                self._failures = 0  # healthy: the next loss backs off from the base delay again
                self.owner.endpoint_result(endpoint, True)
                self.owner.on_event("connected", lane=self.lane, endpoint=str(endpoint))
                backlog, self.backlog = self.backlog, []
                for call in backlog:
                    if not call.done.is_set():
                        self._to_session(call)
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._reader, stream, transport, nursery.cancel_scope)
                        nursery.start_soon(self._writer, stream, transport)
                        nursery.start_soon(self._keepalive)
                        healthy = True
                except BaseExceptionGroup as group:
                    # trio wraps a failing child in an ExceptionGroup (strict groups): surface
                    # the connection loss itself so that run() classifies it and reconnects.
                    raise _loss_of(group) from None
            # Leaving the cancel scope without an exception: closed on purpose or killed.
            return healthy and not self._closed
        finally:
            self._cancel = None
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    def _adopt_unsent(self, old: ClientSession) -> None:
        """The key changed (it was forgotten: §7.7 −404), hence the session: what the old session
        still had to send (never acked, or idempotent and re-queued) goes out again from
        scratch through the new one, first.  Without this the callers would wait forever."""
        moved: list[Call] = []
        for req in old.pending_requests():
            call = req.token
            if isinstance(call, Call) and call in self.calls and not call.done.is_set():
                if req.may_have_executed and not call.idempotent:
                    # It may have run under the old key; a new session would run it again.
                    self.calls.discard(call)
                    call.fail(OutcomeUnknown(call.name, self.owner.dc_id))
                    continue
                call.pending = None
                call.wrapped = False
                moved.append(call)
        self.backlog[:0] = moved

    def _new_session(self, key: AuthKey) -> None:
        session_id = int.from_bytes(self.rng(8), "little", signed=True)
        self.session = ClientSession(
            key,
            session_id=session_id,
            server_salt=self.owner.salt,
            time_offset=self.owner.time_offset,
            rng=self.rng,
            gzip_requests=self.gzip_requests,
        )

    async def _reader(self, stream: trio.SocketStream, transport: ClientTransport,
                      scope: trio.CancelScope) -> None:
        # While calls are in flight, one receive buffer per connection is reused by every read
        # (recv_into): no allocation per read; the transport copies what it
        # keeps.  An idle connection holds no buffer (an idle DC session stays small).
        sock = getattr(stream, "socket", None)
        view: memoryview | None = None
        while True:
            data: bytes | memoryview = b""  # (a view of the buffer must not outlive the read)
            if sock is None or not self.calls:
                view = None
            elif view is None:
                view = memoryview(bytearray(RECEIVE_BUFFER))
            try:
                if view is not None:
                    n = await sock.recv_into(view)  # type: ignore[union-attr]
                    data = view[:n]
                else:
                    data = await stream.receive_some(RECEIVE_BUFFER)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                raise ConnectionLost(f"read failed: {exc}") from exc
            if not data:
                raise ConnectionLost("the server closed the connection")
            events = transport.receive_data(data)
            data = b""
            while events:
                # popped, not iterated: no frame (up to 1 MiB) stays referenced while the
                # next read waits
                event = events.pop(0)
                if isinstance(event, Frame):
                    await self._on_frame(event.payload)
                elif isinstance(event, TransportErrorFrame):
                    if event.code == -404 and self.session is not None:
                        # §7.7: the server does not know our auth key: it must be recreated.
                        # What this connection sent that the DC neither acknowledged nor
                        # answered (and that no earlier connection carried) did not run: the
                        # DC answered −404 to the packet, and answers / acks for anything it
                        # ran before forgetting the key come first on this stream.  Those are
                        # re-sent on the new key; acknowledged ones may have run (OutcomeUnknown
                        # unless idempotent).
                        self._refused = {
                            req for req in self.session.pending_requests()
                            if req.state is RequestState.SENT and not req.may_have_executed
                        }
                        self.owner.key_invalid(self.session.auth_key.key_id)
                    raise TransportErrorCode(event.code)
                del event
            if self.session is not None and self.session.has_data_to_send():
                self._wake()

    async def _on_frame(self, payload: bytes) -> None:
        session = self.session
        assert session is not None
        threshold = self.decrypt_in_thread
        if threshold is not None and len(payload) > threshold:
            # A large frame (a file part): the AES-IGE decryption and the msg_key hash run in a
            # worker thread (cryptg and hashlib release the GIL), so the event loop serves the
            # other connections meanwhile.  The reader awaits it before it reads the next
            # frame, so this connection's messages are still processed in order, and the state
            # update stays on the trio thread.  A cancellation waits for the thread (trio does
            # not abandon it), so nothing outlives the connection.
            plaintext = await trio.to_thread.run_sync(session.decrypt_frame, payload)
            self.thread_decryptions += 1
            events = session.receive_plaintext(plaintext, wall_clock())
        else:
            events = session.receive(payload, wall_clock())
        if not self._verified:
            self._verified = True
            self.owner.security_passed()
        for event in events:
            # Only answers to calls count as activity for the idle timer: pongs, acks and
            # service messages are the keep-alive's own traffic and must not keep a lane open.
            if isinstance(event, RpcResult):
                self._settle(event.request, result=event.body)
            elif isinstance(event, (RpcErrorReceived, RequestFailed)):
                self._settle(event.request, error=event.error)
            elif isinstance(event, RequestOutcomeUnknown):
                name = getattr(event.request.token, "name", "request")
                self._settle(event.request, error=OutcomeUnknown(name, self.owner.dc_id), activity=False)
            elif isinstance(event, Update):
                self.owner.on_update(event.body, lane=self.lane)
            elif isinstance(event, SaltChanged):
                self.owner.on_salt(event.salt)
            elif isinstance(event, ClockCorrected):
                self.owner.on_clock(event.time_offset)
            elif isinstance(event, NewSessionCreated):
                self.owner.on_salt(event.server_salt)
                self._orphaned(event.orphaned)
                # the server may have lost pushes meant for the old session (UPDATES.md §1.1)
                self.owner.on_event("new_session_created", lane=self.lane)
            elif isinstance(event, Pong):
                if self._awaiting_pong == event.ping_id:
                    self._awaiting_pong = None

    def _settle(self, request: PendingRequest, *, result: bytes | memoryview | None = None,
                error: BaseException | None = None, activity: bool = True) -> None:
        """Hand a request's outcome to its call (the session's token is the Call)."""
        call = request.token
        if not isinstance(call, Call):
            return
        # Call.pending <-> PendingRequest.token is a cycle: break it now, or each answer (up
        # to 1 MiB) lives until the cyclic garbage collector runs.
        call.pending = None
        self.calls.discard(call)
        if activity:
            self.last_activity = trio.current_time()
        if error is None:
            assert result is not None
            call.resolve(result)
        else:
            call.fail(error)

    async def _writer(self, stream: trio.SocketStream, transport: ClientTransport) -> None:
        while True:
            session = self.session
            assert session is not None
            for payload in session.data_to_send(wall_clock()):
                transport.send_frame(payload)
            data = transport.data_to_send()
            if data:
                try:
                    await stream.send_all(data)
                except (trio.BrokenResourceError, OSError) as exc:
                    raise ConnectionLost(f"write failed: {exc}") from exc
                continue
            await self._wait_wakeup()

    async def _keepalive(self) -> None:
        while True:
            await trio.sleep(self.ping_interval)
            if self._awaiting_pong is not None:
                raise ConnectionLost(f"no pong within {self.ping_interval} s")
            if self.idle_timeout is not None and not self.calls and self._idle_expired():
                self.owner.on_event("idle_closed", lane=self.lane)
                self.close()
                return
            self._ping_id += 1
            self._awaiting_pong = self._ping_id
            assert self.session is not None
            self.session.send_ping(self._ping_id, self.ping_disconnect_delay)
            self._wake()

    # ------------------------------------------------------------------ loss

    def _after_loss(self) -> None:
        """The TCP connection is gone: decide the fate of everything in flight."""
        self._awaiting_pong = None
        if self.state is ConnectionState.READY and not self._closed:  # a close on purpose is no reconnect
            self.reconnects += 1
        self.state = ConnectionState.IDLE
        session = self.session
        if session is None:
            return
        requeued, orphaned = session.connection_lost()
        refused, self._refused = self._refused, set()
        for req in requeued:
            if req in refused:
                req.may_have_executed = False  # refused by −404: it did not run (see _reader)
        self._orphaned(orphaned)

    def _orphaned(self, orphaned: Iterable[PendingRequest]) -> None:
        session = self.session
        for req in orphaned:
            call = req.token
            if not isinstance(call, Call) or call.done.is_set():
                continue
            if call.idempotent and session is not None and not self._closed:
                session.requeue(req)
            else:
                self.calls.discard(call)
                call.fail(OutcomeUnknown(call.name, self.owner.dc_id))

    def _fail_all(self, error: BaseException) -> None:
        for call in list(self.calls) + self.backlog:
            call.fail(error)
        self.calls.clear()
        self.backlog.clear()

    def fail_waiting(self, error: DcPoolError) -> None:
        """Fail every call queued or in flight here with (a copy of) ``error``: the DC keeps
        failing security checks, and waiting would only run into the calls' timeouts."""
        for call in list(self.calls) + self.backlog:
            if call.pending is not None and self.session is not None:
                self.session.cancel(call.pending)
            call.fail(copy.copy(error))
        self.calls.clear()
        self.backlog.clear()

    def take_unsent(self) -> list[Call]:
        """Calls that never reached the wire (to move them to another connection)."""
        moved = [c for c in self.backlog if not c.done.is_set()]
        self.backlog.clear()
        for call in moved:
            self.calls.discard(call)
        return moved
