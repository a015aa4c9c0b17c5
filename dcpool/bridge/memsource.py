"""An in-memory update source yielding the updates manager's own item types, for deterministic tests and simulated fleets.

Real accounts use ``dcpool.updates.open_updates`` (:mod:`.source`); this source remains for
tests that need a deterministic burst and for ``--fleet-simulated`` without an emulator.  ``push`` makes
an item whose ``state_after`` advances a pts counter, iteration yields items in order, and
``ack`` records what the consumer acknowledged.  A source can be restarted from a saved state
(``MemoryUpdateSource(start=UpdatesState.from_json(...))``) and replays items after it,
which is how tests model at-least-once redelivery after a crash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import trio

from ..updates import StateLost, Update, UpdatesState

__all__ = ["EMPTY_STATE", "MemoryUpdateSource", "SimulatedContactSource"]


#: the position a source without a saved state starts from
EMPTY_STATE = UpdatesState(pts=0, qts=0, date=0, seq=0)


class MemoryUpdateSource:
    """A log of contract-shaped items; iteration yields those after ``start.pts``."""

    def __init__(self, start: UpdatesState | None = None) -> None:
        self.state = start or EMPTY_STATE
        self._log: list[Update | StateLost] = []
        self._changed = trio.Event()
        self.acked: list[Any] = []
        self._position = 0
        self._closed = False

    def push(self, update: Any, *, users: tuple = (), chats: tuple = (), pts_count: int = 1,
             date: int = 0) -> Update:
        """Append one update to the common box (pts advances by ``pts_count``)."""
        state = attrs.evolve(self.state, pts=self.state.pts + pts_count,
                             date=max(self.state.date, date))
        item = Update(box=None, pts=state.pts, dedupe_key=f"common:{state.pts}",
                             update=update, users=users, chats=chats, state_after=state)
        self.state = state
        self._log.append(item)
        self._changed.set()
        return item

    def lose_state(self) -> StateLost:
        item = StateLost(box=None, state_after=self.state)
        self._log.append(item)
        self._changed.set()
        return item

    def replay_from(self, state: UpdatesState | None) -> MemoryUpdateSource:
        """A new source over the same log, starting after ``state`` (a restart).  It does not see
        items pushed to this one later: push everything first, or use it for a closed log."""
        other = MemoryUpdateSource(state)
        other._log = self._log
        other.state = self.state
        other._position = sum(
            1 for item in self._log
            if state is not None and item.state_after.pts <= state.pts
        )
        return other

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    def __aiter__(self) -> AsyncIterator[Update | StateLost]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Update | StateLost]:
        while True:
            while self._position < len(self._log):
                item = self._log[self._position]
                self._position += 1
                yield item
            if self._closed:
                return
            self._changed = trio.Event()
            await self._changed.wait()

    async def ack(self, item: Any) -> None:
        self.acked.append(item)


def _contact(n: int) -> Any:
    from dcpool.tl import api  # noqa: PLC0415

    return api.User(id=1000 + n, first_name=f"Contact{n}", last_name="Sim", username=f"sim{n}",
                    phone=f"99966{n:05d}", access_hash=n)


def simulated_update(pts: int, contacts: int = 3, now: int | None = None) -> tuple[Any, tuple[Any, ...]]:
    """Update number ``pts`` of the simulated contacts' conversation (deterministic: a restart
    regenerates the same update for the same pts).  Every 10th is a read receipt, every 7th an
    edit, the rest new messages."""
    from dcpool.tl import api  # noqa: PLC0415

    n = pts % contacts
    user = _contact(n)
    peer = api.PeerUser(user_id=user.id)
    date = now if now is not None else 1_700_000_000 + pts
    if pts % 10 == 0:
        return api.UpdateReadHistoryOutbox(peer=peer, max_id=pts - 1, pts=pts, pts_count=1), (user,)
    message = api.Message(id=pts, peer_id=peer, from_id=peer, date=date,
                          message=f"message {pts} from {user.first_name}")
    if pts % 7 == 0:
        return api.UpdateEditMessage(message=message, pts=pts, pts_count=1), (user,)
    return api.UpdateNewMessage(message=message, pts=pts, pts_count=1), (user,)


class SimulatedContactSource:
    """Simulated contacts writing to the account: one update every ``interval`` s (0 = as fast
    as consumed) until pts reaches ``count`` (None = forever).  Resumes after ``start``, the
    way the updates manager resumes from the stored state."""

    def __init__(self, start: UpdatesState | None = None, *, count: int | None = None,
                 interval: float = 0.5, contacts: int = 3) -> None:
        self.state = start or EMPTY_STATE
        self.count = count
        self.interval = interval
        self.contacts = contacts
        self.acked = 0

    def __aiter__(self) -> AsyncIterator[Update]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Update]:
        import time  # noqa: PLC0415

        while self.count is None or self.state.pts < self.count:
            if self.interval:
                await trio.sleep(self.interval)
            pts = self.state.pts + 1
            update, users = simulated_update(pts, self.contacts, int(time.time()))
            self.state = attrs.evolve(self.state, pts=pts, date=int(time.time()))
            yield Update(box=None, pts=pts, dedupe_key=f"common:{pts}", update=update,
                                users=users, chats=(), state_after=self.state)

    async def ack(self, item: Any) -> None:
        self.acked += 1
