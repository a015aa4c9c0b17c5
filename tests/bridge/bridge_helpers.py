"""Shared helpers for the bridge's end-to-end tests."""

from __future__ import annotations

import json

from dcpool.bridge.memsource import MemoryUpdateSource, simulated_update


def push_simulated(source: MemoryUpdateSource, first: int, count: int, contacts: int = 3) -> None:
    """Push ``count`` simulated updates whose message ids equal their pts."""
    for pts in range(first, first + count):
        update, users = simulated_update(pts, contacts)
        source.push(update, users=users)


async def read_sse(response, limit):
    """Parse up to ``limit`` events from an httpx streaming response: [(id, event, data)]."""
    out = []
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                out.append((int(fields["id"]), fields.get("event"), json.loads(fields["data"])))
                if len(out) >= limit:
                    return out
            fields = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
    return out
