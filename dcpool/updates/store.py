"""Where the acknowledged updates state lives: in memory, or in the SQLite session file."""

from __future__ import annotations

from typing import Any

from .state import UpdatesState, UpdatesStateStore

__all__ = ["MemoryUpdatesStore", "SessionUpdatesStore", "store_for"]


class MemoryUpdatesStore:
    """An :class:`UpdatesStateStore` in memory (tests, or a process that always starts fresh).
    ``saves`` counts the writes."""

    def __init__(self, state: UpdatesState | None = None, access_hashes: dict[int, int] | None = None) -> None:
        self.state = state
        self.access_hashes: dict[int, int] = dict(access_hashes or {})
        self.saves = 0

    async def load_updates_state(self) -> UpdatesState | None:
        return self.state

    async def save_updates_state(self, state: UpdatesState) -> None:
        self.state = state
        self.saves += 1

    async def load_channel_access_hashes(self) -> dict[int, int]:
        return dict(self.access_hashes)

    async def save_channel_access_hash(self, channel_id: int, access_hash: int) -> None:
        self.access_hashes[channel_id] = access_hash


class SessionUpdatesStore:
    """An :class:`UpdatesStateStore` on a session storage that has the updates tables
    (:class:`dcpool.storage.SqliteStorage` schema v3).  Only channels whose pts changed since
    the last save are written; each save is one transaction."""

    def __init__(self, storage: Any) -> None:
        self._storage = storage
        self._saved_channels: dict[int, int] = {}

    async def load_updates_state(self) -> UpdatesState | None:
        loaded = self._storage.get_updates_state()
        if loaded is None:
            return None
        (pts, qts, date, seq), channels = loaded
        self._saved_channels = dict(channels)
        return UpdatesState(pts=pts, qts=qts, date=date, seq=seq, channels=channels)

    async def save_updates_state(self, state: UpdatesState) -> None:
        changed: dict[int, int | None] = {
            cid: pts for cid, pts in state.channels.items() if self._saved_channels.get(cid) != pts
        }
        for cid in self._saved_channels.keys() - state.channels.keys():
            changed[cid] = None
        await _off_loop(self._storage.set_updates_state, state.pts, state.qts, state.date, state.seq, changed)
        self._saved_channels = dict(state.channels)

    async def load_channel_access_hashes(self) -> dict[int, int]:
        return dict(self._storage.get_channel_access_hashes())

    async def save_channel_access_hash(self, channel_id: int, access_hash: int) -> None:
        await _off_loop(self._storage.set_channel_access_hash, channel_id, access_hash)


async def _off_loop(write: Any, *args: Any) -> None:
    """A session-file write (a transaction and an fsync) on a worker thread, never on the event
    loop; the storage serialises it with the pool's own writer thread."""
    import functools  # noqa: PLC0415

    import trio  # noqa: PLC0415  (here: importing the store pulls in no trio)

    await trio.to_thread.run_sync(functools.partial(write, *args))


def store_for(storage: Any) -> UpdatesStateStore:
    """The store to use with a pool's session storage: the session file when it has the
    updates tables, else memory (the state is then lost with the process)."""
    if storage is not None and hasattr(storage, "get_updates_state"):
        return SessionUpdatesStore(storage)
    return MemoryUpdatesStore()
