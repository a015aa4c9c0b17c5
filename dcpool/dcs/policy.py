"""Endpoint choice: which ``DcOption``s to try for a DC, best first, and how failures steer it.

The written policy (one rule per ``dcOption`` flag) is in the :mod:`dcpool.dcs` docstring; the
code below follows it rule by rule, and the tests name the rules.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from ..errors import LocalProtocolError, UnknownDc
from .options import DcOption

if TYPE_CHECKING:  # pragma: no cover
    from .table import DcTable

__all__ = ["Lane", "EndpointState", "EndpointHealth", "EndpointPolicy"]

Endpoint = tuple[str, int]


class Lane(enum.StrEnum):
    """What a connection is for; decides which endpoints qualify."""

    #: API calls: never media-only or CDN endpoints.
    MAIN = "main"
    #: file transfer: media-only endpoints preferred, plain ones as fallback; never CDN.
    DOWNLOAD = "download"
    #: uploads (spec §13.1): their own connections on the home DC, so parts never queue
    #: behind API calls or downloads; media-only endpoints allowed, never CDN.
    UPLOAD = "upload"
    #: a CDN DC (spec §11.4): only ``cdn`` endpoints.
    CDN = "cdn"


def _endpoint(where: DcOption | Endpoint) -> Endpoint:
    if isinstance(where, DcOption):
        return where.endpoint
    ip, port = where
    return (ip, port)


@attrs.frozen
class EndpointState:
    """What we know about one ``(ip, port)``.  Times are the caller's ``now`` values."""

    last_ok: float | None = None
    last_error: float | None = None
    #: errors since the last success; drives the growing cool-down
    consecutive_errors: int = 0

    @property
    def failing(self) -> bool:
        """The last thing that happened there was an error."""
        return self.last_error is not None and (self.last_ok is None or self.last_error > self.last_ok)


@attrs.define
class EndpointHealth:
    """Per-endpoint results, fed by the dialer, read by :class:`EndpointPolicy`.

    After ``n`` consecutive errors an endpoint cools down for ``cooldown * 2**(n-1)`` seconds
    (at most ``max_cooldown``) from its last error; a success ends it at once.  Time is passed
    in (``now``: the caller's clock, e.g. ``trio.current_time()``), so this stays pure.
    Keyed by ``(ip, port)``: two options for the same address and port share their health.
    """

    cooldown: float = 30.0
    max_cooldown: float = 300.0
    _states: dict[Endpoint, EndpointState] = attrs.field(factory=dict, init=False, repr=False)

    def record_ok(self, where: DcOption | Endpoint, now: float) -> None:
        key = _endpoint(where)
        old = self._states.get(key, EndpointState())
        self._states[key] = attrs.evolve(old, last_ok=now, consecutive_errors=0)

    def record_error(self, where: DcOption | Endpoint, now: float) -> None:
        key = _endpoint(where)
        old = self._states.get(key, EndpointState())
        self._states[key] = attrs.evolve(
            old, last_error=now, consecutive_errors=old.consecutive_errors + 1
        )

    def state(self, where: DcOption | Endpoint) -> EndpointState:
        return self._states.get(_endpoint(where), EndpointState())

    def cooling_until(self, where: DcOption | Endpoint) -> float | None:
        """When the current cool-down ends, or None if the endpoint is not failing."""
        st = self.state(where)
        if not st.failing:
            return None
        assert st.last_error is not None
        # cap the exponent too, so that a long outage cannot overflow the float
        exponent = min(st.consecutive_errors - 1, 64)
        return st.last_error + min(self.cooldown * 2.0**exponent, self.max_cooldown)

    def is_cooling(self, where: DcOption | Endpoint, now: float) -> bool:
        until = self.cooling_until(where)
        return until is not None and now < until

    def forget(self) -> None:
        """Drop everything (e.g. after the network changed)."""
        self._states.clear()


