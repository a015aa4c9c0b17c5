"""Routed, parallel, memory-bounded downloads (spec §13.2), owned by the caller.

:class:`Download` yields a file's chunks in file order.  It goes straight to the file's DC (the
``dc_id`` hint) through that DC's *download lane* (media-only endpoints preferred), keeps up to
``parallel`` ``upload.getFile`` requests in flight, and holds at most ``parallel`` parts in
memory: a part is only requested once there is room for its result (``buffered_bytes`` counts
what is held, ``peak_buffered_bytes`` its maximum).  A wrong hint costs one round trip (per part
already in flight): ``FILE_MIGRATE_X`` is followed by the router, which says which DC answered;
the download switches to it and the router remembers it for the file, so a later download of
the same file with the same wrong hint goes straight to the right DC.

Who owns the part tasks (structured concurrency, no garbage-collector tricks):

* ``async with pool.download(...) as chunks: async for chunk in chunks: ...`` -- the block owns
  a nursery; parts are fetched ahead while the consumer works on a chunk.  Leaving the block
  (end, ``break``, an exception, a cancellation) cancels every outstanding part and waits for
  them: ``pool.statistics()`` is clean when the block is left.
* ``async for chunk in pool.download(...)`` -- no block, so no task may outlive a step of the
  iteration: each step opens its own nursery, fills the free room with part requests (up to
  ``parallel``, in parallel) and returns once they all answered.  Leaving the loop leaves
  nothing in flight.
* :meth:`Download.aclose` (from any task) stops every iteration: outstanding parts are cancelled,
  buffered ones dropped, and an iteration that goes on raises ``LocalProtocolError`` (a file
  cut short is never passed off as complete).

``parallel=AUTO`` (``"auto"``): the number of parts in flight is the file DC's adaptive window
(:mod:`.adaptive`, shared by the downloads of that DC): it grows while throughput grows and
backs off on flood waits (a part answered ``FLOOD_WAIT`` of up to :data:`FLOOD_RETRY_MAX`
seconds waits and asks again) and on rising latency.  Parts are multiplexed: many of them go
over each connection of the DC's download lane.

Offset/limit rules: ``part_size`` must divide 1 MiB and be a multiple of 4 KiB, so no request
crosses a 1 MiB boundary; offsets are multiples of ``part_size``.  The end of the file is the
first short part (or ``size`` when known).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Literal

import trio

from .. import tl
from ..dcs import Lane
from ..errors import FloodWait, LocalProtocolError
from ..router import Router
from .adaptive import PartWindow, PartWindows
from .cdn import CdnFile, is_cdn_redirect

__all__ = ["Download", "file_bytes", "AUTO", "FLOOD_RETRY_MAX"]

#: ``parallel=AUTO``: the DC's adaptive window (:mod:`.adaptive`) sets the parts in flight
AUTO: Literal["auto"] = "auto"

#: With ``parallel=AUTO``, a part answered FLOOD_WAIT of at most this many seconds waits and
#: asks again (the window halves); a longer wait is the consumer's error.
FLOOD_RETRY_MAX = 30


class _Iteration:
    """The state of one ``async for`` over a :class:`Download`."""

    def __init__(self, start: int, eof_at: int | None) -> None:
        self.results: dict[int, bytes] = {}
        self.errors: list[BaseException] = []
        self.scopes: set[trio.CancelScope] = set()
        self.closed = False
        self.finished = False
        self.changed = trio.Event()
        self.in_flight = 0
        self.next_offset = start  # of the next part to request
        self.next_yield = start  # of the next part to hand to the consumer
        #: where the file ends, once known (``size``, or the first short part)
        self.eof_at = eof_at


class Download:
    """A file's chunks, in order (see the module docstring)."""

    def __init__(self, router: Router, location: Any, *, dc_id: int | None, size: int | None,
                 part_size: int, parallel: int | Literal["auto"], offset: int = 0,
                 timeout: float | None = None, windows: PartWindows | None = None,
                 cdn_supported: bool = True) -> None:
        if part_size % 4096 or (1 << 20) % part_size:
            raise LocalProtocolError("part_size must be a multiple of 4 KiB dividing 1 MiB")
        if parallel == AUTO:
            if windows is None:
                raise LocalProtocolError("parallel='auto' needs the pool's part windows")
        elif not isinstance(parallel, int) or parallel < 1:
            raise LocalProtocolError("parallel must be >= 1 or 'auto'")
        if offset % part_size:
            raise LocalProtocolError("offset must be a multiple of part_size")
        self._router = router
        self.location = location
        key = getattr(location, "id", None)
        self._key = key if isinstance(key, int) else None
        learnt = router.file_dc(self._key)
        self.dc_id = learnt if learnt is not None else dc_id
        self.size = size
        self.part_size = part_size
        #: parts in flight + held (an int), or AUTO: the DC's adaptive window decides
        self.parallel = parallel
        self._windows = windows if parallel == AUTO else None
        #: most parts this download had in flight at once
        self.peak_in_flight = 0
        self._in_flight = 0
        self.offset = offset
        #: deadline of each part request (seconds; None: none)
        self.timeout = timeout
        #: ask with cdn_supported (and follow fileCdnRedirect, :mod:`.cdn`); False after the
        #: CDN token went bad (FILE_TOKEN_INVALID): the master DC serves the rest
        self.cdn_supported = cdn_supported
        #: the redirect being followed, if any
        self.cdn: CdnFile | None = None
        #: bytes of received parts held, not yet handed to the consumer (and its maximum)
        self.buffered_bytes = 0
        self.peak_buffered_bytes = 0
        self._iterations: set[_Iteration] = set()  # open ones
        self._nursery_manager: AbstractAsyncContextManager[trio.Nursery] | None = None
        self._nursery: trio.Nursery | None = None
        self._workers = 0
        self._no_workers = trio.Event()

    # ------------------------------------------------------------------ ownership

    async def __aenter__(self) -> Download:
        if self._nursery is not None:
            raise LocalProtocolError("this download is already open")
        manager = trio.open_nursery()
        self._nursery = await manager.__aenter__()
        self._nursery_manager = manager
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        manager, nursery = self._nursery_manager, self._nursery
        assert manager is not None and nursery is not None
        self._close_all()
        nursery.cancel_scope.cancel()
        self._nursery = self._nursery_manager = None
        # The part tasks only raise Cancelled (their errors go to the consumer): the nursery
        # ends clean, and the block's own exception, if any, propagates as it is (one
        # exception, not a group, from a public context manager).
        await manager.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Stop every iteration now: outstanding parts are cancelled, buffered ones dropped."""
        self._close_all()
        # Cancelled parts withdraw their requests when they next run: wait for that, so that
        # the pool is quiet when we return (shielded: this is cleanup; they are cancelled
        # already, so they only need to be scheduled).
        with trio.CancelScope(shield=True):
            while self._workers:
                self._no_workers = trio.Event()
                await self._no_workers.wait()

    def _close_all(self) -> None:
        for it in list(self._iterations):
            self.close_iteration(it)

    def close_iteration(self, it: _Iteration) -> None:
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

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> AsyncIterator[bytes]:
        it = _Iteration(self.offset, self.size)
        self._iterations.add(it)
        return _Parts(self, it)

    def window(self) -> PartWindow | None:
        """The adaptive window in use (``parallel=AUTO``), else None."""
        if self._windows is None:
            return None
        return self._windows.for_dc(self.dc_id if self.dc_id is not None else self._router.home_dc)

    def _limit(self) -> int:
        window = self.window()
        return window.size if window is not None else self.parallel  # type: ignore[return-value]

    async def _fetch(self, offset: int) -> bytes:
        while True:
            redirect = self.cdn
            if redirect is not None:
                data = await redirect.fetch(offset, self.part_size)
                if data is not None:
                    return data
                # FILE_TOKEN_INVALID: the master DC serves the rest itself
                self.cdn_supported = False
                self.cdn = None
            cdn_supported = self.cdn_supported
            request = tl.api.upload.GetFile(location=self.location, offset=offset,
                                            limit=self.part_size,
                                            cdn_supported=cdn_supported)
            dc = self.dc_id if self.dc_id is not None else self._router.home_dc
            window = self.window()
            started = trio.current_time()
            try:
                raw, served_by = await self._router.call(
                    "upload.getFile", request.to_bytes(), dc_id=dc, lane=Lane.DOWNLOAD,
                    timeout=self.timeout, idempotent=True)
            except FloodWait as exc:
                if window is None or exc.seconds > FLOOD_RETRY_MAX:
                    raise
                window.flood_wait()  # fewer parts in flight from now on, then ask again
                await trio.sleep(exc.seconds)
                continue
            if window is not None:
                now = trio.current_time()
                window.part_done(len(raw), now - started, now)
            if served_by != dc:
                # FILE_MIGRATE was followed: the next parts go straight there.
                self.dc_id = served_by
                self._router.remember_file_dc(self._key, served_by)
            if not is_cdn_redirect(raw):
                return file_bytes(raw)
            if not cdn_supported:
                raise LocalProtocolError("a CDN redirect to a request without cdn_supported")
            # spec §11.4: follow the redirect (parallel parts may all get one: keep the first)
            if self.cdn is None:
                self.cdn = CdnFile.from_answer(self._router, raw, master_dc=served_by,
                                               timeout=self.timeout)

    async def _worker(self, it: _Iteration, offset: int, scope: trio.CancelScope) -> None:
        # `scope` was created (and registered) before this task started: if the iteration
        # was closed meanwhile, entering it cancels us at the first checkpoint.
        with scope:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            try:
                data = await self._fetch(offset)
            except Exception as exc:  # handed to the consumer, raised there
                it.errors.append(exc)
                it.changed.set()
                return
            finally:
                self._in_flight -= 1
                it.scopes.discard(scope)
                it.in_flight -= 1
                self._workers -= 1
                if not self._workers:
                    self._no_workers.set()
            if it.closed:
                return
            it.results[offset] = data
            self.buffered_bytes += len(data)
            self.peak_buffered_bytes = max(self.peak_buffered_bytes, self.buffered_bytes)
            if len(data) < self.part_size and (it.eof_at is None or offset + len(data) < it.eof_at):
                it.eof_at = offset + len(data)  # the first short part is the end (§13.2)
            it.changed.set()

    def _fill(self, it: _Iteration, nursery: trio.Nursery) -> None:
        """Request parts while there is room (in flight + held <= parallel, or the window)."""
        limit = self._limit()
        while (it.in_flight + len(it.results) < limit
               and (it.eof_at is None or it.next_offset < it.eof_at)):
            scope = trio.CancelScope()
            it.scopes.add(scope)
            it.in_flight += 1
            self._workers += 1
            nursery.start_soon(self._worker, it, it.next_offset, scope)
            it.next_offset += self.part_size

    def _take(self, it: _Iteration) -> bytes | None:
        """The next chunk if it is here (b"" at the end), else None (sync)."""
        part = self.part_size
        if it.next_yield in it.results:
            data = it.results.pop(it.next_yield)
            self.buffered_bytes -= len(data)
            it.next_yield += part
            if len(data) < part or (it.eof_at is not None and it.next_yield >= it.eof_at):
                it.finished = True
                self.close_iteration(it)  # parts requested past the end are not wanted
            return data
        if it.eof_at is not None and it.next_yield >= it.eof_at:
            it.finished = True
            self.close_iteration(it)
            return b""  # (a failed part past the end does not matter)
        if it.errors:
            raise it.errors[0]
        return None

    async def next_chunk(self, it: _Iteration) -> bytes | None:
        """The next chunk of iteration ``it``, or None at the end."""
        while True:
            if it.finished:
                return None
            if it.closed:
                # aclose() from another task: never pass a truncated file off as complete
                raise LocalProtocolError("the download was closed")
            if self._nursery is not None:
                # Owned by an `async with` block: fetch ahead in its nursery.
                self._fill(it, self._nursery)
                data = self._take(it)
                if data is None:
                    await it.changed.wait()
                    it.changed = trio.Event()
                    continue
            else:
                # A bare iteration: this step owns its part tasks and waits for all of them.
                async with trio.open_nursery() as nursery:
                    self._fill(it, nursery)
                data = self._take(it)
                if data is None:
                    continue
            if data:
                return data
            if it.finished:
                return None


class _Parts:
    """One ``async for`` over a :class:`Download` (a class, not an async generator: nothing to
    finalize when it is abandoned -- no task outlives a step, or the ``async with`` block
    owns them)."""

    def __init__(self, download: Download, it: _Iteration) -> None:
        self._download = download
        self._it = it

    def __aiter__(self) -> _Parts:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._download.next_chunk(self._it)
        except BaseException:
            self._download.close_iteration(self._it)
            raise
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._download.close_iteration(self._it)


def file_bytes(raw: bytes | memoryview) -> bytes:
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
