"""Storage writes off the event loop.

SQLite commits with ``synchronous=FULL`` (an fsync each), and a custom storage may be slower
still: a write on the trio thread would stall every connection of every DC, and some writes
come from the receive path (a new salt, a forgotten key).  So the pool never writes itself:
it *queues* a write synchronously (decide, then await: the in-memory state, owned by the
per-DC state, is already up to date) and one task, :meth:`StorageWriter.run`, writes the
queue in order on a worker thread, in batches.  Reads happen at start (before any write is
queued) and through :attr:`~dcpool.pool.Pool.storage` after :meth:`StorageWriter.flush`.

A storage whose writes cannot block (``writes_block = False``, e.g. the in-memory one) is
written on the trio thread by the same task, in the same order: a thread hop would buy nothing
there, and under trio's autojumping test clock the time a worker thread takes is time in which
the clock races ahead.

A failed write is logged and dropped (the session file is a cache of what the DCs know: the
worst outcome is one more key exchange or transfer after a restart), never raised into the
connection that caused it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import trio

from ..storage import Storage

__all__ = ["StorageWriter", "Write"]

log = logging.getLogger("dcpool.pool")

#: one write: a function of the storage, run on a worker thread
Write = Callable[[Storage], object]


class StorageWriter:
    """The pool's one writer (see the module docstring)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        # a storage that does not say otherwise may block (SQLite fsyncs, a network store...)
        self._in_thread = bool(getattr(storage, "writes_block", True))
        self._queue: deque[Write] = deque()
        self._wakeup = trio.Event()
        self._idle = trio.Event()
        self._idle.set()

    @property
    def backlog(self) -> int:
        """Writes queued or being written."""
        return len(self._queue)

    def submit(self, write: Write) -> None:
        """Queue ``write`` (never blocks; order is kept)."""
        self._queue.append(write)
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        self._wakeup.set()

    async def run(self) -> None:
        """Write the queue forever (the pool's nursery owns this task)."""
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            await self._write_batch()

    async def flush(self) -> None:
        """Return once everything queued so far is written."""
        if self._queue:
            await self._idle.wait()

    async def close(self) -> None:
        """Write what is left (after :meth:`run` has ended): shielded, the session must not lose
        a key it already uses."""
        with trio.CancelScope(shield=True):
            while self._queue:
                await self._write_batch()
        self._idle.set()

    async def _write_batch(self) -> None:
        # The batch leaves the queue only once written: a cancellation before the worker
        # thread started (trio checks at entry) must not lose it; close() writes it then.
        batch = list(self._queue)
        if self._in_thread:
            await trio.to_thread.run_sync(self._write_all, batch)
        else:
            await trio.lowlevel.checkpoint()
            self._write_all(batch)
        for _ in batch:
            self._queue.popleft()

    def _write_all(self, batch: list[Write]) -> None:
        for write in batch:
            try:
                write(self._storage)
            except Exception:  # noqa: BLE001 -- see the module docstring
                log.exception("a storage write failed")
