"""The login flows of dcpool.login through a real pool against the emulator over loopback:
2FA after a phone migration, QR login that migrates DC 2 -> 4, bot tokens, logout (issue 14)."""

from __future__ import annotations

import logging

import pytest
import trio

from dcpool import login, tl
from dcpool.errors import BadRequest, LocalProtocolError, RpcError, Unauthorized
from dcpool.pool import open_pool
from dcpool.testing import Cluster
from dcpool.testing.accounts import login_state

api = tl.api
TIMEOUT = 30
PHONE4 = "9996641234"  # lives on DC 4
CODE4 = "44444"
PASSWORD = "correct horse battery staple"


def pool_for(cluster: Cluster, **kwargs):
    kwargs.setdefault("home_dc", 2)
    return open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                     **kwargs)


async def me(pool):
    [user] = await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
    return user


def keys_of(cluster: Cluster, dc: int, user_id: int) -> int:
    return sum(1 for a in cluster.world.dc(dc).authorizations.values() if a.user_id == user_id)


# --------------------------------------------------------------------------- 2FA


async def test_sign_in_with_password_after_phone_migrate(cluster, caplog):
    caplog.set_level(logging.DEBUG)
    account = cluster.set_password(PHONE4, PASSWORD, hint="horse")
    hints = []

    def ask(hint):
        hints.append(hint)
        return PASSWORD

    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            user = await login.sign_in(pool, PHONE4, code=CODE4, password=ask)
            assert user.id == account.id and hints == ["horse"]
            assert (pool.home_dc, pool.user_id) == (4, account.id)
            assert (await me(pool)).id == account.id
            f = cluster.add_file(1, size=1000)
            loc = api.InputDocumentFileLocation(id=f.id, access_hash=f.access_hash,
                                                file_reference=f.file_reference, thumb_size="")
            data = b"".join([c async for c in pool.download(loc, dc_id=1, size=1000)])
            assert len(data) == 1000
    stats = cluster.statistics()
    assert stats[4].errors.get("SESSION_PASSWORD_NEEDED") == 1
    assert stats[1].imports == 1
    assert PASSWORD not in caplog.text and "horse battery" not in caplog.text


async def test_wrong_password_and_retry_by_callback(cluster):
    cluster.set_password(PHONE4, PASSWORD)
    answers = iter(["hunter2", PASSWORD])
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            with pytest.raises(BadRequest) as info:
                await login.sign_in(pool, PHONE4, code=CODE4, password="hunter2")
            assert info.value.message == "PASSWORD_HASH_INVALID"
            assert PASSWORD not in str(info.value) and "hunter2" not in repr(info.value)
            assert pool.user_id is None
            # the key still waits for the password: a callback gets asked again
            user = await login.check_password(pool, lambda hint: next(answers))
            assert pool.user_id == user.id
    assert cluster.statistics()[4].errors.get("PASSWORD_HASH_INVALID") == 2


async def test_password_needed_without_password_then_check_password(cluster):
    cluster.set_password(PHONE4, PASSWORD)

    async def code(sent):
        assert sent.phone_code_hash
        return CODE4

    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            with pytest.raises(Unauthorized) as info:
                await login.sign_in(pool, PHONE4, code=code)
            assert (info.value.code, info.value.message) == (401, "SESSION_PASSWORD_NEEDED")
            assert pool.user_id is None
            with pytest.raises(Unauthorized):
                await me(pool)
            user = await login.check_password(pool, PASSWORD)
            assert (await me(pool)).id == user.id


async def test_stale_srp_id_is_refused(cluster):
    cluster.set_password(PHONE4, PASSWORD)
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            with pytest.raises(Unauthorized):
                await login.sign_in(pool, PHONE4, code=CODE4)
            first = await pool.invoke(api.account.GetPassword())
            await pool.invoke(api.account.GetPassword())
            check = api.auth.CheckPassword(password=api.InputCheckPasswordSRP(
                srp_id=first.srp_id, A=b"\x02" * 256, M1=b"\x00" * 32))
            with pytest.raises(BadRequest) as info:
                await pool.invoke(check)
            assert info.value.message == "PASSWORD_HASH_INVALID"
            with pytest.raises(BadRequest) as info:  # the srp_id was used up by the failed check
                await pool.invoke(check)
            assert info.value.message == "SRP_ID_INVALID"


