"""The pool: per-DC sessions and lanes behind one ``invoke``.  See :mod:`dcpool.pool.pool`."""

from .pool import (
    IDEMPOTENT,
    DcStatistics,
    Pool,
    PoolEvent,
    PoolStatistics,
    ReceivedUpdate,
    UpdatesGap,
    open_pool,
)

__all__ = [
    "open_pool",
    "Pool",
    "PoolEvent",
    "PoolStatistics",
    "DcStatistics",
    "ReceivedUpdate",
    "UpdatesGap",
    "IDEMPOTENT",
]
