"""The client side of an MTProto session, sans-IO (spec §3, §8, §9).

Theory of operation
-------------------
:class:`ClientSession` owns everything between "a boxed serialized request" and "an encrypted
payload for one transport frame": msg_ids, seq_no, the server salt, acknowledgements,
containers, gzip, and the service messages of §8.  It never reads a clock or a random source:
``now`` (unix seconds) and ``rng`` (``Callable[[int], bytes]``) are arguments.  The shell (one
connection) drives it like h11::

    req = session.send_request(body, now=now, token=my_future)     # state QUEUED
    for payload in session.data_to_send(now):                      # encrypted, one per frame
        transport.send_frame(payload)
    for event in session.receive(frame.payload, now):              # may raise a security error
        ...                                                        # RpcResult, Update, Pong...
    requeued, orphaned = session.connection_lost()                 # when the TCP link dies

Request states (``PendingRequest.state``), which the pool relies on::

    QUEUED ──data_to_send──▶ SENT ──msgs_ack──▶ ACKED ──rpc_result──▶ ANSWERED
       ▲                      │ │                 │
       └── requeue ◀──────────┘ │  (bad_server_salt 48, bad_msg 16/17/20/32/33,
           (automatic)          │   msg_resend_req, new_session_created, connection_lost)
                                ▼
                              FAILED (bad_msg with any other code) / CANCELLED (cancel())
    ACKED + connection_lost or new_session_created ──▶ ORPHANED (returned to the caller)

* SENT means "on the wire, no sign of life"; such a request may be re-sent freely because the
  server never acknowledged it (the session layer does so by itself).  ACKED means the server
  has it: when the connection (or the server's session) is lost before the answer, the request
  is ORPHANED and handed back; only the caller knows whether it is idempotent (else
  ``OutcomeUnknown``), and can put it back with :meth:`ClientSession.requeue`.
* A re-sent request gets a new msg_id (§3.3).  Its old ids are remembered as aliases, so a
  late ``rpc_result`` for an old id still resolves it (and dequeues it if it is waiting).

Receiving (checks of §4.5, then §3.3): :func:`envelope.decrypt` (auth_key_id, lengths,
msg_key, padding) → ``session_id`` is ours (:class:`SessionIdMismatch`) → the msg_id is odd
(:class:`MsgIdParity`) → not a replay of the last 500 ids (:class:`MsgIdReplayed`) → within
[−300 s, +30 s] of the corrected clock (:class:`MsgIdOutOfWindow`; a message that carries a
bad_server_salt / bad_msg_notification is exempt, as in Telethon, because it is how a wrong
clock gets fixed).  The body is then split (container, gzip) and decoded *completely* before
any state changes, so every error leaves the session exactly as it was.  Inside a container,
an inner id seen before is skipped silently (but acked): that is how a server re-sends
messages the client may already have.

Service messages handled (§8):

* ``rpc_result`` → :class:`RpcResult` / :class:`RpcErrorReceived` (gzip unpacked,
  ``rpc_error`` parsed by :func:`dcpool.errors.rpc_error_from`); a pong wrapped in rpc_result
  for one of our pings → :class:`Pong`.
* ``msgs_ack`` → :class:`RequestAcked` (also for every request of an acked container).
* ``bad_server_salt`` → adopt the salt (:class:`SaltChanged`), re-send with new ids.
* ``bad_msg_notification`` 16/17 → fix ``time_offset`` from the notification's own msg_id
  (:class:`ClockCorrected`), re-send; 20 → re-send; 32/33 (seq_no too low/high) → the counter
  is adjusted as Telethon does (+64 / −16 on seq_no) and the messages re-sent: starting a new
  session would orphan every acked request, which is worse for the pool; anything else → the
  requests named by it fail (:class:`RequestFailed` with :class:`BadMsgNotification`).  The
  notification is trusted only if ``bad_msg_id`` is a message (or container) we sent.
* ``new_session_created`` → adopt its salt; requests with msg_id < first_msg_id belong to the
  lost server session: SENT ones are re-sent, ACKED ones are ORPHANED and listed in
  :class:`NewSessionCreated`.orphaned (treat them like :meth:`connection_lost`'s second list).
* ``pong`` → :class:`Pong`; ``future_salts`` → stored; the salt switches to the next valid one
  when the current one expires (checked in :meth:`data_to_send` and :meth:`receive`).
* ``msgs_state_req`` → ``msgs_state_info``; ``msg_resend_req`` → re-send (or
  ``msgs_state_info`` if an id is unknown); ``msg_detailed_info``/``msg_new_detailed_info`` →
  ack ``answer_msg_id`` if we have it, else ask for it with ``msg_resend_req``;
  ``destroy_session_ok/none`` → resolves our ``destroy_session`` request; ``msgs_all_info`` and
  ``msgs_state_info`` are consumed.
* anything else → :class:`Update` (updates, or objects we do not know).

Acknowledgements: content-related (odd seq_no) server messages are acked in batches: the ids
ride along with the next outgoing data (in the same container), or go alone once
``ACK_BATCH`` (16) are pending (§8.2).  Sending: :meth:`data_to_send` packs acks, service
messages and queued requests into ``msg_container``s of at most 1024 messages and
``CONTAINER_BUDGET`` bytes; a body larger than the budget goes alone.  Request bodies over 512
bytes are gzip-packed when that makes them smaller (``gzip_requests=True``; turn it off for
media sessions, whose bodies do not compress).
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Callable

import attrs

from ..crypto import Rng
from ..errors import (
    BadMsgNotification,
    LocalProtocolError,
    MsgIdOutOfWindow,
    MsgIdParity,
    MsgIdReplayed,
    RpcError,
    SessionIdMismatch,
    TLDecodeError,
    rpc_error_from,
)
from ..tl import ids
from . import envelope
from .envelope import KeyLike, Reader, constructor_of, pack_long, pack_vector_long
from .msgid import ClientMsgIdGenerator, ReplayWindow, check_window, msg_id_time

__all__ = [
    "ClientSession",
    "PendingRequest",
    "RequestState",
    "SessionStatistics",
    "FutureSalt",
    "Event",
    "RpcResult",
    "RpcErrorReceived",
    "Update",
    "SaltChanged",
    "ClockCorrected",
    "NewSessionCreated",
    "Pong",
    "RequestAcked",
    "RequestFailed",
    "RequestOutcomeUnknown",
    "ACK_BATCH",
    "MAX_CONTAINER_MESSAGES",
    "CONTAINER_BUDGET",
    "GZIP_THRESHOLD",
]


#: Send a stand-alone msgs_ack once this many acks are pending (docs: "more than 16").
ACK_BATCH = 16
#: Documented container limit (§3.6).
MAX_CONTAINER_MESSAGES = 1024
#: Byte budget of one container's items (Telethon's 1044448; ~1 MiB).
CONTAINER_BUDGET = 1044448
#: Requests longer than this are gzip-packed when that makes them smaller (§2.7).
GZIP_THRESHOLD = 512
#: At most this many ids per msgs_ack / msgs_state_req / msg_resend_req (§3.6).
MAX_IDS_PER_MESSAGE = 8192
#: How many received server msg_ids are remembered for replay protection (Telethon: 500).
REPLAY_WINDOW = 500
#: A request re-sent after a lost connection keeps its msg_id while the id is younger than
#: this (the server refuses ids older than 300 s, §3.3).
RESEND_ORIGINAL_MAX_AGE = 240.0
#: How many sent service messages / containers are remembered to validate notifications.
_SENT_MEMORY = 2048

_BAD_NOTIFICATIONS = (ids.BAD_MSG_NOTIFICATION, ids.BAD_SERVER_SALT)


class RequestState(enum.Enum):
    QUEUED = "queued"  # waiting for data_to_send
    SENT = "sent"  # on the wire, not acknowledged
    ACKED = "acked"  # the server acknowledged it (msgs_ack)
    ANSWERED = "answered"  # rpc_result received (result or rpc_error)
    FAILED = "failed"  # bad_msg_notification with an unrecoverable code
    CANCELLED = "cancelled"  # cancel() was called
    ORPHANED = "orphaned"  # acked, then the connection / server session was lost


@attrs.define(eq=False)
class PendingRequest:
    """One request and where it stands.  Compared by identity (usable as a dict key)."""

    body: bytes
    token: object = None
    content_related: bool = True
    compress: bool | None = None  # None: the session's gzip_requests setting
    queued_at: float = 0.0
    state: RequestState = RequestState.QUEUED
    msg_id: int | None = None  # the msg_id of the latest transmission
    seq_no: int | None = None
    container_id: int | None = None
    sent_at: float | None = None
    send_count: int = 0
    old_msg_ids: list[int] = attrs.field(factory=list)
    #: re-send under the original msg_id/seq_no inside a fresh container (after a lost
    #: connection): if the server did execute it, it answers from its cache instead of running
    #: it twice (§8.4: "wrap it in a container")
    resend_original: bool = False
    #: False: the caller cannot tolerate a second execution (see RequestOutcomeUnknown)
    idempotent: bool = True
    #: a transmission was lost with its connection: the server may have run it
    may_have_executed: bool = False
    #: builds the body from the msg_id it is sent under (each transmission): for requests
    #: that must seal their own msg_id, i.e. auth.bindTempAuthKey (spec §5.11)
    body_for_msg_id: Callable[[int], bytes] | None = None
    #: run only after this request (invokeAfterMsg, spec §6): while it is on the wire
    #: unanswered, each transmission is wrapped with its current msg_id
    after: PendingRequest | None = attrs.field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"<PendingRequest {self.state.value} msg_id={self.msg_id} sends={self.send_count} "
            f"{len(self.body)} bytes>"
        )


@attrs.frozen
class FutureSalt:
    """future_salt#0949d9dc valid_since:int valid_until:int salt:long = FutureSalt;"""

    valid_since: int
    valid_until: int
    salt: int


