"""Issue 12, items 1-3: the pool learns its login from answers, whoever drives it, and loses it
loudly (LOGIN.md §4.6, §5).  Real loopback sockets against the emulator; effects counted on the
server side (emulator statistics and authorizations) and in the session storage."""

from __future__ import annotations

import struct

import pytest
import trio

import dcpool
from dcpool import tl
from dcpool.errors import LoggedOut, NotAcceptable, Unauthorized
from dcpool.storage import open_storage
from dcpool.testing import Cluster

api = tl.api
PART = 64 * 1024
PHONE_DC2 = "9996621234"
CODE_DC2 = "22222"


def pool_args(cluster: Cluster, **kw):
    kw.setdefault("fetch_config", False)
    return dict(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(), **kw)


def drain(events) -> list:
    out = []
    while True:
        try:
            out.append(events.receive_nowait())
        except trio.WouldBlock:
            return out


def kinds(events: list, kind: str) -> list:
    return [e for e in events if e.kind == kind]


# ---------------------------------------------------------------- hand-serialised TL


def tl_string(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    if len(data) < 254:
        out = bytes([len(data)]) + data
    else:
        out = b"\xfe" + len(data).to_bytes(3, "little") + data
    return out + b"\0" * (-len(out) % 4)


def raw_send_code(phone: str) -> bytes:
    # auth.sendCode#a677244f phone_number:string api_id:int api_hash:string settings:CodeSettings
    # codeSettings#ad253d78 flags:# ... (all empty)
    return (struct.pack("<I", 0xA677244F) + tl_string(phone) + struct.pack("<i", 1) + tl_string("x")
            + struct.pack("<II", 0xAD253D78, 0))


def raw_sign_in(phone: str, phone_code_hash: str, code: str) -> bytes:
    # auth.signIn#8d52a951 flags:# phone_number:string phone_code_hash:string
    #     phone_code:flags.0?string email_verification:flags.1?EmailVerification
    return (struct.pack("<II", 0x8D52A951, 1) + tl_string(phone) + tl_string(phone_code_hash)
            + tl_string(code))


RAW_LOG_OUT = struct.pack("<I", 0x3E72BA19)  # auth.logOut#3e72ba19 = auth.LoggedOut;
# users.getUsers#0d91a548 id:Vector<InputUser>  with  [inputUserSelf#f7c1b13f]
RAW_GET_SELF = struct.pack("<IIII", 0x0D91A548, 0x1CB5C415, 1, 0xF7C1B13F)


async def fetch(pool, f) -> None:
    got = 0
    async for chunk in pool.download(f.input_location(), dc_id=f.dc_id, size=f.size, part_size=PART):
        got += len(chunk)
    assert got == f.size


# ---------------------------------------------------------------- 1. login from answers


async def test_sign_in_through_invoke_raw_with_hand_serialised_bytes(cluster: Cluster, tmp_path) -> None:
    """No helper, no TL class of dcpool on the way in: the answer's constructor id is enough.
    A DC-4 number from home 2: PHONE_MIGRATE moves home, the login lands on DC 4."""
    path = str(tmp_path / "s.session")
    phone = cluster.world.test_phone(4, 4321)
    f = cluster.add_file(3, size=2 * PART + 7)
    with trio.fail_after(30):
        async with dcpool.open_pool(storage=path, home_dc=2, **pool_args(cluster)) as pool:
            async with pool.events() as events:
                sent = tl.loads(await pool.invoke_raw(raw_send_code(phone)))
                assert pool.home_dc == 4 and pool.user_id is None
                answer = await pool.invoke_raw(raw_sign_in(phone, sent.phone_code_hash, "44444"))
                seen = drain(events)
            user = tl.loads(answer).user
            assert pool.user_id == user.id and pool.home_dc == 4 and pool.login_dc == 4
            assert [(e.dc_id, e.data["user_id"]) for e in kinds(seen, "signed_in")] == [(4, user.id)]
            assert pool.statistics()[4].key_state == "authorized"
            # authorized requests work, and a foreign DC gets the authorization transferred
            await pool.invoke_raw(RAW_GET_SELF)
            await fetch(pool, f)
            s = cluster.statistics()
            assert (s[4].exports, s[3].imports) == (1, 1)
            await pool.flush_storage()
        store = open_storage(path, mode="prod")
        try:
            assert (store.get_user_id(), store.get_home_dc()) == (user.id, 4)
            assert store.get_dc(4).authorized_user_id == user.id
        finally:
            store.close()


async def test_sign_in_through_invoke_then_raw_log_out(cluster: Cluster) -> None:
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            sent = await pool.invoke(api.auth.SendCode(phone_number=PHONE_DC2, api_id=1, api_hash="x",
                                                       settings=api.CodeSettings()))
            auth = await pool.invoke(api.auth.SignIn(phone_number=PHONE_DC2,
                                                     phone_code_hash=sent.phone_code_hash,
                                                     phone_code=CODE_DC2))
            assert pool.user_id == auth.user.id and pool.home_dc == 2
            async with pool.events() as events:
                await pool.invoke_raw(RAW_LOG_OUT)  # auth.loggedOut: a log-out, whoever sent it
                seen = drain(events)
            assert pool.user_id is None and pool.logged_out == "auth.logOut"
            assert [e.data["reason"] for e in kinds(seen, "logged_out")] == ["auth.logOut"]
            before = cluster.statistics()[2].requests.get("users.getUsers", 0)
            with pytest.raises(LoggedOut):
                await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert cluster.statistics()[2].requests.get("users.getUsers", 0) == before  # not sent
            # methods allowed before login still go out, and a new login ends the state
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            assert pool.logged_out is None and pool.user_id == auth.user.id
            await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))


