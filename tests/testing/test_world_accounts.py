"""World: cloud passwords (SRP), QR login, bot tokens, logout and reset (LOGIN.md §1-§4)."""

from __future__ import annotations

import base64
import os
import random

import pytest

from dcpool import tl
from dcpool.crypto import srp
from dcpool.errors import AuthKeyUnregistered, BadRequest, NotAcceptable, RpcError, Unauthorized, UserMigrate
from dcpool.testing.accounts import login_state, login_url, parse_login_url
from dcpool.testing.world import ConnectionContext, World

api = tl.api
PHONE = "9996621234"  # DC 2


def make_world() -> World:
    return World(rng=random.Random(7).randbytes, require_init_connection=False)


def raises(exc_type, fn, *args, **kw) -> RpcError:
    with pytest.raises(exc_type) as info:
        fn(*args, **kw)
    return info.value


def code_sign_in(w: World, dc: int, phone: str, key: int, now: float = 0.0):
    sent = w.call(dc, key, api.auth.SendCode(phone_number=phone, api_id=1, api_hash="h", settings=api.CodeSettings()), now)
    return w.call(dc, key, api.auth.SignIn(phone_number=phone, phone_code_hash=sent.phone_code_hash,
                                           phone_code=w.login_code(phone, dc)), now)


def srp_answer(w: World, dc: int, key: int, password: str, now: float = 0.0):
    state = w.call(dc, key, api.account.GetPassword(), now)
    assert state.has_password
    algo = state.current_algo
    check = srp.client_check(password, srp_id=state.srp_id, srp_B=state.srp_B, salt1=algo.salt1,
                             salt2=algo.salt2, g=algo.g, p=int.from_bytes(algo.p, "big"), rng=os.urandom)
    return api.InputCheckPasswordSRP(srp_id=check.srp_id, A=check.A, M1=check.M1)


def with_password(w: World, phone: str = PHONE, password: str = "hunter2"):
    account = w.user_by_phone(phone)
    login_state(w).set_password(account.id, password, hint="hh")
    return account


# --------------------------------------------------------------------------- 2FA


def test_code_sign_in_with_a_password_needs_it_then_check_password_logs_in():
    w = make_world()
    account = with_password(w)
    err = raises(Unauthorized, code_sign_in, w, 2, PHONE, key=11)
    assert (err.code, err.message) == (401, "SESSION_PASSWORD_NEEDED")
    assert w.user_for_key(2, 11) is None
    err = raises(Unauthorized, w.call, 2, 11, api.updates.GetState())  # §1.8: not a logout
    assert err.message == "SESSION_PASSWORD_NEEDED"
    state = w.call(2, 11, api.account.GetPassword())
    assert state.hint == "hh" and len(state.srp_B) == 256 and len(state.current_algo.salt1) == 40
    assert state.new_algo.salt1 != state.current_algo.salt1 and len(state.secure_random) == 256
    auth = w.call(2, 11, api.auth.CheckPassword(password=srp_answer(w, 2, 11, "hunter2")))
    assert auth.user.id == account.id and auth.user.self_
    assert w.user_for_key(2, 11) == account.id


def test_wrong_password_stale_srp_id_and_empty_check():
    w = make_world()
    with_password(w)
    raises(Unauthorized, code_sign_in, w, 2, PHONE, key=11)
    err = raises(BadRequest, w.call, 2, 11, api.auth.CheckPassword(password=srp_answer(w, 2, 11, "hunter3")))
    assert err.message == "PASSWORD_HASH_INVALID"
    good = srp_answer(w, 2, 11, "hunter2")
    newer = srp_answer(w, 2, 11, "hunter2")
    w.call(2, 11, api.auth.CheckPassword(password=newer))
    # srp ids are single use, and the older challenge was never answered but stays bound to it
    w.deauthorize(2, 11)
    err = raises(BadRequest, w.call, 2, 11, api.auth.CheckPassword(password=newer))
    assert err.message == "SRP_ID_INVALID"
    err = raises(BadRequest, w.call, 2, 12, api.auth.CheckPassword(password=good))  # another key
    assert err.message == "SRP_ID_INVALID"
    raises(Unauthorized, code_sign_in, w, 2, PHONE, key=13)
    err = raises(BadRequest, w.call, 2, 13, api.auth.CheckPassword(password=api.InputCheckPasswordEmpty()))
    assert err.message == "PASSWORD_HASH_INVALID"
    bad_a = api.InputCheckPasswordSRP(srp_id=srp_answer(w, 2, 13, "x").srp_id, A=srp.pad(1), M1=b"\0" * 32)
    assert raises(BadRequest, w.call, 2, 13, api.auth.CheckPassword(password=bad_a)).message == "PASSWORD_HASH_INVALID"


