"""The login side's control commands (``dcpool emulator --control``): a test user accepts a
QR login shown by a pool, bots and passwords are created (issue 14)."""

from __future__ import annotations

import pytest
import trio

from dcpool import login
from dcpool.pool import open_pool

control = pytest.importorskip("dcpool.testing.control")


async def test_control_channel_accepts_a_qr_login_and_creates_accounts(cluster):
    ctl = control.Controller(cluster)
    bot = ctl.handle({"cmd": "add_bot", "dc_id": 5})
    assert bot["ok"] and bot["result"]["dc_id"] == 5 and ":" in bot["result"]["token"]
    pw = ctl.handle({"cmd": "set_password", "phone": "9996641234", "password": "pw"})
    assert pw["ok"] and pw["result"]["dc_id"] == 4 and "pw" not in str(pw["result"].values())
    assert not ctl.handle({"cmd": "accept_login_token", "url": "tg://login?token=AAAA",
                           "phone": "9996631234"})["ok"]
    with trio.fail_after(30):
        async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(),
                             rsa_keys=cluster.rsa_keys()) as pool:
            qr = login.qr_login(pool)
            async for url in qr:
                answer = ctl.handle({"cmd": "accept_login_token", "url": url, "phone": "9996631234"})
                assert answer["ok"], answer
            assert (pool.home_dc, qr.user.phone) == (3, "9996631234")
