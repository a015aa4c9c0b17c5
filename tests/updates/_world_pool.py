"""A stand-in for the pool's public updates API on top of an emulator World, without sockets.

It answers ``invoke`` with the real emulator handlers (``world.call`` on the user's home DC)
after a simulated round trip, receives the world's pushes for one user, and lets a test emit
pool events.  Every call is counted by method, with the maximum concurrency seen, so tests can
count getDifference calls on trio's fake clock.
"""

from __future__ import annotations

import collections
import math
from typing import Any

import attrs
import trio

from dcpool import tl
from dcpool.testing import World
from dcpool.testing import messaging as msg

api = tl.api


@attrs.frozen
class Push:
    dc_id: int
    body: bytes


@attrs.frozen
class Gap:
    dropped: int


@attrs.frozen
class Event:
    kind: str
    dc_id: int | None
    time: float
    data: dict = attrs.field(factory=dict)


class WorldPool:
    def __init__(self, world: World, user_id: int, *, rtt: float = 0.01, key_id: int = 0x5151) -> None:
        self.world = world
        self.user_id = user_id
        self.home_dc = world.user(user_id).home_dc
        self.key_id = key_id
        self.rtt = rtt
        world.authorize(self.home_dc, key_id, user_id)
        self.calls: collections.Counter[str] = collections.Counter()
        self.times: dict[str, list[float]] = collections.defaultdict(list)
        self.running: collections.Counter[str] = collections.Counter()
        self.max_running: collections.Counter[str] = collections.Counter()
        self._push_send, self._push_recv = trio.open_memory_channel[Any](math.inf)
        self._event_send, self._event_recv = trio.open_memory_channel[Any](math.inf)
        world.set_update_sink(lambda handle, payload: handle._push_send.send_nowait(Push(handle.home_dc, payload)))
        world.register_session(user_id, self, layer=tl.LAYER)

    layer = tl.LAYER

    async def invoke(self, request: Any) -> Any:
        name = type(request).QUALNAME
        self.calls[name] += 1
        self.times[name].append(trio.current_time())
        self.running[name] += 1
        self.max_running[name] = max(self.max_running[name], self.running[name])
        try:
            await trio.sleep(self.rtt)
            return self.world.call(self.home_dc, self.key_id, request, now=trio.current_time())
        finally:
            self.running[name] -= 1

    async def updates(self):
        async for item in self._push_recv:
            yield item

    def events(self):
        return self._event_recv

    def emit(self, kind: str, dc_id: int | None = None, **data: Any) -> None:
        self._event_send.send_nowait(Event(kind, self.home_dc if dc_id is None else dc_id, trio.current_time(), data))

    def inject(self, body: bytes, dc_id: int | None = None) -> None:
        self._push_send.send_nowait(Push(self.home_dc if dc_id is None else dc_id, body))

    def inject_gap(self, dropped: int = 1) -> None:
        self._push_send.send_nowait(Gap(dropped))


def two_users(world: World | None = None) -> tuple[World, Any, Any]:
    world = world or World.test_cluster(require_init_connection=False)
    world.strict = True
    a = world.user_by_phone(world.test_phone(2, 1))
    b = world.user_by_phone(world.test_phone(2, 2))
    return world, a, b


def messaging(world: World):
    return msg.messaging(world)


async def settle(seconds: float = 0.05) -> None:
    """Let the manager's tasks run (fake clock: costs nothing)."""
    await trio.sleep(seconds)
