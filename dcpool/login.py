"""Every way to sign a pool in: phone code with 2FA, QR login, bot token; and logging out.

::

    user = await login.sign_in(pool, "9996621234", code=ask_code, password=ask_password)
    async for url in (qr := login.qr_login(pool)):       # tg://login?token=..., refreshed
        show_qr(url)
    qr.user                                               # signed in (maybe on another DC)
    bot = await login.sign_in_bot(pool, "123456:AbC...")
    await login.log_out(pool)

Theory of operation (spec LOGIN.md)
-----------------------------------
These flows use only the pool's public API (``pool.invoke``, ``pool.updates``,
``pool.set_home_dc``/``pool.set_user``).  Every step runs on one DC, the DC the login happens
on: the home DC after the pool followed ``PHONE_MIGRATE``/``NETWORK_MIGRATE`` (code login) or
``USER_MIGRATE`` (bots), or the DC named by ``auth.loginTokenMigrateTo`` (QR), where the
password exchange of a QR login also runs (§1.8, §2.2 step 6).  Because a pool that is not
signed in never transfers authorizations, that DC is passed explicitly where the home has not
moved yet.  The pool learns the login (user, home DC) from the answers themselves
(:mod:`dcpool.router.authorization`), as it does for any client that sends these requests
through ``invoke``/``invoke_raw``; :func:`_record_login` only notes in the session how the login
was made.

* ``code`` and ``password`` are a string or a callback (sync or async).  ``code(sent)`` gets
  the ``auth.sentCode``; ``password(hint)`` gets the account's hint.  A callback is asked again
  after ``PHONE_CODE_INVALID`` / ``PASSWORD_HASH_INVALID`` (``attempts`` times in all); a string
  is tried once and the RpcError raised.
* 401 ``SESSION_PASSWORD_NEEDED`` without a ``password`` is raised as is: the key stays
  waiting, and :func:`check_password` finishes the login later.
* The SRP computation (100 000 PBKDF2 rounds) runs in a worker thread, off the event loop.
* Passwords are never logged, stored, put in a repr or in an exception: the SRP check object
  (:class:`dcpool.crypto.srp.SrpCheck`) hides its proof, and RpcErrors carry only the server's
  error name.
* :class:`QrLogin` shows a URL, then waits for ``updateLoginToken`` (from ``pool.updates()``:
  other updates that arrive meanwhile are dropped, which before a login means none) or the
  token's expiry, and exports again: a new URL, or the login (``loginTokenSuccess``, or
  ``loginTokenMigrateTo`` followed by ``auth.importLoginToken`` on the named DC).
"""

from __future__ import annotations

import base64
import inspect
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Any, Union

import trio

from . import tl
from .crypto import srp
from .errors import DcPoolError, LocalProtocolError, RpcError

__all__ = [
    "QrLogin",
    "check_password",
    "log_out",
    "login_url",
    "parse_login_url",
    "qr_login",
    "set_password",
    "sign_in",
    "sign_in_bot",
]

log = logging.getLogger(__name__)

Secret = Union[str, Callable[..., Union[str, Awaitable[str]]]]

PASSWORD_NEEDED = "SESSION_PASSWORD_NEEDED"
DEFAULT_ATTEMPTS = 3
#: the shortest and longest wait before a QR token is refreshed (tdlib re-exports at expiry,
#: at least 1 s later; §2.2)
_QR_MIN_WAIT = 1.0
_QR_MAX_WAIT = 120.0


def login_url(token: bytes) -> str:
    """``tg://login?token=<base64url, no padding>`` (spec §2.4)."""
    return "tg://login?token=" + base64.urlsafe_b64encode(token).decode().rstrip("=")


def parse_login_url(url: str) -> bytes:
    """The token of a ``tg://login?token=`` URL, padded or not (spec §2.4); LocalProtocolError
    if it is not one."""
    prefix = "tg://login?token="
    if not url[: len(prefix)].lower() == prefix:
        raise LocalProtocolError("not a tg://login?token= URL")
    text = url[len(prefix):].strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except ValueError:
        raise LocalProtocolError("the login token is not base64url") from None


async def _record_login(pool: Any, dc_id: int, user_id: int | None, kind: str | None = None) -> None:
    """Note in the storage how the pool was signed in (``kind``: "phone", "qr", "bot", with
    "+password" after 2FA; None: logged out).  The login itself (user, home DC ``dc_id``) the
    pool has already taken from the answer."""
    if user_id is not None and (pool.user_id != user_id or pool.home_dc != dc_id):
        # the answer-driven rule (dcpool.router.authorization) must have seen this login
        raise LocalProtocolError(
            f"the pool did not record the login of user {user_id} on DC {dc_id}"
        )
    set_kind = getattr(pool.storage, "set_login_kind", None)  # optional storage feature
    if set_kind is not None:
        # The pool writes its storage from one worker thread (dcpool.pool.writer): wait until
        # it is idle, then write this one small value before any other task can queue more.
        await pool.flush_storage()
        set_kind(kind if user_id is not None else None)


