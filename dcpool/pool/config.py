"""The pool's settings: one frozen value, validated once (an unknown option is a TypeError)."""

from __future__ import annotations

import os
from typing import Any
import attrs

from ..crypto import Rng
from ..transport import TransportKind

__all__ = ["PoolConfig"]


def _positive(_: object, attribute: Any, value: Any) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen(kw_only=True)
class PoolConfig:
    """Everything :func:`~dcpool.open_pool` can tune (all keyword arguments of ``open_pool``
    too).  Times are seconds of trio's clock."""

    #: framing of every connection (spec §4)
    transport: TransportKind = TransportKind.ABRIDGED
    #: obfuscate every connection (spec §4.5), not only where the DC option asks for it
    obfuscated: bool = False
    #: maximum connections of each DC's download lane
    download_connections: int = attrs.field(default=4, validator=_positive)
    #: maximum connections of one DC, all lanes together (None: main + download_connections);
    #: at the cap, calls share the DC's existing connections (MTProto multiplexes them)
    max_connections_per_dc: int | None = attrs.field(default=None, validator=attrs.validators.optional(_positive))
    #: bounds of the adaptive parts-in-flight window of downloads with parallel="auto"
    download_parts_min: int = attrs.field(default=2, validator=_positive)
    download_parts_max: int = attrs.field(default=32, validator=_positive)
    #: foreign-DC and download connections close after this long without traffic
    idle_timeout: float = attrs.field(default=60.0, validator=_positive)
    #: keep-alive ping period (spec §8.5)
    ping_interval: float = attrs.field(default=60.0, validator=_positive)
    #: bound of one dial (all endpoints of a DC raced, happy eyeballs)
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    #: failed connection attempts after which waiting calls fail instead of waiting
    connect_attempts: int = attrs.field(default=3, validator=_positive)
    #: bound of one auth-key exchange (spec §5)
    handshake_timeout: float = attrs.field(default=30.0, validator=_positive)
    #: default deadline of a whole call (hops, transfers, reconnects, retries); None: no bound
    request_timeout: float | None = 60.0
    #: prefer IPv6 endpoints (None: decide from what works)
    prefer_ipv6: bool | None = None
    #: use IPv6 endpoints at all
    allow_ipv6: bool = True
    #: migrations one call may follow (spec §9)
    max_hops: int = attrs.field(default=5, validator=_positive)
    #: FLOOD_WAIT_X, FLOOD_PREMIUM_WAIT_X, FLOOD_TEST_PHONE_WAIT_X and SLOWMODE_WAIT_X with X up
    #: to this many seconds are waited out (inside the call's deadline) and the request re-sent;
    #: above it (or past the deadline) FloodWait is raised at once.  Telethon's default: 60.
    flood_sleep_threshold: float = 60.0
    #: updates held for a lagging consumer before an UpdatesGap replaces the oldest
    updates_buffer: int = attrs.field(default=1000, validator=_positive)
    #: initConnection fields (spec §6)
    device_model: str = "dcpool"
    system_version: str = "Python"
    app_version: str = "0.1.0"
    lang_code: str = "en"
    #: randomness (tests pass a seeded one)
    rng: Rng = os.urandom
    #: fetch help.getConfig at start and when it expires (spec §11.1)
    fetch_config: bool = True
    #: perfect forward secrecy (spec §5.11): connections use temporary keys bound to the
    #: permanent one with auth.bindTempAuthKey (CDN DCs excepted), see dcpool.pool.tempkey
    pfs: bool = False
    #: seconds a temporary key lives (``expires_in``); replaced after 75 % of it, at a
    #: moment when its DC has no call in flight (at 90 % in any case)
    temp_key_lifetime: int = attrs.field(default=24 * 3600, validator=_positive)

    #: received frames larger than this many bytes (file parts) are decrypted and their
    #: msg_key checked in a worker thread (``trio.to_thread``), freeing the event loop; None:
    #: always on the event loop (see the README's benchmarks for the measured choice)
    decrypt_in_thread: int | None = attrs.field(default=None, validator=attrs.validators.optional(_positive))

    def replace(self, **changes: Any) -> PoolConfig:
        """A copy with ``changes`` (TypeError on an unknown name)."""
        return attrs.evolve(self, **changes)

