"""A hostile DC: the emulator's server role, made to break one client-side rule on purpose.

Theory of operation
-------------------
A real DC can be impersonated or broken; MTProto's security guidelines (spec §4.5, §5.5–§5.9)
list what a client must check before it trusts a byte.  :class:`HostileServer` is a loopback
DC built from the same sans-IO server role as the regular emulator — framing by
:class:`~dcpool.transport.ServerTransport`, the key exchange by
:class:`~dcpool.mtproto.handshake.ServerHandshake`, decryption, sessions and answers by
:class:`~dcpool.mtproto.server.ServerCore` / :class:`~dcpool.mtproto.server.ServerConnection` —
with exactly one fault switched on:

* a handshake fault: any :class:`~dcpool.mtproto.handshake.Misbehavior` (wrong nonces, a wrong
  new_nonce_hash, an unsafe / short dh_prime, g out of range or failing its residue condition,
  g_a outside the window, an RSA fingerprint nobody has, ...), passed straight to
  ``ServerHandshake(misbehave=...)``;
* a message fault (:class:`Tamper`): once the key exchange succeeded honestly, every encrypted
  payload the server sends is rewritten so that it breaks one check of §4.5/§3.3 (msg_key,
  auth_key_id, session_id, msg_id parity / window / replay, padding, lengths), or replaced by a
  transport frame larger than the client's transport accepts (§7).

The server otherwise behaves like a DC: a client that reaches it gets real answers (from a
:class:`~dcpool.testing.world.World` when one is given — as the DC ``world_dc`` — else an
``rpc_error``), so the only reason a correct client can refuse it is the fault itself.
:data:`EXPECTED_ERRORS` names, for every fault, the :mod:`dcpool.errors` class a correct client
raises; a test that drives a client (dcpool's pool, or any other) against each fault checks
that exact class.

This module is the network shell for one listener.  It is deliberately simple — one task per
connection, frames processed in order, no latency line — because the faults, not the timing,
are what it exists for.  Everything it runs lives in the nursery of :func:`open_hostile_server`
(or of whoever awaits :meth:`HostileServer.serve`).
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio

from .. import errors
from ..crypto import Rng
from ..crypto.rsa import RsaPrivateKey
from ..errors import DcPoolError, FramingError, HandshakeError, RpcError
from ..mtproto import envelope
from ..mtproto.handshake import Misbehavior, ServerHandshake
from ..mtproto.server import (
    CloseConnection,
    IncomingRequest,
    ServerConnection,
    ServerCore,
    UnencryptedMessage,
)
from ..tl import ids
from ..transport import DEFAULT_MAX_FRAME_SIZE, Frame, ServerTransport

__all__ = [
    "EXPECTED_ERRORS",
    "HANDSHAKE_FAULTS",
    "HostileServer",
    "Misbehavior",
    "Tamper",
    "attach",
    "expected_error",
    "open_hostile_server",
]

log = logging.getLogger(__name__)


class Tamper(enum.Enum):
    """Message-level faults of :class:`HostileServer` (after an honest key exchange).

    The comment after each names what a correct client must raise (spec §4.5, §3.3, §7).
    """

    AUTH_KEY_ID = "auth_key_id"                # another key's id in front          -> AuthKeyIdMismatch
    MSG_KEY = "msg_key"                        # one msg_key byte flipped           -> MsgKeyMismatch
    SESSION_ID = "session_id"                  # someone else's session_id          -> SessionIdMismatch
    MSG_ID_EVEN = "msg_id_even"                # a client-parity (even) msg_id      -> MsgIdParity
    MSG_ID_TOO_OLD = "msg_id_too_old"          # msg_id 600 s in the past           -> MsgIdOutOfWindow
    MSG_ID_TOO_NEW = "msg_id_too_new"          # msg_id 120 s in the future         -> MsgIdOutOfWindow
    MSG_ID_REPLAYED = "msg_id_replayed"        # the same message sent twice        -> MsgIdReplayed
    PADDING_TOO_SHORT = "padding_too_short"    # 0..8 bytes of padding              -> BadPadding
    PADDING_TOO_LONG = "padding_too_long"      # more than 1024 bytes of padding    -> BadPadding
    LENGTH_NOT_16 = "length_not_16"            # encrypted data not a multiple of 16 -> BadMessageLength
    DATA_LENGTH_IMPOSSIBLE = "data_length_impossible"  # message_data_length > room -> BadMessageLength
    OVERSIZED_FRAME = "oversized_frame"        # a frame over the transport's limit -> FramingError
    HANDSHAKE_MSG_ID_EVEN = "handshake_msg_id_even"  # even msg_id on resPQ          -> MsgIdParity


#: The error a correct client raises for each fault.
EXPECTED_ERRORS: dict[Misbehavior | Tamper, type[DcPoolError]] = {
    Misbehavior.WRONG_NONCE: errors.NonceMismatch,
    Misbehavior.WRONG_SERVER_NONCE: errors.NonceMismatch,
    Misbehavior.WRONG_INNER_NONCE: errors.NonceMismatch,
    Misbehavior.WRONG_DH_GEN_NONCE: errors.NonceMismatch,
    Misbehavior.UNKNOWN_FINGERPRINT: errors.UnknownFingerprint,
    Misbehavior.BAD_PQ: errors.HandshakeSecurityError,
    Misbehavior.CORRUPT_ANSWER_HASH: errors.AnswerHashMismatch,
    Misbehavior.LONG_ANSWER_PADDING: errors.AnswerHashMismatch,
    Misbehavior.UNSAFE_PRIME: errors.BadDhPrime,
    Misbehavior.SHORT_PRIME: errors.BadDhPrime,
    Misbehavior.G_OUT_OF_RANGE: errors.BadDhG,
    Misbehavior.G_NOT_RESIDUE: errors.BadDhG,
    Misbehavior.G_A_OUT_OF_RANGE: errors.BadDhValue,
    Misbehavior.G_A_OUTSIDE_WINDOW: errors.BadDhValue,
    Misbehavior.BAD_NEW_NONCE_HASH: errors.NewNonceHashMismatch,
    Misbehavior.PARAMS_FAIL: errors.HandshakeError,
    Misbehavior.PARAMS_FAIL_BAD_HASH: errors.NewNonceHashMismatch,
    Misbehavior.DH_GEN_FAIL: errors.HandshakeError,
    Misbehavior.ALWAYS_RETRY: errors.HandshakeError,
    Tamper.AUTH_KEY_ID: errors.AuthKeyIdMismatch,
    Tamper.MSG_KEY: errors.MsgKeyMismatch,
    Tamper.SESSION_ID: errors.SessionIdMismatch,
    Tamper.MSG_ID_EVEN: errors.MsgIdParity,
    Tamper.MSG_ID_TOO_OLD: errors.MsgIdOutOfWindow,
    Tamper.MSG_ID_TOO_NEW: errors.MsgIdOutOfWindow,
    Tamper.MSG_ID_REPLAYED: errors.MsgIdReplayed,
    Tamper.PADDING_TOO_SHORT: errors.BadPadding,
    Tamper.PADDING_TOO_LONG: errors.BadPadding,
    Tamper.LENGTH_NOT_16: errors.BadMessageLength,
    Tamper.DATA_LENGTH_IMPOSSIBLE: errors.BadMessageLength,
    Tamper.OVERSIZED_FRAME: errors.FramingError,
    Tamper.HANDSHAKE_MSG_ID_EVEN: errors.MsgIdParity,
}

#: Faults that make the key exchange itself fail (no auth key may ever be stored).
HANDSHAKE_FAULTS: frozenset[Misbehavior | Tamper] = frozenset(
    [*Misbehavior, Tamper.HANDSHAKE_MSG_ID_EVEN]
)


def expected_error(fault: Misbehavior | Tamper) -> type[DcPoolError]:
    return EXPECTED_ERRORS[fault]


_conn_ids = itertools.count(1)

#: The frame the client must refuse: one 16-byte block over its default limit (spec §7).
_OVERSIZED = DEFAULT_MAX_FRAME_SIZE + 16


def _wall_clock() -> float:
    # MTProto msg_ids are unix time (spec §3.3): the real clock, not trio's.
    return time.time()


def _server_msg_id(t: float, rng: Rng, *, low: int = 1) -> int:
    """An msg_id for unix time ``t`` with low bits ``low`` (1/3: server, 0/2: client parity)."""
    frac = int.from_bytes(rng(4), "little") & ~3
    return ((int(t) << 32) | frac | low) & ((1 << 63) - 1)


class HostileServer:
    """One DC that breaks exactly the rules it is told to (see the module docstring).

    ``misbehave``: handshake faults for every key exchange; ``tamper``: a message fault for every
    encrypted payload sent.  ``world``/``world_dc``: answer API queries as that DC of a World
    (else every query gets ``rpc_error 500 HOSTILE_SERVER``).
    """

    def __init__(
        self,
        dc_id: int,
        private_key: RsaPrivateKey,
        *,
        misbehave: Iterable[Misbehavior | str] = (),
        tamper: Tamper | str | None = None,
        world: Any = None,
        world_dc: int | None = None,
        test_mode: bool = False,
        rng: Rng = os.urandom,
        clock: Callable[[], float] = _wall_clock,
    ) -> None:
        self.dc_id = dc_id
        self.private_key = private_key
        self.misbehave = frozenset(Misbehavior(m) for m in misbehave)
        self.tamper = Tamper(tamper) if tamper is not None else None
        self.world = world
        self.world_dc = world_dc if world_dc is not None else dc_id
        self.test_mode = test_mode
        self.rng = rng
        self.clock = clock
        self.core = ServerCore(rng=rng)
        self.address: tuple[str, int] | None = None
        self._scope: trio.CancelScope | None = None
        self._listeners: list[trio.SocketListener] = []
        #: live / total accepted connections, key exchanges completed, payloads tampered with
        self.connections_live = 0
        self.connections_total = 0
        self.handshakes = 0
        self.tampered = 0
        self.requests = 0

    def __repr__(self) -> str:
        faults = sorted(m.value for m in self.misbehave)
        if self.tamper is not None:
            faults.append(self.tamper.value)
        return (
            f"<HostileServer dc={self.dc_id} address={self.address} faults={faults} "
            f"live={self.connections_live}>"
        )

    @property
    def faults(self) -> list[Misbehavior | Tamper]:
        out: list[Misbehavior | Tamper] = sorted(self.misbehave, key=lambda m: m.value)
        if self.tamper is not None:
            out.append(self.tamper)
        return out

    def dc_option(self) -> Any:
        """This server as a :class:`dcpool.dcs.DcOption` (for ``open_pool(dc_list=...)``)."""
        from ..dcs import DcOption

        if self.address is None:
            raise errors.LocalProtocolError("the hostile server is not listening yet")
        host, port = self.address
        return DcOption(id=self.dc_id, ip_address=host, port=port)

    # ------------------------------------------------------------------ listening

    async def serve(self, host: str = "127.0.0.1", port: int = 0, *,
                    task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; reports the bound (host, port)."""
        with trio.CancelScope() as self._scope:
            listeners = await trio.open_tcp_listeners(port, host=host)
            self._listeners = listeners
            bound = listeners[0].socket.getsockname()[:2]
            self.address = (bound[0], bound[1])
            task_status.started(self.address)
            try:
                await trio.serve_listeners(self._handle, listeners)
            except* trio.ClosedResourceError:
                pass  # stop() closed the listening socket

    def stop(self) -> None:
        """Stop listening and drop every connection (later dials are refused at once)."""
        if self._scope is not None:
            self._scope.cancel()
        for listener in self._listeners:
            listener.socket.close()  # now, not when the cancelled task gets to run

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = _Conn(self, stream)
        self.connections_live += 1
        self.connections_total += 1
        try:
            await conn.run()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client went away (clients drop a hostile DC as soon as they notice)
        finally:
            self.connections_live -= 1
            conn.mconn.connection_lost()
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await trio.aclose_forcefully(stream)

    # ------------------------------------------------------------------ faults

    def new_handshake(self) -> ServerHandshake:
        msg_ids: Callable[[float], int]
        if self.tamper is Tamper.HANDSHAKE_MSG_ID_EVEN:
            # §3.1/§3.3: handshake answers carry server (odd) ids; an even one is forged.
            msg_ids = lambda t: _server_msg_id(t, self.rng, low=0)  # noqa: E731
        else:
            msg_ids = lambda t: self.core.next_msg_id(t, answer=True)  # noqa: E731
        return ServerHandshake(
            [self.private_key],
            self.rng,
            key_exists=self.core.has_key,
            expected_dc=self.dc_id,
            test_mode=self.test_mode,
            misbehave=self.misbehave,
            msg_ids=msg_ids,
        )

    def rewrite(self, payload: bytes, now: float) -> list[bytes]:
        """The transport payloads to send instead of the honest encrypted ``payload``."""
        tamper = self.tamper
        if tamper is None or tamper is Tamper.HANDSHAKE_MSG_ID_EVEN:
            return [payload]
        self.tampered += 1
        if tamper is Tamper.OVERSIZED_FRAME:
            return [bytes(_OVERSIZED)]
        if tamper is Tamper.AUTH_KEY_ID:
            other = (int.from_bytes(payload[:8], "little", signed=True) ^ 0x5A5A) & ((1 << 63) - 1)
            return [other.to_bytes(8, "little", signed=True) + payload[8:]]
        if tamper is Tamper.MSG_KEY:
            return [payload[:8] + bytes((payload[8] ^ 0xFF,)) + payload[9:]]
        if tamper is Tamper.LENGTH_NOT_16:
            return [payload[:-4]]  # still a multiple of 4, as every framing needs

        key_id = int.from_bytes(payload[:8], "little", signed=True)
        key = self.core.get_key(key_id)
        assert key is not None
        msg = envelope.decrypt_message(key, payload, x=8)
        salt, session_id, msg_id, seq_no, body = msg.salt, msg.session_id, msg.msg_id, msg.seq_no, bytes(msg.body)
        if tamper is Tamper.SESSION_ID:
            session_id ^= 0x0F0F0F0F
        elif tamper is Tamper.MSG_ID_EVEN:
            msg_id = _server_msg_id(self.core.server_time(now), self.rng, low=2)
        elif tamper is Tamper.MSG_ID_TOO_OLD:
            msg_id = _server_msg_id(self.core.server_time(now) - 600, self.rng)
        elif tamper is Tamper.MSG_ID_TOO_NEW:
            msg_id = _server_msg_id(self.core.server_time(now) + 120, self.rng)
        elif tamper is Tamper.MSG_ID_REPLAYED:
            # A harmless first message (msgs_ack#62d6b459 msg_ids:Vector<long>, empty: not
            # content-related, seq_no even), then the very same bytes again.  The honest
            # answer is withheld, so the only way to get anything is to accept the replay.
            ack = envelope.pack_uint(ids.MSGS_ACK) + envelope.pack_vector_long([])
            fresh = self.core.next_msg_id(now, answer=False)
            once = envelope.encrypt(key, envelope.pack_plaintext(salt, session_id, fresh, 0, ack),
                                    x=8, rng=self.rng)
            return [once, once]
        plain = envelope.pack_plaintext(salt, session_id, msg_id, seq_no, body)
        if tamper is Tamper.PADDING_TOO_SHORT:
            # §4.5: 12..1024 bytes of padding; pad the body (length field included) so that the
            # padding left is 0, 4 or 8 bytes.
            while (-len(plain)) % 16 >= 12:
                body += bytes(4)
                plain = envelope.pack_plaintext(salt, session_id, msg_id, seq_no, body)
            padded = plain + self.rng((-len(plain)) % 16)
        elif tamper is Tamper.PADDING_TOO_LONG:
            padded = plain + self.rng((-len(plain)) % 16 + 1040)
        elif tamper is Tamper.DATA_LENGTH_IMPOSSIBLE:
            padded = plain + self.rng(envelope.minimal_padding(len(plain)))
            lying = len(padded) - 32 + 16  # 16 bytes more than the data could hold
            padded = padded[:28] + lying.to_bytes(4, "little") + padded[32:]
        else:
            padded = plain + self.rng(envelope.minimal_padding(len(plain)))
        return [envelope.encrypt_padded(key, padded, x=8)]

    # ------------------------------------------------------------------ answers

    def answer(self, conn: _Conn, incoming: IncomingRequest, now: float) -> None:
        self.requests += 1
        if self.world is None:
            conn.mconn.send_error(incoming, 500, "HOSTILE_SERVER")
            return
        try:
            result = self.world.handle(self.world_dc, conn.ctx, incoming.session_key.key_id,
                                       incoming.body, now)
        except RpcError as exc:
            conn.mconn.send_error(incoming, exc.code, exc.message)
        except DcPoolError:
            conn.mconn.send_error(incoming, 400, "INPUT_REQUEST_INVALID")
        else:
            conn.mconn.send_result(incoming, result)


