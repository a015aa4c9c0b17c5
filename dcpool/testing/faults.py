"""Faults on demand for one emulated DC: plain data that tests script and the server reads.

Theory of operation
-------------------
Every DC of a :class:`dcpool.testing.world.World` owns one :class:`DcFaults`
(``world.faults(dc_id)``).  A test arms a fault by calling one of the *arming* methods below;
the code that runs the DC *consumes* it through an accessor at the point where a real server
would misbehave.  Nothing here sleeps, closes sockets or reads a clock: this module only keeps
counters, so it is pure and the same fault script gives the same run every time.

Each armed fault has a *budget*: ``count=N`` fires N times and then disarms itself,
``count=None`` fires until :meth:`DcFaults.clear` (or the matching ``clear_*``) is called.

Two kinds of fault, two consumers:

========================  =========================================  ==========================
fault                      armed with                                consumed by
========================  =========================================  ==========================
added latency              ``latency = 0.05`` (seconds per packet)    shell: :attr:`latency`
refused connection         :meth:`refuse_connections`                 shell: :meth:`on_connection`
dropped connection         :meth:`drop_connections` (after N msgs)    shell: :meth:`on_connection`
transport error            :meth:`transport_error`                    shell: :meth:`take_transport_error`
forgotten auth key (−404)  :meth:`forget_key`                         shell: :meth:`take_forget_key`
salt rotation              :meth:`rotate_salt`                        shell: :meth:`take_salt_rotation`
lost server session        :meth:`lose_session`                       shell: :meth:`take_lose_session`
clock offset (16/17)       ``clock_offset = 600.0``                   shell: :meth:`server_time`
FLOOD_WAIT_X on a method   :meth:`flood_wait`                         handlers: :meth:`take_rpc_fault`
one-shot AUTH_BYTES_INVALID :meth:`auth_bytes_invalid`                handlers: :meth:`take_rpc_fault`
any rpc_error on a method  :meth:`fail`                               handlers: :meth:`take_rpc_fault`
ack, then drop (no answer) :meth:`drop_after_ack`                     shell: :meth:`take_drop_after_ack`
========================  =========================================  ==========================

How the shell is expected to read the shell-level ones (it is free to do more):

* ``latency``: wait this long before sending each outgoing transport packet of the DC.
* :meth:`on_connection` once per accepted TCP connection: ``refuse`` → close it at once without
  reading; ``drop_after_messages = N`` → close it after N client packets have been received
  (0: right after accepting, before any byte is answered).
* :meth:`take_transport_error` once per received encrypted packet: a non-None code → send that
  4-byte transport error (spec §7.7) and close.  −404 means "auth key unknown", and a DC sends
  it only for keys it does not know: for −404 the shell first forgets the key (as
  :meth:`forget_key`), so the client's next use of that key meets −404 again.
* :meth:`take_forget_key` once per received encrypted packet, before the key lookup: True →
  the DC forgets the packet's auth key with its salts, sessions, layer, initConnection and
  authorization (the realistic cause of −404: a DC lost its key store).  The packet then meets
  the ordinary "unknown key" path: −404 and close.
* :meth:`take_lose_session` once per received encrypted packet: True → the DC forgets every
  session of the packet's key (keys, salts and authorizations stay), so the packet opens a new
  session and is answered with ``new_session_created`` first (spec §3.5: "the server may
  forget a session at any time").
* :meth:`take_salt_rotation` once per received encrypted message, before the salt check of
  spec §17.4 step 7: True → replace the current salt with a fresh one and forget the previous
  one, so the message is answered with ``bad_server_salt`` (error 48).
* :meth:`take_drop_after_ack` once per received API query (innermost method's QUALNAME, only
  when :meth:`drops_after_ack` says one is armed): True → send ``msgs_ack`` for it (and whatever
  else is queued), then close the connection *without executing it*: the client's view of "the
  server had the request, and its answer was lost with the connection" (spec §8.2).
* :meth:`server_time` wherever the DC needs "now" for msg_id checks and server msg_ids: a clock
  offset beyond +30 s / −300 s makes every client msg_id look too old / too new and forces
  ``bad_msg_notification`` 16/17 (spec §8.3); the client then corrects its time offset.

RPC-level faults are applied by the request handlers to the *innermost* method of a request
(after invokeWithLayer/initConnection/... are unwrapped), before anything else is checked, so a
faulted call has no effect at all on the world.  Methods are named by their schema QUALNAME
(``"auth.exportAuthorization"``); a TL class (``api.auth.ExportAuthorization``) is accepted too,
and ``None`` means "any method".  Rules fire in the order they were armed.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..errors import LocalProtocolError, RpcError, rpc_error_from

__all__ = ["DcFaults", "ConnectionVerdict", "RpcFault", "method_name"]


def method_name(method: Any) -> str | None:
    """Normalise a method given as QUALNAME, TL class or TL object (or None = any) to a name."""
    if method is None or isinstance(method, str):
        return method
    qualname = getattr(method, "QUALNAME", None)
    if isinstance(qualname, str):
        return qualname
    raise LocalProtocolError(f"not a method name or TL class: {method!r}")


def _check_count(count: int | None) -> None:
    if count is not None and count < 1:
        raise LocalProtocolError(f"fault count must be >= 1 or None (forever), got {count}")


@attrs.frozen
class ConnectionVerdict:
    """What the shell must do with a freshly accepted connection (see :meth:`DcFaults.on_connection`)."""

    #: close immediately, reading nothing
    refuse: bool = False
    #: close after this many client packets were received (0: right away); None: never
    drop_after_messages: int | None = None


@attrs.define
class RpcFault:
    """One armed rpc_error rule: ``method`` (None = any) answers ``code message``."""

    method: str | None
    code: int
    message: str
    #: firings left; None = forever
    remaining: int | None = None

    def matches(self, qualname: str) -> bool:
        return self.method is None or self.method == qualname


@attrs.define
class _Budgeted:
    """A value that fires ``remaining`` more times (None = forever)."""

    value: Any
    remaining: int | None


def _take(queue: list[_Budgeted]) -> _Budgeted | None:
    """Consume one firing of the first armed entry of ``queue``."""
    if not queue:
        return None
    head = queue[0]
    if head.remaining is not None:
        head.remaining -= 1
        if head.remaining <= 0:
            queue.pop(0)
    return head


@attrs.define
class DcFaults:
    """The armed faults of one DC.  Plain mutable data; see the module docstring."""

    dc_id: int
    #: seconds the shell adds before sending each packet of this DC
    latency: float = 0.0
    #: seconds added to the DC's clock (msg_id checks and server msg_ids)
    clock_offset: float = 0.0
    _refuse: list[_Budgeted] = attrs.field(factory=list, repr=False, init=False)
    _drop: list[_Budgeted] = attrs.field(factory=list, repr=False, init=False)
    _transport: list[_Budgeted] = attrs.field(factory=list, repr=False, init=False)
    _salt: list[_Budgeted] = attrs.field(factory=list, repr=False, init=False)
    _forget_key: list[_Budgeted] = attrs.field(factory=list, repr=False, init=False)
    _lose_session: list[_Budgeted] = attrs.field(factory=list, repr=False, init=False)
    _rpc: list[RpcFault] = attrs.field(factory=list, repr=False, init=False)
    _ack_drop: list[_Budgeted] = attrs.field(factory=list, repr=False, init=False)

    # ------------------------------------------------------------------ arming (tests)

    def refuse_connections(self, count: int | None = None) -> None:
        """Refuse the next ``count`` connections (None: every connection until cleared)."""
        _check_count(count)
        self._refuse.append(_Budgeted(True, count))

    def drop_connections(self, after_messages: int = 0, count: int | None = None) -> None:
        """Close the next ``count`` accepted connections after ``after_messages`` client packets
        (0: immediately after accepting)."""
        _check_count(count)
        if after_messages < 0:
            raise LocalProtocolError("after_messages must be >= 0")
        self._drop.append(_Budgeted(after_messages, count))

    def transport_error(self, code: int = -404, count: int | None = 1) -> None:
        """Answer the next ``count`` encrypted packets with transport error ``code`` (spec §7.7)."""
        _check_count(count)
        if code >= 0:
            raise LocalProtocolError(f"transport error codes are negative, got {code}")
        self._transport.append(_Budgeted(code, count))

    def rotate_salt(self, count: int | None = 1) -> None:
        """Rotate the server salt before each of the next ``count`` encrypted messages, forcing a
        ``bad_server_salt`` answer (spec §3.5, §8.3 code 48)."""
        _check_count(count)
        self._salt.append(_Budgeted(True, count))

    def forget_key(self, count: int | None = 1) -> None:
        """Forget the auth key of each of the next ``count`` encrypted packets (with everything
        tied to it); the packet and later ones on that key get −404 (spec §7.7)."""
        _check_count(count)
        self._forget_key.append(_Budgeted(True, count))

    def lose_session(self, count: int | None = 1) -> None:
        """Forget the sessions of the key of each of the next ``count`` encrypted packets: the
        packet starts a new session (``new_session_created``, spec §3.5, §8.7)."""
        _check_count(count)
        self._lose_session.append(_Budgeted(True, count))

    def drop_after_ack(self, method: Any = None, count: int | None = 1) -> None:
        """For the next ``count`` queries of ``method`` (QUALNAME, TL class, or None for any):
        acknowledge the query, then close the connection without executing it."""
        _check_count(count)
        self._ack_drop.append(_Budgeted(method_name(method), count))

    def fail(self, method: Any, code: int, message: str, count: int | None = None) -> RpcFault:
        """Answer ``method`` (QUALNAME, TL class, or None for any) with ``rpc_error(code, message)``
        for the next ``count`` calls (None: until cleared)."""
        _check_count(count)
        rule = RpcFault(method_name(method), code, message, count)
        self._rpc.append(rule)
        return rule

    def flood_wait(self, method: Any, seconds: int, count: int | None = None) -> RpcFault:
        """420 ``FLOOD_WAIT_<seconds>`` on ``method`` (spec §9)."""
        if seconds < 0:
            raise LocalProtocolError("FLOOD_WAIT seconds must be >= 0")
        return self.fail(method, 420, f"FLOOD_WAIT_{seconds}", count)

    def auth_bytes_invalid(self, count: int | None = 1) -> RpcFault:
        """400 ``AUTH_BYTES_INVALID`` on the next ``count`` ``auth.importAuthorization`` calls.

        The token presented is *not* consumed, so a retry with the same token may succeed (the
        real server shows this when an import races the export's propagation)."""
        return self.fail("auth.importAuthorization", 400, "AUTH_BYTES_INVALID", count)

    def clear_rpc(self, method: Any = ...) -> None:
        """Disarm RPC faults: all of them, or those armed for ``method``."""
        if method is ...:
            self._rpc.clear()
        else:
            name = method_name(method)
            self._rpc[:] = [r for r in self._rpc if r.method != name]

    def clear(self) -> None:
        """Disarm everything and reset latency and clock offset."""
        self.latency = 0.0
        self.clock_offset = 0.0
        for queue in (
            self._refuse,
            self._drop,
            self._transport,
            self._salt,
            self._rpc,
            self._ack_drop,
            self._forget_key,
            self._lose_session,
        ):
            queue.clear()

    # ------------------------------------------------------------------ consuming (shell)

    def on_connection(self) -> ConnectionVerdict:
        """Call once per accepted connection; consumes one refuse or drop firing."""
        if _take(self._refuse) is not None:
            return ConnectionVerdict(refuse=True)
        drop = _take(self._drop)
        if drop is not None:
            return ConnectionVerdict(drop_after_messages=drop.value)
        return ConnectionVerdict()

    def take_transport_error(self) -> int | None:
        """Call once per received encrypted packet: a negative code to send and close, or None."""
        entry = _take(self._transport)
        return None if entry is None else entry.value

    def take_salt_rotation(self) -> bool:
        """Call once per received encrypted message: True → rotate the salt now."""
        return _take(self._salt) is not None

    def take_forget_key(self) -> bool:
        """Call once per received encrypted packet: True → forget its auth key now."""
        return _take(self._forget_key) is not None

    def take_lose_session(self) -> bool:
        """Call once per received encrypted packet: True → forget its key's sessions now."""
        return _take(self._lose_session) is not None

    def drops_after_ack(self) -> bool:
        """True while a :meth:`drop_after_ack` rule is armed (the shell then looks at methods)."""
        return bool(self._ack_drop)

    def take_drop_after_ack(self, qualname: str | None) -> bool:
        """Call once per received query: True → ack it, then drop the connection unexecuted."""
        for i, entry in enumerate(self._ack_drop):
            if entry.value is None or entry.value == qualname:
                if entry.remaining is not None:
                    entry.remaining -= 1
                    if entry.remaining <= 0:
                        del self._ack_drop[i]
                return True
        return False

    def server_time(self, now: float) -> float:
        """The DC's idea of the current time (``now`` + :attr:`clock_offset`)."""
        return now + self.clock_offset

    # ------------------------------------------------------------------ consuming (handlers)

    def take_rpc_fault(self, qualname: str) -> RpcError | None:
        """Consume the first RPC fault matching ``qualname`` and return the error to raise."""
        for i, rule in enumerate(self._rpc):
            if rule.matches(qualname):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        del self._rpc[i]
                return rpc_error_from(rule.code, rule.message, qualname)
        return None

    @property
    def rpc_faults(self) -> tuple[RpcFault, ...]:
        """The armed RPC rules, in firing order (read-only view for tests)."""
        return tuple(self._rpc)

    def armed(self) -> bool:
        """True if anything at all is armed (latency and clock offset included)."""
        return bool(
            self.latency
            or self.clock_offset
            or self._refuse
            or self._drop
            or self._transport
            or self._salt
            or self._rpc
            or self._ack_drop
            or self._forget_key
            or self._lose_session
        )
