"""Cluster-level behaviour over real sockets: updates pushed to live sessions, the *_MIGRATE_X
errors a multi-DC client must follow, and the execution counter (nothing runs twice)."""

from __future__ import annotations

import hashlib
from contextlib import asynccontextmanager

import pytest
import trio
from _raw_client import login, open_session

from dcpool import tl
from dcpool.errors import FileMigrate, StatsMigrate, UserMigrate
from dcpool.mtproto.session import RpcResult, Update

pytestmark = pytest.mark.e2e

api = tl.api
TIMEOUT = 10
PHONE = "9996621234"  # reserved test number of DC 2; code 22222


@asynccontextmanager
async def transferred(cluster, home, target: int):
    """A session on DC ``target`` authorized by export (on ``home``, logged in) + import."""
    exported = await home.call(api.auth.ExportAuthorization(dc_id=target))
    async with open_session(cluster, target) as raw:
        await raw.call(api.auth.ImportAuthorization(id=exported.id, bytes=exported.bytes))
        yield raw


async def test_push_update_reaches_a_live_logged_in_session(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as raw, open_session(cluster, 2) as anonymous:
            user = await login(raw, PHONE, "22222")
            await anonymous.call(api.help.GetNearestDc())  # connected, but not logged in
            # updateDcOptions#8e5e9873 dc_options:Vector<DcOption> = Update;  (bare: the world
            # wraps it in updateShort, the only form Telethon accepts unsolicited)
            assert cluster.push_update(user.id, api.UpdateDcOptions(dc_options=[])) == 1
            event = await raw.until(lambda e: isinstance(e, Update))
    pushed = tl.loads(event.body)
    assert type(pushed).QUALNAME == "updateShort"
    assert type(pushed.update).QUALNAME == "updateDcOptions"
    assert not anonymous.of_type(Update)


async def _no_update_after_a_round_trip(raw) -> bool:
    """True if ``raw`` got no update: the server queues an update before it answers a later
    call on the same connection, so one round trip is enough to know."""
    await raw.call(api.help.GetNearestDc())
    return not raw.of_type(Update)


async def test_updates_go_to_the_last_active_session_only(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as first, open_session(cluster, 2) as second:
            user = await login(first, PHONE, "22222")
            await login(second, PHONE, "22222")  # second is now the last active
            await first.call(api.help.GetNearestDc())  # ... and now first is
            assert cluster.push_update(user.id, api.UpdatesTooLong()) == 1
            await first.until(lambda e: isinstance(e, Update))
            assert await _no_update_after_a_round_trip(second)
            # A request inside invokeWithoutUpdates does not make a session active for updates
            # and takes it out of the routing (UPDATES.md §1.1): first keeps them... until it
            # asks for none itself.
            await second.call(api.InvokeWithoutUpdates(query=api.help.GetNearestDc()))
            await first.call(api.InvokeWithoutUpdates(query=api.help.GetNearestDc()))
            assert cluster.push_update(user.id, api.UpdatesTooLong()) == 0
            await second.call(api.help.GetNearestDc())
            assert cluster.push_update(user.id, api.UpdatesTooLong()) == 1
            await second.until(lambda e: isinstance(e, Update))
            assert len(first.of_type(Update)) == 1


async def test_updates_never_go_to_other_dcs(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as home:
            user = await login(home, PHONE, "22222")
            async with transferred(cluster, home, 4) as foreign:
                await foreign.call(api.help.GetNearestDc())  # the last active session is here
                assert cluster.push_update(user.id, api.UpdatesTooLong()) == 1
                await home.until(lambda e: isinstance(e, Update))
                assert await _no_update_after_a_round_trip(foreign)
                cluster.move_user(user.id, 4)  # now DC 4 is home: its session gets them
                assert cluster.push_update(user.id, api.UpdatesTooLong()) == 1
                await foreign.until(lambda e: isinstance(e, Update))
                assert len(home.of_type(Update)) == 1


async def test_push_update_without_a_session_goes_nowhere(cluster):
    account = cluster.add_user("15550001111", 3)
    assert cluster.push_update(account.id, api.UpdatesTooLong()) == 0


async def test_user_migrate_after_move_user(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as raw:
            user = await login(raw, PHONE, "22222")
            me = await raw.call(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert [u.id for u in me] == [user.id]
            cluster.move_user(user.id, 3)
            for query in (api.users.GetUsers(id=[api.InputUserSelf()]), api.updates.GetState()):
                with pytest.raises(UserMigrate) as info:
                    await raw.call(query)
                assert (info.value.message, info.value.dc_id) == ("USER_MIGRATE_3", 3)
            # The old home may still export (the key logged in there), so a client can follow.
            async with transferred(cluster, raw, 3) as new_home:
                me = await new_home.call(api.users.GetUsers(id=[api.InputUserSelf()]))
    assert [u.id for u in me] == [user.id]


async def test_file_migrate_then_download_after_transfer(cluster):
    stored = cluster.add_file(4, size=300_000)
    location = stored.input_location()
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as raw:
            await login(raw, PHONE, "22222")
            with pytest.raises(FileMigrate) as info:
                await raw.call(api.upload.GetFile(location=location, offset=0, limit=1 << 17))
            assert (info.value.message, info.value.dc_id) == ("FILE_MIGRATE_4", 4)
            async with transferred(cluster, raw, 4) as media:
                parts = []
                for offset in range(0, stored.size + (1 << 17), 1 << 17):
                    part = await media.call(
                        api.upload.GetFile(location=location, offset=offset, limit=1 << 17)
                    )
                    parts.append(part.bytes)
    data = b"".join(parts)
    assert hashlib.sha256(data).hexdigest() == stored.sha256
    assert cluster.statistics()[4].bytes_served == stored.size


async def test_stats_migrate_to_the_channels_stats_dc(cluster):
    channel = cluster.world.add_channel(5, title="news", followers=42)
    query = api.stats.GetBroadcastStats(channel=channel.input_channel())
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as raw:
            await login(raw, PHONE, "22222")
            with pytest.raises(StatsMigrate) as info:
                await raw.call(query)
            assert (info.value.message, info.value.dc_id) == ("STATS_MIGRATE_5", 5)
            async with transferred(cluster, raw, 5) as stats_dc:
                result = await stats_dc.call(query)
    assert result.followers.current == 42.0


async def test_a_replayed_message_is_answered_again_but_executed_once(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 1) as raw:
            req = raw.send(api.help.GetNearestDc())
            await raw.answer(req)
            msg_id, payload = req.msg_id, raw.sent_payloads[-1]

            def results() -> list:
                # rpc_result#f35c6d01 req_msg_id:long result:Object = RpcResult;
                head = tl.pack_uint(tl.ids.RPC_RESULT) + tl.pack_long(msg_id)
                return [i for i in raw.inner if bytes(i.body).startswith(head)]

            answers = results()
            # Replay the very same encrypted packet: same session, same msg_id.
            await raw.send_payload(payload)
            while len(results()) < 2:
                await raw.receive_events()
    resent = results()
    assert len(answers) == 1 and len(resent) == 2
    assert resent[0] == resent[1]  # the stored answer, same msg_id, seq_no and body
    assert len(raw.of_type(RpcResult)) == 1  # the session skips what it already has
    key = (1, raw.session.auth_key.key_id, raw.session.session_id, msg_id)
    executions = cluster.executions()
    assert executions[key] == 1
    assert set(executions.values()) == {1}
    stats = cluster.statistics()
    assert not stats.duplicates()
    assert stats[1].requests["help.getNearestDc"] == 1


async def test_the_execution_counter_counts_every_request_once(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as raw:
            reqs = [raw.send(api.help.GetNearestDc()) for _ in range(5)]  # one container
            for req in reqs:
                await raw.answer(req)
    executions = cluster.executions()
    key_id, session_id = raw.session.auth_key.key_id, raw.session.session_id
    assert {k: n for k, n in executions.items() if k[0] == 2} == {
        (2, key_id, session_id, req.msg_id): 1 for req in reqs
    }
