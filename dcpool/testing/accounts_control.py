"""The login side's commands for the emulator's control channel (``dcpool emulator --json
--control``, :mod:`dcpool.testing.control`): 2FA accounts, bots, and accepting a QR login on
behalf of a signed-in test user (LOGIN.md §2.2 step 3, done by a phone that scans the code).

:mod:`dcpool.testing.rpc` imports this module.
"""

from __future__ import annotations

from typing import Any

from .control import Controller, Param, control_command

__all__: list[str] = []


@control_command(
    "set_password",
    "give PHONE's account (created if it is a 99966XYYYY test number) a cloud password (2FA); "
    "without 'password' the password is removed",
    Param("phone", "str", "digits only", required=True),
    Param("password", "str", "the new password (never echoed back)"),
    Param("hint", "str", "default ''"),
)
def _set_password(ctl: Controller, phone: str, password: str | None = None, hint: str = "") -> dict[str, Any]:
    account = ctl.cluster.set_password(phone, password, hint=hint)
    return {"user_id": account.id, "phone": account.phone, "dc_id": account.home_dc,
            "has_password": password is not None}


@control_command(
    "add_bot",
    "create a bot homed on a DC; answers its token '<bot_id>:<secret>'",
    Param("dc_id", "int", "the bot's DC", required=True),
    Param("name", "str", "default 'Test Bot'"),
)
def _add_bot(ctl: Controller, dc_id: int, name: str = "Test Bot") -> dict[str, Any]:
    bot = ctl.cluster.add_bot(dc_id, name=name)
    return {"user_id": bot.user_id, "dc_id": bot.dc_id, "token": bot.token}


@control_command(
    "accept_login_token",
    "accept a pending QR login as a signed-in user, as auth.acceptLoginToken from a phone: "
    "the waiting client gets updateLoginToken",
    Param("url", "str", "tg://login?token=... as shown by the client", required=True),
    Param("phone", "str", "the accepting account's number (or give user_id)"),
    Param("user_id", "int", "the accepting account's id"),
)
def _accept_login_token(ctl: Controller, url: str, phone: str | None = None,
                        user_id: int | None = None) -> dict[str, Any]:
    if (phone is None) == (user_id is None):
        raise ValueError("give exactly one of phone and user_id")
    token = ctl.cluster.accept_login_token(url, phone if phone is not None else user_id)
    return {"user_id": token.accepted_by, "dc_id": token.dc_id}
