"""World: layer-158 answers, update routing, statistics, stats.getBroadcastStats."""

from __future__ import annotations

import random
import struct

import attrs
import pytest

from dcpool import tl
from dcpool.errors import AuthKeyUnregistered, BadRequest, StatsMigrate
from dcpool.testing.layers import to_layer, to_layer158
from dcpool.testing.stats import DcStats
from dcpool.testing.world import ConnectionContext, World

api = tl.api
USER_228 = 0xB1B8CC83
USER_158 = 0x8F97C628
USER_FULL_158 = 0x93EADB53
BROADCAST_STATS_158 = 0xBDF78394


def make_world() -> tuple[World, int]:
    w = World.test_cluster(rng=random.Random(8).randbytes, require_init_connection=False)
    uid = w.user_by_phone(w.test_phone(1, 1)).id
    w.authorize(1, 100, uid)
    return w, uid


def with_layer(layer: int, query):
    return api.InvokeWithLayer(layer=layer, query=query).to_bytes()


# --------------------------------------------------------------------------- layers


@pytest.mark.parametrize("layer,user_id", [(229, USER_228), (228, USER_228), (200, 0x020B1422), (158, USER_158), (150, USER_158)])
def test_user_is_encoded_in_the_client_layer(layer, user_id):
    w, uid = make_world()
    data = w.handle(1, ConnectionContext(), 100, with_layer(layer, api.users.GetUsers(id=[api.InputUserSelf()])), 0.0)
    # Vector<User>: vector id, count 1, then the boxed user
    vec, count, ctor = struct.unpack_from("<III", data)
    assert (vec, count, ctor) == (tl.ids.VECTOR, 1, user_id)
    users = tl.loads(data)
    assert users[0].id == uid and users[0].self_ is True


def test_layer_is_kept_for_later_calls_on_the_connection():
    w, uid = make_world()
    ctx = ConnectionContext()
    w.handle(1, ctx, 100, with_layer(158, api.help.GetNearestDc()), 0.0)
    data = w.handle(1, ctx, 100, api.users.GetUsers(id=[api.InputUserSelf()]).to_bytes(), 0.0)
    assert struct.unpack_from("<I", data, 8)[0] == USER_158
    # signIn answers (auth.authorization with a user) are converted too
    phone = w.test_phone(1, 2)
    sent = w.call(1, 5, api.auth.SendCode(phone_number=phone, api_id=1, api_hash="h", settings=api.CodeSettings()), ctx=ctx)
    auth = tl.loads(w.handle(1, ctx, 5, api.auth.SignIn(phone_number=phone, phone_code_hash=sent.phone_code_hash, phone_code="11111").to_bytes(), 0.0))
    assert type(auth.user) is tl.api158.User


def test_user_full_in_layer_158():
    w, uid = make_world()
    data = w.handle(1, ConnectionContext(layer=158), 100, api.users.GetFullUser(id=api.InputUserSelf()).to_bytes(), 0.0)
    full = tl.loads(data)
    assert type(full.full_user).CONSTRUCTOR_ID == USER_FULL_158
    assert type(full.full_user.settings) is tl.api158.PeerSettings
    assert type(full.full_user.settings) is not api.PeerSettings
    assert type(full.users[0]).CONSTRUCTOR_ID == USER_158
    assert full.full_user.id == uid


def test_layer158_get_difference_request_is_accepted():
    w, uid = make_world()
    q = tl.api158.updates.GetDifference(pts=1, date=0, qts=0)
    assert type(q).CONSTRUCTOR_ID == 0x25939651
    diff = tl.loads(w.handle(1, ConnectionContext(layer=158), 100, q.to_bytes(), 5.0))
    assert type(diff) is api.updates.DifferenceEmpty and diff.date == 5


