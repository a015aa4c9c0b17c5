"""Routed, parallel, memory-bounded downloads (spec §13.2).

:class:`Download` is an async iterator of a file's chunks in file order.  It goes straight to
the file's DC (the ``dc_id`` hint) through that DC's *download lane* (media-only endpoints
preferred), keeps up to ``parallel`` ``upload.getFile`` requests in flight, and holds at most
``parallel`` parts in memory: a part is only requested once there is room for its result
(``buffered_bytes`` counts what is held, for tests).  A wrong hint costs one round trip:
``FILE_MIGRATE_X`` is followed by the pool and the correction is remembered per file.

Offset/limit rules: ``part_size`` must divide 1 MiB and be a multiple of 4 KiB, so no request
crosses a 1 MiB boundary; offsets are multiples of ``part_size``.  The end of the file is the
first short part (or ``size`` when known).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import trio

from .. import tl
from ..errors import FileMigrate, LocalProtocolError

if TYPE_CHECKING:
    from ..pool.pool import Pool

#: file id -> DC learnt from FILE_MIGRATE (a wrong hint is corrected once, then remembered)
_DC_CORRECTIONS: dict[int, int] = {}


class Download:
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
        self.dc_id = _DC_CORRECTIONS.get(key, dc_id) if key is not None else dc_id
        self._key = key
        self.size = size
        self.part_size = part_size
        self.parallel = parallel
        self.offset = offset
        self.buffered_bytes = 0
        self.peak_buffered_bytes = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _fetch(self, offset: int) -> bytes:
        request = tl.api.upload.GetFile(location=self.location, offset=offset, limit=self.part_size)
        body = request.to_bytes()
        dc = self.dc_id if self.dc_id is not None else self.pool.home_dc
        while True:
            try:
                raw = await self.pool.migrator.run("upload.getFile", body, dc_id=dc, timeout=...,
                                                   lane="download", idempotent=True)
                break
            except FileMigrate as exc:
                dc = exc.dc_id
                self.dc_id = dc
                if self._key is not None:
                    _DC_CORRECTIONS[self._key] = dc
        return _file_bytes(raw)

    async def _iterate(self) -> AsyncIterator[bytes]:
        # Workers run in the pool's nursery (they are owned by the pool and cancelled here when
        # the consumer stops early): yielding from inside a nursery of our own would let
        # cancellation leak into the consumer's frame.
        pool = self.pool
        if pool._nursery is None:
            raise LocalProtocolError("the pool is closed")
        results: dict[int, bytes] = {}
        errors: list[BaseException] = []
        scopes: set[trio.CancelScope] = set()
        changed = trio.Event()
        next_offset = self.offset
        next_yield = self.offset
        eof_at: int | None = self.size
        in_flight = 0

        async def worker(offset: int) -> None:
            nonlocal in_flight, eof_at
            with trio.CancelScope() as scope:
                scopes.add(scope)
                try:
                    data = await self._fetch(offset)
                except Exception as exc:  # handed to the consumer, raised there
                    errors.append(exc)
                    changed.set()
                    return
                finally:
                    scopes.discard(scope)
                    in_flight -= 1
                results[offset] = data
                self.buffered_bytes += len(data)
                self.peak_buffered_bytes = max(self.peak_buffered_bytes, self.buffered_bytes)
                if len(data) < self.part_size and (eof_at is None or offset + len(data) < eof_at):
                    eof_at = offset + len(data)
                changed.set()

        try:
            while True:
                # Room = parts in flight + parts held, both bounded by `parallel`.
                while (in_flight + len(results) < self.parallel
                       and (eof_at is None or next_offset < eof_at)):
                    in_flight += 1
                    pool._nursery.start_soon(worker, next_offset)
                    next_offset += self.part_size
                if next_yield in results:
                    data = results.pop(next_yield)
                    self.buffered_bytes -= len(data)
                    next_yield += self.part_size
                    if data:
                        yield data
                    if len(data) < self.part_size or (eof_at is not None and next_yield >= eof_at):
                        return
                    continue
                if errors:
                    raise errors[0]
                if eof_at is not None and next_yield >= eof_at:
                    return
                await changed.wait()
                changed = trio.Event()
        finally:
            for scope in list(scopes):
                scope.cancel()
            self.buffered_bytes -= sum(len(d) for d in results.values())
            results.clear()


def _file_bytes(raw: bytes) -> bytes:
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
