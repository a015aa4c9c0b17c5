"""Parallel, memory-bounded uploads (spec §13.1; issue 15), owned by the caller.

:func:`upload_file` cuts a source into parts of ``part_size`` bytes and saves them on one DC
(the home DC when the upload starts) over that DC's *upload lane* (its own connections, so
parts never queue behind API calls or downloads):

* up to 10 MiB: ``upload.saveFilePart`` and an ``inputFile`` carrying the hex MD5 of the
  content; above: ``upload.saveBigFilePart`` (every part repeats ``file_total_parts``) and an
  ``inputFileBig`` (no MD5);

  upload.saveFilePart#b304a621 file_id:long file_part:int bytes:bytes = Bool;
  upload.saveBigFilePart#de7b673d file_id:long file_part:int file_total_parts:int bytes:bytes = Bool;
  inputFile#f52ff27f id:long parts:int name:string md5_checksum:string = InputFile;
  inputFileBig#fa4f0bb5 id:long parts:int name:string = InputFile;

* parts are read in order, one at a time, and at most ``parallel`` of them exist at once (read,
  in flight, or being re-sent): memory is bounded by ``parallel x part_size`` whatever the
  source (bytes are sliced, files read part by part on a worker thread, async iterables
  re-chunked);
* saving a part is idempotent (the same bytes under the same number): a part whose connection
  died is re-sent by the connection layer (``methods.IDEMPOTENT``), never an OutcomeUnknown;
* ``progress(sent_bytes, total_bytes)`` after each part the DC acknowledged with boolTrue;
* the whole upload runs in a nursery of the caller's task: a cancellation (or an error in one
  part) cancels every part in flight and withdraws its request before the call returns.

Part rules (spec §13.1, checked locally before anything is sent): ``part_size`` is a multiple
of 1 KiB dividing 512 KiB; at most :data:`MAX_PARTS` parts; a 0-byte file is
:class:`~dcpool.errors.EmptyUpload` (Telegram answers FILE_PARTS_INVALID to it).

``FILE_PART_X_MISSING`` comes later, from the method that *uses* the file (``messages.
uploadMedia``, ``messages.sendMedia``): :func:`send_uploaded` sends such a request and re-sends
part X from the source (bytes or a path: they can be read again) until the DC has them all.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterable, Callable
from typing import Any, Protocol

import trio

from .. import tl
from ..dcs import Lane
from ..errors import (
    EmptyUpload,
    LocalProtocolError,
    RpcError,
    UploadPartMissing,
    UploadSourceMismatch,
    UploadTooBig,
)
from ..router import Router

__all__ = [
    "BIG_FILE_THRESHOLD",
    "MAX_PARTS",
    "Source",
    "send_uploaded",
    "upload_file",
]

#: above this size a file is "big" (saveBigFilePart / inputFileBig), spec §13.1
BIG_FILE_THRESHOLD = 10 * 1024 * 1024
#: appConfig ``upload_max_fileparts_default``
MAX_PARTS = 4000
MAX_PART_SIZE = 512 * 1024

Source = bytes | bytearray | memoryview | str | os.PathLike[str] | AsyncIterable[bytes]
Progress = Callable[[int, int], None]


def check_part_size(part_size: int) -> None:
    if part_size <= 0 or part_size % 1024 or MAX_PART_SIZE % part_size:
        raise LocalProtocolError("part_size must be a multiple of 1 KiB dividing 512 KiB")


class _Reader(Protocol):
    async def read(self, n: int) -> bytes: ...
    async def aclose(self) -> None: ...


class _BytesReader:
    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._at = 0

    async def read(self, n: int) -> bytes:
        chunk = bytes(self._data[self._at : self._at + n])
        self._at += len(chunk)
        return chunk

    async def aclose(self) -> None:
        pass


class _FileReader:
    """A file read part by part on a worker thread (no blocking I/O on the event loop)."""

    def __init__(self, file: Any) -> None:
        self._file = file

    async def read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = await self._file.read(n - len(out))
            if not chunk:
                break
            out += chunk
        return out

    async def aclose(self) -> None:
        await self._file.aclose()


class _StreamReader:
    """An async iterable of chunks of any size, re-chunked into parts (holds at most one part
    plus one incoming chunk)."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._it = chunks.__aiter__()
        self._buffer = bytearray()
        self._done = False

    async def read(self, n: int) -> bytes:
        while len(self._buffer) < n and not self._done:
            try:
                chunk = await self._it.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            self._buffer += chunk
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    async def aclose(self) -> None:
        close = getattr(self._it, "aclose", None)
        if close is not None:
            await close()


