"""TL binary primitives: the :class:`Reader` and the ``pack_*`` helpers (spec §2).

Theory of operation
-------------------
Everything on the wire is a sequence of little-endian 32-bit words (§2).  Writers build a list of
``bytes`` parts and join them once (``b"".join``), so serializing a 512 KiB ``upload.saveFilePart``
copies the payload exactly once.  The :class:`Reader` wraps the input in a ``memoryview`` and only
ever copies the bytes it returns (a ``bytes`` field is copied once, from the view into the result).

Every decoding failure (truncation, an impossible length, an unknown constructor id, a bad gzip
stream, a vector count larger than the bytes left) raises :class:`dcpool.errors.TLDecodeError`;
``IndexError``/``struct.error`` never escape.

Boxed objects are dispatched through ``_READERS`` (constructor id -> ``reader(r) -> object``).  The
schema runtime (:mod:`dcpool.tl._runtime`) is imported only when an id is not in that table yet, so
importing this module, and reading the handful of ids handled here (``gzip_packed``, ``Bool``,
``vector``), does not parse any schema.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Callable, Iterable, TypeVar

import attrs

from ..errors import LocalProtocolError, TLDecodeError
from . import ids

__all__ = [
    "Reader",
    "Raw",
    "pack_int",
    "pack_uint",
    "pack_long",
    "pack_ulong",
    "pack_double",
    "pack_int128",
    "pack_int256",
    "pack_bytes",
    "put_bytes",
    "pack_string",
    "pack_bool",
    "pack_vector",
    "pack_bare_vector",
    "gzip_pack",
    "MAX_GZIP_UNPACKED",
]

T = TypeVar("T")

_INT = struct.Struct("<i")
_UINT = struct.Struct("<I")
_LONG = struct.Struct("<q")
_ULONG = struct.Struct("<Q")
_DOUBLE = struct.Struct("<d")
_INT_COUNT = struct.Struct("<iI")  # vector id + count, packed in one go

_BOOL_TRUE = _UINT.pack(ids.BOOL_TRUE)
_BOOL_FALSE = _UINT.pack(ids.BOOL_FALSE)
_VECTOR = _UINT.pack(ids.VECTOR)

#: gzip_packed payloads are inflated to at most this many bytes (a "zip bomb" guard).  The largest
#: legitimate objects (upload.file, updates.difference) are far below it.
MAX_GZIP_UNPACKED = 64 * 1024 * 1024

#: Inflating stops this deep: a gzip_packed whose content is again gzip_packed is never produced
#: by a real peer, but nesting would otherwise allow unbounded work.
_MAX_GZIP_NESTING = 4

_PADDING = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")


# --------------------------------------------------------------------------- packing

def pack_int(v: int) -> bytes:
    """``int``: 4 bytes LE.  Signed by the schema; unsigned 32-bit values are accepted too
    (they are the same bits)."""
    try:
        return _INT.pack(v)
    except struct.error:
        return _pack_wide(_UINT, v, "int")


def pack_uint(v: int) -> bytes:
    """``#`` (flags) or a constructor id: 4 bytes LE, unsigned."""
    try:
        return _UINT.pack(v)
    except struct.error:
        return _pack_wide(_INT, v, "uint")


def pack_long(v: int) -> bytes:
    """``long``: 8 bytes LE; signed or unsigned 64-bit values are accepted."""
    try:
        return _LONG.pack(v)
    except struct.error:
        return _pack_wide(_ULONG, v, "long")


def pack_ulong(v: int) -> bytes:
    """8 bytes LE, unsigned (e.g. a msg_id)."""
    try:
        return _ULONG.pack(v)
    except struct.error:
        return _pack_wide(_LONG, v, "ulong")


def _pack_wide(alt: struct.Struct, v: int, what: str) -> bytes:
    # Cold path: try the other signedness, then report a clear error.
    try:
        return alt.pack(v)
    except (struct.error, TypeError):
        raise LocalProtocolError(f"cannot pack {v!r} as TL {what}") from None


def pack_double(v: float) -> bytes:
    """``double``: IEEE-754 binary64 LE."""
    try:
        return _DOUBLE.pack(v)
    except struct.error:
        raise LocalProtocolError(f"cannot pack {v!r} as TL double") from None


def pack_int128(v: bytes | int) -> bytes:
    """``int128``: 16 raw bytes (an int is taken as LE signed, as Telethon/Pyrogram do, §19 V15)."""
    return _pack_fixed(v, 16)


