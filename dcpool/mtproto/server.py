"""The server role of the MTProto message layer, sans-IO: the core of the emulated DCs.

Theory of operation
-------------------
Two objects, mirroring what a real DC shares and what belongs to one TCP connection:

* :class:`ServerCore` — one per emulated DC, shared by all its connections: auth keys by
  key_id, per-key salts (current + previous accepted for 1800 s, §3.5), sessions by
  (key_id, session_id) with everything that must survive a reconnect (seq_no counter, received
  ids, answers, unacked content-related messages), the shared odd msg_id generator (ids grow
  across *all* connections, §3.3), ``clock_offset`` for fault injection (a server clock that
  is ahead/behind makes clients get bad_msg_notification 16/17 and fix their offset), and
  ``executions``: how many times each (key_id, session_id, msg_id) was handed to the
  application (tests assert "executed exactly once").
* :class:`ServerConnection` — one per transport connection: ``receive(payload, now)`` returns
  :data:`ServerEvent`s, ``send_result``/``send_error``/``send_update`` queue answers,
  ``data_to_send(now)`` returns encrypted payloads (one per transport frame).

``receive`` never raises on peer input; it follows §17.4:

1. ``auth_key_id == 0`` → :class:`UnencryptedMessage`: a handshake message.  The shell feeds it
   to ``dcpool.mtproto.handshake.ServerHandshake`` (another module), sends the reply as an
   unencrypted frame, and on success calls ``core.add_key(result.auth_key,
   server_salt=result.server_salt, now=now)``.
2. unknown ``auth_key_id`` → :class:`CloseConnection` with ``transport_error=-404``.
3. decryption / msg_key / length failure → :class:`CloseConnection` without a transport error
   (close without answering, §4.5).
4. msg_id checks: ``% 4 != 0`` → bad_msg_notification 18; outside [−300 s, +30 s] of the
   server clock → 16/17; a container whose id was already received → 19; a duplicate → not
   re-executed (the stored answer is re-sent, else ignored).  With ``core.strict_ordering``
   (default): an id below everything the session remembers → 20 ("too old to tell"); a
   top-level id (message or container) not above the last accepted one → 16 (§3.3: ids
   strictly increase within a session; ids *inside* a new container may be older: re-sends).
5. salt neither current nor previous-and-still-accepted → bad_server_salt (48) with the current
   salt; the message is dropped.
6. the session is announced: the first accepted message of an unknown (or forgotten) session
   queues ``new_session_created`` (CR) whose first_msg_id is the lowest id in that message.
   (Rejected messages do not create sessions, so bad_server_salt comes without it, as on
   Telegram.)
7. seq_no parity: msgs_ack/msg_container odd → 34; an API query even → 35.  With
   ``strict_ordering``, seq_no consistency against the message with the highest msg_id
   received: a higher id with a lower (or equal odd) seq_no → 32, a lower id with a higher (or
   equal odd) seq_no → 33 (§8.3).
8. containers are unpacked (malformed → 64; each inner message is checked as in 4 and 7) and
   gzip_packed is unpacked.
9. service messages are handled here (msgs_ack, ping → stand-alone pong ≡ 1 mod 4 with even
   seq_no, ping_delay_disconnect → also :class:`PingDelayDisconnect` so the shell can arm its
   timer, get_future_salts, msgs_state_req, msg_resend_req, destroy_session, rpc_drop_answer,
   http_wait); anything else is an API query → :class:`IncomingRequest`.

Outgoing: answers (rpc_result, pong, notifications, future_salts, msgs_state_info,
destroy_session_*) get ids ≡ 1 mod 4, everything else (updates, new_session_created, msgs_ack,
containers) ≡ 3 mod 4.  Content-related messages (rpc_result, updates, new_session_created)
are stored in the session until the client acks them; they are re-sent, with their original
ids inside a fresh container, on ``msg_resend_req``, and when a session that has unacked
messages shows up on a new connection (a reconnect).  A duplicate query whose answer exists
gets that answer again the same way.  Queries received are acked with ``msgs_ack`` on the next
:meth:`ServerConnection.data_to_send` unless their answer goes out in the same payload.
"""

from __future__ import annotations

import enum
from collections import Counter, OrderedDict

import attrs

from ..crypto import Rng
from ..errors import LocalProtocolError, MessageSecurityError, RemoteProtocolError
from ..tl import ids
from . import envelope
from .envelope import (
    KeyLike,
    Reader,
    constructor_of,
    pack_int,
    pack_long,
    pack_uint,
    pack_vector_long,
)
from .msgid import ReplayWindow, ServerMsgIdGenerator, check_window
from .session import CONTAINER_BUDGET, MAX_CONTAINER_MESSAGES, FutureSalt