# --------------------------------------------------------------------------- QR login


async def test_qr_login_migrates_from_dc2_to_dc4(cluster):
    account = cluster.world.user_by_phone(PHONE4)
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as phone, pool_for(cluster) as pool:
            await login.sign_in(phone, PHONE4, code=CODE4)  # the device that scans
            qr = login.qr_login(pool)
            urls = []
            async for url in qr:
                assert url.startswith("tg://login?token=") and "=" not in url[len("tg://login?token="):]
                urls.append(url)
                accepted = await phone.invoke(api.auth.AcceptLoginToken(token=login.parse_login_url(url)))
                assert type(accepted) is api.Authorization and accepted.device_model == "dcpool"
            assert len(urls) == 1 and qr.user.id == account.id and qr.dc_id == 4
            assert (pool.home_dc, pool.user_id) == (4, account.id)
            assert (await me(pool)).id == account.id
    assert cluster.statistics()[2].requests.get("auth.exportLoginToken") == 2
    assert cluster.statistics()[4].requests.get("auth.importLoginToken") == 1


async def test_qr_login_by_raw_invoke_migrates_from_dc2_to_dc4(cluster):
    account = cluster.world.user_by_phone(PHONE4)
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as phone, pool_for(cluster) as pool:
            await login.sign_in(phone, PHONE4, code=CODE4)
            export = api.auth.ExportLoginToken(api_id=1, api_hash="x", except_ids=[])
            shown = await pool.invoke(export)
            assert type(shown) is api.auth.LoginToken
            async with trio.open_nursery() as nursery:
                got_update = trio.Event()

                async def watch():
                    async for item in pool.updates():
                        if login._is_login_token_update(item.body):
                            got_update.set()
                            return

                nursery.start_soon(watch)
                await phone.invoke(api.auth.AcceptLoginToken(token=shown.token))
                await got_update.wait()
            moved = await pool.invoke(export)
            assert type(moved) is api.auth.LoginTokenMigrateTo and moved.dc_id == 4
            done = await pool.invoke(api.auth.ImportLoginToken(token=moved.token), dc_id=4)
            assert type(done) is api.auth.LoginTokenSuccess
            assert done.authorization.user.id == account.id
            # the pool learnt the login from the answer alone: signed in, home moved to DC 4
            assert (pool.home_dc, pool.user_id) == (4, account.id)
            assert (await me(pool)).id == account.id
    assert keys_of(cluster, 4, account.id) == 2  # the phone's key and the new one


async def test_qr_login_refreshes_expired_tokens(cluster, mock_clock):
    mock_clock.autojump_threshold = 0.02
    account = cluster.world.user_by_phone("9996621234")
    with trio.fail_after(300):
        async with pool_for(cluster) as pool:
            qr = login.qr_login(pool)
            urls = []
            async for url in qr:
                urls.append(url)
                if len(urls) == 3:  # two tokens expired unseen: accept the third
                    cluster.accept_login_token(url, "9996621234")
                    with pytest.raises(RpcError) as info:
                        cluster.accept_login_token(urls[0], account.id)
                    assert info.value.message == "AUTH_TOKEN_INVALID"
            assert len(set(urls)) == 3 and qr.dc_id == 2 and pool.user_id == account.id


async def test_qr_login_with_2fa_runs_the_password_on_the_new_dc(cluster):
    account = cluster.set_password(PHONE4, PASSWORD)
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            qr = login.qr_login(pool, password=PASSWORD)
            async for url in qr:
                cluster.accept_login_token(url, account.id)
            assert (pool.home_dc, pool.user_id, qr.user.id) == (4, account.id, account.id)
            assert (await me(pool)).id == account.id
    stats = cluster.statistics()
    assert stats[4].requests.get("auth.checkPassword") == 1 and not stats[2].requests.get("auth.checkPassword")


# --------------------------------------------------------------------------- bots, logout


async def test_bot_sign_in_follows_user_migrate(cluster):
    bot = cluster.add_bot(3)
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            with pytest.raises(BadRequest) as info:
                await login.sign_in_bot(pool, bot.token + "x")
            assert info.value.message == "ACCESS_TOKEN_INVALID"
            user = await login.sign_in_bot(pool, bot.token)
            assert user.bot and user.id == bot.user_id
            assert (pool.home_dc, pool.user_id) == (3, bot.user_id)
    assert cluster.statistics()[2].errors.get("USER_MIGRATE_3") == 1


