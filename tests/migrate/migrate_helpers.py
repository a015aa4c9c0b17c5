"""Helpers shared by the migration tests (imported as ``migrate_helpers``)."""

from __future__ import annotations

from typing import Any

import trio

from dcpool.testing import Cluster

PHONE_DC2 = "9996621234"
CODE_DC2 = "22222"


def pool_args(cluster: Cluster, **kw: Any) -> dict[str, Any]:
    """``open_pool`` arguments that point a pool at ``cluster``."""
    return dict(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(), **kw)


def drain(events: trio.MemoryReceiveChannel) -> list:
    """Every event already delivered, without waiting."""
    out = []
    while True:
        try:
            out.append(events.receive_nowait())
        except trio.WouldBlock:
            return out


def kinds(events: list, kind: str) -> list:
    return [e for e in events if e.kind == kind]