__all__ = [
    "ServerCore",
    "ServerConnection",
    "ServerSession",
    "SessionKey",
    "ServerEvent",
    "IncomingRequest",
    "UnencryptedMessage",
    "CloseConnection",
    "SessionCreated",
    "PingDelayDisconnect",
    "MessageRejected",
    "MessagesAcked",
    "SessionDestroyed",
    "PREVIOUS_SALT_GRACE",
    "SALT_LIFETIME",
]


#: The previous salt stays valid this long after a rotation (§3.5).
PREVIOUS_SALT_GRACE = 1800.0
#: A salt's lifetime before the core rotates it by itself (Telegram: about 30 min... to 1 h).
SALT_LIFETIME = 3600.0
#: Client msg_ids remembered per session for duplicate detection.
_RECEIVED_MEMORY = 4096
#: Content-related messages (and answers) remembered per session for re-sending.
_SENT_MEMORY = 4096

# Service messages a client may send that are not API queries (§8).
_SERVICE = frozenset(
    {
        ids.MSGS_ACK,
        ids.PING,
        ids.PING_DELAY_DISCONNECT,
        ids.GET_FUTURE_SALTS,
        ids.MSGS_STATE_REQ,
        ids.MSGS_STATE_INFO,
        ids.MSGS_ALL_INFO,
        ids.MSG_RESEND_REQ,
        ids.MSG_RESEND_ANS_REQ,
        ids.MSG_DETAILED_INFO,
        ids.MSG_NEW_DETAILED_INFO,
        ids.DESTROY_SESSION,
        ids.RPC_DROP_ANSWER,
        ids.HTTP_WAIT,
    }
)


@attrs.frozen
class SessionKey:
    key_id: int
    session_id: int


# --------------------------------------------------------------------------- events


@attrs.frozen
class IncomingRequest:
    """An API query to execute (gzip unpacked; wrappers like invokeWithLayer left in place).
    Answer it with :meth:`ServerConnection.send_result` / :meth:`ServerConnection.send_error`."""

    session_key: SessionKey
    msg_id: int
    body: bytes


@attrs.frozen
class UnencryptedMessage:
    """auth_key_id == 0: a handshake message for ``ServerHandshake`` (see the module docstring)."""

    payload: bytes


@attrs.frozen
class CloseConnection:
    """Close the connection; first send ``transport_error`` (e.g. −404) when it is not None."""

    reason: str
    transport_error: int | None = None


@attrs.frozen
class SessionCreated:
    session_key: SessionKey
    first_msg_id: int


@attrs.frozen
class PingDelayDisconnect:
    """(Re)arm a timer: close the connection ``disconnect_delay`` s from now unless another
    ping_delay_disconnect arrives first (§8.5)."""

    session_key: SessionKey
    ping_id: int
    disconnect_delay: int


@attrs.frozen
class MessageRejected:
    """A bad_msg_notification / bad_server_salt (code 48) was queued for ``msg_id``."""

    session_key: SessionKey
    msg_id: int
    code: int


@attrs.frozen
class MessagesAcked:
    session_key: SessionKey
    msg_ids: tuple[int, ...]


@attrs.frozen
class SessionDestroyed:
    """A client destroyed one of its other sessions with destroy_session."""

    session_key: SessionKey


ServerEvent = (
    IncomingRequest
    | UnencryptedMessage
    | CloseConnection
    | SessionCreated
    | PingDelayDisconnect
    | MessageRejected
    | MessagesAcked
    | SessionDestroyed
)


# --------------------------------------------------------------------------- core state


@attrs.define
class _SaltState:
    current: int
    current_since: float
    current_until: float
    previous: int | None = None
    previous_until: float = 0.0
    future: list[FutureSalt] = attrs.field(factory=list)


@attrs.define(eq=False)
class _Stored:
    """A content-related message the server sent (kept for re-sending)."""

    msg_id: int
    seq_no: int
    body: bytes
    acked: bool = False


class _QueryState(enum.Enum):
    RUNNING = 1
    ANSWERED = 2
    DROPPED = 3


@attrs.define(eq=False)
class ServerSession:
    """What the server remembers about one (key_id, session_id), across connections."""

    key: SessionKey
    unique_id: int
    announced: bool = False
    seq: int = 0  # the counter c of §3.4 for server messages
    received: ReplayWindow = attrs.field(factory=lambda: ReplayWindow(_RECEIVED_MEMORY))
    pending_acks: dict[int, None] = attrs.field(factory=dict)
    queries: OrderedDict[int, _QueryState] = attrs.field(factory=OrderedDict)
    answer_of: OrderedDict[int, int] = attrs.field(factory=OrderedDict)  # query id -> answer id
    sent: OrderedDict[int, _Stored] = attrs.field(factory=OrderedDict)
    #: the highest top-level msg_id accepted (a message or a container): the next one must be
    #: higher (§3.3 "within a session the ids from each side must strictly increase")
    last_top_msg_id: int = 0
    #: (msg_id, seq_no) of the accepted message with the highest msg_id (containers excluded),
    #: for the seq_no consistency checks 32/33 (§8.3)
    highest: tuple[int, int] | None = None

    def next_seq(self, content_related: bool) -> int:
        if content_related:
            seq = 2 * self.seq + 1
            self.seq += 1
            return seq
        return 2 * self.seq

    def unacked(self) -> list[_Stored]:
        return [s for s in self.sent.values() if not s.acked]

    def remember_sent(self, stored: _Stored) -> None:
        self.sent[stored.msg_id] = stored
        while len(self.sent) > _SENT_MEMORY:
            self.sent.popitem(last=False)


