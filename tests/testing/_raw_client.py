"""A test-only MTProto client over real loopback sockets, built from dcpool's sans-IO pieces.

Theory of operation
-------------------
The emulator's faults are only believable if something observes them on the wire.  Telethon
hides most of them (it retries, re-sends, reconnects), so the fault tests use this small
client instead: it glues :class:`dcpool.transport.ClientTransport`,
:class:`dcpool.mtproto.handshake.ClientHandshake` and :class:`dcpool.mtproto.session.ClientSession`
to a ``trio.open_tcp_stream`` and hands back *every* raw event, unfiltered:

* session events (``RpcResult``, ``RpcErrorReceived``, ``SaltChanged``, ``ClockCorrected``,
  ``NewSessionCreated``, ``Update``, ``RequestAcked``...),
* transport events that the session never sees (``TransportErrorFrame(-404)``),
* :class:`Closed` when the server closes the TCP connection (EOF or reset).

Everything is logged in :attr:`RawClient.history`, so a test can assert "a SaltChanged happened
before the answer arrived"; :attr:`RawClient.inner` keeps every decrypted server message (the
layer below the session, where a bad_msg_notification's error code is visible).  After
processing a chunk the client flushes the session at once, so re-sends caused by
bad_server_salt / bad_msg_notification go out without the test's help, exactly like a real
client's.  Time is the wall clock (server msg_ids are wall-clock based).
It is a test tool: no reconnects, no retries, no concurrency (one task drives it).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from dcpool import tl
from dcpool.errors import ConnectionLost, HandshakeError, TransportErrorCode
from dcpool.mtproto import envelope
from dcpool.mtproto.handshake import ClientHandshake, HandshakeResult
from dcpool.net.handshake import drive_handshake
from dcpool.mtproto.session import (
    ClientSession,
    PendingRequest,
    RequestFailed,
    RpcErrorReceived,
    RpcResult,
)
from dcpool.transport import ClientTransport, Frame, TransportErrorFrame, TransportKind

__all__ = ["Closed", "Inner", "RawClient", "open_raw", "open_session", "login", "init_connection",
           "TransportKind"]

api = tl.api
ids = tl.ids


@attrs.frozen
class Closed:
    """The server closed the connection (EOF, or a reset)."""

    reason: str


@attrs.frozen
class Inner:
    """One message the server sent, as decrypted (containers unpacked, gzip undone): the view
    *below* the session, where bad_msg_notification codes are visible."""

    msg_id: int
    seq_no: int
    body: bytes

    @property
    def constructor(self) -> int | None:
        return envelope.constructor_of(self.body)

    @property
    def error_code(self) -> int | None:
        """The error_code of a bad_msg_notification / bad_server_salt, else None."""
        # bad_msg_notification#a7eff811 bad_msg_id:long bad_msg_seqno:int error_code:int
        # bad_server_salt#edab447b bad_msg_id:long bad_msg_seqno:int error_code:int
        #   new_server_salt:long
        if self.constructor in (ids.BAD_MSG_NOTIFICATION, ids.BAD_SERVER_SALT):
            return int.from_bytes(self.body[16:20], "little", signed=True)
        return None


class RawClient:
    """One TCP connection to one emulated DC (see the module docstring)."""

    def __init__(self, stream: trio.SocketStream, transport: ClientTransport) -> None:
        self.stream = stream
        self.transport = transport
        self.session: ClientSession | None = None
        self.handshake_result: HandshakeResult | None = None
        #: every event received, in order: the handshake's transport Frames, then session
        #: events; TransportErrorFrame and Closed wherever they happen
        self.history: list[Any] = []
        #: every encrypted payload sent, in order (for replaying one)
        self.sent_payloads: list[bytes] = []
        #: every message received after the handshake, decrypted (see :class:`Inner`)
        self.inner: list[Inner] = []
        self.closed = False
        #: wrap the first query in invokeWithLayer(layer, initConnection(...)) as every client
        #: does (spec §10; the emulator answers an unwrapped first call CONNECTION_NOT_INITED)
        self.auto_init = True
        self.layer = tl.LAYER

    @staticmethod
    def now() -> float:
        return time.time()

    # ------------------------------------------------------------------ bytes

    async def send_payload(self, payload: bytes) -> None:
        """Frame one MTProto payload and write it (replays go through here too)."""
        self.transport.send_frame(payload)
        try:
            await self.stream.send_all(self.transport.data_to_send())
        except trio.BrokenResourceError as exc:  # the server closed (or reset) first
            self.closed = True
            self.history.append(Closed(f"send failed: {exc}"))
            raise ConnectionLost(f"send failed: {exc}") from exc

    async def _receive_transport_events(self) -> list[Any]:
        """One chunk from the socket, as transport events (or ``[Closed]``)."""
        if self.closed:
            raise ConnectionLost("the connection is already closed")
        try:
            data = await self.stream.receive_some(1 << 20)
        except trio.BrokenResourceError as exc:  # a reset (RST) instead of a FIN
            data, reason = b"", f"reset: {exc}"
        else:
            reason = "eof"
        if not data:
            self.closed = True
            return [Closed(reason)]
        return self.transport.receive_data(data)

    # ------------------------------------------------------------------ handshake

    async def handshake(
        self,
        rsa_keys: dict,
        dc_id: int,
        *,
        test_mode: bool = False,
        legacy: bool = False,
        temp_expires_in: int | None = None,
    ) -> HandshakeResult:
        """Run a real key exchange (§5) and start a session with its key and salt
        (a temporary key with ``temp_expires_in``, §5.11)."""
        wire_dc = dc_id + 10000 if test_mode else dc_id
        hs = ClientHandshake(rsa_keys, wire_dc, os.urandom, legacy=legacy, temp_expires_in=temp_expires_in)
        # The one handshake driver (dcpool.net.handshake); this client only records the events.
        try:
            out = await drive_handshake(self.stream, self.transport, hs, clock=self.now,
                                        observe=self.history.append)
        except ConnectionLost as exc:  # a reset
            self.closed = True
            self.history.append(Closed(f"reset: {exc}"))
            raise
        except HandshakeError as exc:
            if exc.transport_code is not None:
                raise TransportErrorCode(exc.transport_code) from exc
            if isinstance(exc.__cause__, ConnectionLost):  # the server closed the stream
                self.closed = True
                self.history.append(Closed("eof"))
                raise ConnectionLost(f"closed during the handshake ({exc})") from exc
            raise
        self.handshake_result = out
        self.session = ClientSession(
            out.auth_key,
            session_id=int.from_bytes(os.urandom(8), "little", signed=True),
            server_salt=out.server_salt,
            time_offset=out.time_offset,
            rng=os.urandom,
        )
        return out

    # ------------------------------------------------------------------ session

    def _session(self) -> ClientSession:
        if self.session is None:
            raise RuntimeError("no session: run handshake() first")
        return self.session

    def send(self, query: Any) -> PendingRequest:
        """Queue a TL function (or raw boxed bytes); :meth:`flush` or any receive sends it."""
        body = query if isinstance(query, (bytes, bytearray)) else query.to_bytes()
        if self.auto_init:
            self.auto_init = False
            body = init_connection(self.layer, body)
        return self._session().send_request(bytes(body), now=self.now())

    def send_built(self, factory: Callable[[int], bytes]) -> PendingRequest:
        """Queue a request whose body is built from the msg_id it is sent under (never
        wrapped in initConnection): ``auth.bindTempAuthKey`` (spec §5.11)."""
        return self._session().send_request(factory, now=self.now())

    async def bind_temp_key(self, perm_key: Any, expires_at: int, **overrides: Any) -> Any:
        """``auth.bindTempAuthKey`` of this connection's (temp) key to ``perm_key``; returns
        the answer event (RpcResult or RpcErrorReceived).  ``overrides`` replace fields of
        the sealed message (to test the server's checks)."""
        from dcpool.mtproto import tempkeys

        session = self._session()
        nonce = int.from_bytes(os.urandom(8), "little", signed=True)

        def build(msg_id: int) -> bytes:
            kw: dict[str, Any] = dict(
                temp_key_id=session.auth_key.key_id,
                temp_session_id=session.session_id,
                msg_id=msg_id,
                expires_at=expires_at,
                nonce=nonce,
            )
            kw.update(overrides)
            return tempkeys.bind_temp_auth_key_request(perm_key, **kw).to_bytes()

        return await self.answer(self.send_built(build))

    async def flush(self) -> None:
        session = self._session()
        for payload in session.data_to_send(self.now()):
            self.sent_payloads.append(payload)
            await self.send_payload(payload)

    async def receive_events(self) -> list[Any]:
        """Wait for the next chunk and return what it carried (see the module docstring)."""
        events: list[Any] = []
        for tevent in await self._receive_transport_events():
            if isinstance(tevent, Frame):
                self._log_inner(tevent.payload)
                events.extend(self._session().receive(tevent.payload, self.now()))
            else:
                events.append(tevent)
        self.history.extend(events)
        if not self.closed and self.session is not None:
            await self.flush()  # acks, and re-sends after bad_server_salt / bad_msg 16/17
        return events

    def _log_inner(self, payload: bytes) -> None:
        msg = envelope.decrypt_message(self._session().auth_key, payload, x=8)
        if envelope.constructor_of(msg.body) == ids.MSG_CONTAINER:
            items = [(i.msg_id, i.seq_no, i.body) for i in envelope.unpack_container(msg.body)]
        else:
            items = [(msg.msg_id, msg.seq_no, msg.body)]
        self.inner.extend(Inner(m, s, envelope.maybe_gunzip(b)) for m, s, b in items)

    def error_codes(self) -> list[int]:
        """The codes of every bad_msg_notification / bad_server_salt received, in order."""
        return [i.error_code for i in self.inner if i.error_code is not None]

    async def until(self, predicate: Callable[[Any], bool]) -> Any:
        """Receive until an event matches ``predicate`` and return it.  A :class:`Closed` that
        does not match raises ConnectionLost."""
        await self.flush()
        while True:
            for event in await self.receive_events():
                if predicate(event):
                    return event
                if isinstance(event, Closed):
                    raise ConnectionLost(f"connection closed while waiting ({event.reason})")

    async def answer(self, req: PendingRequest) -> RpcResult | RpcErrorReceived | RequestFailed:
        """The event that settles ``req`` (maybe one received already, while waiting for
        another: a chunk often answers several requests)."""

        def settles(e: Any) -> bool:
            return isinstance(e, (RpcResult, RpcErrorReceived, RequestFailed)) and e.request is req

        for event in self.history:
            if settles(event):
                return event
        return await self.until(settles)

    async def call(self, query: Any) -> Any:
        """Send ``query`` and return its parsed result; rpc_error raises the RpcError."""
        req = self.send(query)
        event = await self.answer(req)
        if isinstance(event, RpcErrorReceived):
            raise event.error
        if isinstance(event, RequestFailed):
            raise event.error
        return type(query).read_result(event.body)

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)

    def of_type(self, cls: type | tuple[type, ...]) -> list[Any]:
        """The events of ``history`` that are instances of ``cls``."""
        return [e for e in self.history if isinstance(e, cls)]


