"""World: test accounts, sendCode/signIn/signUp, migrations, authorization-gated methods."""

from __future__ import annotations

import random

import pytest

from dcpool import tl
from dcpool.errors import (
    AuthKeyUnregistered,
    BadRequest,
    NetworkMigrate,
    PhoneMigrate,
    RpcError,
    UserMigrate,
)
from dcpool.testing.world import AuthKind, ConnectionContext, World

api = tl.api


def make_world(**kw) -> World:
    return World.test_cluster(rng=random.Random(99).randbytes, require_init_connection=False, **kw)


def send_code(w: World, dc: int, phone: str, key: int = 1, now: float = 0.0):
    return w.call(dc, key, api.auth.SendCode(phone_number=phone, api_id=1, api_hash="h", settings=api.CodeSettings()), now)


def sign_in(w: World, dc: int, phone: str, code: str, hash_: str, key: int = 1, now: float = 0.0):
    return w.call(dc, key, api.auth.SignIn(phone_number=phone, phone_code_hash=hash_, phone_code=code), now)


def login(w: World, dc: int, phone: str, key: int) -> object:
    sent = send_code(w, dc, phone, key)
    return sign_in(w, dc, phone, w.login_code(phone, dc), sent.phone_code_hash, key)


def raises(exc_type, fn, *args, **kw) -> RpcError:
    with pytest.raises(exc_type) as info:
        fn(*args, **kw)
    return info.value


# --------------------------------------------------------------------------- sendCode


@pytest.mark.parametrize("home", [1, 2, 3])
def test_test_numbers_exist_on_their_dc_and_migrate_elsewhere(home):
    w = make_world()
    phone = w.test_phone(home, 4321)
    assert phone == f"99966{home}4321"
    for dc in w.dc_ids:
        if dc == home:
            sent = send_code(w, dc, phone)
            assert type(sent) is api.auth.SentCode
            assert type(sent.type) is api.auth.SentCodeTypeApp and sent.type.length == 5
        else:
            err = raises(PhoneMigrate, send_code, w, dc, phone)
            assert (err.code, err.message, err.dc_id) == (303, f"PHONE_MIGRATE_{home}", home)
    assert w.user_by_phone(phone).home_dc == home


def test_test_number_of_a_dc_outside_the_cluster_is_an_ordinary_number():
    w = make_world()
    assert w.user_by_phone("9996651234") is None


def test_unregistered_number_network_migrates_to_nearest_dc():
    w = make_world(nearest_dc=3)
    phone = "15550001111"
    err = raises(NetworkMigrate, send_code, w, 1, phone)
    assert err.message == "NETWORK_MIGRATE_3" and err.dc_id == 3
    sent = send_code(w, 3, phone)
    assert sent.phone_code_hash


@pytest.mark.parametrize("phone", ["", "abc", "99966x1234", "12 34567", "1234", "1" * 16, "١٢٣٤٥٦٧"])
def test_invalid_phone_numbers(phone):
    w = make_world()
    err = raises(BadRequest, send_code, w, 1, phone)
    assert err.message == "PHONE_NUMBER_INVALID"


def test_leading_plus_is_tolerated():
    w = make_world()
    assert send_code(w, 2, "+" + w.test_phone(2, 1)).phone_code_hash


# --------------------------------------------------------------------------- signIn


def test_sign_in_with_the_test_code_authorizes_the_key_on_that_dc_only():
    w = make_world()
    phone = w.test_phone(2, 7)
    ctx = ConnectionContext()
    sent = w.call(2, 10, api.auth.SendCode(phone_number=phone, api_id=1, api_hash="h", settings=api.CodeSettings()), ctx=ctx)
    auth = w.call(2, 10, api.auth.SignIn(phone_number=phone, phone_code_hash=sent.phone_code_hash, phone_code="22222"), ctx=ctx)
    assert type(auth) is api.auth.Authorization
    assert auth.user.self_ is True and auth.user.phone == phone
    assert ctx.user_id == auth.user.id
    assert w.authorization(2, 10).kind is AuthKind.LOGIN
    assert w.user_for_key(2, 10) == auth.user.id
    assert w.user_for_key(1, 10) is None  # authorization is per (DC, key)
    me = w.call(2, 10, api.users.GetUsers(id=[api.InputUserSelf()]))
    assert [u.id for u in me] == [auth.user.id]


def test_wrong_code_is_phone_code_invalid_and_the_right_one_still_works():
    w = make_world()
    phone = w.test_phone(1, 1)
    sent = send_code(w, 1, phone)
    for bad in ("11112", "22222", "111111"):
        err = raises(BadRequest, sign_in, w, 1, phone, bad, sent.phone_code_hash)
        assert err.message == "PHONE_CODE_INVALID"
    assert w.authorization(1, 1) is None
    assert type(sign_in(w, 1, phone, "11111", sent.phone_code_hash)) is api.auth.Authorization