async def _resolve(secret: Secret, arg: Any) -> str:
    if isinstance(secret, str):
        return secret
    value = secret(arg)
    if inspect.isawaitable(value):
        value = await value
    if not isinstance(value, str):
        raise LocalProtocolError("a code or password callback must return a string")
    return value


def _check_signed_out(pool: Any) -> None:
    if pool.user_id is not None:
        raise LocalProtocolError("the pool is already signed in: log_out() first")


# --------------------------------------------------------------------------- 2FA


async def check_password(pool: Any, password: Secret, *, dc_id: int | None = None,
                         attempts: int = DEFAULT_ATTEMPTS, via: str = "phone") -> Any:
    """Finish a login that answered 401 SESSION_PASSWORD_NEEDED on ``dc_id`` (default: the
    home DC) with the account's cloud password; returns the user (spec §1.4, §1.8).
    ``via`` says how the login started ("phone" or "qr"), for the session file."""
    dc = pool.home_dc if dc_id is None else dc_id
    tries = attempts if callable(password) else 1
    for attempt in range(1, tries + 1):
        # account.getPassword#548a30f5 = account.Password;  (a fresh srp_id each time, §1.6)
        state = await pool.invoke(tl.api.account.GetPassword(), dc_id=dc)
        if not state.has_password:
            raise LocalProtocolError("the server asked for a password but the account has none")
        proof = await _srp_proof(state, await _resolve(password, state.hint or ""))
        # auth.checkPassword#d18b4d16 password:InputCheckPasswordSRP = auth.Authorization;
        try:
            auth = await pool.invoke(tl.api.auth.CheckPassword(password=proof), dc_id=dc)
        except RpcError as exc:
            if exc.message == "PASSWORD_HASH_INVALID" and attempt < tries:
                log.info("wrong password (attempt %d of %d)", attempt, tries)
                continue
            raise
        await _record_login(pool, dc, auth.user.id, f"{via}+password")
        return auth.user
    raise LocalProtocolError("attempts must be at least 1")


async def _srp_proof(state: Any, password: str) -> Any:
    """``inputCheckPasswordSRP`` for ``account.password`` ``state`` (SRP in a worker thread)."""
    algo = state.current_algo
    if type(algo).QUALNAME != "passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow":
        raise LocalProtocolError("unknown password algorithm: update dcpool to log in")
    check = await trio.to_thread.run_sync(
        lambda: srp.client_check(
            password, srp_id=state.srp_id, srp_B=bytes(state.srp_B), salt1=bytes(algo.salt1),
            salt2=bytes(algo.salt2), g=algo.g, p=int.from_bytes(algo.p, "big"), rng=os.urandom,
        )
    )
    # inputCheckPasswordSRP#d27ff082 srp_id:long A:bytes M1:bytes = InputCheckPasswordSRP;
    return tl.api.InputCheckPasswordSRP(srp_id=check.srp_id, A=check.A, M1=check.M1)


async def set_password(pool: Any, new_password: str | None, *, current_password: str | None = None,
                       hint: str = "") -> None:
    """Set, change (``current_password`` needed) or remove (``new_password=None``) the signed-in
    account's cloud password (spec §1.7): the server keeps only the verifier."""
    # account.getPassword#548a30f5 = account.Password;
    state = await pool.invoke(tl.api.account.GetPassword())
    if state.has_password:
        if current_password is None:
            raise LocalProtocolError("the account has a password: give current_password")
        check = await _srp_proof(state, current_password)
    else:
        check = tl.api.InputCheckPasswordEmpty()
    algo = state.new_algo
    if new_password is None:
        settings = tl.api.account.PasswordInputSettings(new_algo=algo, new_password_hash=b"", hint="")
    else:
        if type(algo).QUALNAME != "passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow":
            raise LocalProtocolError("unknown password algorithm: update dcpool")
        # the client lengthens the server's salt1 prefix by 32 random bytes (§1.7)
        salt1 = bytes(algo.salt1) + os.urandom(32)
        p = int.from_bytes(algo.p, "big")
        srp.check_group(algo.g, p)
        v = await trio.to_thread.run_sync(
            lambda: srp.verifier(new_password, salt1, bytes(algo.salt2), algo.g, p)
        )
        settings = tl.api.account.PasswordInputSettings(
            new_algo=tl.api.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
                salt1=salt1, salt2=bytes(algo.salt2), g=algo.g, p=bytes(algo.p)),
            new_password_hash=v, hint=hint,
        )
    # account.updatePasswordSettings#a59b102f password:InputCheckPasswordSRP
    #   new_settings:account.PasswordInputSettings = Bool;
    await pool.invoke(tl.api.account.UpdatePasswordSettings(password=check, new_settings=settings))
    log.info("cloud password %s", "removed" if new_password is None else "set")


