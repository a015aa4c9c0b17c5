"""The pool's two streams: lifecycle events (:class:`EventBus`) and server-pushed updates
(:class:`UpdatesQueue`).  Both are fed synchronously (from the receive path) and never block
it: a slow subscriber loses events, a lagging updates consumer gets an :class:`UpdatesGap`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs
import trio

from .. import tl
from ..errors import DcPoolError

__all__ = ["PoolEvent", "EventBus", "EventStream", "ReceivedUpdate", "UpdatesGap", "UpdatesQueue",
           "is_config_update"]

log = logging.getLogger("dcpool.pool")


@attrs.frozen
class PoolEvent:
    """A lifecycle event (connected, disconnected, backoff, key_created, config_refreshed,
    migrated, home_changed, transfer_started, transfer_done, transfer_failed,
    transfer_flood_wait, idle_closed)."""

    kind: str
    dc_id: int | None
    time: float
    data: Mapping[str, Any] = attrs.field(factory=dict)


class EventBus:
    """Fans events out to the subscribed streams (one owner: the pool)."""

    def __init__(self) -> None:
        self._subscribers: list[trio.MemorySendChannel[PoolEvent]] = []
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def emit(self, kind: str, dc_id: int | None, **data: Any) -> None:
        event = PoolEvent(kind, dc_id, trio.current_time(), data)
        log.debug("event %s dc=%s %s", kind, dc_id, data)
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                pass  # a slow observer loses events rather than stalling the pool
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self._subscribers.remove(channel)

    def subscribe(self, buffer: int) -> tuple[trio.MemorySendChannel[PoolEvent],
                                              trio.MemoryReceiveChannel[PoolEvent]]:
        send, recv = trio.open_memory_channel[PoolEvent](buffer)
        if self._closed:
            send.close()
        else:
            self._subscribers.append(send)
        return send, recv

    def unsubscribe(self, channel: trio.MemorySendChannel[PoolEvent]) -> None:
        if channel in self._subscribers:
            self._subscribers.remove(channel)
        channel.close()

    def close(self) -> None:
        """The pool closes: every stream ends."""
        self._closed = True
        for channel in self._subscribers:
            channel.close()
        self._subscribers.clear()


class EventStream:
    """One subscription to ``Pool.events()``: ``async with`` (subscribed for the block) or a
    plain async iterator (subscribed from the first iteration)."""

    def __init__(self, bus: EventBus, buffer: int) -> None:
        self._bus = bus
        self._buffer = buffer
        self._send: trio.MemorySendChannel[PoolEvent] | None = None
        self._recv: trio.MemoryReceiveChannel[PoolEvent] | None = None

    def _subscribe(self) -> trio.MemoryReceiveChannel[PoolEvent]:
        if self._recv is None:
            self._send, self._recv = self._bus.subscribe(self._buffer)
        return self._recv

    def close(self) -> None:
        if self._send is not None:
            self._bus.unsubscribe(self._send)

    async def __aenter__(self) -> trio.MemoryReceiveChannel[PoolEvent]:
        return self._subscribe()

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> PoolEvent:
        try:
            return await self._subscribe().receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            self.close()
            raise StopAsyncIteration from None


@attrs.frozen
class UpdatesGap:
    """Updates were dropped because the consumer lagged: run getDifference-style recovery."""

    dropped: int


@attrs.frozen
class ReceivedUpdate:
    dc_id: int
    body: bytes

    def parse(self) -> Any:
        return tl.loads(self.body)


class UpdatesQueue:
    """Server-pushed updates in arrival order, bounded: pushing never blocks."""

    def __init__(self, maximum: int) -> None:
        self._items: deque[ReceivedUpdate | UpdatesGap] = deque()
        self._maximum = maximum
        self._event = trio.Event()
        self._closed = False

    def push(self, dc_id: int, body: bytes) -> None:
        if len(self._items) >= self._maximum:
            # A lagging consumer must never block a connection: drop the oldest and say so.
            dropped = 0
            while len(self._items) >= self._maximum:
                item = self._items.popleft()
                dropped += item.dropped if isinstance(item, UpdatesGap) else 1
            self._items.appendleft(UpdatesGap(dropped))
        self._items.append(ReceivedUpdate(dc_id, body))
        self._event.set()

    def close(self) -> None:
        self._closed = True
        self._event.set()

    async def iterate(self) -> AsyncIterator[ReceivedUpdate | UpdatesGap]:
        """Yield the updates as they come; ends when the pool closes."""
        while True:
            while self._items:
                yield self._items.popleft()
            if self._closed:
                return
            self._event = trio.Event()
            await self._event.wait()


# updateConfig#a229dd06 = Update;  updateDcOptions#8e5e9873 dc_options:Vector<DcOption> = Update;
_CONFIG_UPDATE_IDS: frozenset[bytes] = frozenset({bytes.fromhex("06dd29a2"), bytes.fromhex("73985e8e")})
# updateShort#78d4dec1 update:Update date:int = Updates;
_UPDATE_SHORT = bytes.fromhex("c1ded478")
# updates#74ae4240 ... ;  updatesCombined#725b04c3 ...  (both carry updates:Vector<Update>)
_UPDATES_LISTS = frozenset({bytes.fromhex("4042ae74"), bytes.fromhex("c3045b72")})


def is_config_update(body: bytes) -> bool:
    """Does this update ask for a config refresh (updateConfig / updateDcOptions)?  They only
    come wrapped in an Updates object, so look cheaply at the constructor ids first and parse
    only a list that may hold one."""
    head = body[:4]
    if head == _UPDATE_SHORT:
        return body[4:8] in _CONFIG_UPDATE_IDS
    if head in _UPDATES_LISTS and any(cid in body for cid in _CONFIG_UPDATE_IDS):
        try:
            updates = tl.loads(body).updates
        except DcPoolError:
            return False
        return any(type(u).QUALNAME in ("updateConfig", "updateDcOptions") for u in updates)
    return False
