"""Events a transport hands to the layer above (spec §7.6, §7.7).

``receive_data`` returns a list of these, in wire order.  They are plain frozen values.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Frame:
    """One complete transport payload (an MTProto message, §3), padding and envelope removed.

    ``quick_ack_requested`` is only ever true on the server side: the client set the high bit of
    the length field, asking for a quick ack of this packet (§7.6).
    """

    payload: bytes
    quick_ack_requested: bool = False


@attrs.frozen
class TransportErrorFrame:
    """The server sent a 4-byte payload: a negative LE int32 transport error code (§7.7).

    Both Telethon and Pyrogram treat *any* 4-byte payload as an error; so do we (client side).
    """

    code: int


@attrs.frozen
class QuickAck:
    """The server acknowledged receipt of a packet sent with ``quick_ack=True`` (§7.6).

    ``token`` is the LE uint32 ``msg_key_large[0:4] | 0x80000000`` the server computed.
    """

    token: int


Event = Frame | TransportErrorFrame | QuickAck
