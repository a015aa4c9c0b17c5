"""Pointing the pool at a server in one line (issue 11 item 8), end to end over loopback:
``dc_list={dc_id: (host, port)}`` and ``rsa_keys=<PEM>`` reach the emulator like the long forms."""

from __future__ import annotations

import pytest
import trio

from dcpool import tl
from dcpool.errors import ConfigError
from dcpool.pool import open_pool
from dcpool.testing import Cluster

TIMEOUT = 20


@pytest.mark.parametrize("pem_kind", ["pkcs1", "spki"])
async def test_short_forms_reach_the_cluster(cluster: Cluster, pem_kind: str) -> None:
    key = cluster.rsa_public_key()
    pem = key.to_pkcs1_pem() if pem_kind == "pkcs1" else key.to_pkix_pem()
    dc_list = {dc: cluster.endpoint(dc) for dc in (2, 4)}
    with trio.fail_after(TIMEOUT):
        async with open_pool(api_id=1, api_hash="x", home_dc=2, dc_list=dc_list, rsa_keys=pem,
                             fetch_config=False) as pool:
            config = await pool.invoke(tl.api.help.GetConfig())
            assert config.this_dc == 2
            nearest = await pool.invoke(tl.api.help.GetNearestDc(), dc_id=4)
            assert nearest.this_dc == 4
    stats = cluster.statistics()
    # one key exchange on each DC named in the mapping, none elsewhere
    assert stats[2].handshakes == 1 and stats[4].handshakes == 1
    assert stats[1].handshakes == stats[3].handshakes == stats[5].handshakes == 0


async def test_list_of_keys_works_too(cluster: Cluster) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_pool(api_id=1, api_hash="x", home_dc=2, dc_list=cluster.dc_list(),
                             rsa_keys=[cluster.rsa_public_key()], fetch_config=False) as pool:
            config = await pool.invoke(tl.api.help.GetConfig())
            assert config.this_dc == 2


async def test_bad_short_forms_fail_before_any_connection(cluster: Cluster) -> None:
    with pytest.raises(ConfigError):
        async with open_pool(api_id=1, api_hash="x", dc_list={2: ("127.0.0.1",)},
                             rsa_keys=cluster.rsa_public_pem()):
            pass  # pragma: no cover
    with pytest.raises(ConfigError):
        async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys="nope"):
            pass  # pragma: no cover
    stats = cluster.statistics()
    assert all(stats[dc].connections_total == 0 for dc in cluster.world.dc_ids)
