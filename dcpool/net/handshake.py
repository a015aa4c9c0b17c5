"""The handshake driver: runs a sans-IO :class:`~dcpool.mtproto.handshake.ClientHandshake` over
a trio stream (spec §5).  The one copy of this loop: the pool, the tests' raw client and the
benchmark all use it.  :func:`drive_request` is its sibling for the one request some set-ups
send on a fresh stream before the connection's own tasks start (``auth.bindTempAuthKey``, §5.11).

The driver only moves bytes: the handshake object decides everything.  It is also one of the
places (with :mod:`.connection` and :mod:`.dial`) where trio and socket exceptions become dcpool
errors: a timeout is :class:`~dcpool.errors.HandshakeError`, a stream closed by the server
is :class:`~dcpool.errors.HandshakeError` caused by :class:`~dcpool.errors.ConnectionLost`, a
broken one is :class:`~dcpool.errors.ConnectionLost`, a transport error frame (e.g. -404) is
:class:`~dcpool.errors.HandshakeError` carrying ``transport_code``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import trio

from ..errors import ConnectionLost, HandshakeError, TransportErrorCode
from ..mtproto.handshake import ClientHandshake, HandshakeResult
from ..mtproto.session import ClientSession, PendingRequest, RpcErrorReceived, RpcResult
from ..transport import ClientTransport, Frame, TransportErrorFrame
from ..transport.events import Event as TransportEvent

__all__ = ["drive_handshake", "drive_request"]

#: observer of every transport event received during the handshake (tests record them,
#: the benchmark looks at the first answer)
Observer = Callable[[TransportEvent], None]


async def drive_handshake(
    stream: trio.abc.Stream,
    transport: ClientTransport,
    handshake: ClientHandshake,
    *,
    timeout: float | None = None,
    clock: Callable[[], float] = time.time,
    observe: Observer | None = None,
    describe: str = "",
) -> HandshakeResult:
    """Create an auth key on ``stream``: send ``handshake.start()``, feed every frame received
    to ``handshake.receive()`` and send what it answers, until it returns the result.

    ``clock`` is the wall clock (the handshake's nonces and time offset need unix time);
    ``timeout`` (seconds, trio's clock) bounds the whole exchange.
    """
    where = f"{describe}: " if describe else ""
    transport.send_frame(handshake.start(clock()))
    try:
        with trio.fail_after(math.inf if timeout is None else timeout):
            await stream.send_all(transport.data_to_send())
            while True:
                data = await stream.receive_some(1 << 16)
                if not data:
                    # A DC that closes instead of answering refuses the handshake: the caller
                    # sees HandshakeError, whose cause says the stream ended (not a reset).
                    closed = ConnectionLost("the server closed the connection")
                    raise HandshakeError(f"{where}the server closed the connection during the "
                                         "handshake") from closed
                for event in transport.receive_data(data):
                    if observe is not None:
                        observe(event)
                    if isinstance(event, TransportErrorFrame):
                        raise HandshakeError(f"{where}transport error {event.code} during the handshake",
                                             transport_code=event.code)
                    if not isinstance(event, Frame):
                        continue
                    out = handshake.receive(event.payload, clock())
                    if isinstance(out, HandshakeResult):
                        return out
                    transport.send_frame(out)
                pending = transport.data_to_send()
                if pending:
                    await stream.send_all(pending)
    except trio.TooSlowError:
        raise HandshakeError(f"{where}no handshake answer within {timeout} s") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise ConnectionLost(f"{where}connection lost during the handshake: {exc}") from exc


async def drive_request(
    stream: trio.abc.Stream,
    transport: ClientTransport,
    session: ClientSession,
    pending: PendingRequest,
    *,
    timeout: float | None = None,
    clock: Callable[[], float] = time.time,
    describe: str = "",
) -> RpcResult | RpcErrorReceived:
    """Run ``session`` on ``stream`` until ``pending`` (already queued) is answered; return its
    result or error event.  The session handles salts, acks and re-sends meanwhile.

    A timeout is :class:`~dcpool.errors.HandshakeError` (this is still connection set-up), a
    closed or broken stream :class:`~dcpool.errors.ConnectionLost`, a transport error frame
    :class:`~dcpool.errors.TransportErrorCode`.
    """
    where = f"{describe}: " if describe else ""
    try:
        with trio.fail_after(math.inf if timeout is None else timeout):
            while True:
                for payload in session.data_to_send(clock()):
                    transport.send_frame(payload)
                data = transport.data_to_send()
                if data:
                    await stream.send_all(data)
                chunk = await stream.receive_some(1 << 16)
                if not chunk:
                    raise ConnectionLost(f"{where}the server closed the connection")
                for event in transport.receive_data(chunk):
                    if isinstance(event, TransportErrorFrame):
                        raise TransportErrorCode(event.code)
                    if not isinstance(event, Frame):
                        continue
                    for ev in session.receive(event.payload, clock()):
                        if isinstance(ev, (RpcResult, RpcErrorReceived)) and ev.request is pending:
                            return ev
    except trio.TooSlowError:
        raise HandshakeError(f"{where}no answer within {timeout} s") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise ConnectionLost(f"{where}connection lost: {exc}") from exc
