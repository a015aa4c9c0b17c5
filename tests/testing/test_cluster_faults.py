"""Every DcFaults fault, produced by the emulator over real loopback sockets.

Each test arms one fault on a live cluster and watches the raw events a minimal client built
from dcpool's sans-IO pieces receives (``_raw_client``): nothing here trusts the world's unit
tests to say what reaches the wire.
"""

from __future__ import annotations

import pytest
import trio
from _raw_client import Closed, TransportKind, login, open_raw, open_session

from dcpool import tl
from dcpool.errors import (
    BadRequest,
    ConnectionLost,
    FloodWait,
    Forbidden,
    RpcError,
    ServerError,
)
from dcpool.mtproto.session import ClockCorrected, RequestAcked, RpcResult, SaltChanged
from dcpool.transport import TransportErrorFrame

pytestmark = pytest.mark.e2e

api = tl.api
TIMEOUT = 10
PHONE = "9996621234"  # reserved test number of DC 2 (spec §12.3); its code is 22222


# --------------------------------------------------------------------------- transports


@pytest.mark.parametrize(
    ("kind", "obfuscated"),
    [
        (TransportKind.ABRIDGED, False),
        (TransportKind.INTERMEDIATE, False),
        (TransportKind.PADDED_INTERMEDIATE, False),
        (TransportKind.FULL, False),
        (TransportKind.ABRIDGED, True),
        (TransportKind.INTERMEDIATE, True),
        (TransportKind.PADDED_INTERMEDIATE, True),
    ],
    ids=lambda v: v.value if isinstance(v, TransportKind) else ("obfuscated" if v else "plain"),
)
async def test_key_exchange_and_get_config_over_every_transport(cluster, kind, obfuscated):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 3, kind=kind, obfuscated=obfuscated) as raw:
            config = await raw.call(api.help.GetConfig())
    assert config.this_dc == 3
    assert config.test_mode is False
    listed = {o.id: (o.ip_address, o.port) for o in config.dc_options}
    assert listed == {dc: cluster.endpoint(dc) for dc in (1, 2, 3, 4, 5)}
    stats = cluster.statistics()
    assert stats[3].handshakes == 1
    assert stats[3].requests["help.getConfig"] == 1


# --------------------------------------------------------------------------- connection-level


async def test_latency_delays_both_directions_without_serialising(cluster):
    latency = 0.15
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 1) as raw:
            await raw.call(api.help.GetNearestDc())  # warm: the session exists
            cluster.faults(1).latency = latency
            t0 = trio.current_time()
            await raw.call(api.help.GetNearestDc())
            rtt = trio.current_time() - t0
            assert rtt >= 2 * latency  # in and out

            # Two requests in separate packets, 20 ms apart: answered ~20 ms apart, not one
            # latency apart (the delay line does not serialise).
            t0 = trio.current_time()
            first = raw.send(api.help.GetNearestDc())
            await raw.flush()
            await trio.sleep(0.02)
            second = raw.send(api.help.GetNearestDc())
            await raw.flush()
            await raw.answer(first)
            t_first = trio.current_time() - t0
            await raw.answer(second)
            t_second = trio.current_time() - t0
    assert t_first >= 2 * latency
    assert t_second - t_first < latency * 2 / 3  # ~0.02 s; serialised it would be >= latency


async def test_refused_connection_is_closed_before_any_answer(cluster):
    cluster.faults(1).refuse_connections(count=1)
    host, port = cluster.endpoint(1)
    with trio.fail_after(TIMEOUT):
        async with open_raw(host, port) as raw:
            with pytest.raises(ConnectionLost):
                await raw.handshake(cluster.rsa_keys(), 1)
        assert [type(e) for e in raw.history] == [Closed]
        # The budget is spent: the next connection is served.
        async with open_session(cluster, 1) as raw:
            await raw.call(api.help.GetNearestDc())
    assert cluster.statistics()[1].handshakes == 1


@pytest.mark.parametrize("after", [0, 1, 2])
async def test_connection_dropped_after_n_client_messages(cluster, after):
    """The handshake has three client messages: after N of them the server closes, having
    answered exactly those N."""
    cluster.faults(2).drop_connections(after_messages=after, count=1)
    host, port = cluster.endpoint(2)
    with trio.fail_after(TIMEOUT):
        async with open_raw(host, port) as raw:
            with pytest.raises(ConnectionLost):
                await raw.handshake(cluster.rsa_keys(), 2)
    answers = [e for e in raw.history if not isinstance(e, Closed)]
    assert len(answers) == after
    assert isinstance(raw.history[-1], Closed)
    assert cluster.statistics()[2].handshakes == 0


async def test_connection_dropped_after_n_messages_of_a_session(cluster):
    cluster.faults(2).drop_connections(after_messages=4, count=1)  # 3 handshake + 1 call
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as raw:
            await raw.call(api.help.GetNearestDc())
            with pytest.raises(ConnectionLost):
                await raw.call(api.help.GetNearestDc())
    assert cluster.statistics()[2].requests["help.getNearestDc"] == 1
    assert cluster.live_connections(2) == 0


async def test_cluster_drop_connections_closes_live_connections(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 1) as raw:
            await raw.call(api.help.GetNearestDc())
            assert cluster.live_connections(1) == 1
            assert cluster.drop_connections(1) == 1
            await raw.until(lambda e: isinstance(e, Closed))
    stats = cluster.statistics()[1]
    assert (stats.connections_live, stats.connections_total) == (0, 1)


