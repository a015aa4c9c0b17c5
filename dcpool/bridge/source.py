"""The seam between an account's updates and the bridge.

The bridge consumes the updates manager's stream (``dcpool.updates``, contract in the bridge
README): items that are either an ``Update`` or a ``StateLost``, in order per box, each
acknowledged with ``await stream.ack(item)`` once its effects are durable.  This module only
names that shape (typing.Protocol, so the real classes and the in-memory stand-in both fit)
and holds the one function that plugs the real manager in (imported on first use: the
bridge's pure parts import no pool).

Shape (from the contract)::

    Update:    box, pts, dedupe_key, update (TL object), users, chats, state_after
    StateLost: box, state_after
    state_after.to_json() -> dict;  UpdatesState.from_json(dict)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..updates import UpdatesStream

__all__ = [
    "StateLike",
    "UpdateItem",
    "StateLostItem",
    "UpdateSource",
    "is_update",
    "open_account_updates",
]


@runtime_checkable
class StateLike(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class UpdateItem(Protocol):
    box: int | None
    pts: int | None
    dedupe_key: str
    update: Any
    users: tuple[Any, ...]
    chats: tuple[Any, ...]
    state_after: StateLike


class StateLostItem(Protocol):
    box: int | None
    state_after: StateLike


class UpdateSource(Protocol):
    """What ``open_updates`` yields: an async iterator of items plus ``ack``."""

    def __aiter__(self) -> AsyncIterator[UpdateItem | StateLostItem]: ...

    async def ack(self, item: UpdateItem | StateLostItem) -> None: ...


def is_update(item: object) -> bool:
    """An ``Update`` carries a TL object and a dedupe key; a ``StateLost`` does not."""
    return hasattr(item, "dedupe_key") and hasattr(item, "update")


class OutboxStateStore:
    """The ``UpdatesStateStore`` the bridge hands to the updates manager.

    Its ``load_updates_state`` reads the state row the outbox writes in the same transaction
    as the events (so the manager resumes exactly after the last durable event).  The bridge
    persists ``state_after`` itself with the events, before acking, so ``save_updates_state``
    writes only the *first* position (the manager's getState on a fresh account, before any
    event): without it, a bridge that stops before its first event would start again from a
    new getState and skip what was sent meanwhile.  Later saves are no-ops (the manager saves
    only states the bridge has already written with their events, or positions reached
    without events, which a resume simply crosses again).  Channel access hashes live in the
    outbox's kv table.  ``epoch`` fences a fleet account's writes.
    """

    def __init__(self, outbox: Any, account: str, state_type: Any, *, epoch: int | None = None) -> None:
        self._outbox = outbox
        self._account = account
        self._state_type = state_type
        self._epoch = epoch
        self._has_row = False

    async def load_updates_state(self) -> Any:
        data = await self._outbox.load_state(self._account)
        self._has_row = data is not None
        return None if data is None else self._state_type.from_json(data)

    async def save_updates_state(self, state: Any) -> None:
        if not self._has_row:
            await self._outbox.init_state(self._account, state.to_json(), epoch=self._epoch)
            self._has_row = True

    async def load_channel_access_hashes(self) -> dict[int, int]:
        raw: Mapping[str, Any] = await self._outbox.load_kv(self._account, "channel_hashes") or {}
        return {int(k): int(v) for k, v in raw.items()}

    async def save_channel_access_hash(self, channel_id: int, access_hash: int) -> None:
        raw = dict(await self._outbox.load_kv(self._account, "channel_hashes") or {})
        raw[str(channel_id)] = access_hash
        await self._outbox.save_kv(self._account, "channel_hashes", raw)


@asynccontextmanager
async def open_account_updates(pool: Any, outbox: Any, account: str, *,
                               epoch: int | None = None, **options: Any) -> AsyncIterator[UpdatesStream]:
    """The real source: ``dcpool.updates.open_updates`` with a store backed by the outbox.
    ``options`` go to ``open_updates`` (gap_timeout, max_pending...)."""
    import dcpool.updates as updates  # noqa: PLC0415

    store = OutboxStateStore(outbox, account, updates.UpdatesState, epoch=epoch)
    async with updates.open_updates(pool, store=store, **options) as stream:
        yield stream