def test_sign_in_hash_and_code_errors():
    w = make_world(code_ttl=60)
    phone = w.test_phone(1, 1)
    sent = send_code(w, 1, phone, now=1000.0)
    assert raises(BadRequest, sign_in, w, 1, phone, "11111", "").message == "PHONE_CODE_HASH_EMPTY"
    assert raises(BadRequest, sign_in, w, 1, phone, "11111", "nope").message == "PHONE_CODE_EXPIRED"
    assert raises(BadRequest, sign_in, w, 1, phone, "", sent.phone_code_hash).message == "PHONE_CODE_EMPTY"
    # the hash belongs to another phone
    other = w.test_phone(1, 2)
    assert raises(BadRequest, sign_in, w, 1, other, "11111", sent.phone_code_hash).message == "PHONE_CODE_EXPIRED"
    # expiry follows `now`
    err = raises(BadRequest, sign_in, w, 1, phone, "11111", sent.phone_code_hash, now=1061.0)
    assert err.message == "PHONE_CODE_EXPIRED"


def test_sign_in_on_the_wrong_dc_is_phone_migrate():
    w = make_world()
    phone = w.test_phone(3, 1)
    err = raises(PhoneMigrate, sign_in, w, 1, phone, "33333", "whatever")
    assert err.dc_id == 3


def test_code_is_single_use():
    w = make_world()
    phone = w.test_phone(1, 1)
    sent = send_code(w, 1, phone)
    sign_in(w, 1, phone, "11111", sent.phone_code_hash)
    err = raises(BadRequest, sign_in, w, 1, phone, "11111", sent.phone_code_hash, key=2)
    assert err.message == "PHONE_CODE_EXPIRED"


def test_fixed_codes_override():
    w = make_world()
    phone = w.test_phone(1, 1)
    w.fixed_codes[phone] = "424242"
    sent = send_code(w, 1, phone)
    assert raises(BadRequest, sign_in, w, 1, phone, "11111", sent.phone_code_hash).message == "PHONE_CODE_INVALID"
    assert sign_in(w, 1, phone, "424242", sent.phone_code_hash).user.phone == phone


def test_resend_and_cancel_code():
    w = make_world()
    phone = w.test_phone(1, 1)
    sent = send_code(w, 1, phone)
    again = w.call(1, 1, api.auth.ResendCode(phone_number=phone, phone_code_hash=sent.phone_code_hash))
    assert again.phone_code_hash == sent.phone_code_hash
    # layer-158 resendCode#3ef1a9bf is accepted too
    ctx = ConnectionContext(layer=158)
    q158 = tl.api158.auth.ResendCode(phone_number=phone, phone_code_hash=sent.phone_code_hash)
    assert tl.loads(w.handle(1, ctx, 1, q158.to_bytes(), 0.0)).phone_code_hash == sent.phone_code_hash
    assert w.call(1, 1, api.auth.CancelCode(phone_number=phone, phone_code_hash=sent.phone_code_hash)) is True
    err = raises(BadRequest, sign_in, w, 1, phone, "11111", sent.phone_code_hash)
    assert err.message == "PHONE_CODE_EXPIRED"


# --------------------------------------------------------------------------- signUp


def test_unknown_number_sign_up_required_then_sign_up_homes_on_this_dc():
    w = make_world(nearest_dc=2)
    phone = "15550002222"
    sent = send_code(w, 2, phone, key=5)
    r = sign_in(w, 2, phone, w.login_code(phone, 2), sent.phone_code_hash, key=5)
    assert type(r) is api.auth.AuthorizationSignUpRequired
    assert w.authorization(2, 5) is None
    auth = w.call(2, 5, api.auth.SignUp(phone_number=phone, phone_code_hash=sent.phone_code_hash, first_name="Ann", last_name="Lee"))
    assert type(auth) is api.auth.Authorization
    account = w.user_by_phone(phone)
    assert account.home_dc == 2 and account.first_name == "Ann" and auth.user.id == account.id
    assert w.user_for_key(2, 5) == account.id
    # now registered: other DCs answer PHONE_MIGRATE
    assert raises(PhoneMigrate, send_code, w, 1, phone).dc_id == 2


def test_sign_up_errors():
    w = make_world(nearest_dc=1)
    phone = "15550003333"
    sent = send_code(w, 1, phone)
    up = lambda first="A", last="", h=sent.phone_code_hash, p=phone: w.call(  # noqa: E731
        1, 1, api.auth.SignUp(phone_number=p, phone_code_hash=h, first_name=first, last_name=last)
    )
    # the code was not checked by signIn yet
    assert raises(BadRequest, up).message == "PHONE_CODE_INVALID"
    sign_in(w, 1, phone, "11111", sent.phone_code_hash)
    assert raises(BadRequest, up, first="  ").message == "FIRSTNAME_INVALID"
    assert raises(BadRequest, up, first="x" * 65).message == "FIRSTNAME_INVALID"
    assert raises(BadRequest, up, last="y" * 65).message == "LASTNAME_INVALID"
    assert raises(BadRequest, up, h="").message == "PHONE_CODE_HASH_EMPTY"
    occupied = w.test_phone(1, 9)
    assert raises(BadRequest, up, p=occupied).message == "PHONE_NUMBER_OCCUPIED"
    assert up().user.first_name == "A"