@attrs.frozen
class SessionStatistics:
    session_id: int
    queued: int
    sent: int
    acked: int
    answered_total: int
    failed_total: int
    pending_acks: int
    future_salts: int
    time_offset: float


# --------------------------------------------------------------------------- events


@attrs.frozen
class RpcResult:
    """The raw boxed result of ``request`` (gzip already unpacked).  ``body`` may be a
    memoryview into the decrypted message: results of up to 1 MiB are not copied on the way."""

    request: PendingRequest
    body: bytes | memoryview


@attrs.frozen
class RpcErrorReceived:
    request: PendingRequest
    error: RpcError


@attrs.frozen
class Update:
    """A top-level non-service object from the server (updates, or anything unknown)."""

    body: bytes


@attrs.frozen
class SaltChanged:
    salt: int


@attrs.frozen
class ClockCorrected:
    time_offset: float


@attrs.frozen
class NewSessionCreated:
    """The server (re)created our session.  ``orphaned``: acked requests older than
    ``first_msg_id`` whose answers are lost (the caller decides: retry or OutcomeUnknown);
    unacked ones were re-queued automatically."""

    first_msg_id: int
    server_salt: int
    orphaned: tuple[PendingRequest, ...] = ()


@attrs.frozen
class Pong:
    ping_id: int


@attrs.frozen
class RequestAcked:
    request: PendingRequest


@attrs.frozen
class RequestOutcomeUnknown:
    """A non-idempotent request that may already have run (its first transmission was lost
    with a connection) would have to be sent under a new msg_id, which the server could run
    a second time: it is given up instead (the pool raises OutcomeUnknown)."""

    request: PendingRequest


@attrs.frozen
class RequestFailed:
    request: PendingRequest
    error: BadMsgNotification


