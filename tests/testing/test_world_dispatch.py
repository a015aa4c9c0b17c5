"""World: cluster presets, help.* answers, config ordering, wrappers and request dispatch."""

from __future__ import annotations

import random

import pytest

from dcpool import tl
from dcpool.errors import BadRequest, ConfigError, RpcError, ServerError, UnknownDc
from dcpool.testing import handlers
from dcpool.testing.world import ConnectionContext, World

api = tl.api


def make_world(**kw) -> World:
    return World.test_cluster(rng=random.Random(1234).randbytes, require_init_connection=False, **kw)


def init_wrap(query, layer: int = 229):
    return api.InvokeWithLayer(
        layer=layer,
        query=api.InitConnection(
            api_id=42,
            device_model="pytest",
            system_version="linux",
            app_version="1.0",
            system_lang_code="en",
            lang_pack="",
            lang_code="en",
            query=query,
        ),
    )


# --------------------------------------------------------------------------- presets


def test_default_world_has_five_production_dcs():
    w = World(rng=random.Random(0).randbytes, require_init_connection=False)
    assert w.dc_ids == (1, 2, 3, 4, 5)
    assert w.test_mode is False
    assert w.nearest_dc == 2


def test_test_cluster_preset():
    w = make_world()
    assert w.dc_ids == (1, 2, 3)
    assert w.test_mode is True
    cfg = w.call(1, 1, api.help.GetConfig(), now=100.0)
    assert cfg.test_mode is True


def test_bad_configuration_is_rejected():
    with pytest.raises(ConfigError):
        World([])
    with pytest.raises(ConfigError):
        World([0, 1])
    with pytest.raises(UnknownDc):
        World([1, 2], nearest_dc=7)
    with pytest.raises(UnknownDc):
        make_world().dc(9)


# --------------------------------------------------------------------------- help.*


def test_get_config_fields():
    w = make_world(config_ttl=600)
    w.set_endpoint(1, "127.0.0.1", 4001)
    cfg = w.call(3, 1, api.help.GetConfig(), now=1_700_000_000.7)
    assert cfg.this_dc == 3
    assert cfg.date == 1_700_000_000
    assert cfg.expires == 1_700_000_600
    assert [(o.id, o.ip_address, o.port) for o in cfg.dc_options] == [(1, "127.0.0.1", 4001)]


def test_dc_options_order_plain_ipv4_then_ipv6_then_media():
    w = make_world()
    w.set_endpoint(2, "127.0.0.1", 4002, ipv6=("::1", 6002), media=[("::1", 8002), ("127.0.0.1", 7002)])
    w.set_endpoint(1, "127.0.0.1", 4001, ipv6=("::1", 6001), media=[("127.0.0.1", 7001)])
    w.set_endpoint(3, "127.0.0.1", 4003)
    cfg = w.call(1, 1, api.help.GetConfig())
    got = [(o.id, o.ipv6, o.media_only, o.port) for o in cfg.dc_options]
    assert got == [
        (1, False, False, 4001),
        (2, False, False, 4002),
        (3, False, False, 4003),
        (1, True, False, 6001),
        (2, True, False, 6002),
        (1, False, True, 7001),
        (2, False, True, 7002),
        (2, True, True, 8002),
    ]

    # Telethon's rule: first option with matching id/ipv6/cdn, media_only ignored (spec §11.1)
    def telethon_pick(dc_id: int, ipv6: bool) -> int:
        return next(o.port for o in cfg.dc_options if o.id == dc_id and o.ipv6 == ipv6 and not o.cdn)

    assert [telethon_pick(d, False) for d in (1, 2, 3)] == [4001, 4002, 4003]
    assert telethon_pick(2, True) == 6002


def test_dc_options_skip_dcs_without_endpoints_and_follow_updates():
    w = make_world()
    assert w.dc_options() == []
    w.set_endpoint(2, "127.0.0.1", 1)
    w.set_endpoint(2, "127.0.0.2", 2)  # the shell may move a DC
    assert [(o.ip_address, o.port) for o in w.dc_options()] == [("127.0.0.2", 2)]


def test_get_nearest_dc():
    w = make_world(nearest_dc=3, country="DE")
    r = w.call(1, 1, api.help.GetNearestDc())
    assert (r.country, r.this_dc, r.nearest_dc) == ("DE", 1, 3)


def test_get_app_config_empty_object_then_not_modified():
    w = make_world()
    r = w.call(1, 1, api.help.GetAppConfig(hash=0))
    assert type(r) is api.help.AppConfig
    assert type(r.config) is api.JsonObject and r.config.value == []
    r2 = w.call(1, 1, api.help.GetAppConfig(hash=r.hash))
    assert type(r2) is api.help.AppConfigNotModified


def test_get_cdn_config_is_empty():
    assert make_world().call(1, 1, api.help.GetCdnConfig()).public_keys == []


# --------------------------------------------------------------------------- wrappers


