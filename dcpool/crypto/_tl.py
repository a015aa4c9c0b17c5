"""The TL primitives the crypto layer needs (spec §2.1): the encoder is the TL runtime's; the
length scanner below serves the server's RSA inner-data parser, which must find where one
serialized object ends before the TL classes exist.

``string``/``bytes``: a length below 254 is one byte, then the data, then zero padding to a
multiple of 4.  Otherwise ``0xFE`` + the length as 3 little-endian bytes + the data + padding.
"""

from __future__ import annotations

from ..tl import pack_bytes

__all__ = ["int_to_be", "read_tl_bytes_len", "tl_bytes"]


def tl_bytes(data: bytes) -> bytes:
    """Serialize ``data`` as TL ``bytes`` (spec §2.1, V15): the TL runtime's encoder."""
    return pack_bytes(data)


def read_tl_bytes_len(buf: bytes, pos: int) -> int:
    """Position just after the TL ``bytes`` value that starts at ``pos``.

    Raises ``ValueError`` if the value would run past the end of ``buf``.
    """
    if pos >= len(buf):
        raise ValueError("TL bytes: truncated length")
    first = buf[pos]
    if first < 254:
        head, n = 1, first
    elif first == 254:
        if pos + 4 > len(buf):
            raise ValueError("TL bytes: truncated length")
        head, n = 4, int.from_bytes(buf[pos + 1 : pos + 4], "little")
    else:
        raise ValueError("TL bytes: 0xFF length prefix")
    end = pos + head + n
    end += -(head + n) % 4
    if end > len(buf):
        raise ValueError("TL bytes: runs past the buffer")
    return end


def int_to_be(value: int) -> bytes:
    """Minimal-length big-endian magnitude of a non-negative int (b"" for 0), as TL uses for
    RSA moduli and handshake big numbers (spec §5, §6.1)."""
    if value < 0:
        raise ValueError("negative integer")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")
