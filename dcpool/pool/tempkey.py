"""Perfect forward secrecy: a DC's temporary auth key, bound to its permanent key (spec §5.11).

With ``open_pool(pfs=True)`` every connection of a (non-CDN) DC talks with the DC's current
*temporary* key; the permanent key only signs the binding (and stays what the authorization
belongs to).  :func:`create_bound_temp_key` runs on a fresh connection's stream, before the
connection's own tasks start:

1. the ordinary key exchange with ``p_q_inner_data_temp_dc`` (``expires_in`` = the lifetime);
2. ``auth.bindTempAuthKey`` in a short session of its own on the new key: the request carries an
   MTProto 1.0 message encrypted with the permanent key that seals the request's own msg_id,
   so the body is built from the msg_id it goes out under (:mod:`dcpool.mtproto.tempkeys`; a
   re-send after bad_server_salt gets a new msg_id and a new body);

   auth.bindTempAuthKey#cdd42a05 perm_auth_key_id:long nonce:long expires_at:int
       encrypted_message:bytes = Bool;

3. the connection then opens its own session on the bound key.

One temp key per DC, shared by all its connections (a permanent key has at most one bound temp
key: binding another unbinds the first).  Temp keys live in memory only (never stored: that is
the point).  Renewal and -404 handling are the per-DC state's (:mod:`dcpool.pool.dc`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs
import trio

from ..crypto.rsa import RsaPublicKey
from ..errors import HandshakeError
from ..mtproto import AuthKey
from ..mtproto.handshake import ClientHandshake
from ..mtproto.session import ClientSession, RpcErrorReceived
from ..mtproto.tempkeys import bind_temp_auth_key_request
from ..net.handshake import drive_handshake, drive_request
from ..tl import ids
from ..transport import ClientTransport

__all__ = ["BindRejected", "TempKey", "create_bound_temp_key"]

_BOOL_TRUE = ids.BOOL_TRUE


class BindRejected(HandshakeError):
    """The DC answered auth.bindTempAuthKey with an RPC error (``message``): with
    ENCRYPTED_MESSAGE_INVALID it does not know our permanent key any more."""

    def __init__(self, describe: str, message: str) -> None:
        self.rpc_message = message
        super().__init__(f"{describe}: auth.bindTempAuthKey failed: {message}")


@attrs.frozen
class TempKey:
    """A bound temporary key.  ``expires_at`` is the unix time sent in the binding; the
    deadlines are on trio's clock (which tests may fake)."""

    key: AuthKey
    expires_at: int
    #: when to replace it (at a quiet moment), and when at the latest
    renew_at: float
    force_at: float
    server_salt: int


async def create_bound_temp_key(
    stream: trio.abc.Stream,
    transport: ClientTransport,
    *,
    perm_key: AuthKey,
    rsa_keys: Mapping[int, RsaPublicKey],
    wire_dc: int,
    rng: Callable[[int], bytes],
    lifetime: int,
    clock: Callable[[], float],
    timeout: float | None,
    describe: str,
) -> TempKey:
    """Create a temp key on ``stream`` and bind it to ``perm_key`` (see the module docstring).
    Raises HandshakeError when the DC refuses the binding."""
    handshake = ClientHandshake(dict(rsa_keys), wire_dc, rng, temp_expires_in=lifetime)
    result = await drive_handshake(stream, transport, handshake, timeout=timeout, clock=clock,
                                   describe=f"{describe} (temp key)")
    offset = result.time_offset
    expires_at = int(clock() + offset) + lifetime
    session = ClientSession(result.auth_key, session_id=int.from_bytes(rng(8), "little", signed=True),
                            server_salt=result.server_salt, time_offset=offset, rng=rng)
    temp_key_id, session_id = result.auth_key.key_id, session.session_id
    nonce = int.from_bytes(rng(8), "little", signed=True)

    def build(msg_id: int) -> bytes:
        return bind_temp_auth_key_request(
            perm_key, temp_key_id=temp_key_id, temp_session_id=session_id, msg_id=msg_id,
            expires_at=expires_at, nonce=nonce, rng=rng).to_bytes()

    pending = session.send_request(build, now=clock())
    answer = await drive_request(stream, transport, session, pending, timeout=timeout,
                                 clock=clock, describe=f"{describe} (binding)")
    if isinstance(answer, RpcErrorReceived):
        raise BindRejected(describe, answer.error.message)
    if int.from_bytes(bytes(answer.body[:4]), "little") != _BOOL_TRUE:
        raise HandshakeError(f"{describe}: auth.bindTempAuthKey was refused")
    now = trio.current_time()
    return TempKey(key=result.auth_key, expires_at=expires_at, renew_at=now + lifetime * 0.75,
                   force_at=now + lifetime * 0.9, server_salt=session.salt)