async def test_log_out(cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            user = await login.sign_in(pool, PHONE4, code=CODE4)
            assert keys_of(cluster, 4, user.id) == 1
            assert await login.log_out(pool) is True
            assert pool.user_id is None and keys_of(cluster, 4, user.id) == 0
            with pytest.raises(Unauthorized):
                await me(pool)
            assert await login.log_out(pool) is False  # nothing to log out from


async def test_pool_methods_are_the_same_flows(cluster):
    """``Pool.sign_in(password=...)``, ``qr_login``, ``sign_in_bot`` and ``log_out`` are thin
    helpers over dcpool.login (issue 14 item 2)."""
    cluster.set_password(PHONE4, PASSWORD)
    bot = cluster.add_bot(3)
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            asked = []
            user = await pool.sign_in(PHONE4, lambda sent: CODE4,
                                      password=lambda hint: asked.append(hint) or PASSWORD)
            assert (pool.home_dc, pool.user_id) == (4, user.id) and len(asked) == 1
            await pool.log_out()
            assert pool.user_id is None and keys_of(cluster, 4, user.id) == 0
        async with pool_for(cluster) as pool, pool_for(cluster) as phone:
            await phone.sign_in(PHONE4, CODE4, password=PASSWORD)
            async for url in pool.qr_login(password=PASSWORD):
                await phone.invoke(api.auth.AcceptLoginToken(token=login.parse_login_url(url)))
            assert (pool.home_dc, pool.user_id) == (4, user.id)
        async with pool_for(cluster) as pool:
            assert (await pool.sign_in_bot(bot.token)).id == bot.user_id
            assert pool.home_dc == 3


def test_login_urls():
    assert login.login_url(b"\xfb\xff") == "tg://login?token=-_8"
    assert login.parse_login_url("TG://LOGIN?token=-_8=") == b"\xfb\xff"
    for bad in ("https://x", "tg://login?token=***"):
        with pytest.raises(LocalProtocolError):
            login.parse_login_url(bad)


def test_login_state_repr_has_no_secrets():
    from dcpool.testing.world import World

    w = World()
    account = w.user_by_phone(PHONE4)
    login_state(w).set_password(account.id, PASSWORD)
    bot = login_state(w).add_bot(2)
    text = repr(login_state(w)) + repr(login_state(w).passwords) + repr(bot)
    assert PASSWORD not in text and bot.secret not in text


# --------------------------------------------------------------------------- setting the password


async def test_set_change_and_remove_the_cloud_password(cluster):
    with trio.fail_after(TIMEOUT * 2):
        async with pool_for(cluster) as pool:
            user = await login.sign_in(pool, PHONE4, code=CODE4)
            await login.set_password(pool, "first", hint="one")
            with pytest.raises(LocalProtocolError):
                await login.set_password(pool, "second")  # the current one is needed
            with pytest.raises(BadRequest) as info:
                await login.set_password(pool, "second", current_password="wrong")
            assert info.value.message == "PASSWORD_HASH_INVALID"
            await login.set_password(pool, "second", current_password="first")
            await login.log_out(pool)
            with pytest.raises(BadRequest):
                await login.sign_in(pool, PHONE4, code=CODE4, password="first")
            await login.check_password(pool, "second")
            assert pool.user_id == user.id
            await login.set_password(pool, None, current_password="second")
            await login.log_out(pool)
            assert (await login.sign_in(pool, PHONE4, code=CODE4)).id == user.id


async def test_new_password_must_use_the_servers_salts(cluster):
    with trio.fail_after(TIMEOUT):
        async with pool_for(cluster) as pool:
            await login.sign_in(pool, PHONE4, code=CODE4)
            state = await pool.invoke(api.account.GetPassword())
            algo = state.new_algo
            bad = api.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
                salt1=bytes(algo.salt1) + b"\x00" * 32, salt2=b"\x01" * 16, g=algo.g, p=algo.p)
            with pytest.raises(BadRequest) as info:
                await pool.invoke(api.account.UpdatePasswordSettings(
                    password=api.InputCheckPasswordEmpty(),
                    new_settings=api.account.PasswordInputSettings(
                        new_algo=bad, new_password_hash=b"\x05" * 256, hint="")))
            assert info.value.message == "NEW_SALT_INVALID"