def test_wrappers_are_unwrapped_and_layer_and_init_recorded():
    w = make_world()
    ctx = ConnectionContext()
    query = api.InvokeAfterMsgs(
        msg_ids=[1, 2],
        query=api.InvokeAfterMsg(
            msg_id=3,
            query=init_wrap(api.InvokeWithoutUpdates(query=api.help.GetNearestDc()), layer=229),
        ),
    )
    r = w.call(2, 77, query, now=5.0, ctx=ctx)
    assert type(r) is api.NearestDc and r.this_dc == 2
    assert ctx.layer == 229
    assert ctx.init is not None and ctx.init.api_id == 42 and ctx.init.device_model == "pytest"
    assert ctx.without_updates is True
    # counted under the innermost method only
    assert dict(w.stats(2).requests) == {"help.getNearestDc": 1}
    # the layer is also remembered for the key: a new connection without invokeWithLayer
    assert w.layer_for(2, ConnectionContext(), 77) == 229
    assert w.layer_for(2, ConnectionContext(), 78) == tl.LAYER
    assert w.layer_for(1, ConnectionContext(), 77) == tl.LAYER


def test_gzip_packed_request_is_accepted():
    w = make_world()
    body = tl.gzip_pack(init_wrap(api.help.GetNearestDc()))
    data = w.handle(1, ConnectionContext(), 1, body, 0.0)
    assert tl.loads(data).this_dc == 1


def test_raw_inner_query_is_accepted():
    w = make_world()
    q = api.InvokeWithLayer(layer=229, query=tl.Raw(api.help.GetNearestDc().to_bytes()))
    data = w.handle(1, ConnectionContext(), 1, q.to_bytes(), 0.0)
    assert tl.loads(data).nearest_dc == w.nearest_dc


# --------------------------------------------------------------------------- dispatch errors


def rpc(w: World, dc: int, body: bytes, key: int = 1) -> RpcError:
    with pytest.raises(RpcError) as info:
        w.handle(dc, ConnectionContext(), key, body, 0.0)
    return info.value


def test_unknown_constructor_is_input_method_invalid():
    w = make_world()
    err = rpc(w, 1, bytes.fromhex("deadbeef") + bytes(8))
    assert isinstance(err, BadRequest) and err.message == "INPUT_METHOD_INVALID"
    # also inside wrappers
    inner = init_wrap(api.help.GetConfig()).to_bytes()
    body = inner[: -4] + bytes.fromhex("efbeadde")
    assert rpc(w, 1, body).message == "INPUT_METHOD_INVALID"


def test_truncated_known_method_is_input_fetch_error():
    w = make_world()
    body = api.auth.ExportAuthorization(dc_id=2).to_bytes()[:-2]
    err = rpc(w, 1, body)
    assert (err.code, err.message) == (400, "INPUT_FETCH_ERROR")
    wrapped = init_wrap(api.auth.ExportAuthorization(dc_id=2)).to_bytes()[:-2]
    assert rpc(w, 1, wrapped).message == "INPUT_FETCH_ERROR"


def test_constructor_instead_of_method_is_input_method_invalid():
    w = make_world()
    assert rpc(w, 1, api.InputUserSelf().to_bytes()).message == "INPUT_METHOD_INVALID"


def test_unsupported_method_has_a_clear_name():
    w = make_world()
    q = api.messages.GetDialogs(offset_date=0, offset_id=0, offset_peer=api.InputPeerEmpty(), limit=10, hash=0)
    err = rpc(w, 1, init_wrap(q).to_bytes())
    assert (err.code, err.message) == (400, handlers.METHOD_NOT_SUPPORTED)
    assert err.message == "METHOD_NOT_SUPPORTED_BY_EMULATOR"
    assert w.stats(1).errors["METHOD_NOT_SUPPORTED_BY_EMULATOR"] == 1


def test_handler_bug_becomes_500_unless_strict(monkeypatch):
    w = make_world()

    def boom(call, q):
        raise ZeroDivisionError("bug")

    monkeypatch.setitem(handlers.HANDLERS, "help.getNearestDc", (handlers.Access.ANY, boom))
    err = rpc(w, 1, api.help.GetNearestDc().to_bytes())
    assert isinstance(err, ServerError) and err.message == "EMULATOR_INTERNAL_ERROR"
    assert len(w.internal_errors) == 1
    w.strict = True
    with pytest.raises(ZeroDivisionError):
        w.handle(1, ConnectionContext(), 1, api.help.GetNearestDc().to_bytes(), 0.0)


def test_every_registered_handler_names_a_real_method():
    for qualname in handlers.HANDLERS:
        *spaces, name = qualname.split(".")
        ns = api
        for s in spaces:
            ns = getattr(ns, s)
        cls = getattr(ns, name[0].upper() + name[1:])
        assert cls.IS_FUNCTION and cls.QUALNAME == qualname
