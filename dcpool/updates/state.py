"""The values the updates manager hands out and persists (contract with ``dcpool.bridge``)."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

__all__ = ["UpdatesState", "Update", "StateLost", "UpdatesStatistics", "UpdatesStateStore"]


def _frozen_map(value: Mapping[int, int] | None) -> Mapping[int, int]:
    return types.MappingProxyType({int(k): int(v) for k, v in (value or {}).items()})


@attrs.frozen(eq=False)
class UpdatesState:
    """The persisted position of an account: ``updates.state`` plus every channel's pts."""

    pts: int
    qts: int
    date: int
    seq: int
    #: channel_id -> pts (read-only)
    channels: Mapping[int, int] = attrs.field(factory=dict, converter=_frozen_map)

    # eq/hash over a plain dict copy (a MappingProxy is neither hashable nor attrs-comparable)
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UpdatesState):
            return NotImplemented
        return (self.pts, self.qts, self.date, self.seq, dict(self.channels)) == (
            other.pts, other.qts, other.date, other.seq, dict(other.channels)
        )

    def __hash__(self) -> int:
        return hash((self.pts, self.qts, self.date, self.seq, frozenset(self.channels.items())))

    def to_json(self) -> dict[str, Any]:
        return {
            "pts": self.pts,
            "qts": self.qts,
            "date": self.date,
            "seq": self.seq,
            "channels": {str(k): v for k, v in sorted(self.channels.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpdatesState:
        return cls(
            pts=int(data["pts"]),
            qts=int(data["qts"]),
            date=int(data["date"]),
            seq=int(data["seq"]),
            channels={int(k): int(v) for k, v in dict(data.get("channels") or {}).items()},
        )


@attrs.frozen
class Update:
    """One delivered update.

    ``box`` is None for the account's common box (pts, and qts for secondary updates such as
    ``updateBotStopped``), else the channel id.  ``pts`` is the box's pts after this update
    (None for updates without one: qts updates, ``new_messages`` of a difference, updates
    outside any sequence).  ``dedupe_key`` is stable across reconnects, restarts and
    differences: a new message is keyed by (box, peer, id), an edit by (box, peer, id,
    edit_date), other sequenced updates by (box, pts) or qts.
    """

    box: int | None
    pts: int | None
    dedupe_key: str
    update: Any
    users: tuple[Any, ...]
    chats: tuple[Any, ...]
    state_after: UpdatesState


@attrs.frozen
class StateLost:
    """History of ``box`` was skipped (differenceTooLong / channelDifferenceTooLong, or the
    server no longer knew the stored position): the consumer should reload what it shows."""

    box: int | None
    state_after: UpdatesState


@attrs.frozen
class UpdatesStatistics:
    delivered: int
    gaps_opened: int
    gaps_filled: int
    differences: int
    channel_differences: int
    #: updates dropped as already handled; the sum of the next two
    duplicates_dropped: int
    #: the same push received again after it was applied (the server or network repeated it)
    duplicate_pushes: int
    #: an update that came both in a push and in a difference, dropped the second time: the
    #: pushes held in a gap buffer or received while a difference was in flight, which the
    #: difference returns as well (it answers everything after our pts).  Expected, not a fault.
    already_applied: int
    states_lost: int
    #: items waiting for the consumer
    pending: int
    #: trio seconds between an update's arrival and its hand-over, worst and last
    max_lag: float
    last_lag: float
    #: socket updates dropped because the consumer was too far behind (refetched later)
    overflow_dropped: int
    retries: int


class UpdatesStateStore(Protocol):
    """Where the manager keeps the acknowledged state (gotd's StateStorage)."""

    async def load_updates_state(self) -> UpdatesState | None: ...

    async def save_updates_state(self, state: UpdatesState) -> None: ...

    async def load_channel_access_hashes(self) -> dict[int, int]: ...

    async def save_channel_access_hash(self, channel_id: int, access_hash: int) -> None: ...
