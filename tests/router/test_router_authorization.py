"""The login rule of LOGIN.md §4.6 on bytes (dcpool.router.authorization): which answers are a
login, a log-out, or neither, read by constructor id without the caller's classes."""

from __future__ import annotations

import struct

import pytest

from dcpool import tl
from dcpool.router.authorization import AnswerKind, observe, request_id

api = tl.api
SIGN_IN = api.auth.SignIn(phone_number="1", phone_code_hash="h", phone_code="2").to_bytes()
IMPORT = api.auth.ImportAuthorization(id=1, bytes=b"x").to_bytes()
LOG_OUT = api.auth.LogOut().to_bytes()


def user(uid: int, *, bot: bool = False):
    return api.User(id=uid, self_=True, bot=bot, access_hash=5, first_name="A")


def test_the_spec_vector() -> None:
    # LOGIN.md §4.6: future_auth_token 00..0f, user id 1234567890
    auth = api.auth.Authorization(future_auth_token=bytes(range(16)), user=user(1234567890))
    seen = observe(SIGN_IN, auth.to_bytes())
    assert seen is not None and (seen.kind, seen.user_id, seen.bot) == (AnswerKind.LOGIN, 1234567890, False)


@pytest.mark.parametrize("fields", [
    {}, {"tmp_sessions": 3}, {"otherwise_relogin_days": 7, "setup_password_required": True},
    {"tmp_sessions": 1, "otherwise_relogin_days": 2, "future_auth_token": b"t" * 300},
])
def test_optional_fields_are_skipped(fields) -> None:
    body = api.auth.Authorization(user=user(77, bot=True), **fields).to_bytes()
    seen = observe(SIGN_IN, body)
    assert seen is not None and (seen.user_id, seen.bot) == (77, True)


def test_nested_authorizations_and_user_empty() -> None:
    inner = api.auth.Authorization(user=api.UserEmpty(id=9))
    for outer in (api.auth.LoginTokenSuccess(authorization=inner),
                  api.auth.SentCodeSuccess(authorization=inner)):
        seen = observe(SIGN_IN, outer.to_bytes())
        assert seen is not None and (seen.kind, seen.user_id) == (AnswerKind.LOGIN, 9)


def test_not_a_login() -> None:
    up = api.auth.AuthorizationSignUpRequired()
    assert observe(SIGN_IN, up.to_bytes()) is None
    assert observe(SIGN_IN, api.auth.LoginTokenSuccess(authorization=up).to_bytes()) is None
    assert observe(SIGN_IN, api.auth.LoginToken(expires=1, token=b"q").to_bytes()) is None
    assert observe(SIGN_IN, api.BoolTrue().to_bytes()) is None
    assert observe(SIGN_IN, b"") is None
    # a truncated authorization is no login (and no crash)
    assert observe(SIGN_IN, api.auth.Authorization(user=user(5)).to_bytes()[:14]) is None


def test_import_and_log_out() -> None:
    body = api.auth.Authorization(user=user(3)).to_bytes()
    seen = observe(IMPORT, body)
    assert seen is not None and seen.kind is AnswerKind.IMPORTED
    logged_out = api.auth.LoggedOut().to_bytes()
    assert observe(LOG_OUT, logged_out).kind is AnswerKind.LOGGED_OUT
    assert observe(SIGN_IN, logged_out) is None  # only as the answer to auth.logOut


def test_request_id_sees_through_wrappers() -> None:
    without = struct.pack("<I", 0xBF9459B7) + IMPORT
    layer = struct.pack("<Ii", 0xDA9B0D0D, 228) + without
    assert request_id(layer) == request_id(IMPORT) == 0xA57A7DAD
