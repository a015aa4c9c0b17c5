"""The updates manager: every update of an account once, in order per box, across gaps,
reconnects and restarts (issue 16, ``spec/UPDATES.md`` §3).

* :mod:`.box`: the sans-IO state machine (:class:`MessageBox`): pts/qts/seq boxes, gap buffers,
  deadlines as inputs, "fetch this difference" as outputs;
* :mod:`.driver`: the trio shell on the pool's public API (:func:`open_updates`);
* :mod:`.state`: the values handed out and persisted (:class:`Update`, :class:`StateLost`,
  :class:`UpdatesState`) and the store protocol (:class:`UpdatesStateStore`);
* :mod:`.store`: in-memory and SQLite-session stores.
"""

from typing import Any

from .box import Failure, GetChannelDifference, GetDifference, GetState, MessageBox, dedupe_key
from .state import StateLost, Update, UpdatesState, UpdatesStateStore, UpdatesStatistics
from .store import MemoryUpdatesStore, SessionUpdatesStore, store_for

__all__ = [
    "open_updates",
    "UpdatesStream",
    "Update",
    "StateLost",
    "UpdatesState",
    "UpdatesStateStore",
    "UpdatesStatistics",
    "MemoryUpdatesStore",
    "SessionUpdatesStore",
    "store_for",
    "MessageBox",
    "GetState",
    "GetDifference",
    "GetChannelDifference",
    "Failure",
    "dedupe_key",
]


def __getattr__(name: str) -> Any:
    # The trio driver is imported on first use, so the sans-IO core imports no trio.
    if name in ("open_updates", "UpdatesStream"):
        from . import driver

        return getattr(driver, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
