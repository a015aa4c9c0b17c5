"""Routed, parallel, memory-bounded downloads (spec §13.2).

:class:`Download` is an async iterator of a file's chunks in file order.  It goes straight to
the file's DC (the ``dc_id`` hint) through that DC's *download lane* (media-only endpoints
preferred), keeps up to ``parallel`` ``upload.getFile`` requests in flight, and holds at most
``parallel`` parts in memory: a part is only requested once there is room for its result
(``buffered_bytes`` counts what is held, ``peak_buffered_bytes`` its maximum, for tests).  A
wrong hint costs one round trip (per part already in flight): ``FILE_MIGRATE_X`` is followed
by the pool's migrator, which tells us which DC answered; the download switches to it and the
pool remembers it for the file (:meth:`Migrator.remember_file_dc`), so a later download of the
same file with the same wrong hint goes straight to the right DC.

Cancellation: part requests run in the pool's nursery, each in a cancel scope created *before*
the task starts, so leaving the iteration early (``break``, an exception, cancellation)
cancels every outstanding part, including ones whose task has not run yet.  An exception or
cancellation inside the iteration does it at once; an abandoned iteration (``break``) does it
when the iterator is collected (at the ``break`` itself under CPython: trio runs the cleanup
on its next scheduling tick); ``async with pool.download(...) as d: async for chunk in d:``
makes it deterministic (:meth:`Download.aclose` stops every iteration and waits for the
cancelled part tasks to withdraw their requests).

Offset/limit rules: ``part_size`` must divide 1 MiB and be a multiple of 4 KiB, so no request
crosses a 1 MiB boundary; offsets are multiples of ``part_size``.  The end of the file is the
first short part (or ``size`` when known).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import trio

from .. import tl
from ..errors import LocalProtocolError

if TYPE_CHECKING:
    from ..pool.pool import Pool


class _Iteration:
    """The state of one ``async for`` over a :class:`Download` (kept outside the generator so
    that :meth:`Download.aclose` can stop it even when the generator object is already gone,
    waiting for trio to finalize it)."""

    def __init__(self) -> None:
        self.results: dict[int, bytes] = {}
        self.errors: list[BaseException] = []
        self.scopes: set[trio.CancelScope] = set()
        self.closed = False
        self.finished = False
        self.changed = trio.Event()
        self.in_flight = 0
        self.next_offset = 0  # of the next part to request
        self.next_yield = 0  # of the next part to hand to the consumer
        #: where the file ends, once known (``size``, or the first short part)
        self.eof_at: int | None = None


class Download:
    """Async iterator of a file's chunks (see the module docstring)."""

    def __init__(self, pool: Pool, location: Any, *, dc_id: int | None, size: int | None,
                 part_size: int, parallel: int, offset: int = 0) -> None:
        if part_size % 4096 or (1 << 20) % part_size:
            raise LocalProtocolError("part_size must be a multiple of 4 KiB dividing 1 MiB")
        if parallel < 1:
            raise LocalProtocolError("parallel must be >= 1")
        if offset % part_size:
            raise LocalProtocolError("offset must be a multiple of part_size")
        self.pool = pool
        self.location = location
        key = getattr(location, "id", None)
        self._key = key if isinstance(key, int) else None
        learnt = pool.migrator.file_dc(self._key)
        self.dc_id = learnt if learnt is not None else dc_id
        self.size = size
        self.part_size = part_size
        self.parallel = parallel
        self.offset = offset
        #: bytes of received parts held, not yet handed to the consumer (and its maximum)
        self.buffered_bytes = 0
        self.peak_buffered_bytes = 0
        self._iterations: set[_Iteration] = set()  # open ones
        self._workers = 0  # part tasks alive (cancelled ones included)
        self._no_workers: trio.Event | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Parts(self)

    async def aclose(self) -> None:
        """Stop every iteration of this download now: outstanding parts are cancelled and
        buffered ones dropped (``async with pool.download(...) as d:`` does it on exit)."""
        for it in list(self._iterations):
            self._close(it)
        # A cancelled part withdraws its request when its task next runs: wait for that, so
        # that the pool is quiet when we return.  Shielded (this is cleanup) and bounded
        # (the tasks are already cancelled: they only need to be scheduled).
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            while self._workers:
                self._no_workers = trio.Event()
                await self._no_workers.wait()

    async def __aenter__(self) -> Download:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _close(self, it: _Iteration) -> None:
        """Cancel an iteration's outstanding parts and drop what it holds (idempotent)."""
        if it.closed:
            return
        it.closed = True
        self._iterations.discard(it)
        for scope in it.scopes:
            scope.cancel()
        self.buffered_bytes -= sum(len(d) for d in it.results.values())
        it.results.clear()
        it.changed.set()

    async def _fetch(self, offset: int) -> bytes:
        request = tl.api.upload.GetFile(location=self.location, offset=offset, limit=self.part_size)
        body = request.to_bytes()
        dc = self.dc_id if self.dc_id is not None else self.pool.home_dc
        raw, served_by = await self.pool.migrator.run_routed(
            "upload.getFile", body, dc_id=dc, timeout=..., lane="download", idempotent=True
        )
        if served_by != dc:
            # FILE_MIGRATE was followed: the next parts go straight there.
            self.dc_id = served_by
            self.pool.migrator.remember_file_dc(self._key, served_by)
        return _file_bytes(raw)

    async def _worker(self, it: _Iteration, offset: int, scope: trio.CancelScope) -> None:
        # `scope` was created (and registered) by the consumer before this task started: if
        # the consumer already left, entering it cancels us at the first checkpoint.
        with scope:
            try:
                data = await self._fetch(offset)
            except Exception as exc:  # handed to the consumer, raised there
                it.errors.append(exc)
                it.changed.set()
                return
            finally:
                it.scopes.discard(scope)
                it.in_flight -= 1
                self._workers -= 1
                if not self._workers and self._no_workers is not None:
                    self._no_workers.set()
            if it.closed:
                return
            it.results[offset] = data
            self.buffered_bytes += len(data)
            self.peak_buffered_bytes = max(self.peak_buffered_bytes, self.buffered_bytes)
            if len(data) < self.part_size and (it.eof_at is None or offset + len(data) < it.eof_at):
                it.eof_at = offset + len(data)  # the first short part is the end (§13.2)
            it.changed.set()

    async def _next(self, it: _Iteration) -> bytes | None:
        """The next chunk of iteration ``it``, or None at the end."""
        pool = self.pool
        part = self.part_size
        while True:
            if it.finished:
                return None
            if it.closed:
                # aclose() from another task: never pass a truncated file off as complete
                raise LocalProtocolError("the download was closed")
            if pool._nursery is None:
                raise LocalProtocolError("the pool is closed")
            # Room = parts in flight + parts held, both bounded by `parallel`.
            while (it.in_flight + len(it.results) < self.parallel
                   and (it.eof_at is None or it.next_offset < it.eof_at)):
                scope = trio.CancelScope()
                it.scopes.add(scope)
                it.in_flight += 1
                self._workers += 1
                pool._nursery.start_soon(self._worker, it, it.next_offset, scope)
                it.next_offset += part
            if it.next_yield in it.results:
                data = it.results.pop(it.next_yield)
                self.buffered_bytes -= len(data)
                it.next_yield += part
                if len(data) < part or (it.eof_at is not None and it.next_yield >= it.eof_at):
                    it.finished = True
                    self._close(it)  # parts requested past the end are not wanted
                if data:
                    return data
                continue
            if it.eof_at is not None and it.next_yield >= it.eof_at:
                it.finished = True
                self._close(it)
                return None  # (a failed part past the end does not matter)
            if it.errors:
                raise it.errors[0]
            await it.changed.wait()
            it.changed = trio.Event()