def pack_int256(v: bytes | int) -> bytes:
    """``int256``: 32 raw bytes."""
    return _pack_fixed(v, 32)


def _pack_fixed(v: bytes | int, n: int) -> bytes:
    if isinstance(v, int):
        try:
            return v.to_bytes(n, "little", signed=v < 0)
        except OverflowError:
            raise LocalProtocolError(f"int{n * 8} value out of range") from None
    if len(v) != n:
        raise LocalProtocolError(f"int{n * 8} needs exactly {n} bytes, got {len(v)}")
    return bytes(v)


def pack_bytes(b: bytes | bytearray | memoryview | str) -> bytes:
    """``bytes``/``string`` (§2.1): a 1-byte length (L <= 253) or 0xFE + 3-byte length, the data,
    then zero padding to a multiple of 4."""
    if isinstance(b, str):
        b = b.encode("utf-8")
    n = len(b)
    if n <= 253:
        return b"".join((bytes((n,)), b, _PADDING[(n + 1) & 3]))
    if n >= 1 << 24:
        raise LocalProtocolError(f"TL bytes too long: {n} bytes (max 2^24 - 1)")
    return b"".join((bytes((254, n & 0xFF, (n >> 8) & 0xFF, n >> 16)), b, _PADDING[n & 3]))


def put_bytes(out: list[bytes], b: bytes | bytearray | memoryview | str) -> None:
    """Append the ``bytes``/``string`` encoding of ``b`` to ``out`` as separate parts, so that
    the payload is copied only by the final ``b"".join(out)`` (hot path: file parts)."""
    if isinstance(b, str):
        b = b.encode("utf-8")
    n = len(b)
    if n <= 253:
        if n < 64:
            out.append(b"".join((bytes((n,)), b, _PADDING[(n + 1) & 3])))
            return
        out.append(bytes((n,)))
    elif n >= 1 << 24:
        raise LocalProtocolError(f"TL bytes too long: {n} bytes (max 2^24 - 1)")
    else:
        out.append(bytes((254, n & 0xFF, (n >> 8) & 0xFF, n >> 16)))
    out.append(b)  # type: ignore[arg-type]  # any buffer: b"".join copies it once, later
    pad = _PADDING[(n + 1) & 3] if n <= 253 else _PADDING[n & 3]
    if pad:
        out.append(pad)


def pack_string(s: str | bytes) -> bytes:
    """``string``: UTF-8 text in the ``bytes`` wire format (bytes are written as they are)."""
    return pack_bytes(s)


def pack_bool(v: bool) -> bytes:
    """``Bool``: boxed boolTrue#997275b5 / boolFalse#bc799737 (§2.3)."""
    return _BOOL_TRUE if v else _BOOL_FALSE


def pack_vector(items: Iterable[T], pack_item: Callable[[T], bytes]) -> bytes:
    """Boxed ``Vector<T>``: 0x1cb5c415, an int count, then the items (§2.4)."""
    parts = [pack_item(x) for x in items]
    return b"".join((_VECTOR, _INT.pack(len(parts)), *parts))


def pack_bare_vector(items: Iterable[T], pack_item: Callable[[T], bytes]) -> bytes:
    """Bare ``vector<T>``: the count and the items, no vector id (§2.4)."""
    parts = [pack_item(x) for x in items]
    return b"".join((_INT.pack(len(parts)), *parts))


def gzip_pack(obj: Any) -> bytes:
    """Serialize ``obj`` (a TL object, :class:`Raw` or boxed bytes) as ``gzip_packed`` (§2.7)::

        gzip_packed#3072cfa1 packed_data:bytes = Object;
    """
    import gzip

    data = obj if isinstance(obj, (bytes, bytearray, memoryview)) else obj.to_bytes()
    return _UINT.pack(ids.GZIP_PACKED) + pack_bytes(gzip.compress(bytes(data), 6, mtime=0))


# --------------------------------------------------------------------------- Raw


def _bytes_repr(b: bytes) -> str:
    if len(b) <= 48:
        return repr(b)
    return f"{bytes(b[:32])!r}...<{len(b)} bytes>"