def test_layer158_sign_up_is_accepted():
    w = make_world(nearest_dc=3)
    phone = "15550004444"
    ctx = ConnectionContext()
    w.call(3, 9, api.InvokeWithLayer(layer=158, query=api.help.GetNearestDc()), ctx=ctx)
    sent = w.call(3, 9, api.auth.SendCode(phone_number=phone, api_id=1, api_hash="h", settings=api.CodeSettings()), ctx=ctx)
    w.call(3, 9, api.auth.SignIn(phone_number=phone, phone_code_hash=sent.phone_code_hash, phone_code="33333"), ctx=ctx)
    q = tl.api158.auth.SignUp(phone_number=phone, phone_code_hash=sent.phone_code_hash, first_name="Py", last_name="Rogram")
    assert type(q).CONSTRUCTOR_ID == 0x80EEE427
    auth = tl.loads(w.handle(3, ctx, 9, q.to_bytes(), 0.0))
    assert type(auth.user) is tl.api158.User  # answered in layer 158
    assert w.user_by_phone(phone).home_dc == 3


# --------------------------------------------------------------------------- authorized methods


@pytest.mark.parametrize(
    "query",
    [
        api.updates.GetState(),
        api.updates.GetDifference(pts=1, date=0, qts=0),
        api.users.GetUsers(id=[api.InputUserSelf()]),
        api.users.GetFullUser(id=api.InputUserSelf()),
        api.auth.ExportAuthorization(dc_id=2),
        api.auth.LogOut(),
        api.upload.GetFile(location=api.InputDocumentFileLocation(id=1, access_hash=1, file_reference=b"", thumb_size=""), offset=0, limit=4096),
    ],
    ids=lambda q: type(q).QUALNAME,
)
def test_unauthorized_key_gets_auth_key_unregistered(query):
    w = make_world()
    err = raises(AuthKeyUnregistered, w.call, 1, 1, query)
    assert (err.code, err.message) == (401, "AUTH_KEY_UNREGISTERED")


def test_state_difference_users_and_full_user():
    w = make_world()
    auth = login(w, 1, w.test_phone(1, 5), key=3)
    state = w.call(1, 3, api.updates.GetState(), now=500.0)
    assert type(state) is api.updates.State and state.date == 500
    diff = w.call(1, 3, api.updates.GetDifference(pts=state.pts, date=state.date, qts=state.qts), now=501.0)
    assert type(diff) is api.updates.DifferenceEmpty and diff.date == 501
    full = w.call(1, 3, api.users.GetFullUser(id=api.InputUserSelf()))
    assert type(full) is api.users.UserFull
    assert full.full_user.id == auth.user.id and [u.id for u in full.users] == [auth.user.id]
    # another user by inputUser with the right access hash; wrong hash is skipped / invalid
    other = w.user_by_phone(w.test_phone(2, 1))
    got = w.call(1, 3, api.users.GetUsers(id=[api.InputUser(user_id=other.id, access_hash=other.access_hash), api.InputUser(user_id=other.id, access_hash=other.access_hash ^ 1), api.InputUserSelf()]))
    assert [(u.id, u.self_) for u in got] == [(other.id, False), (auth.user.id, True)]
    err = raises(BadRequest, w.call, 1, 3, api.users.GetFullUser(id=api.InputUser(user_id=other.id, access_hash=0)))
    assert err.message == "USER_ID_INVALID"


def test_log_out():
    w = make_world()
    login(w, 2, w.test_phone(2, 5), key=3)
    r = w.call(2, 3, api.auth.LogOut())
    assert type(r) is api.auth.LoggedOut
    raises(AuthKeyUnregistered, w.call, 2, 3, api.updates.GetState())


def test_move_user_makes_account_methods_user_migrate():
    w = make_world()
    auth = login(w, 1, w.test_phone(1, 5), key=3)
    w.move_user(auth.user.id, 3)
    for q in (api.updates.GetState(), api.users.GetUsers(id=[api.InputUserSelf()]), api.users.GetFullUser(id=api.InputUserSelf())):
        err = raises(UserMigrate, w.call, 1, 3, q)
        assert (err.code, err.message, err.dc_id) == (303, "USER_MIGRATE_3", 3)
    # and sendCode now points to the new home
    assert raises(PhoneMigrate, send_code, w, 1, w.test_phone(1, 5)).dc_id == 3
