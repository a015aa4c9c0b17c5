"""Issue 12, items 4-6: flood waits waited out inside the deadline, 500-class answers retried
with backoff for idempotent requests, CONNECTION_NOT_INITED / CONNECTION_LAYER_INVALID re-sent
wrapped.  Real loopback sockets against the emulator, on trio's fake clock (the autojump
threshold is not 0: see test_pool_timers)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from dcpool import errors, tl
from dcpool.pool import open_pool
from dcpool.testing import Cluster, open_cluster

api = tl.api
PART = 64 * 1024
PHONE_DC2, CODE_DC2 = "9996621234", "22222"
GET_SELF = api.users.GetUsers(id=[api.InputUserSelf()])


def send_message(n: int):
    """A request that must not run twice (not idempotent for dcpool)."""
    return api.messages.SendMessage(peer=api.InputPeerSelf(), message=f"hello {n}", random_id=n)


@pytest.fixture
def clock(mock_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    mock_clock.autojump_threshold = 0.02
    return mock_clock


def pool_for(cluster: Cluster, **kwargs):
    kwargs.setdefault("home_dc", 2)
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                     fetch_config=False, **kwargs)


def drain(events) -> list:
    out = []
    while True:
        try:
            out.append(events.receive_nowait())
        except trio.WouldBlock:
            return out


async def fetch(pool, f) -> int:
    got = 0
    async for chunk in pool.download(f.input_location(), dc_id=f.dc_id, size=f.size, part_size=PART):
        got += len(chunk)
    return got


# ---------------------------------------------------------------- 4. flood waits


@pytest.mark.parametrize("message", ["FLOOD_WAIT_5", "FLOOD_PREMIUM_WAIT_5", "FLOOD_TEST_PHONE_WAIT_5",
                                     "SLOWMODE_WAIT_5"])
async def test_flood_wait_under_the_threshold_is_waited_out_and_resent(clock, message) -> None:
    async with open_cluster() as cluster:
        with trio.fail_after(300):
            async with pool_for(cluster) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(2).fail("users.getUsers", 420, message, count=1)
                start = trio.current_time()
                async with pool.events() as events:
                    users = await pool.invoke(GET_SELF)
                    seen = [e for e in drain(events) if e.kind == "flood_wait"]
                assert users[0].id == pool.user_id
                assert trio.current_time() - start >= 5
                assert [(e.dc_id, e.data["seconds"], e.data["request"]) for e in seen] == [
                    (2, 5, "users.getUsers")]
                st = pool.statistics()
                assert (st.flood_waits, st.flood_wait_seconds) == (1, 5)
                assert cluster.statistics()[2].requests["users.getUsers"] == 2


async def test_flood_wait_of_a_non_idempotent_request_is_resent_too(clock) -> None:
    # the server did not run it: re-sending cannot run it twice
    async with open_cluster() as cluster:
        with trio.fail_after(300):
            async with pool_for(cluster) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(2).fail("messages.sendMessage", 420, "SLOWMODE_WAIT_3", count=1)
                await pool.invoke(send_message(7))
                s = cluster.statistics()[2]
                assert s.requests["messages.sendMessage"] == 2
                assert s.errors["SLOWMODE_WAIT_3"] == 1
                assert pool.statistics().flood_waits == 1


async def test_flood_wait_above_the_threshold_is_raised_at_once(clock) -> None:
    async with open_cluster() as cluster:
        with trio.fail_after(300):
            async with pool_for(cluster, flood_sleep_threshold=60) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(2).flood_wait("users.getUsers", 61, count=1)
                start = trio.current_time()
                with pytest.raises(errors.FloodWait) as info:
                    await pool.invoke(GET_SELF)
                assert info.value.seconds == 61 and trio.current_time() - start < 61
                assert info.value.deadline >= start + 61
                assert pool.statistics().flood_waits == 0


async def test_flood_wait_past_the_deadline_is_raised_at_once(clock) -> None:
    async with open_cluster() as cluster:
        with trio.fail_after(300):
            async with pool_for(cluster) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(2).flood_wait("users.getUsers", 30, count=1)
                start = trio.current_time()
                with pytest.raises(errors.FloodWait):
                    await pool.invoke(GET_SELF, timeout=10)
                assert trio.current_time() - start < 10


async def test_download_waits_per_part_and_export_flood_is_waited_out(clock) -> None:
    async with open_cluster() as cluster:
        f = cluster.add_file(3, size=6 * PART + 3)
        with trio.fail_after(300):
            async with pool_for(cluster) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(2).flood_wait("auth.exportAuthorization", 1, count=1)
                cluster.faults(3).fail("upload.getFile", 420, "FLOOD_PREMIUM_WAIT_2", count=2)
                assert await fetch(pool, f) == f.size
                st = pool.statistics()
                assert st.flood_waits == 2 and st.transfer_flood_waits == 1
                assert (st.transfers, st.transfers_failed) == (1, 0)


# ---------------------------------------------------------------- 5. server errors


@pytest.mark.parametrize("message", ["INTERNAL", "RPC_CALL_FAIL", "PERSISTENT_TIMESTAMP_OUTDATED",
                                     "MSG_WAIT_TIMEOUT"])
async def test_server_errors_are_retried_with_backoff_for_idempotent_requests(clock, message) -> None:
    async with open_cluster() as cluster:
        with trio.fail_after(300):
            async with pool_for(cluster) as pool:
                await pool.invoke(api.help.GetNearestDc())
                cluster.faults(2).fail("help.getNearestDc", 500, message, count=3)
                start = trio.current_time()
                assert (await pool.invoke(api.help.GetNearestDc())).this_dc == 2
                # 0.5 + 1 + 2 seconds of capped exponential backoff
                assert trio.current_time() - start >= 3.5
                assert pool.statistics().server_retries == 3
                assert cluster.statistics()[2].requests["help.getNearestDc"] == 5


async def test_server_errors_give_up_inside_the_deadline(clock) -> None:
    async with open_cluster() as cluster:
        with trio.fail_after(300):
            async with pool_for(cluster) as pool:
                cluster.faults(2).fail("help.getNearestDc", 500, "INTERNAL", count=None)
                with pytest.raises(errors.ServerError):
                    await pool.invoke(api.help.GetNearestDc(), timeout=5)
                # 0.5 + 1 + 2 fit in 5 s, 4 more would not
                assert pool.statistics().server_retries == 3


async def test_server_errors_of_non_idempotent_requests_are_not_retried(clock) -> None:
    async with open_cluster() as cluster:
        with trio.fail_after(300):
            async with pool_for(cluster) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(2).fail("messages.sendMessage", 500, "INTERNAL", count=1)
                with pytest.raises(errors.ServerError):
                    await pool.invoke(send_message(1))
                cluster.faults(2).fail("messages.sendMessage", -503, "Timeout", count=1)
                with pytest.raises(errors.OutcomeUnknown):
                    await pool.invoke(send_message(2))
                assert cluster.statistics()[2].requests["messages.sendMessage"] == 2
                assert pool.statistics().server_retries == 0


async def test_transport_503_is_retried_for_idempotent_requests(clock) -> None:
    async with open_cluster() as cluster:
        with trio.fail_after(300):
            async with pool_for(cluster) as pool:
                await pool.invoke(api.help.GetNearestDc())
                cluster.faults(2).transport_error(-503, count=2)
                assert (await pool.invoke(api.help.GetNearestDc())).this_dc == 2


# ---------------------------------------------------------------- 6. initConnection again


@pytest.mark.parametrize("message", ["CONNECTION_NOT_INITED", "CONNECTION_LAYER_INVALID"])
async def test_connection_not_inited_is_resent_wrapped_once(clock, message) -> None:
    async with open_cluster() as cluster:
        with trio.fail_after(300):
            async with pool_for(cluster) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                cluster.faults(2).fail("users.getUsers", 400, message, count=1)
                await pool.invoke(GET_SELF)
                assert pool.statistics().reinits == 1
                cluster.faults(2).fail("users.getUsers", 400, message, count=2)
                with pytest.raises(errors.BadRequest):  # once, not forever
                    await pool.invoke(GET_SELF)


async def test_dc_that_forgot_the_init_gets_it_again(clock) -> None:
    """The DC really lost the key's initConnection: the unwrapped call is refused, the
    re-sent one carries invokeWithLayer(initConnection(...)) and runs."""
    async with open_cluster() as cluster:
        with trio.fail_after(300):
            async with pool_for(cluster) as pool:
                await pool.sign_in(PHONE_DC2, CODE_DC2)
                await pool.flush_storage()
                key_id = pool.storage.get_dc(2).key_id
                cluster.world.dc(2).key_inits.pop(key_id)
                await pool.invoke(GET_SELF)
                assert cluster.statistics()[2].errors["CONNECTION_NOT_INITED"] == 1
                assert key_id in cluster.world.dc(2).key_inits
                assert pool.statistics().reinits == 1