def _is_path(source: Any) -> bool:
    return isinstance(source, str | os.PathLike)


async def _open(source: Source, size: int | None) -> tuple[_Reader, int]:
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        if size is not None and size != len(view):
            raise UploadSourceMismatch(f"size={size} but the source has {len(view)} bytes")
        return _BytesReader(view), len(view)
    if _is_path(source):
        path = trio.Path(os.fspath(source))  # type: ignore[arg-type]
        real = (await path.stat()).st_size
        if size is not None and size != real:
            raise UploadSourceMismatch(f"size={size} but the file has {real} bytes")
        return _FileReader(await path.open("rb")), real
    if isinstance(source, AsyncIterable):
        if size is None:
            # the kind of upload (and every saveBigFilePart's file_total_parts) depends on it
            raise LocalProtocolError("size is required when the source is an async iterable")
        return _StreamReader(source), size
    raise LocalProtocolError(f"cannot upload from a {type(source).__name__}")


def _file_name(source: Source, file_name: str | None) -> str:
    if file_name is not None:
        return file_name
    if _is_path(source):
        return os.path.basename(os.fspath(source))  # type: ignore[arg-type]
    return "file"


def _new_file_id(rng: Callable[[int], bytes]) -> int:
    # a random long, unique per upload session (spec §13.1); positive, never 0
    return (int.from_bytes(rng(8), "little") & ((1 << 63) - 1)) or 1


def _part_body(file_id: int, index: int, data: bytes, *, big: bool, total: int) -> tuple[str, bytes]:
    if big:
        q: Any = tl.api.upload.SaveBigFilePart(file_id=file_id, file_part=index,
                                                file_total_parts=total, bytes=data)
    else:
        q = tl.api.upload.SaveFilePart(file_id=file_id, file_part=index, bytes=data)
    return type(q).QUALNAME, q.to_bytes()


async def _save_part(router: Router, dc_id: int, file_id: int, index: int, data: bytes, *,
                     big: bool, total: int, timeout: float | None) -> None:
    name, body = _part_body(file_id, index, data, big=big, total=total)
    raw, _ = await router.call(name, body, dc_id=dc_id, lane=Lane.UPLOAD, timeout=timeout,
                               idempotent=True)
    if tl.loads(raw) is not True:
        # boolFalse: the DC did not store the part (never seen in practice; say it)
        raise UploadPartMissing(f"the DC refused part {index} of file {file_id}")


async def upload_file(router: Router, source: Source, *, size: int | None = None,
                      parallel: int = 4, part_size: int = MAX_PART_SIZE,
                      progress: Progress | None = None, file_name: str | None = None,
                      timeout: float | None = None, rng: Callable[[int], bytes] = os.urandom,
                      dc_id: int | None = None) -> Any:
    """Upload ``source`` and return the ``inputFile`` / ``inputFileBig`` naming it (see the
    module docstring).  ``timeout`` bounds each part; ``dc_id`` (default: the home DC at the
    start) is where the parts go -- the file can only be used there."""
    check_part_size(part_size)
    if parallel < 1:
        raise LocalProtocolError("parallel must be >= 1")
    if size is not None and size < 0:
        raise LocalProtocolError("size must be >= 0")
    if size == 0:
        raise EmptyUpload("Telegram refuses empty files (FILE_PARTS_INVALID)")
    name = _file_name(source, file_name)
    reader, total_size = await _open(source, size)
    try:
        if total_size == 0:
            raise EmptyUpload("Telegram refuses empty files (FILE_PARTS_INVALID)")
        parts = -(-total_size // part_size)
        if parts > MAX_PARTS:
            raise UploadTooBig(f"{total_size} bytes make {parts} parts of {part_size} bytes "
                               f"(at most {MAX_PARTS})")
        big = total_size > BIG_FILE_THRESHOLD
        target = router.home_dc if dc_id is None else dc_id
        file_id = _new_file_id(rng)
        md5 = None if big else hashlib.md5()
        room = trio.Semaphore(parallel)
        sent = 0

        async def send(index: int, data: bytes) -> None:
            nonlocal sent
            try:
                await _save_part(router, target, file_id, index, data, big=big, total=parts,
                                 timeout=timeout)
            finally:
                room.release()
            sent += len(data)
            if progress is not None:
                progress(sent, total_size)

        try:
            async with trio.open_nursery() as nursery:
                await _feed(nursery, reader, room, send, parts, part_size, total_size, md5)
        except BaseExceptionGroup as group:
            first = _first_error(group)
            if first is None:
                raise  # only cancellations: trio's cancel scopes take the group as it is
            raise first from None
    finally:
        with trio.CancelScope(shield=True):
            await reader.aclose()
    if md5 is None:
        return tl.api.InputFileBig(id=file_id, parts=parts, name=name)
    return tl.api.InputFile(id=file_id, parts=parts, name=name, md5_checksum=md5.hexdigest())


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The first exception of a nursery's group that is not a cancellation (a part's RPC
    error, a source that misbehaved), or None: the caller gets one precise exception."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            inner = _first_error(exc)
            if inner is not None:
                return inner
        elif not isinstance(exc, trio.Cancelled):
            return exc
    return None


