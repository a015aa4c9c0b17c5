"""Temporary auth keys and ``auth.bindTempAuthKey`` in the emulated cluster (spec §5.11).

Theory of operation
-------------------
The shell (:mod:`.server`) tells this module about every auth key a DC creates
(:func:`key_created`, with ``expires_in`` for keys made with ``p_q_inner_data_temp_dc``), asks
it before each encrypted packet whether the key has expired (:func:`key_expired`: the shell
then forgets the key, so the client gets −404, as Telegram does) and tells it when a key is
forgotten (:func:`forget_key`).  State lives in one :class:`KeyRegistry` per world.

``auth.bindTempAuthKey`` is checked exactly (:mod:`dcpool.mtproto.tempkeys`): it must arrive on
a temp key (400 ``TEMP_AUTH_KEY_EMPTY`` otherwise); ``expires_at`` must be in the future (400
``EXPIRES_AT_INVALID``); ``encrypted_message`` must open with a permanent key of this DC, with
the right MTProto 1.0 msg_key, and carry the outer request's msg_id, seq_no 0, length 40, the
temp key and session the request came on, and the outer ``nonce``, ``expires_at`` and
``perm_auth_key_id`` (400 ``ENCRYPTED_MESSAGE_INVALID`` otherwise); a temp key already bound
to another permanent key gets 400 ``TEMP_AUTH_KEY_ALREADY_BOUND``.  On success (boolTrue) the
temp key is bound and expires at ``min(created + expires_in, expires_at)``.  A permanent key
has at most one bound temp key: binding another one unbinds the previous one.

A request gate (:data:`.handlers.REQUEST_GATES`) enforces the PFS rules: a temp key that is not
(or no longer) bound may call only ``auth.bindTempAuthKey``, ``help.getConfig`` and
``help.getNearestDc`` (401 ``AUTH_KEY_PERM_EMPTY`` otherwise); a bound temp key acts with the
authorization of its permanent key (a user logged in on the permanent key is logged in through
the temp key, and a login through the temp key logs in the permanent key).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import rpc_error_from
from ..mtproto import tempkeys
from .control import Controller, Param, control_command
from .handlers import REQUEST_GATES, Call, method

if TYPE_CHECKING:
    from ..mtproto.envelope import KeyLike
    from .world import DcState, World

__all__ = [
    "ALLOWED_UNBOUND",
    "TempKey",
    "KeyRegistry",
    "key_registry",
    "key_created",
    "key_expired",
    "forget_key",
    "expire_temp_key",
]

#: spec §5.11: what an unbound temp key may call
ALLOWED_UNBOUND = frozenset({"auth.bindTempAuthKey", "help.getConfig", "help.getNearestDc"})


@attrs.define
class TempKey:
    key_id: int
    created: float
    expires_at: float
    #: the permanent key it is bound to (None: not bound)
    perm_key_id: int | None = None


class KeyRegistry:
    """The auth keys of every DC of one world, as far as PFS needs them."""

    def __init__(self) -> None:
        #: (dc, key_id) -> the key (permanent and temporary)
        self.keys: dict[tuple[int, int], KeyLike] = {}
        #: (dc, key_id) -> temp key state
        self.temp: dict[tuple[int, int], TempKey] = {}
        #: (dc, perm key_id) -> the temp key bound to it
        self.bound: dict[tuple[int, int], int] = {}
        #: successful binds (tests count them)
        self.binds = 0

    def perm_keys(self, dc_id: int) -> dict[int, KeyLike]:
        return {k: v for (d, k), v in self.keys.items() if d == dc_id and (d, k) not in self.temp}

    def bound_perm(self, dc_id: int, key_id: int) -> int | None:
        """The permanent key a temp key currently acts for, or None."""
        temp = self.temp.get((dc_id, key_id))
        if temp is None or temp.perm_key_id is None:
            return None
        if self.bound.get((dc_id, temp.perm_key_id)) != key_id:
            return None
        return temp.perm_key_id


_REGISTRY: weakref.WeakKeyDictionary[Any, KeyRegistry] = weakref.WeakKeyDictionary()


def key_registry(world: World) -> KeyRegistry:
    state = _REGISTRY.get(world)
    if state is None:
        state = _REGISTRY[world] = KeyRegistry()
    return state


def key_created(world: World, dc_id: int, auth_key: KeyLike, temp_expires_in: int | None, now: float) -> None:
    """The shell made ``auth_key`` on DC ``dc_id`` (temporary when ``temp_expires_in`` is set)."""
    reg = key_registry(world)
    reg.keys[(dc_id, auth_key.key_id)] = auth_key
    if temp_expires_in is not None:
        reg.temp[(dc_id, auth_key.key_id)] = TempKey(auth_key.key_id, now, now + temp_expires_in)


def key_expired(world: World, dc_id: int, key_id: int, now: float) -> bool:
    """True if ``key_id`` is a temp key past its expiry (the shell then forgets it: −404)."""
    temp = key_registry(world).temp.get((dc_id, key_id))
    return temp is not None and now >= temp.expires_at


def forget_key(world: World, dc_id: int, key_id: int) -> None:
    """The DC dropped ``key_id``: forget it and any binding it was part of."""
    reg = key_registry(world)
    reg.keys.pop((dc_id, key_id), None)
    temp = reg.temp.pop((dc_id, key_id), None)
    if temp is not None and temp.perm_key_id is not None:
        if reg.bound.get((dc_id, temp.perm_key_id)) == key_id:
            del reg.bound[(dc_id, temp.perm_key_id)]
    reg.bound.pop((dc_id, key_id), None)


def expire_temp_key(world: World, dc_id: int, key_id: int | None = None) -> int:
    """Fault/test helper: make one temp key of DC ``dc_id`` (or all of them) expire now; the
    next packet on it gets −404.  Returns how many keys were expired."""
    n = 0
    for (dc, kid), temp in key_registry(world).temp.items():
        if dc == dc_id and (key_id is None or kid == key_id):
            temp.expires_at = float("-inf")
            n += 1
    return n


def _pfs_gate(world: World, dc: DcState, key_id: int, qualname: str, now: float) -> int:
    reg = key_registry(world)
    if (dc.id, key_id) not in reg.temp:
        return key_id
    perm = reg.bound_perm(dc.id, key_id)
    if perm is not None:
        return perm
    if qualname in ALLOWED_UNBOUND:
        return key_id
    raise rpc_error_from(401, "AUTH_KEY_PERM_EMPTY", qualname)


REQUEST_GATES.append(_pfs_gate)


@method("auth.bindTempAuthKey")
def bind_temp_auth_key(call: Call, q: Any) -> bool:
    # auth.bindTempAuthKey#cdd42a05 perm_auth_key_id:long nonce:long expires_at:int
    #   encrypted_message:bytes = Bool;
    reg = key_registry(call.world)
    dc_id = call.dc.id
    temp_id = call.transport_key_id if call.transport_key_id is not None else call.key_id
    temp = reg.temp.get((dc_id, temp_id))
    if temp is None:
        raise call.error(400, "TEMP_AUTH_KEY_EMPTY")
    if q.expires_at <= call.now:
        raise call.error(400, "EXPIRES_AT_INVALID")
    try:
        message = tempkeys.decrypt_bind_message(bytes(q.encrypted_message), reg.perm_keys(dc_id))
    except tempkeys.BindRejected:
        raise call.error(400, "ENCRYPTED_MESSAGE_INVALID") from None
    if call.session_id is None or call.msg_id is None:
        raise call.error(400, "ENCRYPTED_MESSAGE_INVALID")
    problem = tempkeys.check_bind(
        message, q, temp_key_id=temp_id, session_id=call.session_id, msg_id=call.msg_id
    )
    if problem is not None:
        raise call.error(400, problem)
    if temp.perm_key_id is not None and temp.perm_key_id != q.perm_auth_key_id:
        raise call.error(400, "TEMP_AUTH_KEY_ALREADY_BOUND")
    temp.perm_key_id = q.perm_auth_key_id
    temp.expires_at = min(temp.expires_at, float(q.expires_at))
    reg.bound[(dc_id, q.perm_auth_key_id)] = temp_id
    reg.binds += 1
    return True


@control_command(
    "expire_temp_keys",
    "make the temp auth keys of a DC (or one of them) expire now: their next packet gets -404",
    Param("dc_id", "int", "the DC", required=True),
    Param("key_id", "int", "only this temp key"),
)
def _cmd_expire(ctl: Controller, dc_id: int, key_id: int | None = None) -> dict[str, Any]:
    return {"expired": expire_temp_key(ctl.world, dc_id, key_id)}
