"""Noticing logins and log-outs in answers, by constructor id (LOGIN.md §4.6), whoever sent them.

Pure functions over raw bytes: the router calls :func:`observe` on every successful answer, so a
login is seen whether it came through ``pool.invoke``, ``pool.invoke_raw`` with bytes the pool
did not serialise, or a helper.  No TL classes of the caller are needed: only constructor ids
and the documented layout of ``auth.authorization``.

The rule (§4.6): a login succeeded when the top-level result is

* ``auth.authorization#2ea2c0d4`` itself,
* ``auth.loginTokenSuccess#390d5c5e authorization:auth.Authorization``, or
* ``auth.sentCodeSuccess#2390fe44 authorization:auth.Authorization``

and the (inner) object is ``auth.authorization``; ``auth.authorizationSignUpRequired`` is not a
login.  ``auth.logOut#3e72ba19`` answered by ``auth.loggedOut#c3a2835f`` is a log-out.
(The session has already unwrapped ``rpc_result`` and ``gzip_packed``.)
"""

from __future__ import annotations

import enum
import struct

import attrs

from .. import tl

__all__ = ["AnswerKind", "Observation", "observe", "request_id", "INVOKE_WITHOUT_UPDATES"]

AUTHORIZATION = 0x2EA2C0D4
LOGIN_TOKEN_SUCCESS = 0x390D5C5E
SENT_CODE_SUCCESS = 0x2390FE44
LOGGED_OUT = 0xC3A2835F
LOG_OUT = 0x3E72BA19
IMPORT_AUTHORIZATION = 0xA57A7DAD
USER = 0xB1B8CC83
USER_EMPTY = 0xD3BC4B7A
#: invokeWithoutUpdates#bf9459b7 {X:Type} query:!X = X;
INVOKE_WITHOUT_UPDATES = 0xBF9459B7
#: wrappers a caller may put around its query (invokeWithLayer, initConnection,
#: invokeWithoutUpdates, invokeAfterMsg): the method is found inside them
_WRAPPERS = {0xDA9B0D0D, 0xC1CD5EA9, INVOKE_WITHOUT_UPDATES, 0xCB9F372D}


class AnswerKind(enum.Enum):
    LOGIN = "login"
    IMPORTED = "imported"  # auth.importAuthorization: authorized on a secondary DC
    LOGGED_OUT = "logged out"


@attrs.frozen
class Observation:
    kind: AnswerKind
    user_id: int | None = None
    bot: bool = False


def _u32(data: bytes | memoryview, at: int) -> int:
    return int(struct.unpack_from("<I", data, at)[0])


def request_id(body: bytes | memoryview) -> int | None:
    """The constructor id of the method inside ``body`` (wrappers skipped where their layout is
    simple), or None."""
    if len(body) < 4:
        return None
    cid = _u32(body, 0)
    if cid == INVOKE_WITHOUT_UPDATES:
        return request_id(memoryview(body)[4:])
    if cid == 0xDA9B0D0D and len(body) >= 8:  # invokeWithLayer#da9b0d0d layer:int query:!X
        return request_id(memoryview(body)[8:])
    if cid in _WRAPPERS:
        return None  # (initConnection / invokeAfterMsg: not worth parsing here)
    return cid


def _tl_bytes_length(data: bytes | memoryview, at: int) -> int:
    """Bytes taken by a TL ``bytes``/``string`` at ``at`` (length prefix and padding)."""
    first = data[at]
    if first < 254:
        used = 1 + first
    else:
        used = 4 + (_u32(data, at) >> 8)
    return (used + 3) & ~3


def authorization_user(body: bytes | memoryview, at: int = 0) -> tuple[int, bool] | None:
    """(user id, is_bot) of the ``auth.authorization`` at ``at``, or None if it is not one."""
    try:
        if _u32(body, at) != AUTHORIZATION:
            return None
        flags = _u32(body, at + 4)
        pos = at + 8
        if flags & (1 << 1):  # otherwise_relogin_days:flags.1?int (TL order: before tmp_sessions)
            pos += 4
        if flags & (1 << 0):  # tmp_sessions:flags.0?int
            pos += 4
        if flags & (1 << 2):  # future_auth_token:flags.2?bytes
            pos += _tl_bytes_length(body, pos)
        user = _u32(body, pos)
        if user == USER:
            # user#b1b8cc83 flags:# ... flags2:# id:long ...; bot is flags.14
            user_flags = _u32(body, pos + 4)
            (uid,) = struct.unpack_from("<q", body, pos + 12)
            return int(uid), bool(user_flags & (1 << 14))
        if user == USER_EMPTY:
            (uid,) = struct.unpack_from("<q", body, pos + 4)
            return int(uid), False
        # Another layer's user constructor: let the TL layer read it.
        obj = tl.loads(bytes(body[at:]))
        return int(obj.user.id), bool(getattr(obj.user, "bot", False))
    except Exception:  # a malformed answer is not a login; the caller's parser will complain
        return None


def observe(request: bytes | memoryview, result: bytes | memoryview) -> Observation | None:
    """What a successful answer means for the pool's login (see the module docstring)."""
    if len(result) < 4:
        return None
    cid = _u32(result, 0)
    method = request_id(request)
    found: tuple[int, bool] | None = None
    if cid == AUTHORIZATION:
        found = authorization_user(result)
    elif cid in (LOGIN_TOKEN_SUCCESS, SENT_CODE_SUCCESS):
        found = authorization_user(result, 4)
    elif cid == LOGGED_OUT and method == LOG_OUT:
        return Observation(AnswerKind.LOGGED_OUT)
    if found is None:
        return None
    kind = AnswerKind.IMPORTED if method == IMPORT_AUTHORIZATION else AnswerKind.LOGIN
    return Observation(kind, found[0], found[1])