class _Parts:
    """One ``async for`` over a :class:`Download`.

    A class rather than an async generator so that abandoning it (``break``) needs no
    generator finalization: when it is collected, a ``weakref.finalize`` callback asks trio
    (``run_sync_soon``, safe from a garbage-collector context) to cancel its outstanding parts
    and drop its buffers.  :meth:`aclose` / ``async with download`` do it at once.
    """

    def __init__(self, download: Download) -> None:
        if download.pool._nursery is None:
            raise LocalProtocolError("the pool is closed")
        it = _Iteration()
        it.eof_at = download.size
        it.next_offset = it.next_yield = download.offset
        download._iterations.add(it)
        self._download = download
        self._it = it
        weakref.finalize(self, _close_soon, trio.lowlevel.current_trio_token(), download, it)

    def __aiter__(self) -> _Parts:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._download._next(self._it)
        except BaseException:
            self._download._close(self._it)
            raise
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._download._close(self._it)


def _close_soon(token: trio.lowlevel.TrioToken, download: Download, it: _Iteration) -> None:
    if it.closed:
        return
    try:
        token.run_sync_soon(download._close, it)
    except trio.RunFinishedError:
        pass  # trio is gone, and the pool's tasks with it


def _file_bytes(raw: bytes | memoryview) -> bytes:
    """The ``bytes`` field of an ``upload.file`` without building the TL object (hot path).

    upload.file#96a18d5 type:storage.FileType mtime:int bytes:bytes = upload.File;
    """
    reader = tl.Reader(raw)
    cid = reader.read_uint()
    if cid != tl.ids.UPLOAD_FILE:
        obj = tl.loads(raw)
        raise LocalProtocolError(f"unexpected answer to upload.getFile: {type(obj).QUALNAME}")
    reader.read_uint()  # storage.FileType: a boxed constructor without fields
    reader.read_int()  # mtime
    return bytes(reader.read_bytes())