Event = (
    RpcResult
    | RpcErrorReceived
    | Update
    | SaltChanged
    | ClockCorrected
    | NewSessionCreated
    | Pong
    | RequestAcked
    | RequestFailed
    | RequestOutcomeUnknown
)


# --------------------------------------------------------------------------- internals


class _Kind(enum.Enum):
    REQUEST = 1
    PING = 2
    ACK = 3
    SERVICE = 4


#: invokeAfterMsg#cb9f372d {X:Type} msg_id:long query:!X = X;  (constructor + msg_id)
_AFTER_ROOM = bytes(12)


def _wrap_after(after: PendingRequest, room_and_body: bytes) -> bytes:
    """The body (behind its 12 bytes of room) wrapped in invokeAfterMsg while ``after`` is
    on the wire unanswered (its msg_id is the one of its latest transmission, set earlier in
    the same data_to_send); the bare body once it no longer needs to wait."""
    if after.state in (RequestState.SENT, RequestState.ACKED) and after.msg_id is not None:
        return envelope.pack_uint(ids.INVOKE_AFTER_MSG) + pack_long(after.msg_id) + room_and_body[12:]
    return room_and_body[12:]


@attrs.define(eq=False)
class _Out:
    """One message waiting to be packed (or remembered after sending)."""

    kind: _Kind
    body: bytes
    content_related: bool
    request: PendingRequest | None = None
    ack_ids: list[int] | None = None
    ping_id: int | None = None


def _decode(body: bytes | memoryview) -> tuple:
    """Decode a server message body into ``(constructor, fields...)``; unknown → ``(None,)``.

    Everything is parsed here, before any state changes (see the module docstring).
    """
    ctor = constructor_of(body)
    r = Reader(body, 4)
    if ctor == ids.RPC_RESULT:
        # rpc_result#f35c6d01 req_msg_id:long result:Object = RpcResult;
        req_msg_id = r.read_long()
        result = envelope.maybe_gunzip(r.rest())
        if constructor_of(result) == ids.RPC_ERROR:
            # rpc_error#2144ca19 error_code:int error_message:string = RpcError;
            er = Reader(result, 4)
            return (ctor, req_msg_id, result, (er.read_int(), er.read_string()))
        if len(result) < 4:
            raise TLDecodeError("rpc_result without a result")
        return (ctor, req_msg_id, result, None)
    if ctor == ids.MSGS_ACK:
        # msgs_ack#62d6b459 msg_ids:Vector<long> = MsgsAck;
        return (ctor, r.read_vector_long())
    if ctor == ids.BAD_MSG_NOTIFICATION:
        # bad_msg_notification#a7eff811 bad_msg_id:long bad_msg_seqno:int error_code:int
        return (ctor, r.read_long(), r.read_int(), r.read_int(), None)
    if ctor == ids.BAD_SERVER_SALT:
        # bad_server_salt#edab447b bad_msg_id:long bad_msg_seqno:int error_code:int new_server_salt:long
        return (ctor, r.read_long(), r.read_int(), r.read_int(), r.read_long())
    if ctor == ids.NEW_SESSION_CREATED:
        # new_session_created#9ec20908 first_msg_id:long unique_id:long server_salt:long = NewSession;
        return (ctor, r.read_long(), r.read_long(), r.read_long())
    if ctor == ids.PONG:
        # pong#347773c5 msg_id:long ping_id:long = Pong;
        return (ctor, r.read_long(), r.read_long())
    if ctor == ids.FUTURE_SALTS:
        # future_salts#ae500895 req_msg_id:long now:int salts:vector<future_salt> = FutureSalts;
        req_msg_id, server_now, count = r.read_long(), r.read_int(), r.read_int()
        if count < 0 or count * 16 > r.remaining:
            raise TLDecodeError(f"future_salts with {count} salts does not fit")
        salts = [FutureSalt(r.read_int(), r.read_int(), r.read_long()) for _ in range(count)]
        return (ctor, req_msg_id, server_now, salts)
    if ctor in (ids.MSGS_STATE_REQ, ids.MSG_RESEND_REQ, ids.MSG_RESEND_ANS_REQ):
        # msgs_state_req#da69fb52 msg_ids:Vector<long> = MsgsStateReq;
        # msg_resend_req#7d861a08 msg_ids:Vector<long> = MsgResendReq;
        return (ctor, r.read_vector_long())
    if ctor == ids.MSG_DETAILED_INFO:
        # msg_detailed_info#276d3ec6 msg_id:long answer_msg_id:long bytes:int status:int
        return (ctor, r.read_long(), r.read_long(), r.read_int(), r.read_int())
    if ctor == ids.MSG_NEW_DETAILED_INFO:
        # msg_new_detailed_info#809db6df answer_msg_id:long bytes:int status:int
        return (ctor, None, r.read_long(), r.read_int(), r.read_int())
    if ctor in (ids.DESTROY_SESSION_OK, ids.DESTROY_SESSION_NONE):
        # destroy_session_ok#e22045fc session_id:long = DestroySessionRes;
        return (ctor, r.read_long())
    if ctor in (ids.MSGS_STATE_INFO, ids.MSGS_ALL_INFO):
        return (ctor,)
    if ctor is None:
        raise TLDecodeError("message body shorter than a constructor id")
    return (None,)


# --------------------------------------------------------------------------- the session