async def test_sign_up_required_is_not_a_login(cluster: Cluster) -> None:
    phone = "9996627777"
    cluster.world.fixed_codes[phone] = "12345"
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            # (a reserved test number exists at once; an unknown non-test number needs sign-up)
            cluster.world.test_numbers = False
            try:
                sent = await pool.send_code(phone)
                answer = await pool.invoke(api.auth.SignIn(phone_number=phone,
                                                           phone_code_hash=sent.phone_code_hash,
                                                           phone_code="12345"))
            finally:
                cluster.world.test_numbers = True
            assert type(answer).QUALNAME == "auth.authorizationSignUpRequired"
            assert pool.user_id is None and pool.statistics()[2].key_state == "keyed"


# ---------------------------------------------------------------- 2. the 401/406 family


@pytest.mark.parametrize("message", ["AUTH_KEY_UNREGISTERED", "SESSION_REVOKED", "SESSION_EXPIRED",
                                     "USER_DEACTIVATED", "USER_DEACTIVATED_BAN", "AUTH_KEY_INVALID"])
async def test_login_loss_on_the_home_dc_logs_out(cluster: Cluster, tmp_path, message: str) -> None:
    path = str(tmp_path / "s.session")
    f = cluster.add_file(3, size=PART)
    with trio.fail_after(30):
        async with dcpool.open_pool(storage=path, home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            await fetch(pool, f)  # DC 3 authorized too
            cluster.faults(2).fail("users.getUsers", 401, message, count=1)
            async with pool.events() as events:
                with pytest.raises(LoggedOut) as info:
                    await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
                seen = drain(events)
            assert isinstance(info.value, Unauthorized) and info.value.reason == message
            assert [e.data["reason"] for e in kinds(seen, "logged_out")] == [message]
            assert pool.user_id is None and pool.statistics().logouts == 1
            # later calls that need a login fail the same way without reaching any DC
            before = cluster.statistics()
            with pytest.raises(LoggedOut):
                await fetch(pool, f)
            assert cluster.statistics()[3].requests == before[3].requests
            await pool.flush_storage()
        store = open_storage(path, mode="prod")
        try:
            assert store.get_user_id() is None
            assert all(r.authorized_user_id is None for r in store.list_dcs())
        finally:
            store.close()


async def test_session_password_needed_is_not_a_logout(cluster: Cluster) -> None:
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            user = await pool.sign_in(PHONE_DC2, CODE_DC2)
            cluster.faults(2).fail("users.getUsers", 401, "SESSION_PASSWORD_NEEDED", count=1)
            with pytest.raises(Unauthorized) as info:
                await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert not isinstance(info.value, LoggedOut)
            assert pool.user_id == user.id and pool.logged_out is None
            await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))


