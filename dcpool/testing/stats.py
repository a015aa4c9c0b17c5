"""Counters of what each emulated DC saw, for assertions in tests and benchmark reports.

Theory of operation
-------------------
Every DC of a :class:`dcpool.testing.world.World` owns one mutable :class:`DcStats`
(``world.stats(dc_id)``).  Two writers update it:

* the network shell (it alone sees sockets and handshakes): :meth:`DcStats.record_handshake`,
  :meth:`DcStats.connection_opened` / :meth:`DcStats.connection_closed`, and — if it does not
  pass ``session_id``/``msg_id`` to ``World.handle`` — :meth:`DcStats.record_execution`;
* the request handlers: requests per method (by schema QUALNAME of the innermost query),
  rpc errors per message, successful exports and imports, file bytes served.

``(auth_key_id, session_id, msg_id)`` identifies one client message for ever (spec §3.3: a
msg_id is unique within a session, a session belongs to one key).  Counting executions per
triple makes "the server ran this request twice" visible: :meth:`DcStats.duplicates` lists
every triple executed more than once — the property a client's resend logic must preserve for
non-idempotent calls.

Reading never exposes live state: :meth:`DcStats.snapshot` (and ``ClusterStats.snapshot``)
return frozen attrs objects whose mappings are read-only copies, in the spirit of trio's
``statistics()``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

__all__ = ["ExecutionKey", "DcStats", "DcStatsSnapshot", "ClusterStats", "ClusterStatsSnapshot"]

#: (auth_key_id, session_id, msg_id)
ExecutionKey = tuple[int, int, int]


def _frozen(counter: Mapping) -> Mapping:
    return MappingProxyType(dict(counter))


@attrs.frozen
class DcStatsSnapshot:
    """A frozen copy of one DC's counters."""

    dc_id: int
    handshakes: int
    connections_live: int
    connections_total: int
    requests: Mapping[str, int]
    errors: Mapping[str, int]
    exports: int
    imports: int
    bytes_served: int
    executions: Mapping[ExecutionKey, int]

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def duplicates(self) -> Mapping[ExecutionKey, int]:
        """Every (key id, session id, msg_id) executed more than once, with its count."""
        return MappingProxyType({k: n for k, n in self.executions.items() if n > 1})


@attrs.define
class DcStats:
    """Mutable counters of one DC (see the module docstring)."""

    dc_id: int
    handshakes: int = 0
    connections_live: int = 0
    connections_total: int = 0
    exports: int = 0
    imports: int = 0
    bytes_served: int = 0
    #: False stops recording executions (long benchmarks that do not need them)
    track_executions: bool = True
    requests: Counter[str] = attrs.field(factory=Counter)
    errors: Counter[str] = attrs.field(factory=Counter)
    executions: Counter[ExecutionKey] = attrs.field(factory=Counter, repr=False)

    # shell-side
    def record_handshake(self) -> None:
        self.handshakes += 1

    def connection_opened(self) -> None:
        self.connections_live += 1
        self.connections_total += 1

    def connection_closed(self) -> None:
        self.connections_live = max(0, self.connections_live - 1)

    def record_execution(self, auth_key_id: int, session_id: int, msg_id: int) -> int:
        """Count one execution of the request carried by ``msg_id``; returns how many times it
        has now been executed (1 the first time)."""
        if not self.track_executions:
            return 1
        key = (auth_key_id, session_id, msg_id)
        self.executions[key] += 1
        return self.executions[key]

    # handler-side
    def record_request(self, qualname: str) -> None:
        self.requests[qualname] += 1

    def record_error(self, message: str) -> None:
        self.errors[message] += 1

    def record_export(self) -> None:
        self.exports += 1

    def record_import(self) -> None:
        self.imports += 1

    def record_bytes_served(self, n: int) -> None:
        self.bytes_served += n

    # reading
    def duplicates(self) -> dict[ExecutionKey, int]:
        """Every (key id, session id, msg_id) executed more than once, with its count."""
        return {k: n for k, n in self.executions.items() if n > 1}

    def snapshot(self) -> DcStatsSnapshot:
        return DcStatsSnapshot(
            dc_id=self.dc_id,
            handshakes=self.handshakes,
            connections_live=self.connections_live,
            connections_total=self.connections_total,
            requests=_frozen(self.requests),
            errors=_frozen(self.errors),
            exports=self.exports,
            imports=self.imports,
            bytes_served=self.bytes_served,
            executions=_frozen(self.executions),
        )

    def reset(self) -> None:
        """Zero every counter except the live-connection gauge."""
        live = self.connections_live
        self.handshakes = self.connections_total = self.exports = self.imports = 0
        self.bytes_served = 0
        self.requests.clear()
        self.errors.clear()
        self.executions.clear()
        self.connections_live = live


@attrs.frozen
class ClusterStatsSnapshot:
    """Frozen per-DC snapshots plus cluster-wide sums."""

    dcs: Mapping[int, DcStatsSnapshot]

    def __getitem__(self, dc_id: int) -> DcStatsSnapshot:
        return self.dcs[dc_id]

    def total(self, attribute: str) -> int:
        """Sum of an int counter over all DCs, e.g. ``total("exports")``."""
        return sum(getattr(s, attribute) for s in self.dcs.values())

    def requests(self, qualname: str) -> int:
        """Calls of ``qualname`` over all DCs."""
        return sum(s.requests.get(qualname, 0) for s in self.dcs.values())

    def duplicates(self) -> Mapping[tuple[int, int, int, int], int]:
        """(dc_id, key id, session id, msg_id) executed more than once, over all DCs."""
        return MappingProxyType(
            {(dc,) + k: n for dc, s in self.dcs.items() for k, n in s.executions.items() if n > 1}
        )


@attrs.define
class ClusterStats:
    """The :class:`DcStats` of every DC of a world."""

    by_dc: dict[int, DcStats] = attrs.field(factory=dict)

    @classmethod
    def for_dcs(cls, dc_ids: Iterable[int]) -> ClusterStats:
        return cls({dc: DcStats(dc) for dc in dc_ids})

    def __getitem__(self, dc_id: int) -> DcStats:
        return self.by_dc[dc_id]

    def duplicates(self) -> dict[tuple[int, int, int, int], int]:
        return {(dc,) + k: n for dc, s in self.by_dc.items() for k, n in s.duplicates().items()}

    def snapshot(self) -> ClusterStatsSnapshot:
        return ClusterStatsSnapshot(MappingProxyType({dc: s.snapshot() for dc, s in self.by_dc.items()}))

    def reset(self) -> None:
        for s in self.by_dc.values():
            s.reset()
