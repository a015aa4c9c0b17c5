"""``dcpool.net.connection``: the parts of a connection slot's life that the pool-level tests
cannot pin down (how a failed TCP connection is classified; close() while dialing)."""

from __future__ import annotations

import pytest
import trio

import dcpool.net.connection as connection_module
from dcpool import errors, tl
from dcpool.net.connection import MtprotoConnection, _loss_of
from dcpool.pool import open_pool


def group(*excs: BaseException) -> BaseExceptionGroup:
    return BaseExceptionGroup("children", list(excs))


# --------------------------------------------------------------------------- _loss_of


def test_loss_is_unwrapped_from_the_sibling_cancellations():
    lost = errors.ConnectionLost("the server closed the connection")
    assert _loss_of(group(lost)) is lost
    assert _loss_of(group(trio.Cancelled._create(), lost)) is lost
    assert _loss_of(group(group(lost), trio.Cancelled._create())) is lost
    code = errors.TransportErrorCode(-404)
    assert _loss_of(group(code)) is code  # a RemoteProtocolError ends the connection too
    oserror = ConnectionResetError(104, "reset")
    assert _loss_of(group(oserror)) is oserror


def test_anything_else_stays_a_group():
    bug = ValueError("a bug must not look like a lost link")
    g = group(errors.ConnectionLost("x"), bug)
    assert _loss_of(g) is g
    g2 = group(bug)
    assert _loss_of(g2) is g2
    only_cancelled = group(trio.Cancelled._create())
    assert _loss_of(only_cancelled) is only_cancelled


# --------------------------------------------------------------------------- close while dialing


async def test_close_while_dialing_ends_the_slot_without_using_the_stream(cluster, monkeypatch):
    dialing = trio.Event()
    release = trio.Event()
    real_dial = connection_module.dial

    async def slow_dial(endpoints, **kwargs):
        dialing.set()
        await release.wait()
        return await real_dial(endpoints, **kwargs)

    monkeypatch.setattr(connection_module, "dial", slow_dial)
    with trio.fail_after(10):
        async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(),
                             rsa_keys=cluster.rsa_keys(), fetch_config=False) as pool:
            state = pool.dc(3)
            conn = MtprotoConnection(state, "main")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn.run)
                await dialing.wait()
                conn.close()
                release.set()
            # run() returned by itself: no key exchange, no session on the new stream.
            assert conn.closed and conn.state == "closed"
            assert conn.session is None
            assert cluster.statistics()[3].handshakes == 0
            assert state.auth_key is None


async def test_calls_waiting_on_a_closed_slot_fail_with_pool_closed(cluster):
    with trio.fail_after(10):
        async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(),
                             rsa_keys=cluster.rsa_keys(), fetch_config=False) as pool:
            await pool.invoke(tl.api.help.GetNearestDc())
            cluster.faults(2).latency = 5  # the answer will not come before the close
            conn = pool.dc(2).connections("main")[0]

            async def close_soon() -> None:
                while not conn.calls:
                    await trio.sleep(0.001)
                conn.close()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(close_soon)
                with pytest.raises(errors.PoolClosed):
                    await pool.invoke(tl.api.help.GetNearestDc())
            assert pool.statistics().in_flight == 0
