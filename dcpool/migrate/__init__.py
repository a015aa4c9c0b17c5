"""Migrations and authorization transfers: getting the answer from the right DC.

Theory of operation
-------------------
:meth:`Migrator.run` wraps every request of the pool:

1. *Where*: the explicit ``dc_id``, else the home DC (read at each attempt: a concurrent
   migration may have moved it).
2. *Readiness gate*: a request that needs a logged-in key, sent to a DC other than home while
   the pool is signed in, first waits for that DC's authorization transfer
   (:meth:`Migrator.ensure_authorized`): ``auth.exportAuthorization`` on the home DC, then
   ``auth.importAuthorization`` on the target, once per DC however many requests race for it
   (a per-DC lock + a re-check after acquiring it: single-flight).  The mark "DC X authorized
   for user U" is persisted with X's auth key, so a restarted process never re-exports.
3. *Send* one attempt; on ``*_MIGRATE_X`` ask the pure policy (:mod:`.policy`) what to do:
   move home (PHONE/NETWORK/USER) or retry on X (FILE/STATS).  Concurrent requests that hit
   the same migration cause one switch: each remembers the home *generation* it was sent
   under, and only a request whose generation is still current may move home (the others
   find it already moved and simply retry there).  On USER_MIGRATE while signed in, the
   authorization is transferred to the new home *before* the switch (spec §11.3: the key on X
   is a different key and must be authorized there), so no request ever reaches the new home
   unauthorized.  (PHONE/NETWORK_MIGRATE precede a sign-in there: nothing to carry over.)
4. ``AUTH_KEY_UNREGISTERED`` on a foreign DC whose mark we trusted: the mark is cleared and the
   transfer runs again, once per request.  Each completed transfer bumps the DC's
   *authorization epoch*; an ``AUTH_KEY_UNREGISTERED`` for a request sent under an older epoch
   is already taken care of, so fifty parallel downloads that all hear it cause one transfer.

Transfer errors: ``FLOOD_WAIT_X`` on export remembers a deadline per target DC (no re-export
before it; callers get :class:`~dcpool.errors.FloodWait` whose ``deadline`` attribute is that
deadline on trio's clock and whose ``seconds`` is what is left, or wait it out when
``wait_flood`` allows that many seconds); ``AUTH_BYTES_INVALID`` on import re-exports once,
then raises :class:`~dcpool.errors.TransferError`; ``DC_ID_INVALID`` means the target is the
DC we export from: there is nothing to transfer (the DC is marked, in memory only, so that we
do not ask again; ``AUTH_KEY_UNREGISTERED`` there would undo it).

Events (``pool.events()``): ``migrated`` (each followed migration), ``home_changed``,
``transfer_started``, ``transfer_done``, ``transfer_failed``, ``transfer_flood_wait``; the
counts are in ``pool.statistics()`` (``migrations``, ``transfers``, ``transfers_started``,
``transfers_failed``, ``transfer_flood_waits``).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, OrderedDict
from typing import TYPE_CHECKING, Any

import trio

from .. import tl
from ..errors import (
    AuthKeyUnregistered,
    BadRequest,
    FloodWait,
    MigrateError,
    TransferError,
    UserMigrate,
)
from ..methods import IDEMPOTENT, NO_AUTH_NEEDED
from .policy import HopTracker, MoveHome, RetryOn, decide

if TYPE_CHECKING:
    from ..pool.pool import Pool, _DcState

__all__ = ["Migrator", "decide", "HopTracker", "MoveHome", "RetryOn"]

log = logging.getLogger("dcpool.migrate")

#: How many FILE_MIGRATE corrections (file id -> DC) a pool remembers.
FILE_DC_MEMORY = 4096


class Migrator:
    def __init__(self, pool: Pool, *, wait_flood: float = 0.0) -> None:
        self.pool = pool
        #: FLOOD_WAIT on export up to this many seconds is waited out instead of raised
        self.wait_flood = wait_flood
        #: dc -> number of completed transfers (see "authorization epoch" above)
        self._epochs: Counter[int] = Counter()
        #: transfers_started / transfers_failed / transfer_flood_waits
        self.counts: Counter[str] = Counter()
        #: file id -> the DC a FILE_MIGRATE sent us to (bounded, most recent last)
        self._file_dcs: OrderedDict[int, int] = OrderedDict()

    # ------------------------------------------------------------------ file routing memory

    def file_dc(self, file_id: int | None) -> int | None:
        """The DC a previous FILE_MIGRATE taught us for ``file_id`` (None if unknown)."""
        if file_id is None:
            return None
        return self._file_dcs.get(file_id)

    def remember_file_dc(self, file_id: int | None, dc_id: int) -> None:
        if file_id is None:
            return
        self._file_dcs[file_id] = dc_id
        self._file_dcs.move_to_end(file_id)
        while len(self._file_dcs) > FILE_DC_MEMORY:
            self._file_dcs.popitem(last=False)

    # ------------------------------------------------------------------ requests

    def _needs_transfer(self, name: str, dc_id: int) -> bool:

        pool = self.pool
        return pool.user_id is not None and dc_id != pool.home_dc and name not in NO_AUTH_NEEDED

    async def run(self, name: str, body: bytes, *, dc_id: int | None, timeout: Any, lane: str,
                  idempotent: bool | None = None) -> bytes | memoryview:
        """Send ``body`` where it belongs (following migrations) and return the raw result."""
        result, _ = await self.run_routed(name, body, dc_id=dc_id, timeout=timeout, lane=lane,
                                          idempotent=idempotent)
        return result

    async def run_routed(self, name: str, body: bytes, *, dc_id: int | None, timeout: Any,
                         lane: str, idempotent: bool | None = None) -> tuple[bytes | memoryview, int]:
        """Like :meth:`run`, also returning the DC that finally answered (downloads remember
        it, so that one wrong ``dc_id`` hint costs one round trip, not one per part)."""

        pool = self.pool
        if idempotent is None:
            idempotent = name in IDEMPOTENT
        hops = HopTracker(pool.max_hops)
        explicit = dc_id
        retried_auth = False
        while True:
            target = explicit if explicit is not None else pool.home_dc
            generation = pool._home_generation
            if self._needs_transfer(name, target):
                state = pool._dc(target)
                if state.authorized_user != pool.user_id and not pool._closing:
                    # Overlap the target's connection set-up and key exchange with the export.
                    state.warm("main")
                    state.warm(lane)
                await self.ensure_authorized(target)
            epoch = self._epochs[target]
            try:
                result = await pool._send_once(name, body, target, timeout=timeout, lane=lane,
                                               idempotent=idempotent)
                return result, target
            except MigrateError as exc:
                action = hops.hop(target, exc)  # MigrationError on a loop / spent budget
                pool._migrations += 1
                pool._dc(target).migrations += 1
                pool._emit("migrated", target, error=exc.name, to=action.dc_id, request=name)
                if isinstance(action, MoveHome):
                    await self._move_home(action.dc_id, generation,
                                          follow_user=isinstance(exc, UserMigrate))
                    explicit = None
                else:
                    explicit = action.dc_id
            except AuthKeyUnregistered:
                if target == pool.home_dc or pool.user_id is None:
                    raise
                if self._epochs[target] != epoch:
                    # Sent under an authorization that has been replaced since: retry under
                    # the new one (somebody else already re-transferred).
                    continue
                if retried_auth:
                    raise
                retried_auth = True
                state = pool._dc(target)
                if state.authorized_user is not None:
                    log.info("DC %s forgot our authorization: transferring again", target)
                    self._forget(state)
                # (else a concurrent request cleared the mark already: the retry waits for
                # its transfer at the readiness gate)

    async def _move_home(self, dc_id: int, generation: int, *, follow_user: bool) -> None:
        """Move home to ``dc_id`` unless a concurrent request already moved it (one switch).

        ``follow_user``: USER_MIGRATE (the signed-in user now lives on ``dc_id``), as opposed
        to PHONE/NETWORK_MIGRATE, which come before a sign-in on the new home."""
        pool = self.pool
        if pool._home_generation != generation or pool.home_dc == dc_id:
            return
        if follow_user and pool.user_id is not None:
            # The user's authorization must reach the new home first (exported from the
            # current home, where the key is logged in, §11.3).
            await self.ensure_authorized(dc_id)
            if pool._home_generation != generation:
                return
        pool.set_home_dc(dc_id)

    def _forget(self, state: _DcState) -> None:
        """Clear a DC's authorization mark (memory and storage)."""
        state.authorized_user = None
        if state.auth_key is not None:
            self.pool.storage.set_authorized(state.dc_id, None, key_id=state.auth_key.key_id)

    # ------------------------------------------------------------------ transfers

    async def ensure_authorized(self, dc_id: int) -> None:
        """Make DC ``dc_id`` authorized for the signed-in user (single-flight per DC)."""
        pool = self.pool
        state = pool._dc(dc_id)
        if state.authorized_user == pool.user_id or dc_id == pool.home_dc:
            return
        async with state.transfer_lock:
            if state.authorized_user == pool.user_id or dc_id == pool.home_dc:
                return
            await self._flood_gate(state)
            await self._transfer(dc_id)

    async def _flood_gate(self, state: _DcState) -> None:
        """Before exporting to ``state``'s DC: honour a remembered FLOOD_WAIT deadline."""
        deadline = state.flood_until
        if deadline is None:
            return
        wait = deadline - trio.current_time()
        if wait <= 0:
            state.flood_until = None
            return
        if wait > self.wait_flood:
            # The export must not be repeated before the deadline: refuse without asking.
            raise _flood_error(wait, deadline)
        await trio.sleep_until(deadline)
        state.flood_until = None

    async def _transfer(self, dc_id: int) -> None:
        pool = self.pool
        state = pool._dc(dc_id)
        user_id = pool.user_id
        self.counts["transfers_started"] += 1
        pool._emit("transfer_started", dc_id, user_id=user_id)
        try:
            await self._export_import(dc_id, state, user_id)
        except Exception as exc:
            self.counts["transfers_failed"] += 1
            pool._emit("transfer_failed", dc_id, error=getattr(exc, "name", type(exc).__name__))
            raise

    async def _export_import(self, dc_id: int, state: _DcState, user_id: int | None) -> None:
        pool = self.pool
        reexported = False
        source = pool.home_dc
        while True:
            home = source
            try:
                # auth.exportAuthorization#e5bfffcd dc_id:int = auth.ExportedAuthorization;
                exported = await pool._send_once(
                    "auth.exportAuthorization",
                    tl.api.auth.ExportAuthorization(dc_id=dc_id).to_bytes(),
                    home, timeout=..., lane="main", idempotent=False,
                )
            except UserMigrate:
                # The home key was itself imported and the user has moved on: only the DC
                # where the key signed in can still vouch for it.
                login = pool.login_dc
                if login is None or login == source or login == dc_id:
                    raise
                log.info("exporting to DC %s from the sign-in DC %s instead", dc_id, login)
                source = login
                continue
            except FloodWait as exc:
                deadline = trio.current_time() + exc.seconds
                state.flood_until = deadline
                self.counts["transfer_flood_waits"] += 1
                pool._emit("transfer_flood_wait", dc_id, seconds=exc.seconds, deadline=deadline)
                if exc.seconds > self.wait_flood:
                    exc.deadline = deadline  # type: ignore[attr-defined]
                    raise
                await trio.sleep_until(deadline)
                state.flood_until = None
                continue
            except BadRequest as exc:
                if exc.message == "DC_ID_INVALID":
                    # The target is the DC we export from: nothing to transfer (§11.3).
                    # Marked in memory only, so requests do not ask again and again.
                    state.authorized_user = user_id
                    self._epochs[dc_id] += 1
                    pool._emit("transfer_done", dc_id, user_id=user_id, skipped=True)
                    return
                raise TransferError(f"exporting the authorization to DC {dc_id} failed: {exc}") from exc
            pool._dc(home).exports += 1
            # auth.exportedAuthorization#b434e2b8 id:long bytes:bytes = auth.ExportedAuthorization;
            auth = tl.loads(exported)
            key_generation = state.key_generation
            try:
                # auth.importAuthorization#a57a7dad id:long bytes:bytes = auth.Authorization;
                await pool._send_once(
                    "auth.importAuthorization",
                    tl.api.auth.ImportAuthorization(id=auth.id, bytes=auth.bytes).to_bytes(),
                    dc_id, timeout=..., lane="main", idempotent=False,
                )
            except BadRequest as exc:
                if exc.message == "AUTH_BYTES_INVALID" and not reexported:
                    # The token may not have reached the target yet: one fresh export.
                    reexported = True
                    log.info("DC %s refused the exported authorization; exporting again", dc_id)
                    continue
                raise TransferError(f"importing the authorization on DC {dc_id} failed: {exc}") from exc
            state.imports += 1
            if state.key_generation != key_generation:
                # The DC forgot the key the import went over (-404) while it was in flight:
                # that authorization died with it; the new key needs its own.
                log.info("DC %s replaced its auth key during the transfer; transferring again", dc_id)
                continue
            pool._transfers += 1
            self._epochs[dc_id] += 1
            if pool.user_id == user_id:
                # (a sign-in as somebody else during the transfer made it worthless)
                state.authorized_user = user_id
                if state.auth_key is not None:
                    pool.storage.set_authorized(dc_id, user_id, key_id=state.auth_key.key_id)
            pool._emit("transfer_done", dc_id, user_id=user_id)
            return


def _flood_error(wait: float, deadline: float) -> FloodWait:
    """A FloodWait for a remembered export deadline: ``seconds`` is what is left."""
    exc = FloodWait(420, f"FLOOD_WAIT_{max(1, math.ceil(wait))}", "auth.exportAuthorization")
    exc.deadline = deadline  # type: ignore[attr-defined]
    return exc
