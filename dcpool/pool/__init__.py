"""The pool: per-DC state, event and updates streams, the :class:`Pool` facade and
:func:`open_pool`.  See :mod:`dcpool.pool.facade` for the layout.

``Pool`` and ``open_pool`` sit *above* the router (:mod:`dcpool.router`), which sits above the
per-DC state of this package (:mod:`dcpool.pool.dc`): they are imported lazily here, so that
importing ``dcpool.pool.dc`` (as the router does) never runs the facade first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..methods import IDEMPOTENT
from .config import PoolConfig
from .events import EventStream, PoolEvent, ReceivedUpdate, UpdatesGap
from .statistics import DcStatistics, KeyState, PoolStatistics

if TYPE_CHECKING:  # pragma: no cover
    from .facade import Pool, open_pool

__all__ = [
    "open_pool",
    "Pool",
    "PoolConfig",
    "PoolEvent",
    "EventStream",
    "PoolStatistics",
    "DcStatistics",
    "KeyState",
    "ReceivedUpdate",
    "UpdatesGap",
    "IDEMPOTENT",
]


def __getattr__(name: str) -> Any:
    if name in ("Pool", "open_pool"):
        from . import facade

        value = getattr(facade, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dcpool.pool' has no attribute {name!r}")
