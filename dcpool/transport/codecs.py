"""The four MTProto framings (spec §7.1–§7.4, §7.6, §7.7), as sans-IO encoder/decoder pairs.

A :class:`FrameCodec` knows one :class:`TransportKind` and which side of the connection it is on.
``encode`` turns a payload into wire bytes (before any obfuscation); ``decode`` looks at a
:class:`~dcpool.transport._buffer.ReceiveBuffer` of plaintext wire bytes and either consumes one
complete unit and returns its event, or returns ``None`` and consumes nothing because the unit
is not complete yet.  Because nothing is consumed until a whole unit is present, the events
do not depend on how the stream was split into chunks.

Rules enforced on receive (each violation raises :class:`~dcpool.errors.FramingError`):

* a zero-length payload is never valid;
* abridged, intermediate and full payload lengths must be multiples of 4 (MTProto messages are,
  §3; abridged cannot even express anything else);
* a payload larger than ``max_frame_size`` is rejected as soon as its length field is read, so a
  hostile length never makes us buffer it;
* full transport: the CRC32 must match, and the packet seq must be exactly the next one
  (0, 1, 2, …).  Telethon does not check the seq; we do, because an out-of-order seq on a TCP
  stream can only mean corruption or a confused peer (§7.4).

Padded intermediate (§7.3): we *send* 0–3 random padding bytes (Telethon strips only
``len % 4``, §18.2) and *accept* any length.  The real payload length is recovered as
``len - len % 4``: MTProto payloads are multiples of 4, so the padding of a peer that follows the
0–3 rule is exactly ``len % 4``.  A peer that pads 4–15 bytes (allowed by the docs) leaves whole
4-byte words of padding at the end of the payload; only the MTProto layer can tell them apart
(unencrypted: 20 + message_length; encrypted: 24 + 16k), and it ignores trailing bytes.

Client-side specials (§7.6, §7.7):

* any 4-byte payload is a :class:`TransportErrorFrame` (signed LE int32);
* abridged: a first byte with the MSB set starts a 4-byte byte-swapped quick-ack token;
* intermediate and padded: a length with bit 31 set is a quick-ack token (as tdlib reads it);
  padded also has the framed form ``FF FF FF FF + token + random`` (8–16 bytes);
* full: a negative length word is an *unframed* transport error (Telethon issue #4042: the
  server was seen sending ``-429`` as bare words); each such word becomes one
  :class:`TransportErrorFrame`.

Server side: the high bit of the length field (abridged first byte, intermediate/padded bit 31)
is the client's quick-ack request, reported as ``Frame.quick_ack_requested``.
"""

from __future__ import annotations

import enum
import zlib

from ..crypto import Rng
from ..errors import FramingError, LocalProtocolError
from ._buffer import ReceiveBuffer
from .events import Event, Frame, QuickAck, TransportErrorFrame

#: Largest payload accepted (and sent) by default: 4 MiB.  The biggest legitimate MTProto
#: packet is around 1 MiB (upload.getFile limit 1 MiB / saveBigFilePart 512 KiB plus the
#: envelope; Telethon caps containers at 1044448 bytes, §18.13).  4 MiB leaves a wide margin for
#: future limits while a hostile length field can make us buffer at most 4 MiB per connection.
DEFAULT_MAX_FRAME_SIZE = 4 * 1024 * 1024

_QUICK_ACK_BIT = 0x80000000
_PADDED_QUICK_ACK_MARK = b"\xff\xff\xff\xff"
_ABRIDGED_MAX_WORDS = 1 << 24  # 3-byte length in 4-byte words


class TransportKind(enum.Enum):
    ABRIDGED = "abridged"
    INTERMEDIATE = "intermediate"
    PADDED_INTERMEDIATE = "padded_intermediate"
    FULL = "full"


#: The plain initial tag a client sends (§7.1–§7.3); full has none (§7.4).
PLAIN_TAGS: dict[TransportKind, bytes] = {
    TransportKind.ABRIDGED: b"\xef",
    TransportKind.INTERMEDIATE: b"\xee\xee\xee\xee",
    TransportKind.PADDED_INTERMEDIATE: b"\xdd\xdd\xdd\xdd",
    TransportKind.FULL: b"",
}


