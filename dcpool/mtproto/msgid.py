"""MTProto message identifiers (spec §3.3) and the replay window.

Theory of operation
-------------------
A msg_id is roughly ``unixtime * 2**32``: the high 32 bits are seconds, the low 32 bits a
fraction of the second.  The two low bits say who sent it:

* client ids are divisible by 4 (``≡ 0 mod 4``);
* server ids are odd: ``≡ 1 mod 4`` when the message answers a client message (rpc_result,
  pong, bad_msg_notification, future_salts, ...), ``≡ 3 mod 4`` otherwise (updates,
  new_session_created, msgs_ack, containers).

Within a session each side's ids must strictly increase.  Both generators below are monotonic:
when the clock does not move (or moves back) the next id is the previous one plus 4.  The
server generator is meant to be *shared by every connection of one server* (one emulated DC),
so that ids grow across all of its connections and sessions.

Nothing here reads a clock: ``now`` (unix seconds, float) is always an argument.

:class:`ReplayWindow` implements the receiver's duplicate rule of §3.3: keep the last N ids
(Telethon N = 500); an id equal to a stored one, or below the smallest stored one once the
window is full, is a replay.
"""

from __future__ import annotations

import heapq
from collections import deque

import attrs

__all__ = [
    "ClientMsgIdGenerator",
    "ServerMsgIdGenerator",
    "ReplayWindow",
    "msg_id_time",
    "time_to_msg_id",
    "is_client_msg_id",
    "is_server_msg_id",
    "is_answer_msg_id",
    "WINDOW_PAST",
    "WINDOW_FUTURE",
    "check_window",
]

#: A receiver ignores msg_ids more than this many seconds in the past (spec §3.3).
WINDOW_PAST = 300.0
#: ... or more than this many seconds in the future.
WINDOW_FUTURE = 30.0

_MASK64 = (1 << 64) - 1


def time_to_msg_id(t: float) -> int:
    """The raw (unaligned) msg_id for unix time ``t``: seconds << 32 | fraction * 2**32."""
    secs = int(t)
    frac = int((t - secs) * 4294967296.0) & 0xFFFFFFFF
    return ((secs << 32) | frac) & _MASK64


def msg_id_time(msg_id: int) -> float:
    """The unix time a msg_id claims (seconds, with the fraction)."""
    return (msg_id & _MASK64) / 4294967296.0


def is_client_msg_id(msg_id: int) -> bool:
    return msg_id % 4 == 0


def is_server_msg_id(msg_id: int) -> bool:
    return msg_id % 2 == 1


def is_answer_msg_id(msg_id: int) -> bool:
    """Server id ≡ 1 (mod 4): the message answers a client message."""
    return msg_id % 4 == 1


def check_window(msg_id: int, now: float) -> int:
    """0 if ``msg_id`` is within [now - 300 s, now + 30 s]; 16 if too old; 17 if too new.

    The numbers are the bad_msg_notification codes of §8.3 ("too low", "too high").
    """
    t = msg_id_time(msg_id)
    if t < now - WINDOW_PAST:
        return 16
    if t > now + WINDOW_FUTURE:
        return 17
    return 0


@attrs.define
class ClientMsgIdGenerator:
    """Monotonic client msg_ids (≡ 0 mod 4), derived from the corrected clock.

    ``next(now, time_offset)`` uses ``now + time_offset`` (the server's idea of the time).
    :meth:`reset` forgets the last id: used after a clock correction that moved time backwards
    (bad_msg_notification 17), otherwise monotonicity would keep the ids too high forever.
    """

    last: int = 0

    def next(self, now: float, time_offset: float = 0.0) -> int:
        msg_id = time_to_msg_id(now + time_offset) & ~3
        if msg_id <= self.last:
            msg_id = self.last + 4
        self.last = msg_id
        return msg_id

    def reset(self) -> None:
        self.last = 0


@attrs.define
class ServerMsgIdGenerator:
    """Monotonic server msg_ids: ``≡ 1 mod 4`` for answers, ``≡ 3 mod 4`` otherwise.

    One instance is shared by every connection of a server (see ``server.ServerCore``), so ids
    strictly increase across all of them, whatever their parity.
    """

    last: int = 0

    def next(self, now: float, *, answer: bool) -> int:
        base = time_to_msg_id(now) & ~3
        last_base = self.last & ~3
        if base <= last_base:
            base = last_base + 4
        msg_id = base | (1 if answer else 3)
        self.last = msg_id
        return msg_id


@attrs.define
class ReplayWindow:
    """The last ``size`` msg_ids received (spec §3.3 replay protection).

    :meth:`is_replay` is a pure query; :meth:`add` records an id.  Kept separate so that a
    receiver can run every check first and mutate its state only once all of them passed.
    """

    size: int = 500
    _order: deque[int] = attrs.field(init=False, factory=deque)
    _seen: set[int] = attrs.field(init=False, factory=set)
    # A min-heap with lazy deletion: evicting the oldest id is the common case (server ids
    # grow), and recomputing min() over the window for every message cost ~10 % of the
    # client's CPU at a few thousand small requests per second.
    _heap: list[int] = attrs.field(init=False, factory=list)
    _max: int | None = attrs.field(init=False, default=None)

    def is_replay(self, msg_id: int) -> bool:
        if msg_id in self._seen:
            return True
        # Once full, anything below the oldest remembered id may be a forgotten duplicate.
        return len(self._order) >= self.size and bool(self._heap) and msg_id < self._heap[0]

    def __contains__(self, msg_id: int) -> bool:
        return msg_id in self._seen

    def add(self, msg_id: int) -> None:
        if msg_id in self._seen:
            return
        self._order.append(msg_id)
        self._seen.add(msg_id)
        heapq.heappush(self._heap, msg_id)
        if self._max is None or msg_id > self._max:
            self._max = msg_id
        evicted_max = False
        while len(self._order) > self.size:
            old = self._order.popleft()
            self._seen.discard(old)
            evicted_max |= old == self._max
        heap, seen = self._heap, self._seen
        while heap and heap[0] not in seen:
            heapq.heappop(heap)
        if len(heap) > 4 * self.size + 64:  # stale entries piled up behind out-of-order ids
            self._heap = heap = sorted(seen)
        if evicted_max:  # only when ids arrive out of order
            self._max = max(seen) if seen else None

    def clear(self) -> None:
        self._order.clear()
        self._seen.clear()
        self._heap.clear()
        self._max = None

    @property
    def min_id(self) -> int | None:
        return self._heap[0] if self._heap else None

    @property
    def max_id(self) -> int | None:
        return self._max

    def __len__(self) -> int:
        return len(self._order)
