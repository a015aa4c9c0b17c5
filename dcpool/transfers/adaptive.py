"""How many download parts to keep in flight on a DC: adaptive, per DC (sans-IO).

MTProto multiplexes a connection, so the number of parts in flight is not tied to the number
of connections; what bounds a download is the round trip (a window of W parts of size S moves
at most W * S per RTT) until the client's or the server's CPU, or the link, is the limit.
:class:`PartWindow` finds the W where throughput stops growing, the way TCP's slow start and
congestion avoidance do, from what the downloads observe (no clock of its own: callers pass
``now``):

* the parts completed are grouped in *rounds* of W parts; at the end of a round its
  throughput (bytes over the time since the round began) is compared with the previous
  round's;
* slow start: while a round is at least :attr:`PartWindow.gain` (10 %) faster than the last
  one, W doubles; the first round that is not faster ends slow start, and from then on W grows
  by one part per faster round (additive increase);
* back off: a flood wait halves W (multiplicative decrease, slow start over); a round whose
  mean part latency is more than :attr:`PartWindow.latency_factor` (2x) the lowest latency
  seen, and that was not faster, takes a quarter off W (queues are building up: more parts
  in flight only wait longer);
* W stays within ``[minimum, maximum]``; memory of a download is bounded by ``maximum`` parts.

One window per DC (:class:`PartWindows`), shared by the downloads of that DC: they all feed it,
and each keeps at most W parts in flight plus held.
"""

from __future__ import annotations

import attrs

__all__ = ["PartWindow", "PartWindows"]


@attrs.define
class PartWindow:
    """The adaptive parts-in-flight window of one DC (see the module docstring)."""

    minimum: int = 2
    maximum: int = 32
    size: int = 4
    #: a round counts as faster when its throughput is above (1 + gain) x the last one's
    gain: float = 0.10
    latency_factor: float = 2.0
    slow_start: bool = True
    grown: int = 0  # increases so far (statistics)
    shrunk: int = 0  # decreases so far
    _round_start: float | None = None
    _round_bytes: int = 0
    _round_parts: int = 0
    _round_latency: float = 0.0
    _last_rate: float = 0.0
    _base_latency: float | None = None

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError("PartWindow needs 1 <= minimum <= maximum")
        self.size = min(self.maximum, max(self.minimum, self.size))

    def part_done(self, nbytes: int, latency: float, now: float) -> None:
        """A part of ``nbytes`` arrived ``latency`` seconds after it was requested."""
        if self._round_start is None:
            self._round_start = now - latency
        self._round_bytes += nbytes
        self._round_parts += 1
        self._round_latency += latency
        if self._base_latency is None or latency < self._base_latency:
            self._base_latency = latency
        if self._round_parts >= self.size:
            self._end_round(now)

    def flood_wait(self) -> None:
        """The DC asked us to slow down (FLOOD_WAIT on a part)."""
        self._set(max(self.minimum, self.size // 2))
        self.slow_start = False
        self._last_rate = 0.0
        self._restart_round()

    def _end_round(self, now: float) -> None:
        assert self._round_start is not None
        elapsed = max(now - self._round_start, 1e-9)
        rate = self._round_bytes / elapsed
        mean_latency = self._round_latency / self._round_parts
        faster = rate > self._last_rate * (1 + self.gain)
        base = self._base_latency or mean_latency
        if faster:
            self._set(self.size * 2 if self.slow_start else self.size + 1)
        else:
            self.slow_start = False
            if mean_latency > self.latency_factor * base:
                self._set(max(self.minimum, self.size - max(1, self.size // 4)))
        self._last_rate = rate
        self._restart_round()

    def _set(self, size: int) -> None:
        size = min(self.maximum, max(self.minimum, size))
        if size > self.size:
            self.grown += 1
        elif size < self.size:
            self.shrunk += 1
        self.size = size

    def _restart_round(self) -> None:
        self._round_start = None
        self._round_bytes = self._round_parts = 0
        self._round_latency = 0.0


@attrs.define
class PartWindows:
    """One :class:`PartWindow` per DC, created on first use with these bounds."""

    minimum: int = 2
    maximum: int = 32
    initial: int = 8
    _by_dc: dict[int, PartWindow] = attrs.field(factory=dict)

    def for_dc(self, dc_id: int) -> PartWindow:
        window = self._by_dc.get(dc_id)
        if window is None:
            window = PartWindow(minimum=self.minimum, maximum=self.maximum, size=self.initial)
            self._by_dc[dc_id] = window
        return window
