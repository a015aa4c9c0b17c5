"""The trio shell of the updates manager: moves pushes, time and differences between the pool
and a :class:`~.box.MessageBox`, and hands items to the consumer.

It uses only the pool's public API: ``pool.updates()`` (raw pushes and the local overflow
marker), ``pool.events()`` (reconnects, ``new_session_created``, home changes),
``pool.invoke`` (getState / getDifference / getChannelDifference) and ``pool.home_dc``.

Persistence (TDLib's rule, UPDATES.md §3.1 "Persistence point"): the store is written only
with a state the consumer has acknowledged: ``state_after`` of the item passed to
:meth:`UpdatesStream.ack`, or the box's whole state when every item handed out is
acknowledged and nothing waits (so differences that deliver nothing still move the stored
position).  A crash replays from the stored state: at-least-once, with ``dedupe_key``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from .. import tl
from ..errors import (
    DcPoolError,
    FloodWait,
    NetworkError,
    PoolClosed,
    RequestTimeout,
    RpcError,
    TLDecodeError,
)
from .box import Failure, GetChannelDifference, GetDifference, GetState, MessageBox, Request
from .state import StateLost, Update, UpdatesState, UpdatesStateStore, UpdatesStatistics
from .store import store_for

__all__ = ["open_updates", "UpdatesStream"]

log = logging.getLogger("dcpool.updates")
api = tl.api

#: errors after which the account cannot receive updates at all: the stream fails
_FATAL = frozenset({"AUTH_KEY_UNREGISTERED", "SESSION_REVOKED", "USER_DEACTIVATED", "AUTH_KEY_INVALID"})
_RESET = frozenset({"PERSISTENT_TIMESTAMP_INVALID", "PERSISTENT_TIMESTAMP_EMPTY"})
_FORGET = frozenset({"CHANNEL_PRIVATE", "CHANNEL_INVALID", "CHANNEL_PUBLIC_GROUP_NA"})
_AFFECTED = frozenset(
    {"messages.affectedMessages", "messages.affectedHistory", "messages.affectedFoundMessages"}
)
#: pool events of the home DC's main lane after which the common box needs a difference
#: (UPDATES.md §3.1).  A lost connection counts too: pushes meant for it are gone, and the
#: difference request is also what brings a lazily reconnecting pool back online.
_RESYNC_EVENTS = frozenset({"new_session_created", "connected", "disconnected", "idle_closed"})


class UpdatesStream:
    """Items (:class:`Update` / :class:`StateLost`) in order per box; see :func:`open_updates`."""

    def __init__(self, pool: Any, box: MessageBox, store: UpdatesStateStore, *, persist_every: int) -> None:
        self._pool = pool
        self.box = box
        self._store = store
        self._persist_every = max(1, persist_every)
        self._nursery: trio.Nursery | None = None
        self._wake = trio.Event()
        self._items = trio.Event()
        self._closed = False
        self._taken = 0
        self._acked = 0
        self._unsaved_acks = 0
        self._acked_state: UpdatesState | None = None
        self._saved: UpdatesState | None = None
        self.ignored_foreign = 0

    def __repr__(self) -> str:
        s = self.box.statistics()
        return f"<UpdatesStream delivered={s.delivered} pending={s.pending} gaps={s.gaps_opened}>"

    # ------------------------------------------------------------------ consumer API

    def __aiter__(self) -> UpdatesStream:
        return self

    async def __anext__(self) -> Update | StateLost:
        while True:
            item = self.box.take(trio.current_time())
            if item is not None:
                self._taken += 1
                self._changed()  # room in the output: held differences may go on
                return item
            if self._closed:
                raise StopAsyncIteration
            self._items = trio.Event()
            await self._items.wait()

    async def ack(self, item: Update | StateLost) -> None:
        """The consumer has handled ``item`` (and everything before it): its state may be
        persisted."""
        self._acked += 1
        self._unsaved_acks += 1
        self._acked_state = item.state_after
        if self._unsaved_acks >= self._persist_every:
            await self._persist()

    def statistics(self) -> UpdatesStatistics:
        return self.box.statistics()

    @property
    def state(self) -> UpdatesState:
        """The state of everything applied so far (not necessarily acknowledged)."""
        return self.box.snapshot()

    def track_channel(self, channel_id: int, access_hash: int | None, pts: int | None) -> None:
        """Follow a channel from ``pts`` (e.g. from ``dialog.pts`` of messages.getDialogs)."""
        self.box.track_channel(channel_id, access_hash, pts, trio.current_time())
        self._changed()

    def feed(self, result: Any, *, channel_id: int | None = None) -> None:
        """Hand the result of an own request to the manager: ``Updates`` (sendMessage...) and
        ``messages.affected*`` carry pts that must be applied (gotd#1382)."""
        now = trio.current_time()
        name = getattr(type(result), "QUALNAME", "")
        if name in _AFFECTED:
            self.box.receive_affected(result, now, channel_id)
        else:
            self.box.receive_updates(result, now)
        self._changed()

    async def invoke(self, request: Any, *, channel_id: int | None = None) -> Any:
        """``pool.invoke(request)``, then :meth:`feed` its result.  For ``channels.*`` methods
        that answer ``messages.affectedMessages``, pass ``channel_id``."""
        result = await self._pool.invoke(request)
        if channel_id is None and hasattr(request, "channel") and getattr(type(result), "QUALNAME", "") in _AFFECTED:
            channel_id = int(request.channel.channel_id)
        self.feed(result, channel_id=channel_id)
        return result

    # ------------------------------------------------------------------ internals

    def _changed(self) -> None:
        self._wake.set()
        self._items.set()

    async def _persist(self) -> None:
        state = self._acked_state
        if self._acked == self._taken and self.box.pending == 0 and self.box.known:
            state = self.box.snapshot()  # everything handed out is acknowledged
        self._unsaved_acks = 0
        if state is not None and state != self._saved:
            await self._store.save_updates_state(state)
            self._saved = state

    async def _save_hashes(self) -> None:
        for channel_id, access_hash in self.box.take_new_access_hashes():
            await self._store.save_channel_access_hash(channel_id, access_hash)

    async def _run(self) -> None:
        assert self._nursery is not None
        while not self._closed:
            now = trio.current_time()
            self.box.check_deadlines(now)
            for request in self.box.next_requests(now):
                self._nursery.start_soon(self._fetch, request)
            await self._save_hashes()
            if (self._unsaved_acks == 0 and self._acked == self._taken and self.box.pending == 0
                    and self.box.known and self.box.snapshot() != self._saved):
                await self._persist()  # the state moved without items (empty difference, affected*)
            self._items.set()
            deadline = self.box.next_deadline()
            if self._wake.is_set():
                self._wake = trio.Event()
                continue
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._wake.wait()
            self._wake = trio.Event()

    async def _fetch(self, request: Request) -> None:
        try:
            if isinstance(request, GetState):
                result = await self._pool.invoke(api.updates.GetState())
                self.box.state_result(result, trio.current_time())
            elif isinstance(request, GetDifference):
                result = await self._pool.invoke(request.to_tl())
                self.box.difference_result(result, trio.current_time())
            else:
                assert isinstance(request, GetChannelDifference)
                result = await self._pool.invoke(request.to_tl())
                self.box.channel_difference_result(request, result, trio.current_time())
        except FloodWait as exc:
            log.info("updates: %s: flood wait %s s", type(request).__name__, exc.seconds)
            self.box.request_failed(request, Failure.RETRY_AFTER, trio.current_time(), float(exc.seconds))
        except PoolClosed:
            self._closed = True
        except RpcError as exc:
            if exc.name in _FATAL:
                raise
            if exc.name in _RESET:
                failure = Failure.RESET
            elif exc.name in _FORGET and isinstance(request, GetChannelDifference):
                failure = Failure.FORGET
            else:
                failure = Failure.BACKOFF
            log.info("updates: %s failed: %s -> %s", type(request).__name__, exc, failure.value)
            self.box.request_failed(request, failure, trio.current_time())
        except (RequestTimeout, NetworkError) as exc:
            log.info("updates: %s failed: %s", type(request).__name__, exc)
            self.box.request_failed(request, Failure.BACKOFF, trio.current_time())
        except DcPoolError as exc:  # e.g. an outcome lost with a connection
            log.info("updates: %s failed: %s", type(request).__name__, exc)
            self.box.request_failed(request, Failure.BACKOFF, trio.current_time())
        self._changed()

    async def _read_pushes(self) -> None:
        async for item in _iterate(self._pool.updates()):
            body = getattr(item, "body", None)
            if body is None:
                # the pool's own buffer overflowed: pushes were lost
                self.box.resync(trio.current_time())
            else:
                home = getattr(self._pool, "home_dc", None)
                dc_id = getattr(item, "dc_id", home)
                if home is not None and dc_id != home:
                    # only the home DC's main session carries the account's updates
                    self.ignored_foreign += 1
                    continue
                try:
                    obj = tl.loads(body)
                except TLDecodeError:
                    log.info("updates: undecodable push from DC %s: getDifference", dc_id)
                    self.box.resync(trio.current_time())
                else:
                    self.box.receive_updates(obj, trio.current_time())
            self._changed()
        self._closed = True
        self._changed()

    async def _watch_events(self) -> None:
        async for event in _iterate(self._pool.events()):
            home = getattr(self._pool, "home_dc", None)
            if event.kind == "home_changed" or (
                event.kind in _RESYNC_EVENTS
                and event.dc_id == home
                and event.data.get("lane", "main") == "main"
            ):
                log.debug("updates: %s on DC %s: getDifference", event.kind, event.dc_id)
                self.box.resync(trio.current_time())
                self._changed()


async def _iterate(source: Any) -> AsyncIterator[Any]:
    """Iterate a pool stream, whether it is an async iterator or an async context manager."""
    if hasattr(source, "__aenter__") and not hasattr(source, "__anext__"):
        async with source as items:
            async for item in items:
                yield item
    else:
        async for item in source:
            yield item


@asynccontextmanager
async def open_updates(
    pool: Any,
    *,
    store: UpdatesStateStore | None = None,
    gap_timeout: float = 0.5,
    idle_timeout: float = 15 * 60.0,
    channel_limit: int = 100,
    max_channel_diffs: int = 10,
    max_pending: int = 10_000,
    max_buffer: int = 1000,
    pts_total_limit: int | None = None,
    persist_every: int = 1,
) -> AsyncIterator[UpdatesStream]:
    """Every update of the pool's account once, in order per box, across gaps, reconnects and
    restarts::

        async with open_updates(pool, store=...) as stream:
            async for item in stream:          # Update | StateLost
                ...
                await stream.ack(item)         # the state after it may now be persisted

    ``store`` defaults to the pool's session file (SQLite) when it has the updates tables, else
    memory.  A stored state starts with getDifference; none starts with getState (nothing
    before it is delivered).  ``persist_every`` acknowledgements are written together (the
    last acknowledged state is also written when the stream closes).
    """
    if store is None:
        store = store_for(getattr(pool, "storage", None))
    state = await store.load_updates_state()
    hashes = await store.load_channel_access_hashes()
    box = MessageBox(
        state,
        now=trio.current_time(),
        access_hashes=hashes,
        gap_timeout=gap_timeout,
        idle_timeout=idle_timeout,
        channel_limit=channel_limit,
        max_channel_diffs=max_channel_diffs,
        max_pending=max_pending,
        max_buffer=max_buffer,
        pts_total_limit=pts_total_limit,
    )
    stream = UpdatesStream(pool, box, store, persist_every=persist_every)
    stream._saved = state
    try:
        async with trio.open_nursery() as nursery:
            stream._nursery = nursery
            nursery.start_soon(stream._watch_events)
            nursery.start_soon(stream._read_pushes)
            nursery.start_soon(stream._run)
            try:
                yield stream
            finally:
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            if stream._unsaved_acks:
                await stream._persist()