# --------------------------------------------------------------------------- phone code


async def sign_in(pool: Any, phone: str, code: Secret, password: Secret | None = None, *,
                  first_name: str = "dcpool", last_name: str = "",
                  attempts: int = DEFAULT_ATTEMPTS) -> Any:
    """Sign in with a login code, then the cloud password if the account has one; signs up a
    new number with ``first_name``/``last_name``.  Returns the user (spec §4.2, §1.8).
    A pool that is signed in already may sign in as another user: the answer replaces the
    login, and every authorization mark of the old one is dropped."""
    # auth.sendCode#a677244f phone_number:string api_id:int api_hash:string
    #   settings:CodeSettings = auth.SentCode;   (the pool follows PHONE_/NETWORK_MIGRATE)
    sent = await pool.invoke(
        tl.api.auth.SendCode(phone_number=phone, api_id=pool.api_id, api_hash=pool.api_hash,
                             settings=tl.api.CodeSettings())
    )
    dc = pool.home_dc
    if type(sent).QUALNAME == "auth.sentCodeSuccess":
        await _record_login(pool, dc, sent.authorization.user.id, "phone")
        return sent.authorization.user
    try:
        auth = await _submit_code(pool, phone, sent, code, dc, attempts if callable(code) else 1)
        if type(auth).QUALNAME == "auth.authorizationSignUpRequired":
            # auth.signUp#aac7b717 flags:# no_joined_notifications:flags.0?true phone_number:string
            #   phone_code_hash:string first_name:string last_name:string = auth.Authorization;
            auth = await pool.invoke(
                tl.api.auth.SignUp(phone_number=phone, phone_code_hash=sent.phone_code_hash,
                                   first_name=first_name, last_name=last_name),
                dc_id=dc,
            )
    except RpcError as exc:
        if exc.message != PASSWORD_NEEDED or password is None:
            raise
        return await check_password(pool, password, dc_id=dc, attempts=attempts)
    await _record_login(pool, dc, auth.user.id, "phone")
    return auth.user


async def _submit_code(pool: Any, phone: str, sent: Any, code: Secret, dc: int, tries: int) -> Any:
    """``auth.signIn`` with the code, asking a callback again after PHONE_CODE_INVALID."""
    for attempt in range(1, tries + 1):
        phone_code = await _resolve(code, sent)
        try:
            # auth.signIn#8d52a951 flags:# phone_number:string phone_code_hash:string
            #   phone_code:flags.0?string ... = auth.Authorization;
            return await pool.invoke(
                tl.api.auth.SignIn(phone_number=phone, phone_code_hash=sent.phone_code_hash,
                                   phone_code=phone_code),
                dc_id=dc,
            )
        except RpcError as exc:
            if exc.message != "PHONE_CODE_INVALID" or attempt == tries:
                raise
    raise LocalProtocolError("attempts must be at least 1")


# --------------------------------------------------------------------------- bots


async def sign_in_bot(pool: Any, token: str) -> Any:
    """Sign in as a bot with its ``"<bot_id>:<secret>"`` token; returns the bot user.  The
    pool follows ``USER_MIGRATE_X`` to the bot's DC (spec §3.2)."""
    # auth.importBotAuthorization#67a3ff2c flags:int api_id:int api_hash:string
    #   bot_auth_token:string = auth.Authorization;
    auth = await pool.invoke(
        tl.api.auth.ImportBotAuthorization(flags=0, api_id=pool.api_id, api_hash=pool.api_hash,
                                           bot_auth_token=token)
    )
    await _record_login(pool, pool.home_dc, auth.user.id, "bot")
    return auth.user


# --------------------------------------------------------------------------- logout


async def log_out(pool: Any) -> bool:
    """``auth.logOut`` on the home DC; the pool forgets the login whatever the answer (as tdlib
    does, §4.5).  True if the server confirmed."""
    try:
        # auth.logOut#3e72ba19 = auth.LoggedOut;
        await pool.invoke(tl.api.auth.LogOut())
        return True
    except RpcError as exc:
        log.info("auth.logOut failed (%s): logged out locally", exc.message)
        return False
    finally:
        if pool.logged_out is None:  # the answer did not log the pool out: do it here
            pool.router.log_out("auth.logOut")
        await _record_login(pool, pool.home_dc, None)


