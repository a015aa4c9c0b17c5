"""Issue 12, item 7: a DC whose connections fail security checks twice in a row fails every call
waiting on it with that SecurityError subclass (not its timeout), and new calls too, until a
connection passes the checks again; an oversized frame is a FramingError before it is buffered.
Real loopback sockets: emulated DCs 1-2, one hostile DC 3 (dcpool.testing.hostile)."""

from __future__ import annotations

import struct

import pytest
import trio

from dcpool import errors, tl
from dcpool.pool import open_pool
from dcpool.pool.dc import MAX_FRAME_SIZE
from dcpool.testing import open_cluster
from dcpool.testing.hostile import EXPECTED_ERRORS, Misbehavior, Tamper, attach, open_hostile_server
from dcpool.transport import ClientTransport, TransportKind

pytestmark = pytest.mark.e2e

CASES = [Tamper.MSG_KEY, Tamper.SESSION_ID, Tamper.MSG_ID_TOO_OLD, Tamper.OVERSIZED_FRAME,
         Misbehavior.UNSAFE_PRIME]


@pytest.mark.parametrize("fault", CASES, ids=lambda f: f.value)
async def test_waiting_and_new_calls_fail_fast_with_the_security_error(fault) -> None:
    want = EXPECTED_ERRORS[fault]
    kw = {"misbehave": [fault]} if isinstance(fault, Misbehavior) else {"tamper": fault}
    # The calls' own timeout (40 s) is far beyond what the test allows (30 s): before issue 12
    # they waited it out; now they fail as soon as the DC failed twice.
    with trio.fail_after(30):
        async with open_cluster(dc_ids=range(1, 4)) as cluster, \
                open_hostile_server(3, cluster.private_key, world=cluster.world, **kw) as hostile:
            attach(cluster, hostile)
            async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(),
                                 rsa_keys=cluster.rsa_keys(), home_dc=1, fetch_config=False) as pool:
                outcomes: list[BaseException | object] = []

                async def call() -> None:
                    try:
                        outcomes.append(await pool.invoke(tl.api.help.GetNearestDc(), dc_id=3,
                                                          timeout=40))
                    except Exception as exc:
                        outcomes.append(exc)

                async with pool.events() as events:
                    async with trio.open_nursery() as nursery:
                        for _ in range(5):
                            nursery.start_soon(call)
                    refused = []
                    while not refused:
                        ev = await events.receive()
                        if ev.kind == "security_refused":
                            refused.append(ev)
                assert [type(o) for o in outcomes] == [want] * 5, outcomes
                assert refused[0].dc_id == 3 and refused[0].data["error"] == want.__name__
                # new calls fail the same way at once, without reaching the DC
                served = hostile.requests
                with pytest.raises(want):
                    await pool.invoke(tl.api.help.GetNearestDc(), dc_id=3, timeout=40)
                assert hostile.requests == served
                # the other DCs are unaffected
                assert (await pool.invoke(tl.api.help.GetNearestDc(), dc_id=2)).this_dc == 2
            assert pool.statistics().tasks == 0


def test_oversized_frame_is_refused_from_its_length_alone() -> None:
    transport = ClientTransport(TransportKind.INTERMEDIATE, max_frame_size=MAX_FRAME_SIZE)
    transport.data_to_send()  # (the transport's tag)
    with pytest.raises(errors.FramingError):
        # only the 4-byte length of a frame just over the pool's limit: refused before any of
        # its payload arrives (nothing to buffer)
        transport.receive_data(struct.pack("<I", MAX_FRAME_SIZE + 4))
    assert MAX_FRAME_SIZE == 2 * 1024 * 1024


async def test_a_dc_that_passes_the_checks_again_is_trusted_again() -> None:
    with trio.fail_after(30):
        async with open_cluster(dc_ids=range(1, 4)) as cluster, \
                open_hostile_server(3, cluster.private_key, world=cluster.world,
                                    tamper=Tamper.MSG_KEY) as hostile:
            attach(cluster, hostile)
            async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(),
                                 rsa_keys=cluster.rsa_keys(), home_dc=1, fetch_config=False) as pool:
                with pytest.raises(errors.MsgKeyMismatch):
                    await pool.invoke(tl.api.help.GetNearestDc(), dc_id=3, timeout=40)
                with pytest.raises(errors.MsgKeyMismatch):  # refused without being sent
                    await pool.invoke(tl.api.help.GetNearestDc(), dc_id=3, timeout=40)
                hostile.tamper = None  # the DC behaves again
                await trio.sleep(1.5)  # past the refusal period: the next call is a probe
                assert (await pool.invoke(tl.api.help.GetNearestDc(), dc_id=3)).this_dc == 3
                assert (await pool.invoke(tl.api.help.GetNearestDc(), dc_id=3)).this_dc == 3
