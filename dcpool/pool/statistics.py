"""Frozen statistics of the pool and its DCs (trio style: ``pool.statistics()``)."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

__all__ = ["KeyState", "DcStatistics", "PoolStatistics"]


class KeyState(enum.StrEnum):
    """Where a DC stands with us."""

    #: no auth key yet
    NONE = "none"
    #: an auth key, not logged in
    KEYED = "keyed"
    #: an auth key logged in as the pool's user (signed in here, or a transfer imported)
    AUTHORIZED = "authorized"


@attrs.frozen
class DcStatistics:
    dc_id: int
    endpoint: str | None
    key_state: KeyState
    connections: Mapping[str, int]  # live connections per lane
    in_flight: int
    reconnects: int
    backoff_until: float | None
    requests: int
    migrations: int
    exports: int
    imports: int
    bytes_received: int
    #: received frames decrypted in a worker thread (PoolConfig.decrypt_in_thread)
    thread_decryptions: int = 0


@attrs.frozen
class PoolStatistics:
    home_dc: int
    dcs: Mapping[int, DcStatistics]
    in_flight: int
    tasks: int
    migrations: int
    transfers: int
    # authorization transfers by outcome (transfers = the completed ones), see dcpool.router
    transfers_started: int = 0
    transfers_failed: int = 0
    transfer_flood_waits: int = 0
    #: FLOOD_WAIT-family answers waited out and re-sent (see dcpool.router), and their seconds
    flood_waits: int = 0
    flood_wait_seconds: float = 0.0
    #: 500-class answers retried with backoff (idempotent requests only)
    server_retries: int = 0
    #: CONNECTION_NOT_INITED / CONNECTION_LAYER_INVALID answers re-sent with initConnection
    reinits: int = 0
    #: times the login was lost or logged out (LOGIN.md §5)
    logouts: int = 0
    #: updates that arrived anywhere but the home DC's main connection (dropped)
    updates_dropped: int = 0
    #: open ``pool.events()`` subscriptions
    event_subscribers: int = 0
    #: storage writes queued, not yet on disk (see dcpool.pool.writer)
    storage_backlog: int = 0

    def __getitem__(self, dc_id: int) -> DcStatistics:
        return self.dcs[dc_id]
