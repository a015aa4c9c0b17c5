"""The router: getting each call's answer from the right DC, within the call's deadline.

Theory of operation
-------------------
The router sits above the per-DC state (:mod:`dcpool.pool.dc`) and owns what spans DCs: the
home DC and its *generation*, the signed-in user, authorization transfers (single-flight per
DC, a flood gate, epochs) and the FILE_MIGRATE memory of downloads.  It changes per-DC state
only through :class:`~dcpool.pool.dc.DcState`'s public methods.

:meth:`Router.call` wraps every request of the pool, in one cancel scope whose deadline is the
call's ``timeout`` (see :mod:`.deadline`):

1. *Where*: the explicit ``dc_id``, else the home DC (read at each attempt: a concurrent
   migration may have moved it).
2. *Readiness gate*: a request that needs a logged-in key, sent to a DC other than home while
   the pool is signed in, first waits for that DC's authorization transfer
   (:meth:`Router.ensure_authorized`): ``auth.exportAuthorization`` on the home DC, then
   ``auth.importAuthorization`` on the target, once per DC however many requests race for it
   (a per-DC lock + a re-check after acquiring it: single-flight).  The mark "DC X authorized
   for user U" is persisted with X's auth key, so a restarted process never re-exports.
   The target's connection and key exchange start before the export (``warm``), and the
   requests waiting at the gate go out right behind ``auth.importAuthorization`` on its
   connection, each wrapped in ``invokeAfterMsg`` (the DC runs them once the import is done):
   the import and the first requests share one round trip.  If that import is refused (and a
   fresh export then succeeds), the requests that rode behind it are sent again.
3. *Send* one attempt (:meth:`Router._attempt`: the one place where an answer passes through
   the router); an RPC error is classified in one place (the ``except`` clauses of
   :meth:`Router._route`): on ``*_MIGRATE_X`` the pure policy (:mod:`dcpool.migrate.policy`)
   says what to do: move home (PHONE/NETWORK/USER) or retry on X (FILE/STATS).  Concurrent
   requests that hit the same migration cause one switch: each remembers the home
   *generation* it was sent under, and only a request whose generation is still current may
   move home.  On USER_MIGRATE while signed in, the authorization is transferred to the new
   home *before* the switch (spec §11.3), so no request reaches the new home unauthorized.
4. ``AUTH_KEY_UNREGISTERED`` on a foreign DC whose mark we trusted: the mark is cleared and the
   transfer runs again, once per request.  Each completed transfer bumps the DC's
   *authorization epoch*; an ``AUTH_KEY_UNREGISTERED`` for a request sent under an older epoch
   is already taken care of, so fifty parallel downloads that all hear it cause one transfer.

5. The login is learned from answers (issue 12, LOGIN.md §4.6): :meth:`Router._attempt` reads
   the constructor id of every successful result (:mod:`.authorization`), so ``auth.signIn``,
   ``auth.checkPassword``, bot and QR logins sign the pool in whoever sent them, through
   ``invoke`` or ``invoke_raw``; ``auth.loggedOut`` logs it out.  A login-loss 401,
   ``AUTH_KEY_DUPLICATED`` or a −404 on the home DC of a signed-in user logs out
   (:meth:`Router.log_out`): :class:`~dcpool.errors.LoggedOut` for that call and, until the
   next login, for every call that needs one.
6. Answers a client waits out or retries: the FLOOD_WAIT family up to
   ``flood_sleep_threshold`` (inside the deadline, else FloodWait at once), 500-class answers
   of idempotent requests (capped exponential backoff), CONNECTION_NOT_INITED /
   CONNECTION_LAYER_INVALID (re-sent once inside initConnection).  Requests off the home DC's
   main lane go inside ``invokeWithoutUpdates`` (updates come from the home DC only).

Transfer errors: ``FLOOD_WAIT_X`` on export remembers a deadline per target DC (no re-export
before it; callers get :class:`~dcpool.errors.FloodWait` whose ``deadline`` attribute is that
deadline on trio's clock and whose ``seconds`` is what is left, or wait it out when
``flood_sleep_threshold`` and the call's deadline allow that many seconds); ``AUTH_BYTES_INVALID`` on import re-exports once,
then raises :class:`~dcpool.errors.TransferError`; ``DC_ID_INVALID`` means the target is the
DC we export from: there is nothing to transfer (marked in memory only).

Events: ``migrated``, ``home_changed``, ``transfer_started``, ``transfer_done``,
``transfer_failed``, ``transfer_flood_wait``, ``signed_in``, ``logged_out``, ``flood_wait``,
``server_error_retry``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, OrderedDict
from collections.abc import Mapping

import trio

from .. import tl
from ..crypto.rsa import RsaPublicKey
from ..dcs import Lane
from ..errors import (
    LOGIN_LOSS_MESSAGES,
    BadRequest,
    FloodWait,
    LoggedOut,
    MigrateError,
    NotAcceptable,
    OutcomeUnknown,
    PoolClosed,
    RpcError,
    ServerError,
    TransferError,
    Unauthorized,
    UserMigrate,
)
from ..methods import IDEMPOTENT, NO_AUTH_NEEDED
from ..migrate.policy import HopTracker, MoveHome
from ..net.connection import Call, ConnectionState, MtprotoConnection
from ..pool.dc import DcRegistry, DcState
from ..pool.runtime import PoolRuntime
from .authorization import INVOKE_WITHOUT_UPDATES, AnswerKind, Observation, observe
from .deadline import CallTrace, Stage

__all__ = ["Router", "Answer", "FILE_DC_MEMORY"]

log = logging.getLogger("dcpool.router")

#: a raw answer: the session hands out a view of the decrypted message where it can (no copy)
Answer = bytes | memoryview

#: How many FILE_MIGRATE corrections (file id -> DC) a pool remembers.
FILE_DC_MEMORY = 4096

#: 500-class answers to idempotent requests: retried after BASE * 2**n seconds, at most CAP,
#: at most RETRIES times (and never past the call's deadline).
SERVER_RETRY_BASE = 0.5
SERVER_RETRY_CAP = 8.0
SERVER_RETRIES = 6

#: answered when the DC has no initConnection for our key (LOGIN.md §5.2 item 4)
_REINIT_MESSAGES = frozenset({"CONNECTION_NOT_INITED", "CONNECTION_LAYER_INVALID"})
#: the bytes of invokeWithoutUpdates#bf9459b7 (its query follows)
_WITHOUT_UPDATES = INVOKE_WITHOUT_UPDATES.to_bytes(4, "little")


class Router:
    """See the module docstring."""

    def __init__(self, runtime: PoolRuntime, dcs: DcRegistry, *, home_dc: int,
                 user_id: int | None) -> None:
        self._rt = runtime
        self._dcs = dcs
        self._home_dc = home_dc
        self._generation = 0
        self._user_id = user_id
        #: where the key signed in; a stored session was (as far as we know) signed in at home
        self._login_dc: int | None = home_dc if user_id is not None else None
        #: FLOOD_WAIT-family answers up to this many seconds are waited out instead of raised
        self.flood_sleep_threshold: float = runtime.config.flood_sleep_threshold
        #: why the login was lost (or logged out) since the last login; None: not lost
        self._logged_out: str | None = None
        runtime.home_dc = home_dc
        runtime.on_key_lost = self._key_lost
        self._epochs: Counter[int] = Counter()  # dc -> completed transfers
        self._transfer_locks: dict[int, trio.Lock] = {}
        self._flood_until: dict[int, float] = {}  # export FLOOD_WAIT deadlines (trio clock)
        self._file_dcs: OrderedDict[int, int] = OrderedDict()
        #: calls waiting for a DC's transfer that go out right behind its importAuthorization
        #: (invokeAfterMsg), so that the import and the first requests share one round trip
        self._riders: dict[int, list[Call]] = {}
        self.migrations = 0
        self.transfers = 0
        self.transfers_started = 0
        self.transfers_failed = 0
        self.transfer_flood_waits = 0
        self.flood_waits = 0
        self.flood_wait_seconds = 0.0
        self.server_retries = 0
        self.reinits = 0
        self.logouts = 0

    # ------------------------------------------------------------------ home and user

    @property
    def home_dc(self) -> int:
        return self._home_dc

    @property
    def user_id(self) -> int | None:
        return self._user_id

    @property
    def login_dc(self) -> int | None:
        return self._login_dc

    @property
    def wait_flood(self) -> float:
        """(older name of :attr:`flood_sleep_threshold`)"""
        return self.flood_sleep_threshold

    @wait_flood.setter
    def wait_flood(self, seconds: float) -> None:
        self.flood_sleep_threshold = seconds

    @property
    def logged_out(self) -> str | None:
        """Why the login was lost or logged out (LOGIN.md §5), until the next login; else None."""
        return self._logged_out

    def set_home_dc(self, dc_id: int) -> None:
        if dc_id == self._home_dc:
            return
        old = self._home_dc
        self._dcs.get(dc_id)  # validates the id
        self._home_dc = dc_id
        self._rt.home_dc = dc_id
        self._generation += 1
        self._rt.writer.submit(lambda s: s.set_home_dc(dc_id))
        self._rt.events.emit("home_changed", dc_id, old=old)

    def set_user(self, user_id: int | None) -> None:
        """Signed in as ``user_id`` on the home DC (None: logged out).  A different user
        invalidates every authorization mark."""
        if user_id != self._user_id:
            self._rt.writer.submit(lambda s: s.clear_all_authorizations())
            for state in self._dcs.all():
                state.mark_authorized(None, persist=False)
        self._user_id = user_id
        self._login_dc = self._home_dc if user_id is not None else None
        self._rt.writer.submit(lambda s: s.set_user_id(user_id))
        if user_id is not None:
            self._dcs.get(self._home_dc).mark_authorized(user_id)

    def signed_in_here(self, dc_id: int) -> bool:
        return dc_id == self._home_dc and self._user_id is not None

    # ------------------------------------------------------------------ login from answers

    def _observed(self, seen: Observation, dc_id: int, key_generation: int) -> None:
        """A successful answer changed the login (LOGIN.md §4.6): whoever sent the request."""
        state = self._dcs.get(dc_id)
        if seen.kind is AnswerKind.LOGGED_OUT:
            self.log_out("auth.logOut")
        elif seen.kind is AnswerKind.IMPORTED:
            # importAuthorization: that DC's key is authorized, home does not move
            if state.key_generation == key_generation and seen.user_id == self._user_id:
                state.mark_authorized(seen.user_id)
        else:
            self.signed_in(dc_id, seen.user_id)

    def signed_in(self, dc_id: int, user_id: int | None) -> None:
        """The key of DC ``dc_id`` logged in as ``user_id``: that DC is home, persisted."""
        assert user_id is not None
        self._logged_out = None
        self.set_home_dc(dc_id)
        self.set_user(user_id)
        self._login_dc = dc_id
        self._rt.events.emit("signed_in", dc_id, user_id=user_id)

    def log_out(self, reason: str) -> None:
        """The login is gone (``reason``: the server's message, or ``auth.logOut``): the user
        and every authorization mark are cleared in memory and storage, a ``logged_out`` event
        is emitted, and calls that need a login raise :class:`LoggedOut` until the next one."""
        user_id = self._user_id
        self._logged_out = reason
        self._user_id = None
        self._login_dc = None
        self._rt.writer.submit(lambda s: s.clear_all_authorizations())
        self._rt.writer.submit(lambda s: s.set_user_id(None))
        for state in self._dcs.all():
            state.mark_authorized(None, persist=False)
        self.logouts += 1
        log.warning("logged out (%s)", reason)
        self._rt.events.emit("logged_out", self._home_dc, reason=reason, user_id=user_id)

    def _key_lost(self, dc_id: int) -> None:
        """A DC forgot (−404) or refused (AUTH_KEY_DUPLICATED) our key: on the home DC of a
        signed-in user that is the login gone with it, never a silent logout (§5.2 item 4)."""
        if dc_id == self._home_dc and self._user_id is not None:
            self.log_out("AUTH_KEY_NOT_FOUND")

    def _lost_login(self, error: RpcError, dc_id: int) -> RpcError:
        """Classify a 401/406 answer of DC ``dc_id`` (LOGIN.md §5.4); returns the error to raise."""
        if error.message == "AUTH_KEY_DUPLICATED" and isinstance(error, NotAcceptable):
            # 406: the key is dead.  Drop it (a new one is made on the next connection); on
            # the home DC of a signed-in user this is also a logout.
            if dc_id == self._home_dc and self._user_id is not None:
                self.log_out(error.message)
            self._dcs.get(dc_id).drop_key(error.message)
        elif not (isinstance(error, Unauthorized) and error.message in LOGIN_LOSS_MESSAGES):
            return error
        if dc_id != self._home_dc:
            return error  # a foreign DC: only its imported authorization is gone (_route)
        if self._user_id is not None:
            self.log_out(error.message)
        elif self._logged_out is None:
            return error  # never signed in: nothing was lost
        return LoggedOut(error.code, error.message, error.request_name)

    # ------------------------------------------------------------------ file routing memory

    def file_dc(self, file_id: int | None) -> int | None:
        """The DC a previous FILE_MIGRATE taught us for ``file_id`` (None if unknown)."""
        return None if file_id is None else self._file_dcs.get(file_id)

    def remember_file_dc(self, file_id: int | None, dc_id: int) -> None:
        if file_id is None:
            return
        self._file_dcs[file_id] = dc_id
        self._file_dcs.move_to_end(file_id)
        while len(self._file_dcs) > FILE_DC_MEMORY:
            self._file_dcs.popitem(last=False)

    # ------------------------------------------------------------------ CDN DCs

    def cdn_key_known(self, dc_id: int) -> bool:
        """Whether CDN DC ``dc_id``'s own RSA key (help.getCdnConfig) is installed."""
        return dc_id in self._rt.cdn_rsa_keys

    def add_cdn_keys(self, keys: Mapping[int, RsaPublicKey]) -> None:
        """Install CDN DCs' RSA keys ({dc_id: key}, spec §11.4) for their handshakes."""
        self._rt.cdn_rsa_keys.update(keys)

    # ------------------------------------------------------------------ calls

    async def call(self, name: str, body: bytes, *, dc_id: int | None, lane: Lane,
                   timeout: float | None, idempotent: bool | None = None) -> tuple[Answer, int]:
        """Send ``body`` where it belongs, following migrations, within ``timeout`` seconds for
        the whole call; return the raw result and the DC that answered (downloads remember
        it).  RequestTimeout says which stage was running when the deadline passed."""
        if idempotent is None:
            idempotent = name in IDEMPOTENT
        trace = CallTrace.start(name, timeout)
        with trio.move_on_at(trace.deadline):
            return await self._route(name, body, dc_id, lane, idempotent, trace)
        raise trace.timed_out()

    def _needs_transfer(self, name: str, dc_id: int) -> bool:
        return self._user_id is not None and dc_id != self._home_dc and name not in NO_AUTH_NEEDED

    async def _route(self, name: str, body: bytes, dc_id: int | None, lane: Lane,
                     idempotent: bool, trace: CallTrace) -> tuple[Answer, int]:
        hops = HopTracker(self._rt.config.max_hops)
        explicit = dc_id
        retried_auth = False
        reinit = False
        server_retries = 0
        rebound = False
        while True:
            trace.stage = Stage.ROUTING
            target = explicit if explicit is not None else self._home_dc
            generation = self._generation
            if self._logged_out is not None and name not in NO_AUTH_NEEDED:
                # The login is gone (§5): no request that needs one is sent until a new login.
                raise LoggedOut(401, self._logged_out, name)
            rider: Call | None = None
            if self._needs_transfer(name, target):
                state = self._dcs.get(target)
                if state.authorized_user != self._user_id:
                    # Overlap the target's connection set-up and key exchange with the export,
                    # and ride behind the import (see _export_import).
                    state.warm(Lane.MAIN, foreign=True)
                    state.warm(lane, foreign=True)
                    rider = Call(body=self._wire(body, target, lane), name=name,
                                 idempotent=idempotent, dc_id=target)
                    self._riders.setdefault(target, []).append(rider)
                try:
                    await self.ensure_authorized(target, trace)
                except BaseException:
                    self._drop_rider(target, rider)
                    raise
                rider = self._rider_sent(target, rider)
            if rider is not None and _rode_in_vain(rider):
                rider = None  # sent again, now that the DC knows the authorization
            epoch = self._epochs[target]
            sent_key = self._dcs.get(target).auth_key  # (pfs: the temp key the call goes with)
            # ---- the one place where RPC errors of a call are classified
            try:
                answer = await self._attempt(name, body, target, lane, idempotent, trace,
                                             force_init=reinit, sent=rider)
                return answer, target
            except MigrateError as exc:
                action = hops.hop(target, exc)  # MigrationError on a loop / spent budget
                trace.hops += 1
                self.migrations += 1
                self._dcs.get(target).record_migration()
                self._rt.events.emit("migrated", target, error=exc.name, to=action.dc_id,
                                     request=name)
                if isinstance(action, MoveHome):
                    trace.stage = Stage.MIGRATION
                    await self._move_home(action.dc_id, generation, trace,
                                          follow_user=isinstance(exc, UserMigrate))
                    explicit = None
                else:
                    explicit = action.dc_id
            except FloodWait as exc:
                # 420 FLOOD_WAIT_X (and PREMIUM / TEST_PHONE / SLOWMODE): the server did not
                # run the request; wait it out and re-send if the threshold and deadline allow.
                await self._wait_flood(exc, target, name, trace)
            except LoggedOut:
                raise
            except (Unauthorized, NotAcceptable) as exc:
                if exc.message == "AUTH_KEY_PERM_EMPTY" and not rebound and sent_key is not None:
                    # pfs (spec §5.11): our temp key is not bound (any more: another client
                    # bound its own temp key to our permanent key).  The DC did not run the
                    # call: bind a new temp key and send it again, once.
                    rebound = True
                    self._dcs.get(target).temp_key_unbound(sent_key.key_id)
                    continue
                # A login-loss 401 (or AUTH_KEY_DUPLICATED, key already dropped) on a foreign
                # DC: only the authorization imported there is gone (§5.4).  On the home DC
                # _attempt already turned it into LoggedOut (or it was never signed in).
                lost = exc.message in LOGIN_LOSS_MESSAGES or exc.message == "AUTH_KEY_DUPLICATED"
                if not lost or target == self._home_dc or self._user_id is None:
                    raise
                if self._epochs[target] != epoch:
                    # Sent under an authorization that has been replaced since: retry under
                    # the new one (somebody else already re-transferred).
                    continue
                if retried_auth:
                    raise
                retried_auth = True
                state = self._dcs.get(target)
                if state.authorized_user is not None:
                    log.info("DC %s forgot our authorization (%s): transferring again",
                             target, exc.message)
                    state.forget_authorization()
                # (else a concurrent request cleared the mark already: the retry waits for
                # its transfer at the readiness gate)
            except BadRequest as exc:
                if exc.message not in _REINIT_MESSAGES or reinit:
                    raise
                # The DC has no initConnection for our key: re-send once, wrapped (§10).
                reinit = True
                self.reinits += 1
                log.info("DC %s: %s: re-sending %s with initConnection", target, exc.message, name)
            except ServerError as exc:
                # 500-class (INTERNAL, RPC_CALL_FAIL, *_TIMEOUT, ...): retry idempotent requests
                # with capped exponential backoff, inside the deadline.
                if not idempotent:
                    if exc.code == -503 or exc.message.endswith("TIMEOUT"):
                        # the DC may have run it before timing out
                        raise OutcomeUnknown(name, target) from exc
                    raise
                delay = min(SERVER_RETRY_CAP, SERVER_RETRY_BASE * 2 ** server_retries)
                server_retries += 1
                if server_retries > SERVER_RETRIES or trio.current_time() + delay > trace.deadline:
                    raise
                self.server_retries += 1
                self._rt.events.emit("server_error_retry", target, error=exc.message,
                                     request=name, delay=delay)
                await trio.sleep(delay)

    async def _wait_flood(self, exc: FloodWait, dc_id: int, name: str, trace: CallTrace) -> None:
        """Sleep out a flood wait the call may afford, else raise it at once."""
        seconds = exc.seconds
        now = trio.current_time()
        if seconds > self.flood_sleep_threshold or now + seconds > trace.deadline:
            exc.deadline = now + seconds
            raise exc
        self.flood_waits += 1
        self.flood_wait_seconds += seconds
        self._rt.events.emit("flood_wait", dc_id, seconds=seconds, error=exc.name, request=name)
        trace.stage = Stage.FLOOD_WAIT
        await trio.sleep(seconds)

    def _wire(self, body: bytes, dc_id: int, lane: Lane) -> bytes:
        """What goes on the wire for ``body``: updates come from the home DC's main connection
        only (UPDATES.md §1.1), every other request is wrapped.
        invokeWithoutUpdates#bf9459b7 {X:Type} query:!X = X;"""
        if dc_id != self._home_dc or lane is not Lane.MAIN:
            return _WITHOUT_UPDATES + body
        return body

    def _rider_sent(self, dc_id: int, rider: Call | None) -> Call | None:
        """``rider`` if it went out behind the DC's import, else None (it is dropped)."""
        if rider is None or rider.conn is not None:
            return rider
        riders = self._riders.get(dc_id, [])
        if rider in riders:
            riders.remove(rider)
        return None

    def _drop_rider(self, dc_id: int, rider: Call | None) -> None:
        """The transfer failed: ``rider`` is not wanted any more, wherever it is."""
        rider = self._rider_sent(dc_id, rider)
        if rider is not None and rider.conn is not None and not rider.done.is_set():
            rider.conn.withdraw(rider)

    async def _attempt(self, name: str, body: bytes, dc_id: int, lane: Lane, idempotent: bool,
                       trace: CallTrace, *, stage: Stage = Stage.ANSWER,
                       force_init: bool = False, observe_login: bool = True,
                       sent: Call | None = None, riders: list[Call] | None = None) -> Answer:
        """One attempt on one DC: submit (sync), then await the outcome.  The one place where
        an answer (result or error) passes through the router: a result that is a login (or
        a log-out) changes the pool's login whoever sent it (§4.6); a login-loss error on the
        home DC logs out (§5).  ``sent``: the call went out already (behind an import);
        ``riders``: calls to send right behind this one (invokeAfterMsg)."""
        if not self._rt.open:
            raise PoolClosed("the pool is closed")
        state = self._dcs.get(dc_id)
        key_generation = state.key_generation
        conn: MtprotoConnection | None
        if sent is None:
            call = Call(body=self._wire(body, dc_id, lane), name=name, idempotent=idempotent,
                        dc_id=dc_id, force_init=force_init)
            conn = state.submit(call, lane, foreign=dc_id != self._home_dc)
            for rider in riders or ():
                state.submit_after(rider, call)
        else:
            call = sent
            conn = sent.conn
        trace.stage = stage if conn is None or conn.state is ConnectionState.READY else Stage.CONNECTING
        try:
            await call.done.wait()
        finally:
            if not call.done.is_set() and call.conn is not None:
                if call.conn.state is not ConnectionState.READY:
                    trace.stage = Stage.CONNECTING  # (a reconnect, or the first dial)
                call.conn.withdraw(call)
        if call.error is not None:
            error = call.error
            if isinstance(error, RpcError):
                if error.request_name is None:
                    error.request_name = name
                error = self._lost_login(error, dc_id)
            raise error
        assert call.result is not None
        state.record_answer(len(call.result))
        if observe_login:
            seen = observe(body, call.result)
            if seen is not None:
                self._observed(seen, dc_id, key_generation)
        return call.result

    async def _move_home(self, dc_id: int, generation: int, trace: CallTrace, *,
                         follow_user: bool) -> None:
        """Move home to ``dc_id`` unless a concurrent request already moved it (one switch).

        ``follow_user``: USER_MIGRATE (the signed-in user now lives on ``dc_id``), as opposed
        to PHONE/NETWORK_MIGRATE, which come before a sign-in on the new home."""
        if self._generation != generation or self._home_dc == dc_id:
            return
        if follow_user and self._user_id is not None:
            # The user's authorization must reach the new home first (exported from the
            # current home, where the key is logged in, §11.3).
            await self.ensure_authorized(dc_id, trace)
            if self._generation != generation:
                return
        self.set_home_dc(dc_id)

    # ------------------------------------------------------------------ transfers

    async def ensure_authorized(self, dc_id: int, trace: CallTrace | None = None) -> None:
        """Make DC ``dc_id`` authorized for the signed-in user (single-flight per DC)."""
        if trace is None:
            trace = CallTrace.start("auth transfer", None)
        state = self._dcs.get(dc_id)
        if state.authorized_user == self._user_id or dc_id == self._home_dc:
            return
        trace.stage = Stage.TRANSFER
        lock = self._transfer_locks.setdefault(dc_id, trio.Lock())
        async with lock:
            if state.authorized_user == self._user_id or dc_id == self._home_dc:
                return
            await self._flood_gate(dc_id, trace)
            await self._transfer(state, trace)

    async def _flood_gate(self, dc_id: int, trace: CallTrace) -> None:
        """Before exporting to ``dc_id``: honour a remembered FLOOD_WAIT deadline."""
        deadline = self._flood_until.get(dc_id)
        if deadline is None:
            return
        wait = deadline - trio.current_time()
        if wait <= 0:
            del self._flood_until[dc_id]
            return
        if wait > self.flood_sleep_threshold or trio.current_time() + wait > trace.deadline:
            # The export must not be repeated before the deadline: refuse without asking.
            raise _flood_error(wait, deadline)
        trace.stage = Stage.FLOOD_WAIT
        await trio.sleep_until(deadline)
        self._flood_until.pop(dc_id, None)
        trace.stage = Stage.TRANSFER

    async def _transfer(self, state: DcState, trace: CallTrace) -> None:
        user_id = self._user_id
        self.transfers_started += 1
        self._rt.events.emit("transfer_started", state.dc_id, user_id=user_id)
        try:
            await self._export_import(state, user_id, trace)
        except Exception as exc:
            self.transfers_failed += 1
            self._rt.events.emit("transfer_failed", state.dc_id,
                                 error=getattr(exc, "name", type(exc).__name__))
            raise

    async def _export_import(self, state: DcState, user_id: int | None, trace: CallTrace) -> None:
        dc_id = state.dc_id
        reexported = False
        source = self._home_dc
        while True:
            home = source
            try:
                # auth.exportAuthorization#e5bfffcd dc_id:int = auth.ExportedAuthorization;
                exported = await self._attempt(
                    "auth.exportAuthorization", tl.api.auth.ExportAuthorization(dc_id=dc_id).to_bytes(),
                    home, Lane.MAIN, False, trace, stage=Stage.TRANSFER)
            except UserMigrate:
                # The home key was itself imported and the user has moved on: only the DC
                # where the key signed in can still vouch for it.
                login = self._login_dc
                if login is None or login == source or login == dc_id:
                    raise
                log.info("exporting to DC %s from the sign-in DC %s instead", dc_id, login)
                source = login
                continue
            except FloodWait as exc:
                deadline = trio.current_time() + exc.seconds
                self._flood_until[dc_id] = deadline
                self.transfer_flood_waits += 1
                self._rt.events.emit("transfer_flood_wait", dc_id, seconds=exc.seconds,
                                     deadline=deadline)
                if (exc.seconds > self.flood_sleep_threshold
                        or trio.current_time() + exc.seconds > trace.deadline):
                    exc.deadline = deadline
                    raise
                trace.stage = Stage.FLOOD_WAIT
                await trio.sleep_until(deadline)
                self._flood_until.pop(dc_id, None)
                trace.stage = Stage.TRANSFER
                continue
            except BadRequest as exc:
                if exc.message == "DC_ID_INVALID":
                    # The target is the DC we export from: nothing to transfer (§11.3).
                    # Marked in memory only, so requests do not ask again and again.
                    state.mark_authorized(user_id, persist=False)
                    self._epochs[dc_id] += 1
                    self._rt.events.emit("transfer_done", dc_id, user_id=user_id, skipped=True)
                    return
                raise TransferError(f"exporting the authorization to DC {dc_id} failed: {exc}") from exc
            self._dcs.get(home).record_export()
            # auth.exportedAuthorization#b434e2b8 id:long bytes:bytes = auth.ExportedAuthorization;
            auth = tl.loads(exported)
            key_generation = state.key_generation
            try:
                # auth.importAuthorization#a57a7dad id:long bytes:bytes = auth.Authorization;
                # The calls waiting for this transfer go out right behind it, each wrapped in
                # invokeAfterMsg (the DC runs them once the import is done): one round trip.
                await self._attempt(
                    "auth.importAuthorization",
                    tl.api.auth.ImportAuthorization(id=auth.id, bytes=auth.bytes).to_bytes(),
                    dc_id, Lane.MAIN, False, trace, stage=Stage.TRANSFER, observe_login=False,
                    riders=self._riders.pop(dc_id, None))
            except BadRequest as exc:
                if exc.message == "AUTH_BYTES_INVALID" and not reexported:
                    # The token may not have reached the target yet: one fresh export.
                    reexported = True
                    log.info("DC %s refused the exported authorization; exporting again", dc_id)
                    continue
                raise TransferError(f"importing the authorization on DC {dc_id} failed: {exc}") from exc
            state.record_import()
            if state.key_generation != key_generation:
                # The DC forgot the key the import went over (-404) while it was in flight:
                # that authorization died with it; the new key needs its own.
                log.info("DC %s replaced its auth key during the transfer; transferring again", dc_id)
                continue
            self.transfers += 1
            self._epochs[dc_id] += 1
            if self._user_id == user_id:
                # (a sign-in as somebody else during the transfer made it worthless)
                state.mark_authorized(user_id)
            self._rt.events.emit("transfer_done", dc_id, user_id=user_id)
            return


def _rode_in_vain(rider: Call) -> bool:
    """``rider`` went out behind an import that failed (the transfer then succeeded on a
    second try): the DC refused it (unauthorized, or MSG_WAIT_FAILED: the call it waited for
    failed), and it must be sent again."""
    first = rider.after
    return (rider.done.is_set() and rider.error is not None
            and first is not None and first.error is not None)


def _flood_error(wait: float, deadline: float) -> FloodWait:
    """A FloodWait for a remembered export deadline: ``seconds`` is what is left."""
    exc = FloodWait(420, f"FLOOD_WAIT_{max(1, math.ceil(wait))}", "auth.exportAuthorization")
    exc.deadline = deadline
    return exc