class ClientSession:
    """Client role of one MTProto session (see the module docstring)."""

    def __init__(
        self,
        auth_key: KeyLike,
        *,
        session_id: int,
        server_salt: int,
        time_offset: float = 0.0,
        rng: Rng,
        gzip_requests: bool = True,
    ) -> None:
        self.auth_key = auth_key
        self._session_id = session_id
        self.salt = server_salt
        self.time_offset = float(time_offset)
        self.gzip_requests = gzip_requests
        self._rng = rng
        self._msg_ids = ClientMsgIdGenerator()
        self._seq = 0  # the counter c of §3.4
        self._queue: deque[PendingRequest] = deque()
        self._service: deque[_Out] = deque()
        self._pending_acks: dict[int, None] = {}  # insertion-ordered set
        self._inflight: dict[int, PendingRequest] = {}  # msg_id -> SENT/ACKED request
        self._aliases: dict[int, PendingRequest] = {}  # old msg_ids of re-sent requests
        self._sent_service: OrderedDict[int, _Out] = OrderedDict()
        self._containers: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self._pings: dict[int, int] = {}  # msg_id -> ping_id
        self._received = ReplayWindow(REPLAY_WINDOW)
        self._future_salts: list[FutureSalt] = []
        self._ambiguous: list[PendingRequest] = []
        self._answered_total = 0
        self._failed_total = 0

    # ------------------------------------------------------------------ properties

    @property
    def session_id(self) -> int:
        return self._session_id

    @property
    def future_salts(self) -> tuple[FutureSalt, ...]:
        return tuple(self._future_salts)

    def server_time(self, now: float) -> float:
        """``now`` corrected by the offset learnt from the server."""
        return now + self.time_offset

    def has_pending_acks(self) -> bool:
        return bool(self._pending_acks)

    def has_data_to_send(self) -> bool:
        """True when :meth:`data_to_send` would produce a payload."""
        return bool(self._queue or self._service or len(self._pending_acks) >= ACK_BATCH)

    def pending_requests(self) -> list[PendingRequest]:
        """Every request not yet answered/failed/cancelled: queued ones, then in flight."""
        return list(self._queue) + sorted(self._inflight.values(), key=lambda r: r.msg_id or 0)

    def statistics(self) -> SessionStatistics:
        sent = sum(1 for r in self._inflight.values() if r.state is RequestState.SENT)
        return SessionStatistics(
            session_id=self._session_id,
            queued=len(self._queue),
            sent=sent,
            acked=len(self._inflight) - sent,
            answered_total=self._answered_total,
            failed_total=self._failed_total,
            pending_acks=len(self._pending_acks),
            future_salts=len(self._future_salts),
            time_offset=self.time_offset,
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<ClientSession {self._session_id:#x} queued={s.queued} sent={s.sent} "
            f"acked={s.acked} acks={s.pending_acks}>"
        )

    # ------------------------------------------------------------------ queueing

    def send_request(
        self,
        body: bytes | Callable[[int], bytes],
        *,
        now: float,
        content_related: bool = True,
        token: object = None,
        compress: bool | None = None,
        idempotent: bool = True,
        after: PendingRequest | None = None,
    ) -> PendingRequest:
        """Queue a boxed serialized request.  Its msg_id is set by :meth:`data_to_send`.

        ``idempotent=False`` forbids re-sending it under a new msg_id once it may have reached
        the server (:class:`RequestOutcomeUnknown`).  ``after``: a request of this session,
        queued earlier, that the server must finish first; the body goes out wrapped in
        ``invokeAfterMsg`` with that request's msg_id (no wait for its answer: both can
        share one round trip).

        ``body`` may be a function ``msg_id -> body``, called for every transmission with the
        msg_id it goes out under (never compressed): ``auth.bindTempAuthKey`` seals that msg_id
        in its ``encrypted_message`` (spec §5.11, :mod:`dcpool.mtproto.tempkeys`)."""
        factory = None
        if callable(body):
            factory, body, compress = body, body(0), False
        if len(body) < 4 or len(body) % 4:
            raise LocalProtocolError(f"a request body must be a boxed TL object, got {len(body)} bytes")
        req = PendingRequest(
            body=bytes(body),
            token=token,
            content_related=content_related,
            compress=compress,
            queued_at=now,
            idempotent=idempotent,
            body_for_msg_id=factory,
            after=after,
        )
        self._queue.append(req)
        return req

    def request_future_salts(self, num: int = 32, *, now: float, token: object = None) -> PendingRequest:
        """get_future_salts#b921bd04 num:int = FutureSalts;  The answer is stored, and also
        resolves the returned request (:class:`RpcResult` with the future_salts body)."""
        if not 1 <= num <= 64:
            raise LocalProtocolError("get_future_salts wants 1..64 salts")
        body = envelope.pack_uint(ids.GET_FUTURE_SALTS) + envelope.pack_int(num)
        return self.send_request(body, now=now, token=token, compress=False)

    def destroy_session(self, session_id: int, *, now: float, token: object = None) -> PendingRequest:
        """destroy_session#e7512126 session_id:long = DestroySessionRes;  (another session!)"""
        if session_id == self._session_id:
            raise LocalProtocolError("destroy_session on the current session is undefined (§8.7)")
        body = envelope.pack_uint(ids.DESTROY_SESSION) + pack_long(session_id)
        return self.send_request(body, now=now, token=token, compress=False)

    def send_ping(self, ping_id: int, disconnect_delay: int | None = None) -> None:
        """Queue ``ping`` or ``ping_delay_disconnect`` (not content-related: pongs need no ack).

        ping#7abe77ec ping_id:long = Pong;
        ping_delay_disconnect#f3427b8c ping_id:long disconnect_delay:int = Pong;
        """
        if disconnect_delay is None:
            body = envelope.pack_uint(ids.PING) + pack_long(ping_id)
        else:
            body = envelope.pack_uint(ids.PING_DELAY_DISCONNECT) + pack_long(ping_id)
            body += envelope.pack_int(disconnect_delay)
        self._service.append(_Out(_Kind.PING, body, False, ping_id=ping_id))

    def cancel(self, req: PendingRequest) -> None:
        """Forget ``req``; a late answer is acked and dropped.  (The server may still run it.)"""
        if req.state is RequestState.QUEUED:
            try:
                self._queue.remove(req)
            except ValueError:
                pass
        elif req.state in (RequestState.SENT, RequestState.ACKED):
            if req.msg_id is not None:
                self._inflight.pop(req.msg_id, None)
        else:
            return
        self._drop_aliases(req)
        req.state = RequestState.CANCELLED

    def requeue(self, req: PendingRequest) -> None:
        """Queue ``req`` again (e.g. an ORPHANED idempotent request).  New msg_id on sending.

        Its previous msg_id stays an alias: if the server re-sends the lost answer (it does so
        for unacked answers when the session reconnects), that answer resolves the request and
        takes it out of the queue, so it is not executed twice when that happens first.
        """
        if req.state is RequestState.QUEUED and req in self._queue:
            return
        if req.state in (RequestState.SENT, RequestState.ACKED) and req.msg_id is not None:
            self._inflight.pop(req.msg_id, None)
        self._requeue(req, front=False)

    def _requeue(self, req: PendingRequest, *, front: bool) -> None:
        if req.may_have_executed and not req.idempotent:
            # A new msg_id could run it twice: give it up (the caller raises OutcomeUnknown).
            if req.msg_id is not None and self._inflight.get(req.msg_id) is req:
                del self._inflight[req.msg_id]
            self._drop_aliases(req)
            req.state = RequestState.ORPHANED
            self._ambiguous.append(req)
            return
        if req.msg_id is not None and req.state in (
            RequestState.SENT,
            RequestState.ACKED,
            RequestState.ORPHANED,
        ):
            # A late answer to the old id still resolves the request (module docstring).
            req.old_msg_ids.append(req.msg_id)
            self._aliases[req.msg_id] = req
        req.state = RequestState.QUEUED
        req.msg_id = None
        req.seq_no = None
        req.container_id = None
        req.resend_original = False
        if front:
            self._queue.appendleft(req)
        else:
            self._queue.append(req)

    def _drop_aliases(self, req: PendingRequest) -> None:
        for old in req.old_msg_ids:
            if self._aliases.get(old) is req:
                del self._aliases[old]

    # ------------------------------------------------------------------ sending

    def _next_seq(self, content_related: bool) -> int:
        # §3.4: content-related → 2c+1 and c += 1; otherwise 2c.
        if content_related:
            seq = 2 * self._seq + 1
            self._seq += 1
            return seq
        return 2 * self._seq

    def _maybe_switch_salt(self, now: float) -> bool:
        """Switch to a stored future salt once the current one has expired (§8.6)."""
        if not self._future_salts:
            return False
        t = self.server_time(now)
        self._future_salts = [s for s in self._future_salts if s.valid_until > t]
        for s in self._future_salts:
            if s.salt == self.salt and s.valid_since <= t:
                return False  # the current salt is still valid
        valid = [s for s in self._future_salts if s.valid_since <= t]
        if not valid:
            return False
        best = max(valid, key=lambda s: s.valid_since)
        if best.salt == self.salt:
            return False
        self.salt = best.salt
        return True

    def _body_for(self, req: PendingRequest) -> bytes:
        compress = self.gzip_requests if req.compress is None else req.compress
        if compress and len(req.body) > GZIP_THRESHOLD:
            packed = envelope.gzip_pack(req.body)
            if len(packed) < len(req.body):
                return packed
        return req.body

    def data_to_send(self, now: float) -> list[bytes]:
        """Encrypted payloads, one per transport frame (empty when there is nothing to send).

        Pending acks ride along with anything else; alone they wait for ``ACK_BATCH``.
        """
        self._maybe_switch_salt(now)
        if not (self._queue or self._service or len(self._pending_acks) >= ACK_BATCH):
            return []
        outs: list[_Out] = []
        if self._pending_acks:
            acks = list(self._pending_acks)
            self._pending_acks.clear()
            for i in range(0, len(acks), MAX_IDS_PER_MESSAGE):
                chunk = acks[i : i + MAX_IDS_PER_MESSAGE]
                body = envelope.pack_uint(ids.MSGS_ACK) + pack_vector_long(chunk)
                outs.append(_Out(_Kind.ACK, body, False, ack_ids=chunk))
        outs.extend(self._service)
        self._service.clear()
        while self._queue:
            req = self._queue.popleft()
            body = self._body_for(req)
            if req.after is not None:
                body = _AFTER_ROOM + body  # room for the wrapper (see _flush)
            outs.append(_Out(_Kind.REQUEST, body, req.content_related, request=req))

        frames: list[bytes] = []
        batch: list[_Out] = []
        size = 0
        for out in outs:
            cost = 16 + len(out.body)
            if cost > CONTAINER_BUDGET:
                self._flush(batch, frames, now)
                batch, size = [], 0
                self._flush([out], frames, now)
                continue
            if len(batch) >= MAX_CONTAINER_MESSAGES or size + cost > CONTAINER_BUDGET:
                self._flush(batch, frames, now)
                batch, size = [], 0
            batch.append(out)
            size += cost
        self._flush(batch, frames, now)
        return frames

    def _flush(self, batch: list[_Out], frames: list[bytes], now: float) -> None:
        if not batch:
            return
        items = []
        resent = False
        for out in batch:
            req = out.request
            if req is not None and req.resend_original and req.idempotent and (
                req.sent_at is not None and now - req.sent_at > RESEND_ORIGINAL_MAX_AGE
            ):
                # Too old for the server's window: a new id (an alias keeps late answers).
                assert req.msg_id is not None
                req.old_msg_ids.append(req.msg_id)
                self._aliases[req.msg_id] = req
                req.resend_original = False
            if req is not None and req.resend_original and req.msg_id is not None and req.seq_no is not None:
                msg_id, seq_no = req.msg_id, req.seq_no
                req.resend_original = False
                resent = True
                sent_at = req.sent_at
                self._record_sent(out, msg_id, seq_no, now)
                req.sent_at = sent_at  # its age is still that of the first transmission
            else:
                msg_id = self._msg_ids.next(now, self.time_offset)
                seq_no = self._next_seq(out.content_related)
                self._record_sent(out, msg_id, seq_no, now)
            body = out.body
            if req is not None and req.body_for_msg_id is not None:
                body = req.body_for_msg_id(msg_id)
            if req is not None and req.after is not None:
                body = _wrap_after(req.after, body)
            items.append((msg_id, seq_no, body))
        if len(items) == 1 and not resent:
            msg_id, seq_no, body = items[0]
        else:
            # The container comes after its contents: a larger id, seq_no 2c (§3.4, §3.6).
            msg_id = self._msg_ids.next(now, self.time_offset)
            seq_no = self._next_seq(False)
            body = envelope.pack_container(items)
            inner = tuple(i[0] for i in items)
            self._remember(self._containers, msg_id, inner)
            for out in batch:
                if out.request is not None:
                    out.request.container_id = msg_id
        plaintext = envelope.pack_plaintext(self.salt, self._session_id, msg_id, seq_no, body)
        frames.append(envelope.encrypt(self.auth_key, plaintext, x=0, rng=self._rng))

    @staticmethod
    def _remember(store: OrderedDict, key: int, value: object) -> None:
        store[key] = value
        while len(store) > _SENT_MEMORY:
            store.popitem(last=False)

    def _record_sent(self, out: _Out, msg_id: int, seq_no: int, now: float) -> None:
        req = out.request
        if req is not None:
            req.state = RequestState.SENT
            req.msg_id = msg_id
            req.seq_no = seq_no
            req.container_id = None
            req.sent_at = now
            req.send_count += 1
            self._inflight[msg_id] = req
        else:
            if out.kind is _Kind.PING:
                assert out.ping_id is not None
                self._pings[msg_id] = out.ping_id
            self._remember(self._sent_service, msg_id, out)

    # ------------------------------------------------------------------ receiving

    def receive(self, payload: bytes | memoryview, now: float) -> list[Event]:
        """Decrypt, check and process one payload from the server.

        Raises :class:`dcpool.errors.MessageSecurityError` subclasses (the connection should be
        closed) or :class:`TLDecodeError`; in both cases the session state is unchanged.
        """
        return self.receive_plaintext(self.decrypt_frame(payload), now)

    def decrypt_frame(self, payload: bytes | memoryview) -> memoryview:
        """The pure first step of :meth:`receive`: decrypt ``payload`` and run the checks of
        §4.5 that need only the auth key (auth_key_id, lengths, msg_key, padding).

        It reads nothing but the (immutable) auth key and changes no state, so a shell may run
        it in a worker thread (cryptg releases the GIL) while the event loop goes on; the
        returned plaintext must then go through :meth:`receive_plaintext` on the session's own
        thread, in the order the payloads arrived."""
        return envelope.decrypt(self.auth_key, payload, x=8)

    def receive_plaintext(self, plaintext: bytes | memoryview, now: float) -> list[Event]:
        """The second step of :meth:`receive`: the session checks (§3.3, §4.5 steps 4-6) and
        the state update, for a plaintext returned by :meth:`decrypt_frame`."""
        msg = envelope.parse_plaintext(plaintext)
        if msg.session_id != self._session_id:
            raise SessionIdMismatch(f"session_id {msg.session_id:#x} is not ours")
        if msg.msg_id % 2 == 0:
            raise MsgIdParity(f"server msg_id {msg.msg_id} is even")
        if self._received.is_replay(msg.msg_id):
            raise MsgIdReplayed(f"server msg_id {msg.msg_id} was already received")

        # Split and decode everything first: errors must leave the state untouched.
        if constructor_of(msg.body) == ids.MSG_CONTAINER:
            items = [(i.msg_id, i.seq_no, i.body, True) for i in envelope.unpack_container(msg.body)]
        else:
            items = [(msg.msg_id, msg.seq_no, msg.body, False)]
        decoded = []
        for msg_id, seq_no, body, inner in items:
            if msg_id % 2 == 0:
                raise MsgIdParity(f"server msg_id {msg_id} (in a container) is even")
            body = envelope.maybe_gunzip(body)
            decoded.append((msg_id, seq_no, body, inner, _decode(body)))
        exempt = any(d[4][0] in _BAD_NOTIFICATIONS for d in decoded)
        if not exempt and check_window(msg.msg_id, self.server_time(now)):
            # The message is dropped, but it did pass the msg_key and session checks: the
            # offset it implies lets the next connection resynchronise (a server clock more
            # than 30 s ahead never triggers bad_msg 16/17, so nothing else would fix it).
            error = MsgIdOutOfWindow(
                f"server msg_id {msg.msg_id} is {msg_id_time(msg.msg_id) - self.server_time(now):+.0f} s "
                "from our corrected clock"
            )
            if msg_id_time(msg.msg_id) > self.server_time(now):
                # Only a server *ahead* of us: an old message may be a replay, and a server
                # behind us corrects our clock itself with bad_msg 17.
                error.server_time_offset = msg_id_time(msg.msg_id) - now
            raise error

        # Commit.
        self._received.add(msg.msg_id)
        events: list[Event] = []
        for msg_id, seq_no, body, inner, parsed in decoded:
            if inner:
                if msg_id in self._received:
                    # A re-sent message we already have: do not process it twice, ack it again.
                    if seq_no & 1:
                        self._pending_acks[msg_id] = None
                    continue
                self._received.add(msg_id)
            if seq_no & 1:
                self._pending_acks[msg_id] = None
            self._handle(msg_id, body, parsed, now, events)
        if self._maybe_switch_salt(now):
            events.append(SaltChanged(self.salt))
        if self._ambiguous:
            events.extend(RequestOutcomeUnknown(req) for req in self._ambiguous)
            self._ambiguous.clear()
        return events

    def _handle(self, msg_id: int, body: bytes | memoryview, parsed: tuple, now: float, events: list[Event]) -> None:
        ctor = parsed[0]
        if ctor == ids.RPC_RESULT:
            self._on_rpc_result(parsed[1], parsed[2], parsed[3], events)
        elif ctor == ids.MSGS_ACK:
            self._on_ack(parsed[1], events)
        elif ctor in _BAD_NOTIFICATIONS:
            self._on_bad_msg(msg_id, parsed[1], parsed[3], parsed[4], now, events)
        elif ctor == ids.NEW_SESSION_CREATED:
            self._on_new_session(parsed[1], parsed[3], events)
        elif ctor == ids.PONG:
            ping_id = self._pings.pop(parsed[1], None)
            self._sent_service.pop(parsed[1], None)
            if ping_id is not None:
                events.append(Pong(ping_id))
        elif ctor == ids.FUTURE_SALTS:
            self._future_salts = sorted(parsed[3], key=lambda s: s.valid_since)
            self._sent_service.pop(parsed[1], None)
            self._resolve(parsed[1], body, events)
        elif ctor == ids.MSGS_STATE_REQ:
            self._answer_state_req(msg_id, parsed[1])
        elif ctor in (ids.MSG_RESEND_REQ, ids.MSG_RESEND_ANS_REQ):
            self._on_resend_req(msg_id, parsed[1])
        elif ctor in (ids.MSG_DETAILED_INFO, ids.MSG_NEW_DETAILED_INFO):
            self._on_detailed_info(parsed[1], parsed[2])
        elif ctor in (ids.DESTROY_SESSION_OK, ids.DESTROY_SESSION_NONE):
            target = pack_long(parsed[1])
            for req_msg_id, req in list(self._inflight.items()):
                if constructor_of(req.body) == ids.DESTROY_SESSION and req.body[4:12] == target:
                    self._resolve(req_msg_id, body, events)
        elif ctor in (ids.MSGS_STATE_INFO, ids.MSGS_ALL_INFO):
            pass  # informational; we never ask (msgs_state_info acks nothing of ours we track)
        else:
            events.append(Update(bytes(body)))

    def _take(self, req_msg_id: int) -> PendingRequest | None:
        """Remove and return the unanswered request ``req_msg_id`` refers to (or an alias)."""
        req = self._inflight.pop(req_msg_id, None)
        if req is None:
            req = self._aliases.get(req_msg_id)
            if req is None:
                return None
            if req.state is RequestState.QUEUED:
                try:
                    self._queue.remove(req)
                except ValueError:
                    pass
            elif req.state in (RequestState.SENT, RequestState.ACKED) and req.msg_id is not None:
                self._inflight.pop(req.msg_id, None)
            else:
                return None
        self._drop_aliases(req)
        return req

    def _resolve(self, req_msg_id: int, result: bytes | memoryview, events: list[Event]) -> None:
        req = self._take(req_msg_id)
        if req is None:
            return
        req.state = RequestState.ANSWERED
        self._answered_total += 1
        events.append(RpcResult(req, result))

    def _on_rpc_result(
        self, req_msg_id: int, result: bytes, error: tuple[int, str] | None, events: list[Event]
    ) -> None:
        if req_msg_id in self._pings and constructor_of(result) == ids.PONG:
            # Some servers answer a ping inside rpc_result (§8.5).
            self._sent_service.pop(req_msg_id, None)
            events.append(Pong(self._pings.pop(req_msg_id)))
            return
        req = self._take(req_msg_id)
        if req is None:
            return  # cancelled, or not ours: acked (odd seq_no) and dropped
        req.state = RequestState.ANSWERED
        self._answered_total += 1
        if error is not None:
            events.append(RpcErrorReceived(req, rpc_error_from(error[0], error[1])))
        else:
            events.append(RpcResult(req, result))

    def _on_ack(self, msg_ids: list[int], events: list[Event]) -> None:
        for msg_id in msg_ids:
            for inner in self._containers.get(msg_id, (msg_id,)):
                req = self._inflight.get(inner)
                if req is not None and req.state is RequestState.SENT:
                    req.state = RequestState.ACKED
                    events.append(RequestAcked(req))

    def _owns(self, msg_id: int) -> bool:
        return msg_id in self._inflight or msg_id in self._containers or msg_id in self._sent_service

    def _resend(self, msg_id: int) -> None:
        """Re-queue everything sent as ``msg_id`` (a message or a container), in order."""
        inner = self._containers.pop(msg_id, None)
        todo = sorted(inner) if inner is not None else [msg_id]
        reqs: list[PendingRequest] = []
        services: list[_Out] = []
        for mid in todo:
            req = self._inflight.pop(mid, None)
            if req is not None:
                reqs.append(req)
                continue
            out = self._sent_service.pop(mid, None)
            if out is None:
                continue
            if out.kind is _Kind.ACK:
                for aid in out.ack_ids or ():
                    self._pending_acks[aid] = None
            else:
                if out.kind is _Kind.PING:
                    self._pings.pop(mid, None)
                services.append(out)
        for req in reversed(reqs):
            self._requeue(req, front=True)
        self._service.extendleft(reversed(services))

    def _affected_requests(self, msg_id: int) -> list[PendingRequest]:
        inner = self._containers.pop(msg_id, None)
        todo = sorted(inner) if inner is not None else [msg_id]
        out = []
        for mid in todo:
            req = self._inflight.pop(mid, None)
            if req is not None:
                out.append(req)
            else:
                svc = self._sent_service.pop(mid, None)
                if svc is not None and svc.kind is _Kind.PING:
                    self._pings.pop(mid, None)
        return out

    def _on_bad_msg(
        self,
        notification_msg_id: int,
        bad_msg_id: int,
        code: int,
        new_salt: int | None,
        now: float,
        events: list[Event],
    ) -> None:
        # §8.3: trust a notification only if it names a message we really sent.
        if not self._owns(bad_msg_id):
            return
        if new_salt is not None:
            # bad_server_salt#edab447b ... new_server_salt:long  (code 48)
            self.salt = new_salt
            self._future_salts.clear()  # they were computed against the wrong salt history
            events.append(SaltChanged(new_salt))
            self._resend(bad_msg_id)
            return
        if code in (16, 17):
            # The notification's own msg_id carries the server's clock (§3.3).
            self.time_offset = msg_id_time(notification_msg_id) - now
            self._msg_ids.reset()
            events.append(ClockCorrected(self.time_offset))
            self._resend(bad_msg_id)
        elif code == 32:
            self._seq += 32  # seq_no too low: jump forward by 64 (Telethon)
            self._resend(bad_msg_id)
        elif code == 33:
            self._seq = max(0, self._seq - 8)  # seq_no too high: back by 16 (Telethon)
            self._resend(bad_msg_id)
        elif code in (20, 48):
            self._resend(bad_msg_id)
        else:
            for req in self._affected_requests(bad_msg_id):
                self._drop_aliases(req)
                req.state = RequestState.FAILED
                self._failed_total += 1
                events.append(RequestFailed(req, BadMsgNotification(code, bad_msg_id)))

    def _on_new_session(self, first_msg_id: int, server_salt: int, events: list[Event]) -> None:
        self.salt = server_salt
        orphaned: list[PendingRequest] = []
        resend: list[PendingRequest] = []
        for msg_id in sorted(self._inflight):
            if msg_id >= first_msg_id:
                continue
            req = self._inflight.pop(msg_id)
            if req.state is RequestState.SENT:
                resend.append(req)
            else:
                self._drop_aliases(req)
                req.state = RequestState.ORPHANED
                orphaned.append(req)
        for req in reversed(resend):
            self._requeue(req, front=True)
        events.append(NewSessionCreated(first_msg_id, server_salt, tuple(orphaned)))

    def _status_of_received(self, msg_id: int) -> int:
        """§8.4 status byte for a server message id."""
        if msg_id in self._received:
            return 4 if msg_id in self._pending_acks else 4 | 8
        lo, hi = self._received.min_id, self._received.max_id
        if hi is None or msg_id > hi:
            return 3
        if msg_id < lo:  # type: ignore[operator]
            return 1
        return 2

    def _queue_state_info(self, req_msg_id: int, info: bytes) -> None:
        # msgs_state_info#04deb57d req_msg_id:long info:string = MsgsStateInfo;
        body = envelope.pack_uint(ids.MSGS_STATE_INFO) + pack_long(req_msg_id) + envelope.pack_bytes(info)
        self._service.append(_Out(_Kind.SERVICE, body, False))

    def _answer_state_req(self, req_msg_id: int, msg_ids: list[int]) -> None:
        self._queue_state_info(req_msg_id, bytes(self._status_of_received(m) for m in msg_ids))

    def _on_resend_req(self, req_msg_id: int, msg_ids: list[int]) -> None:
        if msg_ids and all(self._owns(m) for m in msg_ids):
            for m in msg_ids:
                self._resend(m)
            return
        # §8.4: if any id is unknown, answer msgs_state_info for all of them instead.
        self._queue_state_info(req_msg_id, bytes(4 if self._owns(m) else 1 for m in msg_ids))

    def _on_detailed_info(self, msg_id: int | None, answer_msg_id: int) -> None:
        # msg_detailed_info: the answer to our msg_id exists as answer_msg_id (§8.4).
        if answer_msg_id in self._received:
            self._pending_acks[answer_msg_id] = None  # we have it: ack, so it is not re-sent
        elif msg_id is None or msg_id in self._inflight or msg_id in self._aliases:
            # We never got it and may still want it: ask for it.
            body = envelope.pack_uint(ids.MSG_RESEND_REQ) + pack_vector_long([answer_msg_id])
            self._service.append(_Out(_Kind.SERVICE, body, False))
        else:
            self._pending_acks[answer_msg_id] = None  # nobody waits for it: just ack (Pyrogram)

    # ------------------------------------------------------------------ connection loss

    def connection_lost(self) -> tuple[list[PendingRequest], list[PendingRequest]]:
        """The transport died.  Returns ``(requeued, orphaned)``:

        * ``requeued``: never acknowledged, put back in the queue for the next connection;
        * ``orphaned``: acknowledged but unanswered; removed (state ORPHANED).  The caller
          raises :class:`dcpool.errors.OutcomeUnknown` or, if idempotent, calls
          :meth:`requeue`.

        The session itself (id, salt, seq_no, pending acks) survives: the next connection
        continues it, and the server re-sends what we did not ack.  Pings are forgotten.
        """
        requeued: list[PendingRequest] = []
        orphaned: list[PendingRequest] = []
        for msg_id in sorted(self._inflight):
            req = self._inflight[msg_id]
            if req.state is RequestState.SENT:
                requeued.append(req)
            else:
                orphaned.append(req)
        self._inflight.clear()
        for req in reversed(requeued):
            self._requeue_after_loss(req)
        for req in orphaned:
            self._drop_aliases(req)
            req.state = RequestState.ORPHANED
        # Acks we sent may be lost too: harmless, the server re-sends and we ack again.
        self._containers.clear()
        self._sent_service.clear()
        self._pings.clear()
        self._service = deque(o for o in self._service if o.kind is not _Kind.PING)
        return requeued, orphaned

    def _requeue_after_loss(self, req: PendingRequest) -> None:
        # The server may have received (and run) it without our seeing the ack.  Sending it
        # again under a new msg_id would run it twice; the same msg_id inside a new container
        # is answered from the server's cache if it was executed (§3.6, §8.4).  Past the
        # server's freshness window the old id would be refused, so it then gets a new one.
        req.may_have_executed = True
        if req.msg_id is not None and req.seq_no is not None:
            req.state = RequestState.QUEUED
            req.resend_original = True
            req.container_id = None
            self._queue.appendleft(req)
            return
        req.state = RequestState.SENT  # so that _requeue records the alias
        self._requeue(req, front=True)

    def pending_ack_ids(self) -> list[int]:
        return list(self._pending_acks)