def test_converter_keeps_unchanged_objects_and_drops_new_fields():
    cfg = api.NearestDc(country="NL", this_dc=1, nearest_dc=2)
    assert to_layer158(cfg) is cfg
    lst = [cfg]
    assert to_layer158(lst) is lst
    user = api.User(id=5, first_name="A", close_friend=True, bot_active_users=3, self_=True)
    old = to_layer158(user)
    assert type(old).CONSTRUCTOR_ID == USER_158
    assert (old.id, old.first_name, old.self_) == (5, "A", True)
    assert "close_friend" not in attrs.fields_dict(type(old))
    assert to_layer(user, 229) is user
    nested = api.auth.Authorization(user=user)
    assert type(to_layer158(nested).user).CONSTRUCTOR_ID == USER_158
    assert type(nested.user).CONSTRUCTOR_ID == USER_228  # the original is untouched


# --------------------------------------------------------------------------- stats.getBroadcastStats


def test_broadcast_stats_migrate_and_answer():
    w, uid = make_world()
    ch = w.add_channel(2, followers=10)
    with pytest.raises(StatsMigrate) as info:
        w.call(1, 100, api.stats.GetBroadcastStats(channel=ch.input_channel()))
    assert (info.value.code, info.value.message, info.value.dc_id) == (303, "STATS_MIGRATE_2", 2)
    ex = w.call(1, 100, api.auth.ExportAuthorization(dc_id=2))
    w.call(2, 200, api.auth.ImportAuthorization(id=ex.id, bytes=ex.bytes))
    stats = w.call(2, 200, api.stats.GetBroadcastStats(channel=ch.input_channel()), now=86400 * 30)
    assert type(stats) is api.stats.BroadcastStats
    assert stats.followers.current == 10.0
    assert stats.period.max_date - stats.period.min_date == 7 * 86400
    # layer 158 gets its own layout
    data = w.handle(2, ConnectionContext(layer=158), 200, api.stats.GetBroadcastStats(channel=ch.input_channel()).to_bytes(), 0.0)
    assert struct.unpack_from("<I", data)[0] == BROADCAST_STATS_158
    assert tl.loads(data).recent_message_interactions == []


def test_broadcast_stats_errors():
    w, uid = make_world()
    ch = w.add_channel(1)
    bad = api.InputChannel(channel_id=ch.id, access_hash=ch.access_hash + 1)
    with pytest.raises(BadRequest) as info:
        w.call(1, 100, api.stats.GetBroadcastStats(channel=bad))
    assert info.value.message == "CHANNEL_INVALID"
    with pytest.raises(BadRequest):
        w.call(1, 100, api.stats.GetBroadcastStats(channel=api.InputChannelEmpty()))
    with pytest.raises(AuthKeyUnregistered):
        w.call(1, 999, api.stats.GetBroadcastStats(channel=ch.input_channel()))


# --------------------------------------------------------------------------- updates


def test_push_update_goes_to_the_last_active_session_in_its_layer():
    w, uid = make_world()
    sent: list[tuple[object, bytes]] = []
    w.set_update_sink(lambda handle, payload: sent.append((handle, payload)))
    new_ctx, old_ctx = ConnectionContext(layer=229), ConnectionContext(layer=158)
    w.register_session(uid, new_ctx)
    w.register_session(uid, old_ctx)
    me = w.user(uid).to_tl(is_self=True)
    upd = api.Updates(updates=[api.UpdateConfig()], users=[me], chats=[], date=1, seq=0)
    assert w.push_update(uid, upd) == 1  # one session only: the last active one
    assert sent[-1][0] is old_ctx
    assert type(tl.loads(sent[-1][1]).users[0]).CONSTRUCTOR_ID == USER_158
    w.register_session(uid, new_ctx)  # active again: it is now the last active
    assert w.sessions(uid) == (old_ctx, new_ctx)
    assert w.push_update(uid, upd) == 1
    assert sent[-1][0] is new_ctx
    assert type(tl.loads(sent[-1][1]).users[0]).CONSTRUCTOR_ID == USER_228
    w.register_session(uid, "fixed", layer=158)
    assert w.push_update(uid, upd) == 1
    assert sent[-1][0] == "fixed"
    assert type(tl.loads(sent[-1][1]).users[0]).CONSTRUCTOR_ID == USER_158
    w.unregister_session(uid, old_ctx)
    w.unregister_session(uid, "fixed")
    w.unregister_session(uid, "never-registered")
    assert w.sessions(uid) == (new_ctx,)