@attrs.frozen(repr=False)
class Raw:
    """An already-serialized boxed TL object, written verbatim.

    Use it for ``Object``/``!X`` fields (``invokeWithLayer(layer=..., query=tl.Raw(data))``) and
    get it back where a body cannot be decoded (an unknown id inside ``msg_container``).
    """

    data: bytes = attrs.field(converter=bytes)

    @property
    def constructor_id(self) -> int | None:
        """The first 4 bytes as an unsigned id (None if there are fewer)."""
        return _UINT.unpack_from(self.data)[0] if len(self.data) >= 4 else None

    def to_bytes(self) -> bytes:
        return self.data

    def __bytes__(self) -> bytes:
        return self.data

    def _tl_write(self, out: list[bytes]) -> None:
        out.append(self.data)

    def __repr__(self) -> str:
        cid = self.constructor_id
        name = ids.NAMES.get(cid, None) if cid is not None else None
        label = f"#{cid:08x}" if cid is not None else "?"
        if name:
            label += f" {name}"
        return f"Raw({label}, {_bytes_repr(self.data)})"


# --------------------------------------------------------------------------- Reader

#: constructor id -> function(reader) reading the rest of the boxed object.  Filled lazily by the
#: schema runtime; the entries below need no schema.
_READERS: dict[int, Callable[["Reader"], Any]] = {}


