"""World: auth.exportAuthorization / auth.importAuthorization tokens and USER_MIGRATE rules."""

from __future__ import annotations

import random

import pytest

from dcpool import tl
from dcpool.errors import AuthKeyUnregistered, BadRequest, DcPoolError, RpcError, UserMigrate
from dcpool.testing.world import AuthKind, World

api = tl.api


def make_world(**kw) -> World:
    return World.test_cluster(rng=random.Random(7).randbytes, require_init_connection=False, **kw)


def logged_in(w: World, home: int = 1, key: int = 100) -> int:
    account = w.user_by_phone(w.test_phone(home, 1))
    w.authorize(home, key, account.id)
    return account.id


def export(w: World, dc: int, key: int, target: int, now: float = 0.0):
    return w.call(dc, key, api.auth.ExportAuthorization(dc_id=target), now)


def import_(w: World, dc: int, key: int, user_id: int, token: bytes, now: float = 0.0):
    return w.call(dc, key, api.auth.ImportAuthorization(id=user_id, bytes=token), now)


def raises(exc_type, fn, *args) -> RpcError:
    with pytest.raises(exc_type) as info:
        fn(*args)
    return info.value


def test_export_import_happy_path_and_stats():
    w = make_world()
    uid = logged_in(w)
    ex = export(w, 1, 100, 2)
    assert type(ex) is api.auth.ExportedAuthorization and ex.id == uid and len(ex.bytes) >= 16
    auth = import_(w, 2, 200, ex.id, ex.bytes)
    assert type(auth) is api.auth.Authorization and auth.user.id == uid and auth.user.self_
    assert w.authorization(2, 200).kind is AuthKind.IMPORTED
    snap = w.stats_snapshot()
    assert (snap[1].exports, snap[2].imports, snap.total("exports"), snap.total("imports")) == (1, 1, 1, 1)


def test_token_is_single_use():
    w = make_world()
    uid = logged_in(w)
    ex = export(w, 1, 100, 2)
    import_(w, 2, 200, uid, ex.bytes)
    err = raises(BadRequest, import_, w, 2, 201, uid, ex.bytes)
    assert (err.code, err.message) == (400, "AUTH_BYTES_INVALID")
    assert w.authorization(2, 201) is None


def test_token_expires_with_now():
    w = make_world(export_ttl=30.0)
    uid = logged_in(w)
    ex = export(w, 1, 100, 2, now=1000.0)
    assert raises(BadRequest, import_, w, 2, 200, uid, ex.bytes, 1030.5).message == "AUTH_BYTES_INVALID"
    ex2 = export(w, 1, 100, 2, now=1000.0)
    assert import_(w, 2, 200, uid, ex2.bytes, 1030.0).user.id == uid


def test_token_is_bound_to_target_dc_and_user():
    w = make_world()
    uid = logged_in(w)
    ex = export(w, 1, 100, 2)
    # wrong target DC (3, and the exporting DC itself)
    assert raises(BadRequest, import_, w, 3, 300, uid, ex.bytes).message == "AUTH_BYTES_INVALID"
    assert raises(BadRequest, import_, w, 1, 101, uid, ex.bytes).message == "AUTH_BYTES_INVALID"
    # wrong user id
    assert raises(BadRequest, import_, w, 2, 200, uid + 1, ex.bytes).message == "AUTH_BYTES_INVALID"
    # unknown bytes
    assert raises(BadRequest, import_, w, 2, 200, uid, b"\x00" * 32).message == "AUTH_BYTES_INVALID"
    # the failed attempts did not consume it
    assert import_(w, 2, 200, uid, ex.bytes).user.id == uid


def test_export_to_own_or_unknown_dc_is_dc_id_invalid():
    w = make_world()
    logged_in(w)
    for target in (1, 4, 0, -2):
        err = raises(BadRequest, export, w, 1, 100, target)
        assert err.message == "DC_ID_INVALID"


def test_export_requires_authorization():
    w = make_world()
    raises(AuthKeyUnregistered, export, w, 1, 100, 2)


def test_imported_key_downloads_but_account_methods_user_migrate():
    w = make_world()
    uid = logged_in(w, home=1)
    f = w.add_file(2, data=b"x" * 5000)
    ex = export(w, 1, 100, 2)
    import_(w, 2, 200, uid, ex.bytes)
    part = w.call(2, 200, api.upload.GetFile(location=f.input_location(), offset=0, limit=4096))
    assert part.bytes == b"x" * 4096
    for q in (
        api.updates.GetState(),
        api.users.GetUsers(id=[api.InputUserSelf()]),
        api.users.GetFullUser(id=api.InputUserSelf()),
        api.auth.ExportAuthorization(dc_id=3),
    ):
        err = raises(UserMigrate, w.call, 2, 200, q)
        assert err.message == "USER_MIGRATE_1" and err.dc_id == 1


def test_moved_user_can_follow_by_exporting_from_the_login_dc():
    w = make_world()
    uid = logged_in(w, home=1)
    w.move_user(uid, 3)
    assert raises(UserMigrate, w.call, 1, 100, api.updates.GetState()).dc_id == 3
    # the key that logged in on DC 1 may still export (to the new home)
    ex = export(w, 1, 100, 3)
    import_(w, 3, 300, uid, ex.bytes)
    state = w.call(3, 300, api.updates.GetState())
    assert type(state) is api.updates.State
    # the imported key on the new home is a full session, and may export onward
    ex2 = export(w, 3, 300, 2)
    assert ex2.id == uid


def test_export_from_former_home_is_an_option():
    w = make_world()
    uid = logged_in(w, home=1)
    w.move_user(uid, 3)
    w.set_option("export_from_former_home", False)
    assert raises(UserMigrate, w.call, 1, 100, api.auth.ExportAuthorization(dc_id=3)).dc_id == 3
    w.set_option("export_from_former_home", True)
    assert export(w, 1, 100, 3).id == uid
    assert w.options()["export_from_former_home"] is True
    for name, value in [("nope", 1), ("min_layer", "x"), ("strict", 1), ("nearest_dc", 99)]:
        with pytest.raises(DcPoolError):
            w.set_option(name, value)
    w.set_option("export_ttl", 5)  # an int is fine for a float option
    assert w.export_ttl == 5.0


def test_import_keeps_an_existing_login_of_the_same_user():
    w = make_world()
    uid = logged_in(w, home=1, key=100)
    w.authorize(2, 200, uid, AuthKind.LOGIN)
    ex = export(w, 1, 100, 2)
    import_(w, 2, 200, uid, ex.bytes)
    assert w.authorization(2, 200).kind is AuthKind.LOGIN


def test_forget_key_drops_authorization_and_layer():
    w = make_world()
    uid = logged_in(w, home=1, key=100)
    w.dc(1).key_layers[100] = 158
    w.forget_key(1, 100)
    assert w.user_for_key(1, 100) is None and 100 not in w.dc(1).key_layers
    assert uid in w.accounts
