"""What every DC of one pool shares: settings, DC table, endpoint health, storage (reads at
start, writes through the :class:`~dcpool.pool.writer.StorageWriter`), event and updates
streams, and the nursery that owns every connection task.  One owner: the pool facade."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import trio

from ..crypto.rsa import RsaPublicKey
from ..dcs import DcTable, EndpointHealth, EndpointPolicy
from ..errors import PoolClosed
from ..storage import Storage
from .config import PoolConfig
from .events import EventBus, UpdatesQueue, is_config_update
from .writer import StorageWriter

__all__ = ["PoolRuntime"]


@attrs.define(eq=False)
class PoolRuntime:
    config: PoolConfig
    test_mode: bool
    rsa_keys: dict[int, RsaPublicKey]
    table: DcTable
    storage: Storage
    writer: StorageWriter
    events: EventBus
    updates: UpdatesQueue
    #: invokeWithLayer(initConnection(...)) serialized without its query (see the facade)
    init_prefix: bytes
    policy: EndpointPolicy = attrs.field(init=False)
    health: EndpointHealth = attrs.field(factory=EndpointHealth)
    #: the last clock offset a DC taught us (spec §3.3), the start of every new DC's
    time_offset: float = 0.0
    #: set on updateConfig / updateDcOptions (the config loop waits on it)
    config_refresh: trio.Event = attrs.field(factory=trio.Event)
    nursery: trio.Nursery | None = None
    closing: bool = False
    #: connection tasks alive
    tasks: int = 0
    #: the home DC, kept by the router (its one writer): updates are taken from its main
    #: connection only
    home_dc: int = 0
    #: the router's hook for a DC that lost our auth key (−404, AUTH_KEY_DUPLICATED)
    on_key_lost: Callable[[int], None] | None = None
    #: updates dropped because they came from elsewhere than the home DC's main connection
    updates_dropped: int = 0
    #: each CDN DC's own RSA key, from help.getCdnConfig (spec §11.4), by DC id: a CDN DC's
    #: handshake accepts only its key, and the API keys are never tried there
    cdn_rsa_keys: dict[int, RsaPublicKey] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.policy = EndpointPolicy(self.table)

    @property
    def open(self) -> bool:
        return self.nursery is not None and not self.closing

    def spawn(self, fn: Callable[[], Awaitable[object]]) -> None:
        """Start a task owned by the pool (PoolClosed once it closes)."""
        if self.nursery is None or self.closing:
            raise PoolClosed("the pool is closed")
        self.nursery.start_soon(fn)

    def on_update(self, dc_id: int, body: bytes, lane: str = "main") -> None:
        if dc_id != self.home_dc or lane != "main":
            # UPDATES.md §1.1: updates belong to the home DC's main session; anything else is a
            # duplicate (or a stray) and would reach the consumer twice.
            self.updates_dropped += 1
            return
        if is_config_update(body):
            self.config_refresh.set()
        self.updates.push(dc_id, body)
