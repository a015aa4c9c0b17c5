"""Migrations and authorization transfers: getting the answer from the right DC.

Theory of operation
-------------------
:class:`Migrator.run` wraps every request of the pool:

1. *Where*: the explicit ``dc_id``, else the home DC (read at each attempt: a concurrent
   migration may have moved it).
2. *Readiness gate*: a request that needs a logged-in key, sent to a DC other than home while
   the pool is signed in, first waits for that DC's authorization transfer
   (:meth:`Migrator.ensure_authorized`): ``auth.exportAuthorization`` on the home DC, then
   ``auth.importAuthorization`` on the target, once per DC however many requests race for it
   (a per-DC lock + a re-check after acquiring it: single-flight).  The mark "DC X authorized
   for user U" is persisted with X's auth key, so a restarted process never re-exports.
3. *Send* one attempt; on ``*_MIGRATE_X`` ask the pure policy (:mod:`.policy`) what to do:
   move home (PHONE/NETWORK/USER) or retry on X (FILE/STATS); concurrent requests that hit the
   same migration cause one switch (the first moves home; the others find it already moved).
4. ``AUTH_KEY_UNREGISTERED`` on a foreign DC whose mark we trusted: the mark is cleared and the
   transfer runs again, once.

Transfer errors: ``FLOOD_WAIT_X`` on export remembers a deadline (no re-export before it;
callers get :class:`~dcpool.errors.FloodWait`, or wait if ``wait_flood`` allows it);
``AUTH_BYTES_INVALID`` on import re-exports once, then raises
:class:`~dcpool.errors.TransferError`; ``DC_ID_INVALID`` means the target is home: nothing to
transfer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from .. import tl
from ..errors import (
    AuthKeyUnregistered,
    BadRequest,
    FloodWait,
    MigrateError,
    TransferError,
)
from .policy import HopTracker, MoveHome, RetryOn, decide

if TYPE_CHECKING:
    from ..pool.pool import Pool

__all__ = ["Migrator", "decide", "HopTracker", "MoveHome", "RetryOn"]

log = logging.getLogger("dcpool.migrate")


class Migrator:
    def __init__(self, pool: Pool, *, wait_flood: float = 0.0) -> None:
        self.pool = pool
        #: FLOOD_WAIT on export up to this many seconds is waited out instead of raised
        self.wait_flood = wait_flood

    def _needs_transfer(self, name: str, dc_id: int) -> bool:
        from ..pool.pool import NO_AUTH_NEEDED

        pool = self.pool
        return pool.user_id is not None and dc_id != pool.home_dc and name not in NO_AUTH_NEEDED

    async def run(self, name: str, body: bytes, *, dc_id: int | None, timeout: Any, lane: str,
                  idempotent: bool | None = None) -> bytes:
        from ..pool.pool import IDEMPOTENT

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
                await self.ensure_authorized(target)
            try:
                return await pool._send_once(name, body, target, timeout=timeout, lane=lane,
                                             idempotent=idempotent)
            except MigrateError as exc:
                action = hops.hop(target, exc)
                pool._migrations += 1
                pool._dc(target).migrations += 1
                pool._emit("migrated", target, error=exc.name, to=action.dc_id, request=name)
                if isinstance(action, MoveHome):
                    # One switch however many requests hit it: only move if nobody else did.
                    if pool._home_generation == generation and pool.home_dc != action.dc_id:
                        pool.set_home_dc(action.dc_id)
                    explicit = None
                else:
                    explicit = action.dc_id
            except AuthKeyUnregistered:
                state = pool._dc(target)
                if target != pool.home_dc and state.authorized_user is not None and not retried_auth:
                    retried_auth = True
                    log.info("DC %s forgot our authorization: transferring again", target)
                    state.authorized_user = None
                    if state.auth_key is not None:
                        pool.storage.set_authorized(target, None, key_id=state.auth_key.key_id)
                    continue
                raise

    async def ensure_authorized(self, dc_id: int) -> None:
        """Make DC ``dc_id`` authorized for the signed-in user (single-flight per DC)."""
        pool = self.pool
        state = pool._dc(dc_id)
        if state.authorized_user == pool.user_id:
            return
        async with state.transfer_lock:
            if state.authorized_user == pool.user_id or dc_id == pool.home_dc:
                return
            await self._transfer(dc_id)

    async def _transfer(self, dc_id: int) -> None:
        pool = self.pool
        state = pool._dc(dc_id)
        user_id = pool.user_id
        pool._emit("transfer_started", dc_id, user_id=user_id)
        attempts = 0
        while True:
            attempts += 1
            now = trio.current_time()
            if state.flood_until is not None and state.flood_until > now:
                wait = state.flood_until - now
                if wait > self.wait_flood:
                    raise FloodWait(420, f"FLOOD_WAIT_{int(wait + 0.999)}", "auth.exportAuthorization")
                await trio.sleep(wait)
            home = pool.home_dc
            try:
                exported = await pool._send_once(
                    "auth.exportAuthorization",
                    tl.api.auth.ExportAuthorization(dc_id=dc_id).to_bytes(),
                    home, timeout=..., lane="main", idempotent=False,
                )
            except FloodWait as exc:
                state.flood_until = trio.current_time() + exc.seconds
                pool._emit("transfer_flood_wait", dc_id, seconds=exc.seconds)
                if exc.seconds > self.wait_flood:
                    pool._emit("transfer_failed", dc_id, error=exc.name)
                    raise
                continue
            except BadRequest as exc:
                if exc.message == "DC_ID_INVALID":
                    # The target is the home DC (or unknown to it): nothing to transfer.
                    pool._emit("transfer_done", dc_id, skipped=True)
                    return
                pool._emit("transfer_failed", dc_id, error=exc.name)
                raise TransferError(f"exporting the authorization to DC {dc_id} failed: {exc}") from exc
            pool._dc(home).exports += 1
            auth = tl.loads(exported)
            try:
                await pool._send_once(
                    "auth.importAuthorization",
                    tl.api.auth.ImportAuthorization(id=auth.id, bytes=auth.bytes).to_bytes(),
                    dc_id, timeout=..., lane="main", idempotent=False,
                )
            except BadRequest as exc:
                if exc.message == "AUTH_BYTES_INVALID" and attempts < 2:
                    log.info("DC %s refused the exported authorization; exporting again", dc_id)
                    continue
                pool._emit("transfer_failed", dc_id, error=exc.name)
                raise TransferError(f"importing the authorization on DC {dc_id} failed: {exc}") from exc
            state.imports += 1
            pool._transfers += 1
            state.authorized_user = user_id
            if state.auth_key is not None:
                pool.storage.set_authorized(dc_id, user_id, key_id=state.auth_key.key_id)
            pool._emit("transfer_done", dc_id, user_id=user_id)
            return