@attrs.frozen
class EndpointPolicy:
    """Orders a DC's endpoints for a lane.  Reads its options from ``table`` on every call, so
    a config applied to the table takes effect on the next dial."""

    table: DcTable
    #: False drops every endpoint that needs obfuscation (tcpo_only or secret)
    allow_obfuscated: bool = True

    def candidates(
        self,
        dc_id: int,
        *,
        lane: Lane | str = Lane.MAIN,
        prefer_ipv6: bool | None = None,
        allow_ipv6: bool = True,
        health: EndpointHealth | None = None,
        now: float | None = None,
        via_proxy: bool = False,
    ) -> list[DcOption]:
        """The endpoints to try for ``dc_id``, best first.

        ``prefer_ipv6=None`` follows the config's ``force_try_ipv6``.  ``allow_ipv6=False`` wins
        over any preference.  ``health`` requires ``now``.  ``via_proxy`` says the connection
        goes through a proxy, the only case where ``static`` endpoints are preferred.  Raises
        :class:`~dcpool.errors.UnknownDc` when no endpoint qualifies.
        """
        try:
            lane = Lane(lane)
        except ValueError:
            raise LocalProtocolError(f"unknown lane {lane!r}") from None
        if health is not None and now is None:
            raise LocalProtocolError("candidates(health=...) needs now=")
        if prefer_ipv6 is None:
            prefer_ipv6 = self.table.force_try_ipv6

        eligible = _dedupe(
            opt
            for opt in self.table.options_for(dc_id)
            if self._qualifies(opt, lane, allow_ipv6)
        )
        if not eligible:
            raise UnknownDc(dc_id)

        def rank(item: tuple[int, DcOption]) -> tuple[float, ...]:
            index, opt = item
            # Rule "health": an endpoint in cool-down goes after every other one; among those,
            # the one whose cool-down ends first comes first.
            cooling_until = math.inf
            health_rank = 1  # never tried
            if health is not None:
                assert now is not None
                st = health.state(opt)
                until = health.cooling_until(opt)
                if until is not None and now < until:
                    cooling_until = until
                    health_rank = 2
                elif st.failing:
                    health_rank = 2  # cool-down over: retry, but after untried/healthy ones
                elif st.last_ok is not None:
                    health_rank = 0  # known good
            cooling = 0.0 if cooling_until == math.inf else 1.0
            return (
                cooling,
                cooling_until if cooling else 0.0,
                # Rule "static" (spec §11.1: "this IP should be used when connecting through a
                # proxy"): first through a proxy; on a direct connection only a fallback, after
                # every non-static endpoint, as tdlib's DcOptionsSet does.
                (0 if opt.static else 1) if via_proxy else (1 if opt.static else 0),
                # Rule "media_only": preferred on the download lane (it is there for this).
                0 if (lane is Lane.DOWNLOAD and opt.media_only) else 1,
                # Rule "ipv6": the preferred family first.
                0 if opt.ipv6 == prefer_ipv6 else 1,
                # Rule "tcpo_only": plain TCP first; obfuscation costs a little CPU and a
                # secret-bearing endpoint is meant for clients that need it.
                1 if opt.requires_obfuscation else 0,
                health_rank,
                # Then Telegram's own order (stable).
                index,
            )

        return [opt for _, opt in sorted(enumerate(eligible), key=rank)]

    def _qualifies(self, opt: DcOption, lane: Lane, allow_ipv6: bool) -> bool:
        # Rule "cdn": CDN endpoints serve only the CDN lane, and the CDN lane only them.
        if opt.cdn != (lane is Lane.CDN):
            return False
        # Rule "media_only": never for API calls.
        if opt.media_only and lane is Lane.MAIN:
            return False
        # Rule "ipv6": allow_ipv6=False removes IPv6 endpoints whatever the preference.
        if opt.ipv6 and not allow_ipv6:
            return False
        # Rule "tcpo_only"/"secret": only if the caller can speak obfuscated TCP.
        if opt.requires_obfuscation and not self.allow_obfuscated:
            return False
        return True


def _dedupe(options: Iterable[DcOption]) -> list[DcOption]:
    seen: set[DcOption] = set()
    out = []
    for opt in options:
        if opt not in seen:
            seen.add(opt)
            out.append(opt)
    return out