def init_connection(layer: int, body: bytes) -> bytes:
    """``invokeWithLayer(layer, initConnection(..., query=body))`` serialized."""
    return api.InvokeWithLayer(
        layer=layer,
        query=api.InitConnection(
            api_id=1, device_model="raw", system_version="test", app_version="1",
            system_lang_code="en", lang_pack="", lang_code="en", query=tl.Raw(bytes(body)),
        ),
    ).to_bytes()


@asynccontextmanager
async def open_raw(
    host: str,
    port: int,
    *,
    kind: TransportKind = TransportKind.ABRIDGED,
    obfuscated: bool = False,
    dc_id: int | None = None,
) -> AsyncIterator[RawClient]:
    """Connect (no handshake yet); the connection closes when the block exits."""
    stream = await trio.open_tcp_stream(host, port)
    transport = ClientTransport(kind, obfuscated=obfuscated, dc_id=dc_id if obfuscated else None)
    raw = RawClient(stream, transport)
    try:
        yield raw
    finally:
        await raw.aclose()


@asynccontextmanager
async def open_session(
    cluster: Any,
    dc_id: int,
    *,
    kind: TransportKind = TransportKind.ABRIDGED,
    obfuscated: bool = False,
    temp_expires_in: int | None = None,
    rsa_keys: dict | None = None,
) -> AsyncIterator[RawClient]:
    """Connect to DC ``dc_id`` of a :class:`dcpool.testing.Cluster` and run the handshake.
    (An obfuscated header carries the DC id, +10000 in test mode, as clients write it.)
    ``temp_expires_in`` makes a temporary key; ``rsa_keys`` defaults to the cluster's."""
    host, port = cluster.endpoint(dc_id)
    header_dc = dc_id + 10000 if cluster.test_mode else dc_id
    async with open_raw(host, port, kind=kind, obfuscated=obfuscated, dc_id=header_dc) as raw:
        await raw.handshake(
            cluster.rsa_keys() if rsa_keys is None else rsa_keys,
            dc_id,
            test_mode=cluster.test_mode,
            temp_expires_in=temp_expires_in,
        )
        yield raw


async def login(raw: RawClient, phone: str, code: str) -> Any:
    """auth.sendCode + auth.signIn on the connected DC; returns the ``user``.  Raises the
    RpcError (e.g. PhoneMigrate) when the phone lives elsewhere."""
    sent = await raw.call(
        api.auth.SendCode(
            phone_number=phone,
            api_id=1,
            api_hash="0" * 32,
            settings=api.CodeSettings(),
        )
    )
    auth = await raw.call(
        api.auth.SignIn(phone_number=phone, phone_code_hash=sent.phone_code_hash, phone_code=code)
    )
    return auth.user