class Reader:
    """Sequential reader over one buffer (``bytes``, ``bytearray`` or ``memoryview``).

    A ``bytearray`` is copied first, so that no view pins a buffer the caller may resize.
    """

    __slots__ = ("_mv", "_len", "pos", "_gzip_depth")

    def __init__(self, data: bytes | bytearray | memoryview, pos: int = 0, *, _gzip_depth: int = 0) -> None:
        if isinstance(data, bytearray):
            data = bytes(data)
        mv = memoryview(data)
        if mv.ndim != 1 or mv.itemsize != 1:
            mv = mv.cast("B")
        self._mv = mv
        self._len = len(mv)
        self.pos = pos
        self._gzip_depth = _gzip_depth

    # ----------------------------------------------------------------- state

    @property
    def remaining(self) -> int:
        return self._len - self.pos

    def _truncated(self, need: int) -> TLDecodeError:
        return TLDecodeError(
            f"truncated TL data: need {need} bytes at offset {self.pos}, {self._len - self.pos} left"
        )

    # ----------------------------------------------------------------- primitives

    def read_int(self) -> int:
        try:
            (v,) = _INT.unpack_from(self._mv, self.pos)
        except struct.error:
            raise self._truncated(4) from None
        self.pos += 4
        return v

    def read_uint(self) -> int:
        try:
            (v,) = _UINT.unpack_from(self._mv, self.pos)
        except struct.error:
            raise self._truncated(4) from None
        self.pos += 4
        return v

    def read_long(self) -> int:
        try:
            (v,) = _LONG.unpack_from(self._mv, self.pos)
        except struct.error:
            raise self._truncated(8) from None
        self.pos += 8
        return v

    def read_ulong(self) -> int:
        try:
            (v,) = _ULONG.unpack_from(self._mv, self.pos)
        except struct.error:
            raise self._truncated(8) from None
        self.pos += 8
        return v

    def read_double(self) -> float:
        try:
            (v,) = _DOUBLE.unpack_from(self._mv, self.pos)
        except struct.error:
            raise self._truncated(8) from None
        self.pos += 8
        return v

    def read_raw(self, n: int) -> memoryview:
        """The next ``n`` bytes as a read-only view (no copy)."""
        pos = self.pos
        end = pos + n
        if n < 0 or end > self._len:
            raise self._truncated(n)
        self.pos = end
        return self._mv[pos:end]

    def read_int128(self) -> bytes:
        return bytes(self.read_raw(16))

    def read_int256(self) -> bytes:
        return bytes(self.read_raw(32))

    def _read_bytes_view(self) -> memoryview:
        # §2.1: L <= 253 -> 1 length byte; 0xFE + 3-byte LE length otherwise; pad to 4.
        mv = self._mv
        pos = self.pos
        if pos >= self._len:
            raise self._truncated(1)
        n = mv[pos]
        if n < 254:
            start = pos + 1
        elif n == 254:
            if pos + 4 > self._len:
                raise self._truncated(4)
            n = mv[pos + 1] | (mv[pos + 2] << 8) | (mv[pos + 3] << 16)
            start = pos + 4
        else:
            raise TLDecodeError(f"bad TL bytes length prefix 0xff at offset {pos}")
        end = start + n
        nxt = pos + ((end - pos + 3) & ~3)
        if nxt > self._len:
            raise self._truncated(nxt - pos)
        self.pos = nxt
        return mv[start:end]

    def read_bytes(self) -> bytes:
        return bytes(self._read_bytes_view())

    def read_string(self) -> str:
        return str(self._read_bytes_view(), "utf-8", "replace")

    def read_bool(self) -> bool:
        cid = self.read_uint()
        if cid == ids.BOOL_TRUE:
            return True
        if cid == ids.BOOL_FALSE:
            return False
        if cid == ids.GZIP_PACKED:
            return self._gunzip_reader().read_bool()
        raise TLDecodeError(f"expected Bool, got constructor id 0x{cid:08x}")

    # ----------------------------------------------------------------- vectors

    def read_vector(self, read_item: Callable[[], T], min_item_size: int = 4) -> list[T]:
        """Boxed ``Vector<T>``: checks the 0x1cb5c415 id, then reads ``count`` items with
        ``read_item()`` (a zero-argument callable, typically a bound method of this reader)."""
        cid = self.read_uint()
        if cid != ids.VECTOR:
            raise TLDecodeError(f"expected Vector (0x1cb5c415), got constructor id 0x{cid:08x}")
        return self._read_items(read_item, min_item_size)

    def read_vector_long(self, *, boxed: bool = True, limit: int = 1 << 20) -> list[int]:
        """``Vector<long>`` (or bare ``vector<long>``) in one struct call: msg_id lists of the
        service messages (acks, state requests) are read on every message."""
        if boxed:
            self.expect(ids.VECTOR)
        count = self.read_int()
        if count < 0 or count > limit or count * 8 > self._len - self.pos:
            raise TLDecodeError(f"vector<long> of {count} items does not fit")
        pos = self.pos
        self.pos = pos + count * 8
        return list(struct.unpack_from(f"<{count}q", self._mv, pos))

    def expect(self, constructor: int) -> None:
        """Read a constructor id and require it to be ``constructor``."""
        got = self.read_uint()
        if got != constructor:
            raise TLDecodeError(f"expected constructor {constructor:#010x}, got {got:#010x}")

    def rest(self) -> memoryview:
        """Everything not read yet, as a view (no copy)."""
        pos = self.pos
        self.pos = self._len
        return self._mv[pos:]

    def read_bare_vector(self, read_item: Callable[[], T], min_item_size: int = 4) -> list[T]:
        """Bare ``vector<T>``: a count, then the items."""
        return self._read_items(read_item, min_item_size)

    def _read_items(self, read_item: Callable[[], T], min_item_size: int) -> list[T]:
        count = self.read_int()
        if count < 0 or count * min_item_size > self._len - self.pos:
            raise TLDecodeError(
                f"vector count {count} cannot fit the {self._len - self.pos} bytes left at offset {self.pos}"
            )
        return [read_item() for _ in range(count)]

    # ----------------------------------------------------------------- objects

    def read_object(self) -> Any:
        """One boxed object of any known id (API layer 228, layer-158-only ids, MTProto core).

        ``gzip_packed`` is inflated transparently; Bool ids give ``True``/``False``; a bare
        ``Vector`` whose item type is unknown is read as a list of boxed objects.
        """
        cid = self.read_uint()
        reader = _READERS.get(cid)
        if reader is None:
            from . import _runtime  # first use of this id: build its class (cached)

            reader = _runtime.reader_for_id(cid)
        return reader(self)

    def _gunzip_reader(self) -> "Reader":
        if self._gzip_depth >= _MAX_GZIP_NESTING:
            raise TLDecodeError("gzip_packed nested too deep")
        packed = self._read_bytes_view()
        try:
            d = zlib.decompressobj(wbits=31)  # gzip container (RFC 1952)
            data = d.decompress(packed, MAX_GZIP_UNPACKED + 1)
            if len(data) > MAX_GZIP_UNPACKED:
                raise TLDecodeError(f"gzip_packed inflates to more than {MAX_GZIP_UNPACKED} bytes")
            if not d.eof:
                raise TLDecodeError("gzip_packed stream is truncated")
        except zlib.error as exc:
            raise TLDecodeError(f"bad gzip_packed data: {exc}") from None
        return Reader(data, _gzip_depth=self._gzip_depth + 1)


def _read_gzip(r: Reader) -> Any:
    # gzip_packed#3072cfa1 packed_data:bytes = Object;   (§2.7: may replace any boxed object)
    return r._gunzip_reader().read_object()


def _read_vector_untyped(r: Reader) -> list[Any]:
    # vector#1cb5c415 {t:Type} # [ t ] = Vector t;  item type unknown here: assume boxed items.
    return r._read_items(r.read_object, 4)


_READERS[ids.GZIP_PACKED] = _read_gzip
_READERS[ids.BOOL_TRUE] = lambda r: True
_READERS[ids.BOOL_FALSE] = lambda r: False
_READERS[ids.VECTOR] = _read_vector_untyped
