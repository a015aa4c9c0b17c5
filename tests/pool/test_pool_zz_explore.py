import trio, time, pytest
from dcpool import tl, errors
from dcpool.pool import open_pool
api = tl.api

@pytest.mark.parametrize("fake", [False, True])
async def test_t(cluster, fake, mock_clock):
    mock_clock.autojump_threshold = 0.02 if fake else 1e9
    t=time.perf_counter()
    async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(), fetch_config=False) as pool:
        await pool.invoke_raw(api.help.GetNearestDc().to_bytes())
        print("first", time.perf_counter()-t)
        cluster.faults(2).drop_after_ack("help.getConfig")
        await pool.invoke(api.help.GetConfig())
        print("second", time.perf_counter()-t, trio.current_time())
    print("closed", time.perf_counter()-t)