class ServerCore:
    """State shared by every connection of one emulated DC (see the module docstring)."""

    def __init__(
        self,
        *,
        rng: Rng,
        salt_lifetime: float = SALT_LIFETIME,
        previous_salt_grace: float = PREVIOUS_SALT_GRACE,
    ) -> None:
        self.rng = rng
        #: Seconds added to ``now`` for the server's clock (fault injection: ±400 makes
        #: clients get bad_msg 16/17).  Only move it forward while clients are connected: the
        #: msg_id generator is monotonic, so ids minted ahead stay ahead.
        self.clock_offset = 0.0
        self.salt_lifetime = salt_lifetime
        self.previous_salt_grace = previous_salt_grace
        self.msg_ids = ServerMsgIdGenerator()
        #: enforce §3.3 "client msg_ids strictly increase per session" (top-level ids) and the
        #: seq_no consistency of §8.3 (codes 16, 20, 32, 33).  False only to interoperate with
        #: a client known to send out of order.
        self.strict_ordering = True
        #: client msg_ids remembered per session (duplicates; older ids get bad_msg 20)
        self.received_memory = _RECEIVED_MEMORY
        self.executions: Counter[tuple[int, int, int]] = Counter()
        self._keys: dict[int, KeyLike] = {}
        self._salts: dict[int, _SaltState] = {}
        self._sessions: dict[SessionKey, ServerSession] = {}

    def __repr__(self) -> str:
        return f"<ServerCore keys={len(self._keys)} sessions={len(self._sessions)}>"

    # ---------------------------------------------------------------- time and ids

    def server_time(self, now: float) -> float:
        return now + self.clock_offset

    def next_msg_id(self, now: float, *, answer: bool) -> int:
        return self.msg_ids.next(self.server_time(now), answer=answer)

    def _random_long(self) -> int:
        return int.from_bytes(self.rng(8), "little", signed=True)

    # ---------------------------------------------------------------- keys

    def add_key(self, auth_key: KeyLike, *, now: float, server_salt: int | None = None) -> None:
        """Register a key (after a handshake, or a fixed key in tests) with its first salt."""
        self._keys[auth_key.key_id] = auth_key
        salt = self._random_long() if server_salt is None else server_salt
        t = self.server_time(now)
        self._salts[auth_key.key_id] = _SaltState(salt, t, t + self.salt_lifetime)

    def get_key(self, key_id: int) -> KeyLike | None:
        return self._keys.get(key_id)

    def key_ids(self) -> list[int]:
        return list(self._keys)

    def has_key(self, key_id: int) -> bool:
        """Usable as ``ServerHandshake(key_exists=core.has_key)``."""
        return key_id in self._keys

    def drop_key(self, key_id: int) -> None:
        """Forget a key, its salts and all its sessions (clients then get −404)."""
        self._keys.pop(key_id, None)
        self._salts.pop(key_id, None)
        for key in [k for k in self._sessions if k.key_id == key_id]:
            del self._sessions[key]

    # ---------------------------------------------------------------- salts

    def _salt_state(self, key_id: int, now: float) -> _SaltState:
        st = self._salts.get(key_id)
        if st is None:
            raise LocalProtocolError(f"unknown auth_key_id {key_id}")
        t = self.server_time(now)
        while t >= st.current_until:  # the salt expired: move on to the next one
            nxt = st.future.pop(0) if st.future else None
            st.previous, st.previous_until = st.current, st.current_until + self.previous_salt_grace
            if nxt is None:
                nxt = FutureSalt(int(st.current_until), int(st.current_until + self.salt_lifetime), self._random_long())
            st.current, st.current_since, st.current_until = nxt.salt, float(nxt.valid_since), float(nxt.valid_until)
        return st

    def current_salt(self, key_id: int, now: float) -> int:
        return self._salt_state(key_id, now).current

    def salt_ok(self, key_id: int, salt: int, now: float) -> bool:
        st = self._salt_state(key_id, now)
        if salt == st.current:
            return True
        return st.previous is not None and salt == st.previous and self.server_time(now) < st.previous_until

    def rotate_salt(
        self, key_id: int, now: float, *, new_salt: int | None = None, keep_previous: bool = False
    ) -> int:
        """Switch ``key_id`` to a new salt at once and return it.

        With ``keep_previous=False`` (the default, for fault injection) the old salt is refused
        from now on, so the next client message gets bad_server_salt (48).  With
        ``keep_previous=True`` it stays accepted for ``previous_salt_grace`` seconds, like a
        normal rotation.  Scheduled future salts are discarded.
        """
        st = self._salt_state(key_id, now)
        t = self.server_time(now)
        salt = self._random_long() if new_salt is None else new_salt
        if keep_previous:
            st.previous, st.previous_until = st.current, t + self.previous_salt_grace
        else:
            st.previous, st.previous_until = None, 0.0
        st.current, st.current_since, st.current_until = salt, t, t + self.salt_lifetime
        st.future.clear()
        return salt

    def future_salts(self, key_id: int, now: float, num: int) -> list[FutureSalt]:
        """The current salt and the next ones (scheduled so that they will really be used)."""
        st = self._salt_state(key_id, now)
        num = max(1, min(64, num))
        while len(st.future) < num - 1:
            last_until = st.future[-1].valid_until if st.future else int(st.current_until)
            st.future.append(FutureSalt(last_until, int(last_until + self.salt_lifetime), self._random_long()))
        first = FutureSalt(int(st.current_since), int(st.current_until), st.current)
        return [first, *st.future[: num - 1]]

    # ---------------------------------------------------------------- sessions

    def session(self, key: SessionKey) -> ServerSession | None:
        return self._sessions.get(key)

    def sessions(self, key_id: int | None = None) -> list[ServerSession]:
        return [s for k, s in self._sessions.items() if key_id is None or k.key_id == key_id]

    def drop_sessions(self, key_id: int) -> int:
        """Forget every session of ``key_id`` (fault injection: a DC that lost its session
        store; the key and its salts stay).  Returns how many were forgotten."""
        keys = [k for k in self._sessions if k.key_id == key_id]
        for key in keys:
            del self._sessions[key]
        return len(keys)

    def drop_session(self, key: SessionKey) -> bool:
        """Forget a session (fault injection: the client's next message gets a fresh
        new_session_created)."""
        return self._sessions.pop(key, None) is not None

    def _session_for(self, key: SessionKey) -> ServerSession:
        sess = self._sessions.get(key)
        if sess is None:
            sess = ServerSession(
                key, unique_id=self._random_long(), received=ReplayWindow(self.received_memory)
            )
            self._sessions[key] = sess
        return sess