def test_push_update_skips_sessions_on_other_dcs():
    w, uid = make_world()
    home = w.user(uid).home_dc
    other = next(d for d in w.dc_ids if d != home)
    sent: list[object] = []
    w.set_update_sink(lambda handle, payload: sent.append(handle))
    w.register_session(uid, "home", dc_id=home)
    w.register_session(uid, "foreign", dc_id=other)  # more recent, but not on the home DC
    assert w.update_target(uid) == "home"
    assert w.push_update(uid, api.UpdatesTooLong()) == 1 and sent == ["home"]
    w.move_user(uid, other)
    assert w.push_update(uid, api.UpdatesTooLong()) == 1 and sent == ["home", "foreign"]
    w.unregister_session(uid, "foreign")
    assert w.push_update(uid, api.UpdatesTooLong()) == 0


def test_bare_update_is_wrapped_in_update_short_and_no_sink_means_zero():
    w, uid = make_world()
    assert w.push_update(uid, api.UpdateConfig()) == 0  # no sink yet
    got: list[bytes] = []
    w.set_update_sink(lambda h, p: got.append(p))
    assert w.push_update(uid, api.UpdateConfig()) == 0  # no session
    w.register_session(uid, object())
    assert w.push_update(uid, api.UpdateConfig(), now=77.9) == 1
    short = tl.loads(got[0])
    assert type(short) is api.UpdateShort and type(short.update) is api.UpdateConfig and short.date == 77
    assert w.push_update(uid + 1, api.UpdatesTooLong()) == 0


def test_ctx_user_id_tracks_the_key_authorization():
    w, uid = make_world()
    ctx = ConnectionContext()
    w.handle(1, ctx, 100, api.help.GetNearestDc().to_bytes(), 0.0)
    assert ctx.user_id == uid and ctx.requests == 1
    w.handle(1, ctx, 100, api.auth.LogOut().to_bytes(), 0.0)
    assert ctx.user_id is None


# --------------------------------------------------------------------------- statistics


def test_executions_and_duplicates_through_handle():
    w, uid = make_world()
    body = api.help.GetNearestDc().to_bytes()
    ctx = ConnectionContext()
    w.handle(1, ctx, 100, body, 0.0, session_id=7, msg_id=4)
    w.handle(1, ctx, 100, body, 0.0, session_id=7, msg_id=8)
    w.handle(1, ctx, 100, body, 0.0, session_id=7, msg_id=4)
    w.stats(2).record_execution(5, 6, 12)
    assert w.stats(1).duplicates() == {(100, 7, 4): 2}
    snap = w.stats_snapshot()
    assert dict(snap.duplicates()) == {(1, 100, 7, 4): 2}
    assert w.cluster_stats.duplicates() == {(1, 100, 7, 4): 2}
    assert snap[1].requests["help.getNearestDc"] == 3 and snap.requests("help.getNearestDc") == 3
    assert snap[1].total_requests == 3


def test_snapshot_is_frozen_and_detached():
    s = DcStats(1)
    s.connection_opened()
    s.connection_opened()
    s.connection_closed()
    s.record_handshake()
    s.record_request("help.getConfig")
    snap = s.snapshot()
    assert (snap.connections_live, snap.connections_total, snap.handshakes) == (1, 2, 1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snap.handshakes = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap.requests["x"] = 1  # type: ignore[index]
    s.record_request("help.getConfig")
    assert snap.requests["help.getConfig"] == 1  # detached from later changes
    s.reset()
    assert (s.connections_live, s.handshakes, dict(s.requests)) == (1, 0, {})
    s.connection_closed()
    s.connection_closed()
    assert s.connections_live == 0
    s.track_executions = False
    s.record_execution(1, 2, 3)
    assert s.executions == {}
