"""ClientSession.send_request with a ``msg_id -> body`` function: the body auth.bindTempAuthKey
needs (it seals its own msg_id, spec §5.11), rebuilt for every transmission."""

from __future__ import annotations

import os
import random

from dcpool import tl
from dcpool.mtproto import envelope, tempkeys
from dcpool.mtproto.authkey import AuthKey
from dcpool.mtproto.session import ClientSession

TEMP = AuthKey(random.Random(2).randbytes(256))
PERM = AuthKey(random.Random(3).randbytes(256))
NOW = 1_700_000_000.0


def sent(session: ClientSession, now: float) -> list[envelope.InnerMessage]:
    return [envelope.decrypt_message(TEMP, p, x=0) for p in session.data_to_send(now)]


def test_bind_body_seals_the_msg_id_it_is_sent_under():
    session = ClientSession(TEMP, session_id=77, server_salt=1, rng=os.urandom)
    built: list[int] = []

    def build(msg_id: int) -> bytes:
        built.append(msg_id)
        return tempkeys.bind_temp_auth_key_request(
            PERM, temp_key_id=TEMP.key_id, temp_session_id=session.session_id, msg_id=msg_id,
            expires_at=int(NOW) + 100, nonce=5).to_bytes()

    req = session.send_request(build, now=NOW)
    (msg,) = sent(session, NOW)
    assert msg.msg_id == req.msg_id and built[-1] == msg.msg_id
    query = tl.loads(bytes(msg.body))
    sealed = tempkeys.decrypt_bind_message(query.encrypted_message, {PERM.key_id: PERM})
    assert sealed.msg_id == msg.msg_id and sealed.temp_session_id == 77
    assert tempkeys.check_bind(sealed, query, temp_key_id=TEMP.key_id, session_id=77, msg_id=msg.msg_id) is None
    # a re-send after a lost connection goes out under a new msg_id: the body follows it
    session.connection_lost()
    msgs = sent(session, NOW + 1)
    inner = [m for m in msgs if m.body[:4] == bytes.fromhex("052ad4cd")]
    if not inner:  # re-sent inside a container
        from dcpool.mtproto.envelope import unpack_container

        items = [i for m in msgs for i in unpack_container(m.body)]
        inner_ids = [(i.msg_id, bytes(i.body)) for i in items if bytes(i.body)[:4] == bytes.fromhex("052ad4cd")]
    else:
        inner_ids = [(m.msg_id, bytes(m.body)) for m in inner]
    ((msg_id, body),) = inner_ids
    assert tempkeys.decrypt_bind_message(tl.loads(body).encrypted_message, {PERM.key_id: PERM}).msg_id == msg_id