def _seq_no_check(highest: tuple[int, int] | None, msg_id: int, seq_no: int) -> int:
    """§8.3 codes 32/33 against the message with the highest msg_id accepted so far.

    32 (seq_no too low): a message with a lower msg_id had a higher, or equal and odd, seq_no.
    33 (seq_no too high): a message with a higher msg_id has a lower, or equal and odd, seq_no.
    """
    if highest is None:
        return 0
    top_id, top_seq = highest
    if msg_id > top_id:
        if top_seq > seq_no or (top_seq == seq_no and seq_no & 1):
            return 32
    elif seq_no > top_seq or (seq_no == top_seq and seq_no & 1):
        return 33
    return 0


# --------------------------------------------------------------------------- connection


@attrs.define(eq=False)
class _Pending:
    body: bytes
    content_related: bool
    answer: bool
    req_msg_id: int | None = None  # for rpc_result: the query it answers
    stored: _Stored | None = None  # a re-send: keeps its original msg_id and seq_no


class ServerConnection:
    """One transport connection of an emulated DC (see the module docstring)."""

    def __init__(
        self,
        core: ServerCore,
        rng: Rng,
        *,
        compress_results_over: int | None = None,
        resend_unacked_on_reconnect: bool = True,
    ) -> None:
        self.core = core
        self._rng = rng
        self.compress_results_over = compress_results_over
        self.resend_unacked_on_reconnect = resend_unacked_on_reconnect
        self._out: dict[SessionKey, list[_Pending]] = {}
        self._seen_sessions: set[SessionKey] = set()
        self.closed = False

    def __repr__(self) -> str:
        queued = sum(len(v) for v in self._out.values())
        return f"<ServerConnection sessions={len(self._seen_sessions)} queued={queued}>"

    @property
    def session_keys(self) -> tuple[SessionKey, ...]:
        """The sessions that have sent at least one accepted message on this connection
        (where :meth:`send_update` may push)."""
        return tuple(self._seen_sessions)

    # ---------------------------------------------------------------- receiving

    def receive(self, payload: bytes | memoryview, now: float) -> list[ServerEvent]:
        """Process one transport payload (see the module docstring for the order of checks)."""
        if len(payload) < 8:
            return [CloseConnection("payload shorter than an auth_key_id", -404)]
        key_id = envelope.peek_auth_key_id(payload)
        if key_id == 0:
            return [UnencryptedMessage(bytes(payload))]
        key = self.core.get_key(key_id)
        if key is None:
            return [CloseConnection(f"unknown auth_key_id {key_id}", -404)]
        try:
            msg = envelope.decrypt_message(key, payload, x=0)
        except MessageSecurityError as exc:
            # §4.5: drop and close, without answering (no oracle).
            return [CloseConnection(f"undecryptable message: {type(exc).__name__}")]
        events: list[ServerEvent] = []
        try:
            self._process(key_id, msg, now, events)
        except RemoteProtocolError as exc:
            events.append(CloseConnection(f"malformed message: {exc}"))
        return events

    def _out_for(self, skey: SessionKey) -> list[_Pending]:
        return self._out.setdefault(skey, [])

    def _notify(
        self,
        sess: ServerSession,
        bad_msg_id: int,
        bad_seqno: int,
        code: int,
        events: list[ServerEvent],
        new_salt: int | None = None,
    ) -> None:
        if new_salt is None:
            # bad_msg_notification#a7eff811 bad_msg_id:long bad_msg_seqno:int error_code:int
            body = pack_uint(ids.BAD_MSG_NOTIFICATION) + pack_long(bad_msg_id)
            body += pack_int(bad_seqno) + pack_int(code)
        else:
            # bad_server_salt#edab447b bad_msg_id:long bad_msg_seqno:int error_code:int new_server_salt:long
            body = pack_uint(ids.BAD_SERVER_SALT) + pack_long(bad_msg_id)
            body += pack_int(bad_seqno) + pack_int(code) + pack_long(new_salt)
        self._out_for(sess.key).append(_Pending(body, False, True))
        events.append(MessageRejected(sess.key, bad_msg_id, code))

    def _process(self, key_id: int, msg: envelope.InnerMessage, now: float, events: list[ServerEvent]) -> None:
        core = self.core
        skey = SessionKey(key_id, msg.session_id)
        sess = core._session_for(skey)
        t = core.server_time(now)

        # Step 6 of §17.4: msg_id checks.
        if msg.msg_id % 4:
            self._notify(sess, msg.msg_id, msg.seq_no, 18, events)
            return
        code = check_window(msg.msg_id, t)
        if code:
            self._notify(sess, msg.msg_id, msg.seq_no, code, events)
            return
        is_container = constructor_of(msg.body) == ids.MSG_CONTAINER
        if msg.msg_id in sess.received:
            if is_container:
                # 19: a container's msg_id repeats an earlier message's (§8.3).
                self._notify(sess, msg.msg_id, msg.seq_no, 19, events)
            else:
                self._duplicate(sess, msg.msg_id)
            return
        if core.strict_ordering:
            if sess.received.is_replay(msg.msg_id):
                # 20: older than anything remembered: cannot tell whether it was received.
                self._notify(sess, msg.msg_id, msg.seq_no, 20, events)
                return
            if msg.msg_id <= sess.last_top_msg_id:
                # 16: msg_id too low: ids must strictly increase within a session (§3.3).
                self._notify(sess, msg.msg_id, msg.seq_no, 16, events)
                return
        # Step 7: the salt.
        if not core.salt_ok(key_id, msg.salt, now):
            self._notify(sess, msg.msg_id, msg.seq_no, 48, events, core.current_salt(key_id, now))
            return
        sess.last_top_msg_id = max(sess.last_top_msg_id, msg.msg_id)

        # Split the container (each inner message is checked on its own).
        if is_container:
            if msg.seq_no & 1:
                self._notify(sess, msg.msg_id, msg.seq_no, 34, events)
                return
            try:
                items = envelope.unpack_container(msg.body)
            except RemoteProtocolError:
                self._notify(sess, msg.msg_id, msg.seq_no, 64, events)
                return
            if any(i.msg_id >= msg.msg_id for i in items):
                # A container's id must be larger than everything inside it (§3.3).
                self._notify(sess, msg.msg_id, msg.seq_no, 64, events)
                return
            sess.received.add(msg.msg_id)
            parts = [(i.msg_id, i.seq_no, i.body) for i in items]
        else:
            parts = [(msg.msg_id, msg.seq_no, msg.body)]

        reconnect = sess.key not in self._seen_sessions
        self._seen_sessions.add(sess.key)
        if not sess.announced:
            first = min([msg.msg_id] + [p[0] for p in parts])
            self._announce(sess, first, now, events)

        for msg_id, seq_no, body in parts:
            if msg_id % 4:
                self._notify(sess, msg_id, seq_no, 18, events)
                continue
            if msg_id in sess.received:
                self._duplicate(sess, msg_id)
                continue
            if core.strict_ordering and sess.received.is_replay(msg_id):
                self._notify(sess, msg_id, seq_no, 20, events)
                continue
            body = envelope.maybe_gunzip(body)
            ctor = constructor_of(body)
            if ctor is None:
                raise RemoteProtocolError("empty message body")
            # Step 8: seq_no parity (§3.4).
            if seq_no & 1 and ctor in (ids.MSGS_ACK, ids.MSG_CONTAINER):
                self._notify(sess, msg_id, seq_no, 34, events)
                continue
            if not seq_no & 1 and ctor not in _SERVICE:
                self._notify(sess, msg_id, seq_no, 35, events)
                continue
            if core.strict_ordering:
                code = _seq_no_check(sess.highest, msg_id, seq_no)
                if code:
                    self._notify(sess, msg_id, seq_no, code, events)
                    continue
                if sess.highest is None or msg_id > sess.highest[0]:
                    sess.highest = (msg_id, seq_no)
            sess.received.add(msg_id)
            if seq_no & 1:
                sess.pending_acks[msg_id] = None
            self._dispatch(sess, msg_id, body, ctor, now, events)
        if reconnect and self.resend_unacked_on_reconnect:
            # First message of a known session on this connection: a reconnect.  Re-send
            # what the client has not acked (after processing, so acks in this message count).
            self._resend_stored(sess, sess.unacked())

    def _announce(self, sess: ServerSession, first_msg_id: int, now: float, events: list[ServerEvent]) -> None:
        # new_session_created#9ec20908 first_msg_id:long unique_id:long server_salt:long = NewSession;
        sess.announced = True
        salt = self.core.current_salt(sess.key.key_id, now)
        body = pack_uint(ids.NEW_SESSION_CREATED) + pack_long(first_msg_id)
        body += pack_long(sess.unique_id) + pack_long(salt)
        self._out_for(sess.key).insert(0, _Pending(body, True, False))
        events.append(SessionCreated(sess.key, first_msg_id))

    def _duplicate(self, sess: ServerSession, msg_id: int) -> None:
        """A msg_id seen before: never execute twice; re-send the stored answer if any."""
        answer_id = sess.answer_of.get(msg_id)
        stored = sess.sent.get(answer_id) if answer_id is not None else None
        if stored is not None:
            self._resend_stored(sess, [stored])

    def _resend_stored(self, sess: ServerSession, stored: list[_Stored]) -> None:
        queue = self._out_for(sess.key)
        queued = {p.stored.msg_id for p in queue if p.stored is not None}
        for s in stored:
            if s.msg_id not in queued:
                queue.append(_Pending(s.body, True, False, stored=s))

    def _answer(self, sess: ServerSession, body: bytes) -> None:
        """Queue a non-content-related answer (pong, future_salts, msgs_state_info, ...)."""
        self._out_for(sess.key).append(_Pending(body, False, True))

    def _dispatch(
        self, sess: ServerSession, msg_id: int, body: bytes | memoryview, ctor: int, now: float, events: list[ServerEvent]
    ) -> None:
        r = Reader(body, 4)
        core = self.core
        if ctor == ids.MSGS_ACK:
            # msgs_ack#62d6b459 msg_ids:Vector<long> = MsgsAck;
            acked = r.read_vector_long()
            for a in acked:
                # The client has it: forget it (answers carry up to 1 MiB each; keeping acked
                # ones until the 4096-entry memory turns over held gigabytes per session).
                sess.sent.pop(a, None)
            events.append(MessagesAcked(sess.key, tuple(acked)))
        elif ctor in (ids.PING, ids.PING_DELAY_DISCONNECT):
            # ping#7abe77ec ping_id:long = Pong;
            # ping_delay_disconnect#f3427b8c ping_id:long disconnect_delay:int = Pong;
            ping_id = r.read_long()
            # pong#347773c5 msg_id:long ping_id:long = Pong;  (stand-alone, §8.5)
            self._answer(sess, pack_uint(ids.PONG) + pack_long(msg_id) + pack_long(ping_id))
            if ctor == ids.PING_DELAY_DISCONNECT:
                events.append(PingDelayDisconnect(sess.key, ping_id, r.read_int()))
        elif ctor == ids.GET_FUTURE_SALTS:
            # get_future_salts#b921bd04 num:int = FutureSalts;
            salts = core.future_salts(sess.key.key_id, now, r.read_int())
            # future_salts#ae500895 req_msg_id:long now:int salts:vector<future_salt> = FutureSalts;
            out = pack_uint(ids.FUTURE_SALTS) + pack_long(msg_id) + pack_int(int(core.server_time(now)))
            out += pack_int(len(salts))
            for s in salts:
                out += pack_int(s.valid_since) + pack_int(s.valid_until) + pack_long(s.salt)
            self._answer(sess, out)
            sess.pending_acks.pop(msg_id, None)  # the answer acks the request (§8.6)
        elif ctor == ids.MSGS_STATE_REQ:
            # msgs_state_req#da69fb52 msg_ids:Vector<long> = MsgsStateReq;
            info = bytes(self._state_of(sess, m) for m in r.read_vector_long())
            self._state_info(sess, msg_id, info)
        elif ctor in (ids.MSG_RESEND_REQ, ids.MSG_RESEND_ANS_REQ):
            # msg_resend_req#7d861a08 msg_ids:Vector<long> = MsgResendReq;
            wanted = r.read_vector_long()
            stored = [sess.sent.get(m) for m in wanted]
            if wanted and all(s is not None for s in stored):
                self._resend_stored(sess, [s for s in stored if s is not None])
            else:
                # §8.4: unknown ids → msgs_state_info for all of them instead.
                info = bytes(4 if s is not None else 1 for s in stored)
                self._state_info(sess, msg_id, info)
        elif ctor == ids.DESTROY_SESSION:
            # destroy_session#e7512126 session_id:long = DestroySessionRes;
            target_id = r.read_long()
            target = SessionKey(sess.key.key_id, target_id)
            ok = target != sess.key and core.drop_session(target)
            # destroy_session_ok#e22045fc / destroy_session_none#62d350c9 session_id:long
            res = ids.DESTROY_SESSION_OK if ok else ids.DESTROY_SESSION_NONE
            self._answer(sess, pack_uint(res) + pack_long(target_id))
            if ok:
                events.append(SessionDestroyed(target))
        elif ctor == ids.RPC_DROP_ANSWER:
            # rpc_drop_answer#58e4a740 req_msg_id:long = RpcDropAnswer;
            self._drop_answer(sess, msg_id, r.read_long())
        elif ctor in (ids.HTTP_WAIT, ids.MSGS_STATE_INFO, ids.MSGS_ALL_INFO):
            pass  # long poll is HTTP only; state infos answer questions we do not ask
        elif ctor in (ids.MSG_DETAILED_INFO, ids.MSG_NEW_DETAILED_INFO):
            pass
        else:
            sess.queries[msg_id] = _QueryState.RUNNING
            while len(sess.queries) > _SENT_MEMORY:
                sess.queries.popitem(last=False)
            core.executions[(sess.key.key_id, sess.key.session_id, msg_id)] += 1
            events.append(IncomingRequest(sess.key, msg_id, bytes(body)))

    def _state_of(self, sess: ServerSession, msg_id: int) -> int:
        """§8.4 status byte of a client message."""
        if msg_id in sess.received:
            status = 4 if msg_id in sess.pending_acks else 4 | 8
            state = sess.queries.get(msg_id)
            if state is not None:
                status |= 32
                if msg_id in sess.answer_of:
                    status |= 64
            return status
        lo, hi = sess.received.min_id, sess.received.max_id
        if hi is None or msg_id > hi:
            return 3
        if lo is not None and msg_id < lo:
            return 1
        return 2

    def _state_info(self, sess: ServerSession, req_msg_id: int, info: bytes) -> None:
        # msgs_state_info#04deb57d req_msg_id:long info:string = MsgsStateInfo;
        self._answer(sess, pack_uint(ids.MSGS_STATE_INFO) + pack_long(req_msg_id) + envelope.pack_bytes(info))
        sess.pending_acks.pop(req_msg_id, None)  # msgs_state_info acks the request (§8.4)

    def _drop_answer(self, sess: ServerSession, msg_id: int, req_msg_id: int) -> None:
        state = sess.queries.get(req_msg_id)
        answer_id = sess.answer_of.get(req_msg_id)
        stored = sess.sent.get(answer_id) if answer_id is not None else None
        if state is _QueryState.RUNNING:
            # rpc_answer_dropped_running#cd78e586 = RpcDropAnswer;
            sess.queries[req_msg_id] = _QueryState.DROPPED
            result = pack_uint(ids.RPC_ANSWER_DROPPED_RUNNING)
        elif stored is not None and not stored.acked:
            # rpc_answer_dropped#a43ad8b7 msg_id:long seq_no:int bytes:int = RpcDropAnswer;
            stored.acked = True  # never re-send it
            result = pack_uint(ids.RPC_ANSWER_DROPPED) + pack_long(stored.msg_id)
            result += pack_int(stored.seq_no) + pack_int(len(stored.body))
        else:
            # rpc_answer_unknown#5e2ad36e = RpcDropAnswer;
            result = pack_uint(ids.RPC_ANSWER_UNKNOWN)
        self._queue_result(sess, msg_id, result, compress=False)

    # ---------------------------------------------------------------- sending

    def _queue_result(self, sess: ServerSession, req_msg_id: int, result: bytes, *, compress: bool | None) -> None:
        if compress is None:
            compress = self.compress_results_over is not None and len(result) > self.compress_results_over
        if compress:
            packed = envelope.gzip_pack(result)
            if len(packed) < len(result):
                result = packed
        # rpc_result#f35c6d01 req_msg_id:long result:Object = RpcResult;
        body = pack_uint(ids.RPC_RESULT) + pack_long(req_msg_id) + result
        self._out_for(sess.key).append(_Pending(body, True, True, req_msg_id=req_msg_id))

    def _live_session(self, skey: SessionKey) -> ServerSession | None:
        sess = self.core.session(skey)
        if sess is None or self.core.get_key(skey.key_id) is None:
            return None
        return sess

    def send_result(self, incoming: IncomingRequest, result: bytes, *, compress: bool | None = None) -> None:
        """Answer ``incoming`` with a boxed serialized result (wrapped in rpc_result, CR,
        msg_id ≡ 1 mod 4).  Ignored when the session was forgotten or the answer dropped."""
        sess = self._live_session(incoming.session_key)
        if sess is None:
            return
        state = sess.queries.get(incoming.msg_id)
        if state is _QueryState.DROPPED or state is _QueryState.ANSWERED:
            return
        sess.queries[incoming.msg_id] = _QueryState.ANSWERED
        self._queue_result(sess, incoming.msg_id, bytes(result), compress=compress)

    def send_error(self, incoming: IncomingRequest, code: int, message: str) -> None:
        """Answer ``incoming`` with rpc_error#2144ca19 error_code:int error_message:string."""
        body = pack_uint(ids.RPC_ERROR) + pack_int(code) + envelope.pack_bytes(message.encode())
        self.send_result(incoming, body, compress=False)

    def send_update(self, session_key: SessionKey, body: bytes) -> None:
        """Push a server-initiated object (updates...): content-related, msg_id ≡ 3 mod 4."""
        sess = self._live_session(session_key)
        if sess is None:
            raise LocalProtocolError(f"no live session {session_key}")
        self._out_for(session_key).append(_Pending(bytes(body), True, False))

    def has_data_to_send(self) -> bool:
        if any(self._out.values()):
            return True
        return any(
            (s := self.core.session(k)) is not None and s.pending_acks for k in self._seen_sessions
        )

    def data_to_send(self, now: float) -> list[bytes]:
        """Encrypted payloads (x = 8), one per transport frame; containers when several
        messages of one session are waiting."""
        frames: list[bytes] = []
        keys = list(self._out.keys()) + [k for k in self._seen_sessions if k not in self._out]
        for skey in keys:
            queue = self._out.pop(skey, [])
            sess = self._live_session(skey)
            if sess is None:
                continue
            answered = {p.req_msg_id for p in queue if p.req_msg_id is not None}
            acks = [a for a in sess.pending_acks if a not in answered]
            sess.pending_acks.clear()
            items: list[_Pending] = []
            for i in range(0, len(acks), 8192):
                chunk = acks[i : i + 8192]
                items.append(_Pending(pack_uint(ids.MSGS_ACK) + pack_vector_long(chunk), False, False))
            items.extend(queue)
            if not items:
                continue
            key = self.core.get_key(skey.key_id)
            assert key is not None
            salt = self.core.current_salt(skey.key_id, now)
            batch: list[_Pending] = []
            size = 0
            for p in items:
                cost = 16 + len(p.body)
                if batch and (len(batch) >= MAX_CONTAINER_MESSAGES or size + cost > CONTAINER_BUDGET):
                    frames.append(self._pack(sess, key, salt, batch, now))
                    batch, size = [], 0
                batch.append(p)
                size += cost
            if batch:
                frames.append(self._pack(sess, key, salt, batch, now))
        return frames

    def _pack(self, sess: ServerSession, key: KeyLike, salt: int, batch: list[_Pending], now: float) -> bytes:
        core = self.core
        items = []
        for p in batch:
            if p.stored is not None:
                # A re-send keeps its id and seq_no; always inside a fresh container (§8.4).
                items.append((p.stored.msg_id, p.stored.seq_no, p.body))
                continue
            msg_id = core.next_msg_id(now, answer=p.answer)
            seq_no = sess.next_seq(p.content_related)
            if p.content_related:
                sess.remember_sent(_Stored(msg_id, seq_no, p.body))
            if p.req_msg_id is not None:
                sess.answer_of[p.req_msg_id] = msg_id
                while len(sess.answer_of) > _SENT_MEMORY:
                    sess.answer_of.popitem(last=False)
            items.append((msg_id, seq_no, p.body))
        if len(items) == 1 and batch[0].stored is None:
            msg_id, seq_no, body = items[0]
        else:
            msg_id = core.next_msg_id(now, answer=False)
            seq_no = sess.next_seq(False)
            body = envelope.pack_container(items)
        plaintext = envelope.pack_plaintext(salt, sess.key.session_id, msg_id, seq_no, body)
        return envelope.encrypt(key, plaintext, x=8, rng=self._rng)

    def connection_lost(self) -> None:
        """Drop what was queued on this connection; the session state stays in the core, and
        unacked content-related messages are re-sent when the client comes back."""
        self._out.clear()
        self._seen_sessions.clear()
        self.closed = True
