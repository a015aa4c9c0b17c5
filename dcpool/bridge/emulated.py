"""Accounts on an emulated cluster, run by the bridge with the real updates manager.

Used by ``dcpool bridge --emulator`` (the newcomer's demo), by the fleet mode on an external
emulator, and by the end-to-end tests.  It only *connects* to an emulator (its address and
key, :class:`EmulatorTarget`): starting one in process is the CLI's business
(``dcpool.testing`` is imported by the CLI and the tests only).  An account here is a real pool signed in with one of
the emulator's reserved test numbers (``99966XYYYY`` lives on DC X, its login code is
``XXXXX``, LOGIN.md §12.3); its updates come from :func:`dcpool.bridge.source.open_account_updates`
exactly as for a production account.

The demo's *contact* is a second real client (its own pool, its own test number) that writes
to the account through MTProto (``messages.sendMessage``, ``messages.editMessage``,
``messages.readHistory``): every event the bridge delivers was produced by the emulator's
messaging (``dcpool.testing.messaging``) and pushed over a socket, not generated in process.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import attrs
import trio

from .. import tl
from .source import open_account_updates

__all__ = ["EmulatorTarget", "load_emulator_info", "read_emulator_info", "reserved_phone",
           "run_emulator_account", "run_contact"]

log = logging.getLogger("dcpool.bridge")
api = tl.api


@attrs.frozen
class EmulatorTarget:
    """Where an emulated cluster listens: ``dc_list`` and ``rsa_keys`` for :func:`open_pool`."""

    dc_list: Any
    rsa_keys: Any
    dc_ids: tuple[int, ...]


def load_emulator_info(info: Mapping[str, Any]) -> EmulatorTarget:
    """The first line of ``dcpool emulator --json`` (parsed) as an :class:`EmulatorTarget`."""
    from ..crypto.rsa import RsaPublicKey  # noqa: PLC0415
    from ..dcs import DcOption  # noqa: PLC0415

    key = RsaPublicKey.from_pem(info["rsa_public_key"])
    dcs = {int(dc): ep for dc, ep in dict(info["dcs"]).items()}
    dc_list = [DcOption(id=dc, ip_address=ep["host"], port=int(ep["port"])) for dc, ep in sorted(dcs.items())]
    return EmulatorTarget(dc_list=dc_list, rsa_keys={key.fingerprint: key}, dc_ids=tuple(sorted(dcs)))


def read_emulator_info(path: str) -> EmulatorTarget:
    with open(path) as fh:
        return load_emulator_info(json.loads(fh.readline()))


def reserved_phone(dc_id: int, index: int) -> tuple[str, str]:
    """The reserved test number ``index`` of DC ``dc_id`` and its login code."""
    return f"99966{dc_id}{index:04d}", str(dc_id) * 5


async def signed_in_user(pool: Any, phone: str, code: str) -> Any:
    """Sign ``pool`` in (once: a stored session is reused) and return its own user."""
    if pool.user_id is None:
        return await pool.sign_in(phone, code)
    (me,) = await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
    return me


def _input_peer(user: Any) -> Any:
    return api.InputPeerUser(user_id=user.id, access_hash=user.access_hash or 0)


async def run_contact(target: EmulatorTarget, account_user: Any, *, count: int | None,
                      interval: float, replier: Any = None, phone: str = "9996629999",
                      code: str = "22222") -> None:
    """A second client writes to ``account_user`` through MTProto: ``count`` messages (None =
    forever) ``interval`` s apart.  Every 7th message it edits the previous one; every 10th,
    ``replier(contact_user, text)`` (the account's side) answers and the contact reads the
    answer, which gives the account a read receipt (``messageStatus``)."""
    from ..pool import open_pool  # noqa: PLC0415

    async with open_pool(api_id=1, api_hash="dcpool-bridge-contact", dc_list=target.dc_list,
                         rsa_keys=target.rsa_keys, home_dc=2) as pool:
        me = await signed_in_user(pool, phone, code)
        peer = _input_peer(account_user)
        sent = 0
        last_id: int | None = None
        while count is None or sent < count:
            sent += 1
            result = await pool.invoke(api.messages.SendMessage(
                peer=peer, message=f"message {sent} from {me.first_name}", random_id=secrets.randbits(63)))
            if sent % 7 == 0 and last_id is not None:
                await pool.invoke(api.messages.EditMessage(peer=peer, id=last_id,
                                                           message=f"message {sent - 1} (edited)"))
            last_id = getattr(result, "id", None)
            if sent % 10 == 0 and replier is not None:
                await replier(me, f"got {sent}")
                await pool.invoke(api.messages.ReadHistory(peer=peer, max_id=2**31 - 1))
            if interval:
                await trio.sleep(interval)


async def run_emulator_account(bridge: Any, name: str, target: EmulatorTarget, *,
                               storage: Any = None, phone: str | None = None,
                               contact_messages: int | None = 0, interval: float = 1.0,
                               epoch: int | None = None, on_signed_in: Any = None) -> None:
    """One account on ``target``: a real pool (``storage``: a session path, a Storage, or
    memory), signed in with ``phone`` (default: DC 2's test number 0001), its lifecycle events
    and its updates (the real manager) into the bridge, until cancelled.  With
    ``contact_messages`` != 0, a contact writes to it (:func:`run_contact`)."""
    from ..pool import open_pool  # noqa: PLC0415

    phone = phone or reserved_phone(2, 1)[0]
    code = str(phone[5]) * 5
    async with open_pool(api_id=1, api_hash="dcpool-bridge", storage=storage, dc_list=target.dc_list,
                         rsa_keys=target.rsa_keys, home_dc=2) as pool:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bridge.watch_pool, name, pool)
            signed_in = pool.user_id is None
            me = await signed_in_user(pool, phone, code)
            if signed_in and on_signed_in is not None:
                await on_signed_in(pool, me)
            async with open_account_updates(pool, bridge.outbox, name, epoch=epoch) as stream:
                nursery.start_soon(functools.partial(bridge.run_account, name, stream, epoch=epoch))
                if contact_messages != 0:
                    # the manager starts from getState when nothing is stored: the contact waits
                    # for that first position, or its first messages would predate it
                    while await bridge.outbox.load_state(name) is None:
                        await trio.sleep(0.05)

                    async def reply(contact: Any, text: str) -> None:
                        # through the stream: the result's pts is applied (no gap to wait out)
                        await stream.invoke(api.messages.SendMessage(
                            peer=_input_peer(contact), message=text, random_id=secrets.randbits(63)))

                    nursery.start_soon(lambda: run_contact(target, me, count=contact_messages,
                                                           interval=interval, replier=reply))
                await trio.sleep_forever()