def encode_abridged(payload: bytes, quick_ack: bool = False) -> bytes:
    """Abridged header (§7.1): ``len/4`` in one byte, or ``0x7f`` + 3 bytes LE."""
    words = len(payload) >> 2
    flag = 0x80 if quick_ack else 0
    if words < 0x7F:
        return bytes((words | flag,))
    return bytes((0x7F | flag,)) + words.to_bytes(3, "little")


def encode_intermediate(length: int, quick_ack: bool = False) -> bytes:
    """Intermediate / padded header (§7.2, §7.3): 4-byte LE length, bit 31 = quick-ack request."""
    return (length | (_QUICK_ACK_BIT if quick_ack else 0)).to_bytes(4, "little")


def encode_full(payload: bytes, seq: int) -> bytes:
    """A whole full-transport packet (§7.4): ``len | seq | payload | crc32``; len counts all."""
    head = (len(payload) + 12).to_bytes(4, "little") + seq.to_bytes(4, "little")
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + payload + crc.to_bytes(4, "little")


class FrameCodec:
    """Encoder + decoder of one framing for one side of a connection (see module docstring)."""

    __slots__ = ("kind", "is_client", "max_frame_size", "_rng", "_send_seq", "_recv_seq")

    def __init__(self, kind: TransportKind, *, is_client: bool, rng: Rng, max_frame_size: int) -> None:
        self.kind = kind
        self.is_client = is_client
        self.max_frame_size = max_frame_size
        self._rng = rng
        # §7.4: per-direction, per-connection packet counters, both starting at 0.
        self._send_seq = 0
        self._recv_seq = 0

    # ------------------------------------------------------------------ encoding

    def check_payload(self, payload: bytes) -> None:
        n = len(payload)
        if n == 0:
            raise LocalProtocolError("cannot send an empty transport frame")
        if n % 4:
            raise LocalProtocolError(f"payload length {n} is not a multiple of 4")
        if n > self.max_frame_size:
            raise LocalProtocolError(f"payload of {n} bytes exceeds max_frame_size={self.max_frame_size}")

    def encode(self, payload: bytes, quick_ack: bool = False) -> list[bytes]:
        """Wire pieces for one payload (pieces, so a 1 MiB payload is not copied to prepend 4 bytes)."""
        kind = self.kind
        if kind is TransportKind.ABRIDGED:
            if (len(payload) >> 2) >= _ABRIDGED_MAX_WORDS:
                raise LocalProtocolError("payload too large for the abridged transport")
            return [encode_abridged(payload, quick_ack), payload]
        if kind is TransportKind.INTERMEDIATE:
            return [encode_intermediate(len(payload), quick_ack), payload]
        if kind is TransportKind.PADDED_INTERMEDIATE:
            # §7.3 / §18.2: 0–3 random padding bytes, so Telethon's `len % 4` stripping works.
            pad = self._rng(1)[0] & 3
            padding = self._rng(pad) if pad else b""
            return [encode_intermediate(len(payload) + pad, quick_ack), payload, padding]
        if quick_ack:
            raise LocalProtocolError("the full transport has no quick-ack flag")
        seq = self._send_seq
        self._send_seq = (seq + 1) & 0xFFFFFFFF
        head = (len(payload) + 12).to_bytes(4, "little") + seq.to_bytes(4, "little")
        crc = zlib.crc32(payload, zlib.crc32(head))
        return [head, payload, crc.to_bytes(4, "little")]

    def encode_quick_ack(self, token: int) -> list[bytes]:
        """Server → client quick ack, unframed or framed as §7.6 prescribes per transport."""
        if not 0 <= token <= 0xFFFFFFFF:
            raise LocalProtocolError("quick-ack token must be a uint32")
        token |= _QUICK_ACK_BIT
        kind = self.kind
        if kind is TransportKind.ABRIDGED:
            return [token.to_bytes(4, "big")]  # byte-swapped: first wire byte has its MSB set
        if kind is TransportKind.INTERMEDIATE:
            return [token.to_bytes(4, "little")]  # an impossible length >= 2**31
        if kind is TransportKind.PADDED_INTERMEDIATE:
            return self.encode(_PADDED_QUICK_ACK_MARK + token.to_bytes(4, "little"))
        raise LocalProtocolError("the full transport has no quick acks")

    # ------------------------------------------------------------------ decoding

    def decode(self, buf: ReceiveBuffer) -> Event | None:
        kind = self.kind
        if kind is TransportKind.ABRIDGED:
            return self._decode_abridged(buf)
        if kind is TransportKind.FULL:
            return self._decode_full(buf)
        return self._decode_intermediate(buf, padded=kind is TransportKind.PADDED_INTERMEDIATE)

    def _payload_event(self, payload: bytes, quick_ack_requested: bool) -> Event:
        if self.is_client:
            if len(payload) == 4:  # §7.7: any 4-byte payload is a transport error
                return TransportErrorFrame(int.from_bytes(payload, "little", signed=True))
            return Frame(payload)
        return Frame(payload, quick_ack_requested)

    def _check_length(self, length: int) -> None:
        if length == 0:
            raise FramingError("zero-length transport frame")
        if length % 4:
            raise FramingError(f"frame length {length} is not a multiple of 4")
        if length > self.max_frame_size:
            raise FramingError(f"frame of {length} bytes exceeds max_frame_size={self.max_frame_size}")

    def _decode_abridged(self, buf: ReceiveBuffer) -> Event | None:
        avail = len(buf)
        if avail < 1:
            return None
        first = buf.byte(0)
        quick_ack = False
        if first & 0x80:
            if self.is_client:
                # §7.6: the server's quick ack, 4 bytes byte-swapped (big-endian token).
                if avail < 4:
                    return None
                return QuickAck(int.from_bytes(buf.take(4), "big"))
            quick_ack = True  # client asks for a quick ack of this packet
            first &= 0x7F
        if first == 0x7F:
            if avail < 4:
                return None
            words = int.from_bytes(buf.peek(1, 4), "little")
            head = 4
        else:
            words = first
            head = 1
        length = words * 4
        self._check_length(length)
        if avail < head + length:
            return None
        buf.skip(head)
        return self._payload_event(buf.take(length), quick_ack)

    def _decode_intermediate(self, buf: ReceiveBuffer, *, padded: bool) -> Event | None:
        avail = len(buf)
        if avail < 4:
            return None
        word = int.from_bytes(buf.peek(0, 4), "little")
        quick_ack = False
        if word & _QUICK_ACK_BIT:
            if self.is_client:
                buf.skip(4)
                return QuickAck(word)
            quick_ack = True
            word &= ~_QUICK_ACK_BIT
        length = word
        if padded:
            if length == 0:
                raise FramingError("zero-length transport frame")
            if length > self.max_frame_size + 15:  # the docs allow up to 15 padding bytes
                raise FramingError(f"frame of {length} bytes exceeds max_frame_size={self.max_frame_size}")
            if length < 4:
                raise FramingError(f"padded frame of {length} bytes holds no payload")
        else:
            self._check_length(length)
        if avail < 4 + length:
            return None
        buf.skip(4)
        if not padded:
            return self._payload_event(buf.take(length), quick_ack)
        pad = length % 4
        payload = buf.take(length - pad)
        buf.skip(pad)
        if (
            self.is_client
            and 8 <= len(payload) <= 16
            and payload.startswith(_PADDED_QUICK_ACK_MARK)
        ):
            # §7.6: padded quick ack = FF FF FF FF + token + 0–8 random bytes, framed.
            return QuickAck(int.from_bytes(payload[4:8], "little"))
        return self._payload_event(payload, quick_ack)

    def _decode_full(self, buf: ReceiveBuffer) -> Event | None:
        avail = len(buf)
        if avail < 4:
            return None
        raw = buf.peek(0, 4)
        length = int.from_bytes(raw, "little")
        if self.is_client and length & _QUICK_ACK_BIT:
            # Unframed transport error word (negative int32), as seen from Telegram with -429.
            buf.skip(4)
            return TransportErrorFrame(int.from_bytes(raw, "little", signed=True))
        if length < 12:
            raise FramingError(f"full-transport length {length} is shorter than its 12-byte envelope")
        self._check_length(length - 12)
        if avail < length:
            return None
        packet = buf.take(length)
        body_end = length - 4
        crc = zlib.crc32(memoryview(packet)[:body_end])
        if crc != int.from_bytes(packet[body_end:], "little"):
            raise FramingError("full-transport CRC32 mismatch")
        seq = int.from_bytes(packet[4:8], "little")
        if seq != self._recv_seq:
            raise FramingError(f"full-transport seq {seq} out of order (expected {self._recv_seq})")
        self._recv_seq = (seq + 1) & 0xFFFFFFFF
        return self._payload_event(packet[8:body_end], False)
