"""MTProto transports (spec §7): sans-IO framing codecs and obfuscation.

Layer 4 of §1: frames opaque MTProto payloads for a byte stream.  Four framings
(:class:`TransportKind`: abridged, intermediate, padded intermediate, full), optionally wrapped
in obfuscated2 AES-CTR (with MTProxy secrets), and server-side detection of which one a client
speaks.  Quick acks and 4-byte transport errors surface as their own events.

* :mod:`.codecs` — the framings, encoders/decoders and their receive-side rules;
* :mod:`.obfuscation` — the 64-byte obfuscated2 header and key derivation;
* :mod:`.connection` — :class:`ClientTransport` / :class:`ServerTransport`, h11-style
  (``send_frame`` → ``data_to_send``; ``receive_data`` → events);
* :mod:`._buffer` — the linear-time receive buffer.

Nothing here does I/O, reads a clock or uses global randomness.
"""

from __future__ import annotations

from .codecs import DEFAULT_MAX_FRAME_SIZE, TransportKind
from .connection import ClientTransport, ServerTransport
from .events import Event, Frame, QuickAck, TransportErrorFrame

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "ClientTransport",
    "Event",
    "Frame",
    "QuickAck",
    "ServerTransport",
    "TransportErrorFrame",
    "TransportKind",
]
