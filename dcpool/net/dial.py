"""Dialing a DC: race its candidate endpoints, happy-eyeballs style.

A DC has several endpoints (IPv4, IPv6, media-only, several ports).  Trying them one after the
other makes a dead first endpoint cost a whole connect timeout; trying them all at once floods
the network.  RFC 8305's compromise: start the best candidate, and if it has not connected
within ``stagger`` seconds (or as soon as it fails), start the next one while the first keeps
trying.  The first to connect wins and the others are cancelled.

This is the one place where socket errors become :class:`dcpool.errors.ConnectError`.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import trio

from ..errors import ConnectError


@attrs.frozen
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@attrs.frozen
class DialFailure:
    endpoint: Endpoint
    error: str


def _describe(exc: OSError) -> str:
    """trio says "all attempts to connect failed" and keeps the reasons (refused, unreachable...)
    in ``__cause__``: report those, they are what a user needs to see."""
    cause = exc.__cause__
    if isinstance(cause, BaseExceptionGroup) and cause.exceptions:
        return "; ".join(f"{type(e).__name__}: {e}" for e in cause.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def dial(
    endpoints: Sequence[Endpoint],
    *,
    stagger: float = 0.25,
    timeout: float = 10.0,
) -> tuple[trio.SocketStream, Endpoint, list[DialFailure]]:
    """Connect to the first endpoint that answers.

    Returns the stream, the endpoint it reached, and the failures seen on the way (for
    per-endpoint health bookkeeping).  Raises ConnectError when every candidate failed or the
    whole attempt exceeded ``timeout``.
    """
    if not endpoints:
        raise ConnectError("no endpoint to dial")
    failures: list[DialFailure] = []
    winner: list[tuple[trio.SocketStream, Endpoint]] = []

    async def attempt(endpoint: Endpoint, failed: trio.Event, cancel_all: trio.CancelScope) -> None:
        try:
            stream = await trio.open_tcp_stream(endpoint.host, endpoint.port)
        except OSError as exc:
            failures.append(DialFailure(endpoint, _describe(exc)))
            failed.set()
            return
        if winner:  # lost the race by a hair: someone else already won
            await trio.aclose_forcefully(stream)
            return
        winner.append((stream, endpoint))
        cancel_all.cancel()

    with trio.move_on_after(timeout):
        async with trio.open_nursery() as nursery:
            for endpoint in endpoints:
                failed = trio.Event()
                nursery.start_soon(attempt, endpoint, failed, nursery.cancel_scope)
                with trio.move_on_after(stagger):
                    await failed.wait()
    if winner:
        stream, endpoint = winner[0]
        return stream, endpoint, failures
    detail = "; ".join(f"{f.endpoint}: {f.error}" for f in failures) or f"timed out after {timeout} s"
    error = ConnectError(f"could not connect to any of {len(endpoints)} endpoint(s): {detail}")
    error.failures = failures  # type: ignore[attr-defined]  # for per-endpoint health
    raise error
