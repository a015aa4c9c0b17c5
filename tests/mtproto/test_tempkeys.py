"""auth.bindTempAuthKey payload (spec §5.11, §4.4, §19 V12): dcpool.mtproto.tempkeys."""

from __future__ import annotations

import hashlib
import itertools
import struct

import pytest

from dcpool import tl
from dcpool.crypto import aes
from dcpool.mtproto import tempkeys
from dcpool.mtproto.authkey import AuthKey

PERM = AuthKey.from_bytes(bytes(range(256)))
TEMP = AuthKey.from_bytes(bytes(255 - i for i in range(256)))


def counting_rng():
    c = itertools.count()
    return lambda n: bytes(next(c) & 255 for _ in range(n))


def _request(**over):
    kw = dict(temp_key_id=TEMP.key_id, temp_session_id=77, msg_id=0x5E0B_0000_0000_0004,
              expires_at=1_700_000_000, nonce=1234, rng=counting_rng())
    kw.update(over)
    return tempkeys.bind_temp_auth_key_request(PERM, **kw)


def test_layout_matches_spec_independently() -> None:
    """Decrypt by hand, with the spec's KDF v1 formulas written out here (§4.4)."""
    req = _request()
    enc = req.encrypted_message
    assert len(enc) == 8 + 16 + 80
    assert struct.unpack_from("<q", enc)[0] == PERM.key_id == req.perm_auth_key_id
    msg_key, k = enc[8:24], PERM.key
    sha = lambda b: hashlib.sha1(b).digest()  # noqa: E731
    a, b = sha(msg_key + k[0:32]), sha(k[32:48] + msg_key + k[48:64])
    c, d = sha(k[64:96] + msg_key), sha(msg_key + k[96:128])
    key = a[0:8] + b[8:20] + c[4:16]
    iv = a[8:20] + b[0:8] + c[16:20] + d[0:8]
    plain = aes.ige_decrypt(enc[24:], key, iv)
    assert plain[:16] == bytes(range(16))  # the random prefix (counting rng)
    assert struct.unpack_from("<qii", plain, 16) == (0x5E0B_0000_0000_0004, 0, 40)
    assert sha(plain[:72])[4:20] == msg_key
    inner = tl.loads(plain[32:72])
    assert (inner.nonce, inner.temp_auth_key_id, inner.perm_auth_key_id, inner.temp_session_id,
            inner.expires_at) == (1234, TEMP.key_id, PERM.key_id, 77, 1_700_000_000)
    assert (req.nonce, req.expires_at) == (1234, 1_700_000_000)


def test_server_side_accepts_exact_binding() -> None:
    req = _request()
    msg = tempkeys.decrypt_bind_message(req.encrypted_message, {PERM.key_id: PERM})
    assert tempkeys.check_bind(msg, req, temp_key_id=TEMP.key_id, session_id=77,
                               msg_id=0x5E0B_0000_0000_0004) is None


@pytest.mark.parametrize(
    "where",
    ["temp_key", "session", "msg_id", "nonce", "expires_at", "perm_id"],
)
def test_server_side_rejects_every_mismatch(where: str) -> None:
    req = _request()
    msg = tempkeys.decrypt_bind_message(req.encrypted_message, {PERM.key_id: PERM})
    args = dict(temp_key_id=TEMP.key_id, session_id=77, msg_id=0x5E0B_0000_0000_0004)
    if where == "temp_key":
        args["temp_key_id"] += 1
    elif where == "session":
        args["session_id"] = 78
    elif where == "msg_id":
        args["msg_id"] += 4
    elif where == "nonce":
        req = tl.api.auth.BindTempAuthKey(perm_auth_key_id=req.perm_auth_key_id, nonce=1,
                                          expires_at=req.expires_at, encrypted_message=b"")
    elif where == "expires_at":
        req = tl.api.auth.BindTempAuthKey(perm_auth_key_id=req.perm_auth_key_id, nonce=req.nonce,
                                          expires_at=req.expires_at + 1, encrypted_message=b"")
    else:
        req = tl.api.auth.BindTempAuthKey(perm_auth_key_id=TEMP.key_id, nonce=req.nonce,
                                          expires_at=req.expires_at, encrypted_message=b"")
    assert tempkeys.check_bind(msg, req, **args) == "ENCRYPTED_MESSAGE_INVALID"


def test_tampered_or_unknown_key_is_rejected() -> None:
    enc = bytearray(_request().encrypted_message)
    with pytest.raises(tempkeys.BindRejected):
        tempkeys.decrypt_bind_message(bytes(enc), {})
    enc[40] ^= 1
    with pytest.raises(tempkeys.BindRejected):
        tempkeys.decrypt_bind_message(bytes(enc), {PERM.key_id: PERM})
    with pytest.raises(tempkeys.BindRejected):
        tempkeys.decrypt_bind_message(bytes(enc[:50]), {PERM.key_id: PERM})
    # encrypted with the wrong perm key
    other = AuthKey.from_bytes(bytes([7]) * 256)
    forged = struct.pack("<q", PERM.key_id) + tempkeys.encrypt_bind_message(
        other, temp_key_id=1, temp_session_id=2, msg_id=4, nonce=5, expires_at=6)[8:]
    with pytest.raises(tempkeys.BindRejected):
        tempkeys.decrypt_bind_message(forged, {PERM.key_id: PERM})
