"""open_pool's options: explicit keywords (PoolConfig's fields) or one frozen PoolConfig."""

from __future__ import annotations

import attrs
import pytest
import trio

from dcpool import tl
from dcpool.pool import PoolConfig, open_pool
from dcpool.testing import Cluster


async def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        async with open_pool(api_id=1, api_hash="x", download_conections=8):  # type: ignore[call-arg]
            pass  # pragma: no cover


async def test_config_and_separate_options_do_not_mix() -> None:
    with pytest.raises(TypeError, match="idle_timeout"):
        async with open_pool(api_id=1, api_hash="x", config=PoolConfig(), idle_timeout=5):
            pass  # pragma: no cover


def test_config_is_frozen_and_validated() -> None:
    config = PoolConfig(idle_timeout=5)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.idle_timeout = 6  # type: ignore[misc]
    with pytest.raises(ValueError):
        PoolConfig(download_connections=0)
    with pytest.raises(TypeError):
        config.replace(idle_timout=1)
    assert config.replace(max_hops=2).max_hops == 2


async def test_config_object_is_used(cluster: Cluster) -> None:
    config = PoolConfig(fetch_config=False, download_connections=2, request_timeout=7)
    with trio.fail_after(20):
        async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(),
                             rsa_keys=cluster.rsa_keys(), config=config) as pool:
            assert pool.config is config
            assert (await pool.invoke(tl.api.help.GetNearestDc())).this_dc == 2
            assert cluster.statistics()[2].requests.get("help.getConfig", 0) == 0
