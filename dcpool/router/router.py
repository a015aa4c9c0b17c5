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

Transfer errors: ``FLOOD_WAIT_X`` on export remembers a deadline per target DC (no re-export
before it; callers get :class:`~dcpool.errors.FloodWait` whose ``deadline`` attribute is that
deadline on trio's clock and whose ``seconds`` is what is left, or wait it out when
``wait_flood`` allows that many seconds); ``AUTH_BYTES_INVALID`` on import re-exports once,
then raises :class:`~dcpool.errors.TransferError`; ``DC_ID_INVALID`` means the target is the
DC we export from: there is nothing to transfer (marked in memory only).

Events: ``migrated``, ``home_changed``, ``transfer_started``, ``transfer_done``,
``transfer_failed``, ``transfer_flood_wait``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, OrderedDict

import trio

from .. import tl
from ..dcs import Lane
from ..errors import (
    AuthKeyUnregistered,
    BadRequest,
    FloodWait,
    MigrateError,
    PoolClosed,
    RpcError,
    TransferError,
    UserMigrate,
)
from ..methods import IDEMPOTENT, NO_AUTH_NEEDED
from ..migrate.policy import HopTracker, MoveHome
from ..net.connection import Call, ConnectionState, MtprotoConnection
from ..pool.dc import DcRegistry, DcState
from ..pool.runtime import PoolRuntime
from .deadline import CallTrace, Stage

__all__ = ["Router", "Answer", "FILE_DC_MEMORY"]

log = logging.getLogger("dcpool.router")

#: a raw answer: the session hands out a view of the decrypted message where it can (no copy)
Answer = bytes | memoryview

#: How many FILE_MIGRATE corrections (file id -> DC) a pool remembers.
FILE_DC_MEMORY = 4096


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
        #: FLOOD_WAIT on export up to this many seconds is waited out instead of raised
        self.wait_flood: float = runtime.config.wait_flood
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

    def set_home_dc(self, dc_id: int) -> None:
        if dc_id == self._home_dc:
            return
        old = self._home_dc
        self._dcs.get(dc_id)  # validates the id
        self._home_dc = dc_id
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
        while True:
            trace.stage = Stage.ROUTING
            target = explicit if explicit is not None else self._home_dc
            generation = self._generation
            rider: Call | None = None
            if self._needs_transfer(name, target):
                state = self._dcs.get(target)
                if state.authorized_user != self._user_id:
                    # Overlap the target's connection set-up and key exchange with the export,
                    # and ride behind the import (see _export_import).
                    state.warm(Lane.MAIN, foreign=True)
                    state.warm(lane, foreign=True)
                    rider = Call(body=body, name=name, idempotent=idempotent, dc_id=target)
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
            # ---- the one place where RPC errors of a call are classified
            try:
                return await self._attempt(name, body, target, lane, idempotent, trace, sent=rider), target
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
            except AuthKeyUnregistered:
                if target == self._home_dc or self._user_id is None:
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
                    log.info("DC %s forgot our authorization: transferring again", target)
                    state.forget_authorization()
                # (else a concurrent request cleared the mark already: the retry waits for
                # its transfer at the readiness gate)

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
                       trace: CallTrace, *, stage: Stage = Stage.ANSWER, sent: Call | None = None,
                       riders: list[Call] | None = None) -> Answer:
        """One attempt on one DC: submit (sync), then await the outcome.  The one place where
        an answer (result or error) passes through the router.  ``sent``: the call went out
        already (behind an import); ``riders``: calls to send right behind this one."""
        if not self._rt.open:
            raise PoolClosed("the pool is closed")
        state = self._dcs.get(dc_id)
        conn: MtprotoConnection | None
        if sent is None:
            call = Call(body=body, name=name, idempotent=idempotent, dc_id=dc_id)
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
            if isinstance(error, RpcError) and error.request_name is None:
                error.request_name = name
            raise error
        assert call.result is not None
        state.record_answer(len(call.result))
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
        if wait > self.wait_flood:
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
                if exc.seconds > self.wait_flood:
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
                    dc_id, Lane.MAIN, False, trace, stage=Stage.TRANSFER,
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
