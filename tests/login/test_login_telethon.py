"""Unmodified Telethon against the emulator's 2FA, QR login and bot tokens (issue 14): an
independent implementation vouches for the emulator's SRP, its QR tokens and migrations.

The account always lives on a DC other than the client's first one, so each flow also crosses
DCs: PHONE_MIGRATE before the password, loginTokenMigrateTo before the QR import, USER_MIGRATE
before the bot import.  As in tests/testing/test_cluster_telethon.py, the cluster runs under
``trio.run`` in a helper thread and Telethon under ``asyncio.run`` in the test thread
(:class:`dcpool.testing.threaded.ThreadedCluster`); the only patch points are Telethon's
documented ones.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio

from dcpool.testing.threaded import ThreadedCluster as ClusterThread

telethon = pytest.importorskip("telethon")
from telethon import TelegramClient  # noqa: E402
from telethon import errors as terrors  # noqa: E402
from telethon.crypto import rsa as telethon_rsa  # noqa: E402

pytestmark = [pytest.mark.telethon, pytest.mark.e2e]

TIMEOUT = 60
API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
PHONE4 = "9996641234"  # lives on DC 4
CODE4 = "44444"
PASSWORD = "correct horse battery staple"


def client_for(served: ClusterThread, first_dc: int, **kwargs: Any) -> TelegramClient:
    cluster = served.cluster
    assert cluster is not None
    telethon_rsa.add_key(cluster.rsa_public_pem(), old=False)
    TelegramClient._config = None  # a class-level cache: never let it leak between clusters
    client = TelegramClient(None, API_ID, API_HASH, retry_delay=0, **kwargs)
    client.session.set_dc(first_dc, *cluster.endpoint(first_dc))
    return client


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


def test_telethon_two_factor_sign_in_after_phone_migrate():
    with ClusterThread(lambda c: c.set_password(PHONE4, PASSWORD, hint="horse")) as served:
        account = served.setup_result

        async def scenario():
            client = client_for(served, 1, receive_updates=False)
            await client.connect()
            try:
                await client.send_code_request(PHONE4)  # PHONE_MIGRATE_4
                with pytest.raises(terrors.SessionPasswordNeededError):
                    await client.sign_in(PHONE4, code=CODE4)
                with pytest.raises(terrors.PasswordHashInvalidError):
                    await client.sign_in(password="hunter2")
                me = await client.sign_in(password=PASSWORD)
                return me, (await client.get_me()).id, client.session.dc_id
            finally:
                await client.disconnect()

        me, me_again, dc = run(scenario())
        stats = served.call(served.cluster.statistics)
    assert me.id == me_again == account.id and dc == 4
    assert stats[1].errors["PHONE_MIGRATE_4"] == 1
    assert stats[4].errors["SESSION_PASSWORD_NEEDED"] >= 1  # signIn, and calls made while waiting
    assert stats[4].errors["PASSWORD_HASH_INVALID"] == 1
    assert stats[4].requests["account.getPassword"] == 2


def test_telethon_qr_login_with_recreate_and_migration():
    with ClusterThread(lambda c: c.world.user_by_phone(PHONE4)) as served:
        account = served.setup_result
        cluster = served.cluster

        async def scenario():
            client = client_for(served, 2)
            await client.connect()
            try:
                qr = await client.qr_login()
                first = qr.url
                await qr.recreate()
                assert qr.url != first
                waiting = asyncio.ensure_future(qr.wait(30))
                await asyncio.sleep(0.2)  # wait() must be listening before the code is scanned
                await asyncio.to_thread(served.call, cluster.accept_login_token, qr.url, account.id)
                user = await waiting
                return user, (await client.get_me()).id, client.session.dc_id
            finally:
                await client.disconnect()

        user, me_again, dc = run(scenario())
        stats = served.call(cluster.statistics)
    assert user.id == me_again == account.id and dc == 4
    assert stats[2].requests["auth.exportLoginToken"] == 3
    assert stats[4].requests["auth.importLoginToken"] == 1


def test_telethon_bot_start_follows_user_migrate():
    with ClusterThread(lambda c: c.add_bot(3)) as served:
        bot = served.setup_result

        async def scenario():
            client = client_for(served, 1, receive_updates=False)
            await client.start(bot_token=bot.token)
            try:
                return await client.is_bot(), (await client.get_me()).id, client.session.dc_id
            finally:
                await client.disconnect()

        is_bot, me, dc = run(scenario())
        stats = served.call(served.cluster.statistics)
    assert is_bot and me == bot.user_id and dc == 3
    assert stats[1].errors["USER_MIGRATE_3"] == 1


def test_password_set_by_telethon_edit_2fa_signs_in_dcpool():
    from dcpool import login
    from dcpool.pool import open_pool

    with ClusterThread(lambda c: c.world.user_by_phone(PHONE4)) as served:
        account = served.setup_result
        cluster = served.cluster

        async def telethon_sets_it():
            client = client_for(served, 4, receive_updates=False)
            await client.connect()
            try:
                await client.send_code_request(PHONE4)
                await client.sign_in(PHONE4, code=CODE4)
                assert await client.edit_2fa(new_password=PASSWORD, hint="staple")
            finally:
                await client.disconnect()

        run(telethon_sets_it())
        dc_list, rsa_keys = served.call(cluster.dc_list), served.call(cluster.rsa_keys)

        async def dcpool_signs_in():
            with trio.fail_after(TIMEOUT):
                async with open_pool(api_id=1, api_hash="x", dc_list=dc_list, rsa_keys=rsa_keys) as pool:
                    hints = []
                    user = await login.sign_in(pool, PHONE4, code=CODE4,
                                               password=lambda hint: hints.append(hint) or PASSWORD)
                    return user.id, hints

        assert trio.run(dcpool_signs_in) == (account.id, ["staple"])
