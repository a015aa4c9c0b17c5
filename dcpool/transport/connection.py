"""h11-style client and server transport state machines (spec §7).

Both sides share one shape::

    t.send_frame(payload)          # queue one frame (encoded, and encrypted if obfuscated)
    t.data_to_send() -> bytes      # drain everything queued for the socket
    t.receive_data(chunk) -> list  # feed raw socket bytes, get Frame/TransportErrorFrame/QuickAck

No I/O, no clock, no global randomness: the caller moves bytes and passes ``rng``.

The client writes its initial tag (plain ``ef``/``eeeeeeee``/``dddddddd``, nothing for full, or
the 64-byte obfuscated2 header) into the outgoing buffer at construction, so the first
``data_to_send()`` starts with it.  The server learns the transport from the first bytes it
receives (§7.5 table):

=============================  =======================================================
first bytes                    transport
=============================  =======================================================
``ef``                         abridged
``ee ee ee ee``                intermediate
``dd dd dd dd``                padded intermediate
``POST``/``GET ``/``HEAD``/    HTTP → FramingError("HTTP transport not supported")
``OPTI``
bytes 4..7 zero                full (nothing consumed: this *is* the first packet)
anything else                  64-byte obfuscated2 header; its decrypted tag at 56..60
                               must be ef/ee/dd×4 (tried with each configured secret)
=============================  =======================================================

A decision is only taken once enough bytes are buffered to take it, so detection (like the
framing) is independent of how the stream is chunked.

Errors: malformed input raises :class:`~dcpool.errors.FramingError`; the transport is then
dead and every later ``receive_data`` raises again.  Events decoded earlier in the *same*
``receive_data`` call are lost with it; the connection must be dropped anyway.
``receive_data(b"")`` is a no-op (EOF is the caller's business).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable

from ..crypto import Rng
from ..errors import FramingError, LocalProtocolError
from ._buffer import ReceiveBuffer
from .codecs import DEFAULT_MAX_FRAME_SIZE, PLAIN_TAGS, FrameCodec, TransportKind
from .events import Event
from .obfuscation import (
    HEADER_SIZE,
    Obfuscator,
    client_init,
    normalize_secret,
    server_init,
)

_HTTP_VERBS = frozenset({b"POST", b"GET ", b"HEAD", b"OPTI"})


class _Base:
    def __init__(self, rng: Rng, max_frame_size: int) -> None:
        if max_frame_size < 4:
            raise LocalProtocolError("max_frame_size must be at least 4")
        self._rng = rng
        self._max_frame_size = max_frame_size
        self._inbuf = ReceiveBuffer()
        self._outbuf = bytearray()
        self._codec: FrameCodec | None = None
        self._obfuscator: Obfuscator | None = None
        self._error: FramingError | None = None

    def data_to_send(self) -> bytes | bytearray:
        """Everything queued so far, ready for the socket (then the queue is empty).

        The buffer itself is handed over (no copy of up to a megabyte per frame); the
        transport starts a fresh one."""
        out = self._outbuf
        if not out:
            return b""
        self._outbuf = bytearray()
        return out

    def _queue(self, pieces: list[bytes]) -> None:
        obf = self._obfuscator
        for piece in pieces:
            if piece:
                self._outbuf += obf.encrypt(piece) if obf is not None else piece

    def _buffer_received(self, data: bytes | bytearray | memoryview) -> bool:
        """The common start of ``receive_data``: refuse after a failure, de-obfuscate, buffer.
        False when there is nothing new."""
        if self._error is not None:
            raise FramingError(f"transport already failed: {self._error}")
        if not data:
            return False
        if self._obfuscator is not None:
            data = self._obfuscator.decrypt(bytes(data))
        self._inbuf.append(data)
        return True

    def _decode_all(self, events: list[Event]) -> None:
        codec = self._codec
        assert codec is not None
        buf = self._inbuf
        while buf:
            event = codec.decode(buf)
            if event is None:
                break
            events.append(event)

    def _fail(self, exc: FramingError) -> FramingError:
        self._error = exc
        return exc


class ClientTransport(_Base):
    """The client end of one TCP connection.

    ``secret`` (16 bytes, ``0xdd`` + 16 bytes, or their hex) requires ``obfuscated=True``; a
    ``0xdd`` secret requires ``PADDED_INTERMEDIATE``.  ``dc_id`` is written at header bytes 60..61
    (signed int16: +10000 for test DCs, negative for media) and only exists with obfuscation;
    it is ignored for plain transports.  Quick acks are never requested unless
    ``send_frame(..., quick_ack=True)``.
    """

    def __init__(
        self,
        kind: TransportKind,
        obfuscated: bool = False,
        secret: bytes | str | None = None,
        dc_id: int | None = None,
        rng: Rng = os.urandom,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        super().__init__(rng, max_frame_size)
        self.kind = kind
        self.obfuscated = obfuscated
        key_secret, padded_required = normalize_secret(secret)
        if key_secret is not None and not obfuscated:
            raise LocalProtocolError("an MTProxy secret requires obfuscated=True")
        if padded_required and kind is not TransportKind.PADDED_INTERMEDIATE:
            raise LocalProtocolError("a 0xdd secret requires the padded intermediate transport")
        self._codec = FrameCodec(kind, is_client=True, rng=rng, max_frame_size=max_frame_size)
        if obfuscated:
            header, self._obfuscator = client_init(kind, rng, key_secret, dc_id)
            self._outbuf += header
        else:
            self._outbuf += PLAIN_TAGS[kind]

    def send_frame(self, payload: bytes, quick_ack: bool = False) -> None:
        """Queue one payload; ``quick_ack=True`` asks the server to quick-ack it (§7.6)."""
        codec = self._codec
        assert codec is not None
        payload = bytes(payload)
        codec.check_payload(payload)
        self._queue(codec.encode(payload, quick_ack))

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        if not self._buffer_received(data):
            return []
        events: list[Event] = []
        try:
            self._decode_all(events)
        except FramingError as exc:
            raise self._fail(exc) from None
        return events


class _Detect(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"


class ServerTransport(_Base):
    """The server end: detects the transport, then frames like the client (see module docs).

    ``secrets`` are the obfuscation secrets tried in order on an obfuscated2 header; ``None``
    in the list means "no secret" (direct obfuscated2).  ``allow_plain=False`` rejects the
    unobfuscated transports (an MTProxy-style front end).
    """

    def __init__(
        self,
        rng: Rng = os.urandom,
        *,
        secrets: Iterable[bytes | str | None] = (None,),
        allow_plain: bool = True,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        super().__init__(rng, max_frame_size)
        self._secrets = [normalize_secret(s)[0] for s in secrets]
        self._allow_plain = allow_plain
        self._state = _Detect.WAITING
        self.kind: TransportKind | None = None
        self.obfuscated: bool = False
        #: the (normalised, 16-byte) secret that opened the obfuscated header, if any
        self.secret: bytes | None = None
        #: the signed int16 at obfuscated header bytes 60..61; random unless the client wrote it
        self.header_dc_id: int | None = None

    # ------------------------------------------------------------------ sending

    def _running_codec(self) -> FrameCodec:
        if self._codec is None:
            raise LocalProtocolError("the client's transport is not known yet")
        return self._codec

    def send_frame(self, payload: bytes) -> None:
        codec = self._running_codec()
        payload = bytes(payload)
        codec.check_payload(payload)
        self._queue(codec.encode(payload))

    def send_transport_error(self, code: int) -> None:
        """Send a transport error (§7.7): a 4-byte negative LE int32 in the normal framing."""
        if not -0x80000000 <= code < 0:
            raise LocalProtocolError(f"transport error code must be a negative int32, got {code}")
        codec = self._running_codec()
        self._queue(codec.encode(code.to_bytes(4, "little", signed=True)))

    def send_quick_ack(self, token: int) -> None:
        """Acknowledge a packet whose Frame had ``quick_ack_requested`` (§7.6; not for full)."""
        self._queue(self._running_codec().encode_quick_ack(token))

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        if not self._buffer_received(data):
            return []
        events: list[Event] = []
        try:
            if self._state is _Detect.WAITING and not self._detect():
                return events
            self._decode_all(events)
        except FramingError as exc:
            raise self._fail(exc) from None
        return events

    def _start(self, kind: TransportKind, consumed: int) -> None:
        self._inbuf.skip(consumed)
        self.kind = kind
        self._codec = FrameCodec(
            kind, is_client=False, rng=self._rng, max_frame_size=self._max_frame_size
        )
        self._state = _Detect.RUNNING

    def _detect(self) -> bool:
        """Try to identify the transport from the buffered prefix; True once known."""
        buf = self._inbuf
        avail = len(buf)
        plain = self._allow_plain
        if buf.byte(0) == 0xEF:
            if not plain:
                raise FramingError("plain abridged transport not allowed")
            self._start(TransportKind.ABRIDGED, 1)
            return True
        if avail < 4:
            return False
        first = buf.peek(0, 4)
        if first in _HTTP_VERBS:
            raise FramingError("HTTP transport not supported")
        if first == PLAIN_TAGS[TransportKind.INTERMEDIATE] or first == PLAIN_TAGS[
            TransportKind.PADDED_INTERMEDIATE
        ]:
            if not plain:
                raise FramingError("plain intermediate transport not allowed")
            kind = (
                TransportKind.INTERMEDIATE
                if first[0] == 0xEE
                else TransportKind.PADDED_INTERMEDIATE
            )
            self._start(kind, 4)
            return True
        if avail < 8:
            return False
        if buf.peek(4, 8) == b"\x00\x00\x00\x00":
            if not plain:
                raise FramingError("plain full transport not allowed")
            self._start(TransportKind.FULL, 0)
            return True
        if avail < HEADER_SIZE:
            return False
        header = buf.peek(0, HEADER_SIZE)
        for secret in self._secrets:
            init = server_init(header, secret)
            if init is not None:
                break
        else:
            raise FramingError("obfuscated2 header has no valid protocol tag (wrong secret?)")
        self._start(init.kind, HEADER_SIZE)
        self.obfuscated = True
        self.secret = secret
        self.header_dc_id = init.dc_id
        self._obfuscator = init.obfuscator
        rest = buf.take_all()
        if rest:
            buf.append(init.obfuscator.decrypt(rest))
        return True