@pytest.mark.parametrize("latency", [0.0, 0.05])
async def test_transport_error_minus_404_then_close(cluster, latency):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 1) as raw:
            await raw.call(api.help.GetNearestDc())
            cluster.faults(1).latency = latency
            cluster.faults(1).transport_error(-404)
            raw.send(api.help.GetNearestDc())
            await raw.until(lambda e: isinstance(e, Closed))
    tail = raw.history[-2:]
    assert tail[0] == TransportErrorFrame(-404)
    assert isinstance(tail[1], Closed)
    assert cluster.statistics()[1].requests["help.getNearestDc"] == 1  # not executed


async def test_drop_after_ack_acknowledges_then_closes_without_executing(cluster):
    cluster.faults(1).drop_after_ack("help.getNearestDc")
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 1) as raw:
            assert (await raw.call(api.help.GetConfig())).this_dc == 1  # other methods pass
            req = raw.send(api.help.GetNearestDc())
            await raw.until(lambda e: isinstance(e, Closed))
    acked = [e for e in raw.of_type(RequestAcked) if e.request is req]
    assert len(acked) == 1
    assert raw.history.index(acked[0]) < len(raw.history) - 1  # the ack came before the close
    assert not [e for e in raw.of_type(RpcResult) if e.request is req]
    stats = cluster.statistics()[1]
    assert "help.getNearestDc" not in stats.requests  # never executed
    key = (1, raw.session.auth_key.key_id, raw.session.session_id, req.msg_id)
    assert key not in cluster.executions()
    assert not cluster.faults(1).armed()  # one-shot by default


# --------------------------------------------------------------------------- message-level


async def test_salt_rotation_forces_bad_server_salt_and_a_resend(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as raw:
            await raw.call(api.help.GetNearestDc())
            old_salt = raw.session.salt
            cluster.faults(2).rotate_salt(count=1)
            before = len(raw.history)
            nearest = await raw.call(api.help.GetNearestDc())
    assert nearest.this_dc == 2
    kinds = [type(e) for e in raw.history[before:]]
    assert kinds.index(SaltChanged) < kinds.index(RpcResult)
    assert raw.error_codes() == [48]
    assert raw.session.salt != old_salt
    assert raw.session.salt == raw.of_type(SaltChanged)[-1].salt
    stats = cluster.statistics()
    assert stats[2].requests["help.getNearestDc"] == 2  # the rejected message was not run
    assert not stats.duplicates()


@pytest.mark.parametrize(("offset", "code"), [(600.0, 16), (-600.0, 17)])
async def test_clock_offset_forces_bad_msg_notification(cluster, offset, code):
    """A DC clock 10 min ahead makes our msg_ids too old (16), behind makes them too new (17);
    the client adopts the server's time from the notification and the re-send succeeds."""
    cluster.faults(3).clock_offset = offset
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 3) as raw:
            # The key exchange told the client the DC's time (server_time, §5.6); a client
            # that lost that offset (a restart with a stored key) meets the skew as 16/17.
            assert raw.session.time_offset == pytest.approx(offset, abs=5)
            raw.session.time_offset = 0.0
            nearest = await raw.call(api.help.GetNearestDc())
    assert nearest.this_dc == 3
    assert raw.error_codes() == [code]
    corrected = raw.of_type(ClockCorrected)
    assert len(corrected) == 1
    assert corrected[0].time_offset == pytest.approx(offset, abs=5)


# --------------------------------------------------------------------------- RPC-level


async def test_flood_wait_on_a_chosen_method(cluster):
    cluster.faults(1).flood_wait("help.getNearestDc", 7)  # until cleared
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 1) as raw:
            for _ in range(2):
                with pytest.raises(FloodWait) as info:
                    await raw.call(api.help.GetNearestDc())
                error = info.value
                assert (error.code, error.message, error.seconds) == (420, "FLOOD_WAIT_7", 7)
            assert (await raw.call(api.help.GetConfig())).this_dc == 1  # other methods pass
            cluster.faults(1).clear_rpc("help.getNearestDc")
            assert (await raw.call(api.help.GetNearestDc())).this_dc == 1
    assert cluster.statistics()[1].errors["FLOOD_WAIT_7"] == 2


@pytest.mark.parametrize(
    ("method", "code", "message", "cls"),
    [
        ("help.getConfig", 500, "SOMETHING_BROKE", ServerError),
        (api.help.GetConfig, 400, "CONFIG_INVALID", BadRequest),
        (None, 403, "CHAT_WRITE_FORBIDDEN", Forbidden),
    ],
)
async def test_arbitrary_rpc_error_for_a_method(cluster, method, code, message, cls):
    cluster.faults(4).fail(method, code, message, count=1)
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 4) as raw:
            with pytest.raises(RpcError) as info:
                await raw.call(api.help.GetConfig())
            assert type(info.value) is cls
            assert (info.value.code, info.value.message) == (code, message)
            assert (await raw.call(api.help.GetConfig())).this_dc == 4  # one-shot


async def test_auth_bytes_invalid_once_then_the_same_token_imports(cluster):
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 2) as home:
            user = await login(home, PHONE, "22222")
            exported = await home.call(api.auth.ExportAuthorization(dc_id=4))
        cluster.faults(4).auth_bytes_invalid()
        async with open_session(cluster, 4) as media:
            query = api.auth.ImportAuthorization(id=exported.id, bytes=exported.bytes)
            with pytest.raises(BadRequest) as info:
                await media.call(query)
            assert info.value.message == "AUTH_BYTES_INVALID"
            imported = await media.call(query)
    assert imported.user.id == user.id
    stats = cluster.statistics()
    assert (stats[2].exports, stats[4].imports) == (1, 1)
    assert stats[4].errors["AUTH_BYTES_INVALID"] == 1