@pytest.mark.parametrize("message", ["SESSION_REVOKED", "AUTH_KEY_INVALID", "SESSION_EXPIRED"])
async def test_login_loss_on_a_foreign_dc_transfers_again(cluster: Cluster, message: str) -> None:
    f = cluster.add_file(4, size=PART)
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            user = await pool.sign_in(PHONE_DC2, CODE_DC2)
            await fetch(pool, f)
            cluster.faults(4).fail("upload.getFile", 401, message, count=1)
            await fetch(pool, f)
            s = cluster.statistics()
            assert (s[2].exports, s[4].imports) == (2, 2)
            assert pool.user_id == user.id and pool.logged_out is None


async def test_auth_key_duplicated_on_a_foreign_dc_makes_a_new_key(cluster: Cluster) -> None:
    f = cluster.add_file(4, size=PART)
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            user = await pool.sign_in(PHONE_DC2, CODE_DC2)
            await fetch(pool, f)
            await pool.flush_storage()
            old_key = pool.storage.get_dc(4).key_id
            cluster.faults(4).fail("upload.getFile", 406, "AUTH_KEY_DUPLICATED", count=1)
            await fetch(pool, f)
            await pool.flush_storage()
            new_key = pool.storage.get_dc(4).key_id
            assert new_key != old_key
            assert cluster.world.user_for_key(4, new_key) == user.id
            s = cluster.statistics()
            assert s[4].handshakes == 2 and (s[2].exports, s[4].imports) == (2, 2)
            assert pool.user_id == user.id


async def test_auth_key_duplicated_on_the_home_dc_logs_out_with_a_new_key(cluster: Cluster) -> None:
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            await pool.flush_storage()
            old_key = pool.storage.get_dc(2).key_id
            cluster.faults(2).fail("users.getUsers", 406, "AUTH_KEY_DUPLICATED", count=1)
            with pytest.raises(LoggedOut) as info:
                await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert isinstance(info.value, Unauthorized) and info.value.reason == "AUTH_KEY_DUPLICATED"
            assert pool.user_id is None
            # the next request (allowed logged out) runs on a brand-new key
            await pool.invoke(api.help.GetNearestDc())
            await pool.flush_storage()
            assert pool.storage.get_dc(2).key_id != old_key
            assert cluster.statistics()[2].handshakes == 2


async def test_auth_key_duplicated_when_not_signed_in_is_the_406(cluster: Cluster) -> None:
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.invoke(api.help.GetNearestDc())
            cluster.faults(2).fail("help.getNearestDc", 406, "AUTH_KEY_DUPLICATED", count=1)
            with pytest.raises(NotAcceptable):
                await pool.invoke(api.help.GetNearestDc())
            await pool.invoke(api.help.GetNearestDc())
            assert cluster.statistics()[2].handshakes == 2 and pool.logged_out is None


# ---------------------------------------------------------------- 3. −404 is never silent


async def test_forgotten_home_key_of_a_signed_in_user_is_a_logout(cluster: Cluster) -> None:
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE_DC2, CODE_DC2)
            cluster.faults(2).forget_key()
            async with pool.events() as events:
                with pytest.raises(LoggedOut):
                    await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
                seen = drain(events)
            assert pool.user_id is None
            assert [e.data["reason"] for e in kinds(seen, "logged_out")] == ["AUTH_KEY_NOT_FOUND"]
            assert len(kinds(seen, "key_created")) == 1
            await pool.sign_in(PHONE_DC2, CODE_DC2)  # logging in again works on the new key
            await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))


async def test_forgotten_key_without_a_login_just_makes_a_new_one(cluster: Cluster) -> None:
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.invoke(api.help.GetNearestDc())
            cluster.faults(2).forget_key()
            assert (await pool.invoke(api.help.GetNearestDc())).this_dc == 2
            assert pool.logged_out is None and cluster.statistics()[2].handshakes == 2


async def test_forgotten_foreign_key_transfers_again_without_logout(cluster: Cluster) -> None:
    f = cluster.add_file(5, size=PART)
    with trio.fail_after(30):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            user = await pool.sign_in(PHONE_DC2, CODE_DC2)
            await fetch(pool, f)
            cluster.faults(5).forget_key()
            await fetch(pool, f)
            assert pool.user_id == user.id
            s = cluster.statistics()
            assert s[5].handshakes == 2 and s[5].imports == 2
