"""The cluster shell itself over loopback: test mode, extra listeners, handshake refusals,
ping_delay_disconnect, and the connection counters."""

from __future__ import annotations

import socket

import pytest
import trio
from _raw_client import Closed, open_raw, open_session

from dcpool import tl
from dcpool.errors import TransportErrorCode
from dcpool.mtproto.session import Pong
from dcpool.testing import open_cluster

pytestmark = pytest.mark.e2e

api = tl.api
TIMEOUT = 10


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


async def test_test_mode_cluster_with_media_endpoints_and_obfuscation():
    with trio.fail_after(TIMEOUT):
        async with open_cluster(test_mode=True, media_dcs=[2]) as cluster:
            assert cluster.world.dc_ids == (1, 2, 3)
            # The obfuscated header carries 10002, the inner data p_q_inner_data_dc 10002.
            async with open_session(cluster, 2, obfuscated=True) as raw:
                config = await raw.call(api.help.GetConfig())
            assert (config.test_mode, config.this_dc) == (True, 2)
            plain = [(o.id, o.port) for o in config.dc_options if not o.media_only]
            assert plain == [(dc, cluster.endpoint(dc)[1]) for dc in (1, 2, 3)]
            [media] = [o for o in config.dc_options if o.media_only]
            assert (media.id, media.ip_address, media.port) == (2, *cluster.media_endpoints[2][0])
            # The media-only listener is the same DC (same keys, same world).
            async with open_raw(*cluster.media_endpoints[2][0]) as raw:
                await raw.handshake(cluster.rsa_keys(), 2, test_mode=True)
                assert (await raw.call(api.help.GetNearestDc())).this_dc == 2
            assert cluster.statistics()[2].handshakes == 2
            listed = [(o.id, o.media_only) for o in cluster.dc_list()]
            assert listed == [(1, False), (2, False), (3, False), (2, True)]


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_listeners():
    with trio.fail_after(TIMEOUT):
        async with open_cluster((1, 2), ipv6=True) as cluster:
            v6 = cluster.world.dc(2).ipv6
            async with open_raw(v6.host, v6.port) as raw:
                await raw.handshake(cluster.rsa_keys(), 2)
                config = await raw.call(api.help.GetConfig())
    listed = sorted((o.id, o.ipv6) for o in config.dc_options)
    assert listed == [(1, False), (1, True), (2, False), (2, True)]


@pytest.mark.parametrize(
    ("claimed_dc", "test_mode"),
    [(2, False), (3, True)],  # another DC's id; a test DC id (10003) at a production cluster
    ids=["other-dc", "test-id-at-production"],
)
async def test_handshake_for_the_wrong_dc_gets_transport_error_444(cluster, claimed_dc, test_mode):
    host, port = cluster.endpoint(3)
    with trio.fail_after(TIMEOUT):
        async with open_raw(host, port) as raw:
            with pytest.raises(TransportErrorCode) as info:
                await raw.handshake(cluster.rsa_keys(), claimed_dc, test_mode=test_mode)
    assert info.value.code == -444
    assert cluster.statistics()[3].handshakes == 0


async def test_ping_delay_disconnect_closes_an_idle_connection(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 1) as raw:
            raw.session.send_ping(77, disconnect_delay=1)
            assert await raw.until(lambda e: isinstance(e, Pong)) == Pong(77)
            t0 = trio.current_time()
            await raw.until(lambda e: isinstance(e, Closed))
            waited = trio.current_time() - t0
    assert 0.5 < waited < 3


async def test_connection_counters_and_live_connections(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 5) as a, open_session(cluster, 5) as b:
            for raw in (a, b):
                await raw.call(api.help.GetNearestDc())
            assert cluster.live_connections(5) == 2
            assert cluster.statistics()[5].connections_live == 2
        while cluster.live_connections(5):
            await trio.sleep(0.01)  # the server notices the closes asynchronously
    stats = cluster.statistics()[5]
    assert (stats.connections_live, stats.connections_total, stats.handshakes) == (0, 2, 2)
    assert stats.requests["help.getNearestDc"] == 2
