"""Shared helpers for the bridge's end-to-end tests."""

from __future__ import annotations

import json

from dcpool.bridge.memsource import MemoryUpdateSource, simulated_update


def push_simulated(source: MemoryUpdateSource, first: int, count: int, contacts: int = 3) -> None:
    """Push ``count`` simulated updates whose message ids equal their pts."""
    for pts in range(first, first + count):
        update, users = simulated_update(pts, contacts)
        source.push(update, users=users)


async def iter_sse(response):
    """Parse events from an httpx streaming response: yields (id, event, data)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield int(fields["id"]), fields.get("event"), json.loads(fields["data"])
            fields = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


async def read_sse(response, limit):
    """Up to ``limit`` events from an httpx streaming response: [(id, event, data)]."""
    out = []
    async for item in iter_sse(response):
        out.append(item)
        if len(out) >= limit:
            break
    return out
