"""Faults: RPC-level ones applied by the handlers, shell-level ones through their accessors."""

from __future__ import annotations

import random

import pytest

from dcpool import tl
from dcpool.errors import BadRequest, FloodWait, LocalProtocolError, RpcError, ServerError
from dcpool.testing.faults import ConnectionVerdict, DcFaults
from dcpool.testing.world import World

api = tl.api


def make_world() -> World:
    w = World.test_cluster(rng=random.Random(3).randbytes, require_init_connection=False)
    uid = w.user_by_phone(w.test_phone(1, 1)).id
    w.authorize(1, 100, uid)
    return w


def export(w: World, target: int = 2):
    return w.call(1, 100, api.auth.ExportAuthorization(dc_id=target))


# --------------------------------------------------------------------------- RPC-level


def test_flood_wait_on_export_for_the_next_n_calls():
    w = make_world()
    w.faults(1).flood_wait("auth.exportAuthorization", 7, count=2)
    for _ in range(2):
        with pytest.raises(FloodWait) as info:
            export(w)
        assert (info.value.code, info.value.message, info.value.seconds) == (420, "FLOOD_WAIT_7", 7)
    assert export(w).id  # the budget is spent
    assert w.faults(1).rpc_faults == ()
    assert w.stats(1).exports == 1  # faulted calls did nothing
    assert w.stats(1).errors["FLOOD_WAIT_7"] == 2
    assert w.stats(1).requests["auth.exportAuthorization"] == 3


def test_forever_fault_until_cleared_and_only_on_its_dc_and_method():
    w = make_world()
    w.faults(1).flood_wait(api.auth.ExportAuthorization, 3)  # a TL class works as the name
    for _ in range(5):
        with pytest.raises(FloodWait):
            export(w)
    assert w.call(1, 100, api.help.GetNearestDc()).this_dc == 1  # other methods unaffected
    assert w.call(2, 100, api.help.GetNearestDc()).this_dc == 2
    w.faults(1).clear_rpc("auth.exportAuthorization")
    assert export(w).id


def test_arbitrary_error_with_count_and_wildcard():
    w = make_world()
    f = w.faults(2)
    f.fail(None, 500, "INTERNAL_X", count=1)
    f.fail("help.getConfig", 400, "SOMETHING_ODD", count=1)
    with pytest.raises(ServerError) as info:
        w.call(2, 1, api.help.GetNearestDc())
    assert info.value.message == "INTERNAL_X"
    with pytest.raises(BadRequest) as info2:
        w.call(2, 1, api.help.GetConfig())
    assert info2.value.message == "SOMETHING_ODD"
    assert w.call(2, 1, api.help.GetConfig()).this_dc == 2


def test_fault_applies_to_the_innermost_method_and_changes_nothing():
    w = make_world()
    phone = w.test_phone(1, 2)
    sent = w.call(1, 5, api.auth.SendCode(phone_number=phone, api_id=1, api_hash="h", settings=api.CodeSettings()))
    w.faults(1).fail("auth.signIn", 500, "AUTH_RESTART", count=1)
    q = api.InvokeWithLayer(layer=229, query=api.auth.SignIn(phone_number=phone, phone_code_hash=sent.phone_code_hash, phone_code="11111"))
    with pytest.raises(RpcError) as info:
        w.call(1, 5, q)
    assert info.value.message == "AUTH_RESTART"
    assert w.authorization(1, 5) is None
    assert w.call(1, 5, q).user.phone == phone  # the code was not consumed


def test_one_shot_auth_bytes_invalid_keeps_the_token():
    w = make_world()
    ex = export(w)
    w.faults(2).auth_bytes_invalid()
    imp = api.auth.ImportAuthorization(id=ex.id, bytes=ex.bytes)
    with pytest.raises(BadRequest) as info:
        w.call(2, 200, imp)
    assert info.value.message == "AUTH_BYTES_INVALID"
    assert w.call(2, 200, imp).user.id == ex.id
    assert w.stats(2).imports == 1


def test_rules_fire_in_arming_order():
    f = DcFaults(1)
    f.fail("x.y", 400, "FIRST", count=1)
    f.fail("x.y", 400, "SECOND", count=1)
    assert f.take_rpc_fault("x.y").message == "FIRST"
    assert f.take_rpc_fault("x.y").message == "SECOND"
    assert f.take_rpc_fault("x.y") is None
    assert f.take_rpc_fault("other") is None


# --------------------------------------------------------------------------- shell-level


def test_connection_faults():
    f = DcFaults(1)
    assert f.on_connection() == ConnectionVerdict()
    f.refuse_connections(count=2)
    f.drop_connections(after_messages=3, count=1)
    assert [f.on_connection() for _ in range(4)] == [
        ConnectionVerdict(refuse=True),
        ConnectionVerdict(refuse=True),
        ConnectionVerdict(drop_after_messages=3),
        ConnectionVerdict(),
    ]
    f.drop_connections()  # immediately, forever
    assert [f.on_connection().drop_after_messages for _ in range(3)] == [0, 0, 0]
    f.clear()
    assert f.on_connection() == ConnectionVerdict()
    assert not f.armed()


def test_transport_error_salt_rotation_latency_and_clock():
    f = DcFaults(3)
    assert f.take_transport_error() is None
    f.transport_error()  # -404 once
    assert [f.take_transport_error(), f.take_transport_error()] == [-404, None]
    f.transport_error(-429, count=2)
    assert [f.take_transport_error() for _ in range(3)] == [-429, -429, None]
    f.rotate_salt(count=2)
    assert [f.take_salt_rotation() for _ in range(3)] == [True, True, False]
    f.rotate_salt(count=None)
    assert all(f.take_salt_rotation() for _ in range(10))
    f.latency = 0.25
    f.clock_offset = -400.0
    assert f.server_time(1000.0) == 600.0
    assert f.armed()
    f.clear()
    assert (f.latency, f.clock_offset, f.take_salt_rotation()) == (0.0, 0.0, False)


def test_bad_arming_arguments():
    f = DcFaults(1)
    with pytest.raises(LocalProtocolError):
        f.refuse_connections(count=0)
    with pytest.raises(LocalProtocolError):
        f.drop_connections(after_messages=-1)
    with pytest.raises(LocalProtocolError):
        f.transport_error(404)
    with pytest.raises(LocalProtocolError):
        f.flood_wait("x", -1)
    with pytest.raises(LocalProtocolError):
        f.fail(123, 400, "X")


def test_faults_are_per_dc():
    w = World.test_cluster(require_init_connection=False)
    w.faults(1).refuse_connections()
    assert w.faults(1).on_connection().refuse
    assert not w.faults(2).on_connection().refuse