class _Conn:
    """One accepted connection of a :class:`HostileServer`."""

    def __init__(self, server: HostileServer, stream: trio.SocketStream) -> None:
        from .world import ConnectionContext

        self.id = next(_conn_ids)
        self.server = server
        self.stream = stream
        # Roomy limit: the OVERSIZED_FRAME fault must be able to *send* what the client refuses.
        self.transport = ServerTransport(rng=server.rng, max_frame_size=2 * _OVERSIZED)
        self.mconn = ServerConnection(server.core, server.rng)
        self.ctx = ConnectionContext()
        self.handshake: ServerHandshake | None = None

    async def run(self) -> None:
        while True:
            data = await self.stream.receive_some(1 << 20)
            if not data:
                return
            try:
                events = self.transport.receive_data(data)
            except FramingError as exc:
                log.info("hostile DC %s conn %s: bad framing: %s", self.server.dc_id, self.id, exc)
                return
            for event in events:
                if isinstance(event, Frame) and not await self._on_frame(event.payload):
                    return
            await self._flush()

    async def _flush(self) -> None:
        server = self.server
        now = server.clock()
        for payload in self.mconn.data_to_send(now):
            for out in server.rewrite(payload, now):
                self.transport.send_frame(out)
        data = self.transport.data_to_send()
        if data:
            await self.stream.send_all(data)

    async def _close_with(self, code: int | None) -> None:
        await self._flush()
        if code is not None:
            self.transport.send_transport_error(code)
            await self.stream.send_all(self.transport.data_to_send())

    async def _on_frame(self, payload: bytes) -> bool:
        server = self.server
        now = server.clock()
        for event in self.mconn.receive(payload, now):
            if isinstance(event, UnencryptedMessage):
                if self.handshake is None:
                    self.handshake = server.new_handshake()
                try:
                    reply, result = self.handshake.receive(event.payload, now)
                except HandshakeError as exc:
                    log.info("hostile DC %s: handshake refused: %s", server.dc_id, exc)
                    await self._close_with(exc.transport_code or -404)
                    return False
                if result is not None:
                    server.core.add_key(result.auth_key, now=now, server_salt=result.server_salt)
                    server.handshakes += 1
                if reply is not None:
                    self.transport.send_frame(reply)
            elif isinstance(event, IncomingRequest):
                server.answer(self, event, now)
            elif isinstance(event, CloseConnection):
                await self._close_with(event.transport_error)
                return False
        return True


@asynccontextmanager
async def open_hostile_server(
    dc_id: int,
    private_key: RsaPrivateKey,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    **kwargs: Any,
) -> AsyncIterator[HostileServer]:
    """Run a :class:`HostileServer` for the duration of the block (see its arguments)."""
    server = HostileServer(dc_id, private_key, **kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, host, port)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()


def attach(cluster: Any, server: HostileServer) -> None:
    """Point ``cluster``'s DC ``server.dc_id`` at the hostile server, so that the cluster's
    ``dc_list()`` and the ``help.getConfig`` it serves both lead clients there."""
    if server.address is None:
        raise errors.LocalProtocolError("the hostile server is not listening yet")
    cluster.world.set_endpoint(server.dc_id, *server.address)