# --------------------------------------------------------------------------- QR login


def qr_login(pool: Any, *, except_ids: Sequence[int] = (), password: Secret | None = None,
             attempts: int = DEFAULT_ATTEMPTS) -> QrLogin:
    """An async iterator of ``tg://login?token=...`` URLs to show as QR codes; it ends when a
    signed-in device accepted one, with the pool signed in (``.user``, ``.dc_id``)."""
    return QrLogin(pool, except_ids=except_ids, password=password, attempts=attempts)


class QrLogin:
    """See :func:`qr_login` and the module docstring."""

    def __init__(self, pool: Any, *, except_ids: Sequence[int] = (), password: Secret | None = None,
                 attempts: int = DEFAULT_ATTEMPTS) -> None:
        _check_signed_out(pool)
        self._pool = pool
        self._except_ids = list(except_ids)
        self._password = password
        self._attempts = attempts
        self._shown = False
        #: the current token's expiry (server unix time), the DC it was exported on
        self.expires: int | None = None
        self.url: str | None = None
        self.tokens_shown = 0
        #: set once signed in
        self.user: Any = None
        self.dc_id: int | None = None

    def __repr__(self) -> str:
        state = "signed in" if self.user is not None else f"{self.tokens_shown} tokens shown"
        return f"<QrLogin {state}>"

    def __aiter__(self) -> QrLogin:
        return self

    async def __anext__(self) -> str:
        if self.user is not None:
            raise StopAsyncIteration
        if self._shown:
            await self._wait_for_acceptance()
        url = await self._step()
        if url is None:
            raise StopAsyncIteration
        return url

    async def _step(self) -> str | None:
        """Export once: a URL to show, or None once signed in."""
        pool = self._pool
        dc = pool.home_dc
        try:
            result = await pool.invoke(
                tl.api.auth.ExportLoginToken(api_id=pool.api_id, api_hash=pool.api_hash,
                                             except_ids=self._except_ids),
                dc_id=dc,
            )
            name = type(result).QUALNAME
            if name == "auth.loginTokenMigrateTo":
                # auth.loginTokenMigrateTo#68e9916 dc_id:int token:bytes = auth.LoginToken;
                dc = result.dc_id
                log.info("QR login continues on DC %s", dc)
                # auth.importLoginToken#95ac5ce4 token:bytes = auth.LoginToken;
                result = await pool.invoke(tl.api.auth.ImportLoginToken(token=result.token), dc_id=dc)
                name = type(result).QUALNAME
        except RpcError as exc:
            if exc.message != PASSWORD_NEEDED or self._password is None:
                raise
            self.user = await check_password(pool, self._password, dc_id=dc, attempts=self._attempts,
                                             via="qr")
            self.dc_id = dc
            return None
        if name == "auth.loginTokenSuccess":
            # auth.loginTokenSuccess#390d5c5e authorization:auth.Authorization = auth.LoginToken;
            user = result.authorization.user
            await _record_login(pool, dc, user.id, "qr")
            self.user, self.dc_id = user, dc
            return None
        if name != "auth.loginToken":
            raise LocalProtocolError(f"unexpected answer to a QR login: {name}")
        # auth.loginToken#629f1980 expires:int token:bytes = auth.LoginToken;
        self._shown = True
        self.expires = result.expires
        self.tokens_shown += 1
        self.url = login_url(bytes(result.token))
        return self.url

    async def _wait_for_acceptance(self) -> None:
        """Until ``updateLoginToken`` arrives or the shown token expires (then export again)."""
        assert self.expires is not None
        wait = min(max(self.expires - time.time(), _QR_MIN_WAIT), _QR_MAX_WAIT)
        with trio.move_on_after(wait if math.isfinite(wait) else _QR_MAX_WAIT):
            async with aclosing(self._pool.updates()) as updates:
                async for item in updates:
                    if _is_login_token_update(getattr(item, "body", b"")):
                        return


# updateShort#78d4dec1 update:Update date:int = Updates;  updateLoginToken#564fe691 = Update;
_UPDATE_SHORT_LOGIN_TOKEN = bytes.fromhex("c1ded478") + bytes.fromhex("91e64f56")


def _is_login_token_update(body: bytes) -> bool:
    if body[:8] == _UPDATE_SHORT_LOGIN_TOKEN:
        return True
    if bytes.fromhex("91e64f56") not in body:
        return False
    try:
        updates = tl.loads(body)
    except DcPoolError:  # not ours to judge: the pool's updates consumer sees the same bytes
        return False
    return any(type(u).QUALNAME == "updateLoginToken" for u in getattr(updates, "updates", ()))
