"""``dcpool.net.dial``: racing a DC's endpoints (RFC 8305 style) over real loopback sockets.

Stagger and timeouts run on trio's fake clock (a MockClock that jumps only after 20 ms of real
idleness, so loopback I/O is never overtaken); a "silent" endpoint (SYN never answered) is
emulated by wrapping ``trio.open_tcp_stream`` for one port, since a real black hole cannot be
made on loopback.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from dcpool.errors import ConnectError
from dcpool.net.dial import Endpoint, dial

HOST = "127.0.0.1"


@pytest.fixture
def clock(mock_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    mock_clock.autojump_threshold = 0.02
    return mock_clock


@pytest.fixture
async def live() -> AsyncIterator[tuple[Endpoint, list[trio.SocketStream]]]:
    """A listening endpoint; the list collects the server side of each accepted connection."""
    accepted: list[trio.SocketStream] = []
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, _keep(accepted), 0)
        port = listeners[0].socket.getsockname()[1]
        yield Endpoint(HOST, port), accepted
        nursery.cancel_scope.cancel()


def _keep(accepted: list[trio.SocketStream]):
    async def handler(stream: trio.SocketStream) -> None:
        accepted.append(stream)
        await trio.sleep_forever()

    return handler


def closed_port() -> Endpoint:
    """A port nobody listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return Endpoint(HOST, s.getsockname()[1])


@pytest.fixture
def silent(monkeypatch) -> tuple[Endpoint, list[str]]:
    """An endpoint whose connect never completes (a black hole); the list records how each
    attempt ended ("cancelled")."""
    endpoint = Endpoint(HOST, 9)  # discard port: never actually dialled
    outcomes: list[str] = []
    real = trio.open_tcp_stream

    async def open_tcp_stream(host, port, **kwargs):
        if (host, port) == (endpoint.host, endpoint.port):
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                outcomes.append("cancelled")
                raise
        return await real(host, port, **kwargs)

    monkeypatch.setattr(trio, "open_tcp_stream", open_tcp_stream)
    return endpoint, outcomes


async def test_dead_first_endpoint_does_not_delay_the_live_one(clock, live):
    endpoint, accepted = live
    dead = closed_port()
    with trio.fail_after(5):
        t0 = trio.current_time()
        stream, reached, failures = await dial([dead, endpoint], stagger=0.25)
        assert trio.current_time() - t0 < 0.25  # a refusal starts the next candidate at once
    async with stream:
        assert reached == endpoint
        assert [f.endpoint for f in failures] == [dead]
        assert failures[0].error.startswith("ConnectionRefusedError")
        await stream.send_all(b"ping")
        await trio.testing.wait_all_tasks_blocked()


async def test_silent_first_endpoint_costs_one_stagger(clock, live, silent):
    endpoint, accepted = live
    hole, outcomes = silent
    with trio.fail_after(5):
        t0 = trio.current_time()
        stream, reached, failures = await dial([hole, endpoint], stagger=0.25, timeout=10)
        assert trio.current_time() - t0 == pytest.approx(0.25)
    async with stream:
        assert reached == endpoint
        assert failures == []
        assert outcomes == ["cancelled"]  # the loser was cancelled, not left running


async def test_first_endpoint_wins_when_it_answers(clock, live):
    endpoint, accepted = live
    dead = closed_port()
    with trio.fail_after(5):
        stream, reached, failures = await dial([endpoint, dead], stagger=0.25)
    async with stream:
        assert reached == endpoint and failures == []
        # Only one connection was made: the second candidate was never started.
        while not accepted:
            await trio.sleep(0.001)
        assert len(accepted) == 1


async def test_every_endpoint_dead_raises_connect_error(clock):
    dead = [closed_port(), closed_port()]
    with trio.fail_after(5):
        with pytest.raises(ConnectError) as info:
            await dial(dead)
    for endpoint in dead:
        assert str(endpoint) in str(info.value)


async def test_silent_endpoints_time_out(clock, silent):
    hole, outcomes = silent
    with trio.fail_after(100):
        t0 = trio.current_time()
        with pytest.raises(ConnectError, match="timed out"):
            await dial([hole], timeout=7)
        assert trio.current_time() - t0 == pytest.approx(7)
    assert outcomes == ["cancelled"]


async def test_no_endpoint_raises_connect_error():
    with pytest.raises(ConnectError):
        await dial([])


def test_endpoint_str_brackets_ipv6():
    assert str(Endpoint("149.154.167.51", 443)) == "149.154.167.51:443"
    assert str(Endpoint("2001:67c:4e8:f002::a", 443)) == "[2001:67c:4e8:f002::a]:443"