def test_password_changed_between_get_and_check():
    w = make_world()
    account = with_password(w)
    raises(Unauthorized, code_sign_in, w, 2, PHONE, key=11)
    answer = srp_answer(w, 2, 11, "hunter2")
    login_state(w).set_password(account.id, "other")
    err = raises(BadRequest, w.call, 2, 11, api.auth.CheckPassword(password=answer))
    assert err.message == "SRP_PASSWORD_CHANGED"


def test_get_password_without_a_password():
    w = make_world()
    code_sign_in(w, 2, PHONE, key=11)
    state = w.call(2, 11, api.account.GetPassword())
    assert not state.has_password and state.srp_id is None and len(state.new_algo.salt1) == 8


# --------------------------------------------------------------------------- QR


def export(w: World, dc: int, key: int, now: float = 0.0, ctx=None):
    return w.call(dc, key, api.auth.ExportLoginToken(api_id=1, api_hash="h", except_ids=[]), now, ctx)


def test_qr_login_on_the_home_dc_and_update_routing():
    w = make_world()
    account = w.user_by_phone(PHONE)
    code_sign_in(w, 2, PHONE, key=1)
    ctx = ConnectionContext()
    first = export(w, 2, 50, now=100.0, ctx=ctx)
    assert type(first) is api.auth.LoginToken and first.expires == 130
    assert ctx.user_id is not None and ctx.user_id < 0  # the shell registers the waiting session
    pushed = []
    w.set_update_sink(lambda handle, payload: pushed.append((handle, tl.loads(payload))))
    w.register_session(ctx.user_id, "waiting-session")
    url = login_url(first.token)
    assert "=" not in url.split("token=")[1] and parse_login_url("tg://login?token=" + base64.urlsafe_b64encode(first.token).decode()) == first.token
    assert parse_login_url(url) == first.token
    session = w.call(2, 1, api.auth.AcceptLoginToken(token=first.token), 101.0)
    assert type(session) is api.Authorization and not session.password_pending
    [(handle, update)] = pushed
    assert handle == "waiting-session" and type(update.update) is api.UpdateLoginToken and update.date == 101
    err = raises(BadRequest, w.call, 2, 1, api.auth.AcceptLoginToken(token=first.token), 102.0)
    assert err.message == "AUTH_TOKEN_ALREADY_ACCEPTED"
    done = export(w, 2, 50, now=103.0)
    assert type(done) is api.auth.LoginTokenSuccess and done.authorization.user.id == account.id
    assert w.user_for_key(2, 50) == account.id and w.user_for_key(2, 1) == account.id


def test_qr_login_migrates_to_the_accounts_home_dc():
    w = make_world()
    account = w.user_by_phone("9996641234")  # home DC 4
    code_sign_in(w, 4, account.phone, key=1)
    first = export(w, 2, 50)
    w.call(4, 1, api.auth.AcceptLoginToken(token=first.token), 1.0)
    moved = export(w, 2, 50, now=2.0)
    assert type(moved) is api.auth.LoginTokenMigrateTo and moved.dc_id == 4
    assert w.user_for_key(2, 50) is None
    err = raises(BadRequest, w.call, 3, 60, api.auth.ImportLoginToken(token=moved.token), 3.0)
    assert err.message == "AUTH_TOKEN_INVALID"
    done = w.call(4, 60, api.auth.ImportLoginToken(token=moved.token), 3.0)
    assert type(done) is api.auth.LoginTokenSuccess and w.user_for_key(4, 60) == account.id
    err = raises(BadRequest, w.call, 4, 61, api.auth.ImportLoginToken(token=moved.token), 4.0)
    assert err.message == "AUTH_TOKEN_ALREADY_ACCEPTED"


def test_qr_login_with_2fa_after_migration():
    w = make_world()
    account = with_password(w, "9996641234")
    w.authorize(4, 1, account.id)
    first = export(w, 2, 50)
    w.call(4, 1, api.auth.AcceptLoginToken(token=first.token), 1.0)
    moved = export(w, 2, 50, now=2.0)
    err = raises(Unauthorized, w.call, 4, 60, api.auth.ImportLoginToken(token=moved.token), 3.0)
    assert err.message == "SESSION_PASSWORD_NEEDED"
    w.call(4, 60, api.auth.CheckPassword(password=srp_answer(w, 4, 60, "hunter2", 4.0)), 4.0)
    assert w.user_for_key(4, 60) == account.id


