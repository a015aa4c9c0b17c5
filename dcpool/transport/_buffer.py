"""A receive buffer that never copies quadratically.

Frames up to ~1 MiB arrive as many small TCP reads.  ``bytes += chunk`` followed by
``buf = buf[n:]`` would copy the whole pending buffer on every read; instead we append to one
``bytearray`` and move a read offset.  Consumed bytes are dropped from the front only when they
make up more than half of the array, so every byte is moved at most a constant number of times
(amortised linear time).
"""

from __future__ import annotations

_COMPACT_MIN = 64 * 1024


class ReceiveBuffer:
    __slots__ = ("_data", "_start")

    def __init__(self) -> None:
        self._data = bytearray()
        self._start = 0

    def __len__(self) -> int:
        return len(self._data) - self._start

    def append(self, data: bytes | bytearray | memoryview) -> None:
        self._data += data

    def byte(self, index: int) -> int:
        """The unread byte at ``index`` (caller checked ``len(self) > index``)."""
        return self._data[self._start + index]

    def peek(self, start: int, end: int) -> bytes:
        """Unread bytes ``[start:end)`` without consuming them (used for small headers)."""
        return bytes(self._data[self._start + start : self._start + end])

    def skip(self, n: int) -> None:
        self._start += n
        self._compact()

    def take(self, n: int) -> bytes:
        begin = self._start
        # One copy (a bytearray slice would be a second one); the view is released at once so
        # that the array can still be compacted.
        with memoryview(self._data) as view:
            out = bytes(view[begin : begin + n])
        self._start = begin + n
        self._compact()
        return out

    def take_all(self) -> bytes:
        return self.take(len(self))

    def _compact(self) -> None:
        start = self._start
        if start == len(self._data):
            self._data.clear()
            self._start = 0
        elif start >= _COMPACT_MIN and start * 2 >= len(self._data):
            del self._data[:start]
            self._start = 0