async def _feed(nursery: trio.Nursery, reader: _Reader, room: trio.Semaphore, send: Any,
                parts: int, part_size: int, total_size: int, md5: Any) -> None:
    """Read the parts in order and start a task for each, ``parallel`` at most at a time."""
    for index in range(parts):
        await room.acquire()  # at most `parallel` parts exist at once
        want = min(part_size, total_size - index * part_size)
        data = await reader.read(want)
        if len(data) != want:
            raise UploadSourceMismatch(
                f"the source ended at {index * part_size + len(data)} of {total_size} bytes")
        if md5 is not None:
            md5.update(data)
        nursery.start_soon(send, index, data)
    if await reader.read(1):
        raise UploadSourceMismatch(f"the source has more than {total_size} bytes")


def input_file_of(request: Any) -> Any:
    """The ``InputFile`` / ``InputFileBig`` a request uses (``media.file``, or ``file``)."""
    for holder in (getattr(request, "media", None), request):
        candidate = getattr(holder, "file", None)
        if candidate is not None and getattr(candidate, "parts", None) is not None:
            return candidate
    return None


async def _read_part(source: Source, index: int, part_size: int) -> bytes:
    at = index * part_size
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(memoryview(source).cast("B")[at : at + part_size])
    if _is_path(source):
        file: Any = await trio.open_file(os.fspath(source), "rb")  # type: ignore[arg-type]
        async with file:
            await file.seek(at)
            return bytes(await file.read(part_size))
    raise UploadPartMissing("an async iterable cannot be read again to re-send a missing part")


async def send_uploaded(router: Router, request: Any, source: Source, *,
                        part_size: int = MAX_PART_SIZE, timeout: float | None = None,
                        dc_id: int | None = None) -> Any:
    """Send ``request`` (e.g. ``messages.sendMedia`` with ``InputMediaUploadedDocument``),
    re-sending every part the DC reports missing (``FILE_PART_X_MISSING``) from ``source``
    and trying again; the same part missing twice is :class:`UploadPartMissing`.

    The request goes to ``dc_id`` (default: the home DC), where the parts were saved."""
    check_part_size(part_size)
    input_file = input_file_of(request)
    if input_file is None:
        raise LocalProtocolError("the request uses no InputFile")
    big = isinstance(input_file, tl.api.InputFileBig)
    name = type(request).QUALNAME
    resent: set[int] = set()
    while True:
        target = router.home_dc if dc_id is None else dc_id
        try:
            raw, _ = await router.call(name, request.to_bytes(), dc_id=target, lane=Lane.MAIN,
                                       timeout=timeout)
            return type(request).read_result(raw)
        except RpcError as exc:
            if exc.name != "FILE_PART_X_MISSING" or exc.value is None:
                raise
            index = exc.value
            if index in resent or not 0 <= index < input_file.parts:
                raise UploadPartMissing(f"part {index} of file {input_file.id} is still missing "
                                        f"after it was re-sent") from exc
            resent.add(index)
        data = await _read_part(source, index, part_size)
        if not data:
            raise UploadPartMissing(f"the source has no part {index}")
        await _save_part(router, target, input_file.id, index, data, big=big,
                         total=input_file.parts, timeout=timeout)