def test_qr_token_expiry_refresh_and_invalid_tokens():
    w = make_world()
    account = w.user_by_phone(PHONE)
    w.authorize(2, 1, account.id)
    first = export(w, 2, 50, now=0.0)
    err = raises(BadRequest, w.call, 2, 1, api.auth.AcceptLoginToken(token=first.token), 31.0)
    assert err.message == "AUTH_TOKEN_EXPIRED"
    second = export(w, 2, 50, now=31.0)
    assert type(second) is api.auth.LoginToken and second.token != first.token
    err = raises(BadRequest, w.call, 2, 1, api.auth.AcceptLoginToken(token=first.token), 32.0)
    assert err.message == "AUTH_TOKEN_INVALID"  # replaced by the refresh
    assert raises(BadRequest, w.call, 2, 1, api.auth.AcceptLoginToken(token=b"junk"), 32.0).message == "AUTH_TOKEN_INVALID"
    raises(AuthKeyUnregistered, w.call, 2, 99, api.auth.AcceptLoginToken(token=second.token), 32.0)
    moved_expired = w.call(2, 1, api.auth.AcceptLoginToken(token=second.token), 32.0)
    assert moved_expired.api_id == 0
    err = raises(BadRequest, w.call, 2, 50, api.auth.ExportLoginToken(api_id=0, api_hash="", except_ids=[]), 33.0)
    assert err.message == "API_ID_INVALID"


# --------------------------------------------------------------------------- bots


def test_bot_tokens():
    w = make_world()
    bot = login_state(w).add_bot(3)
    assert str(bot.user_id) == bot.token.split(":")[0] and bot.secret not in repr(bot)
    q = lambda token: api.auth.ImportBotAuthorization(flags=0, api_id=1, api_hash="h", bot_auth_token=token)
    err = raises(UserMigrate, w.call, 2, 5, q(bot.token))
    assert err.dc_id == 3
    auth = w.call(3, 5, q(bot.token))
    assert auth.user.bot and auth.user.self_ and auth.user.bot_info_version is not None
    assert w.user_for_key(3, 5) == bot.user_id
    [me] = w.call(3, 5, api.users.GetUsers(id=[api.InputUserSelf()]))
    assert me.bot and me.phone is None
    for bad in ("", "abc", "12:", f"{bot.user_id}:wrong", f"{bot.user_id + 100}:{bot.secret}", f"x{bot.token}"):
        assert raises(BadRequest, w.call, 3, 6, q(bad)).message == "ACCESS_TOKEN_INVALID"
    old = bot.token
    login_state(w).revoke_bot_token(bot.user_id)
    assert raises(BadRequest, w.call, 3, 6, q(old)).message == "ACCESS_TOKEN_EXPIRED"
    w.call(3, 6, q(bot.token))


# --------------------------------------------------------------------------- logout, reset


def test_log_out_and_reset_authorizations():
    w = make_world()
    account = w.user_by_phone(PHONE)
    for key in (1, 2, 3):
        code_sign_in(w, 2, PHONE, key=key)
    w.authorize(4, 9, account.id)
    # key 1's own authorization on DC 5 (exported from it) is part of the current session
    exported = w.call(2, 1, api.auth.ExportAuthorization(dc_id=5))
    w.call(5, 20, api.auth.ImportAuthorization(id=exported.id, bytes=exported.bytes))
    exported = w.call(2, 2, api.auth.ExportAuthorization(dc_id=5))
    w.call(5, 21, api.auth.ImportAuthorization(id=exported.id, bytes=exported.bytes))
    assert w.call(2, 1, api.auth.ResetAuthorizations()) is True
    assert w.user_for_key(2, 1) == account.id and w.user_for_key(5, 20) == account.id
    for dc, key in ((2, 2), (2, 3), (4, 9), (5, 21)):
        assert w.user_for_key(dc, key) is None
        err = raises(Unauthorized, w.call, dc, key, api.upload.GetFile(
            location=api.InputDocumentFileLocation(id=1, access_hash=1, file_reference=b"", thumb_size=""),
            offset=0, limit=1024))
        assert err.message == "SESSION_REVOKED"
    code_sign_in(w, 2, PHONE, key=2)  # a new login clears the mark
    assert w.call(2, 2, api.updates.GetState()).pts >= 0
    assert type(w.call(2, 1, api.auth.LogOut())) is api.auth.LoggedOut
    raises(AuthKeyUnregistered, w.call, 2, 1, api.updates.GetState())
    login_state(w).fresh_reset_age = 86400
    code_sign_in(w, 2, PHONE, key=1, now=1000.0)
    err = raises(NotAcceptable, w.call, 2, 1, api.auth.ResetAuthorizations(), 2000.0)
    assert err.message == "FRESH_RESET_AUTHORISATION_FORBIDDEN"
