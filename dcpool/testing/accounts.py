"""Every other way to sign in, on the emulator: cloud passwords (2FA), QR login, bots, logout.

Theory of operation (spec LOGIN.md §1-§4; the state is that of LOGIN.md §6)
---------------------------------------------------------------------------
This module adds handlers to :mod:`dcpool.testing.handlers` with its ``@method`` decorator
(:mod:`dcpool.testing.rpc` imports it last: it wraps some handlers of the others) and
installs the per-key hooks of ``handlers.KEY_HOOKS`` and keeps its own state in one
:class:`LoginState` per :class:`~dcpool.testing.world.World` (:func:`login_state`), so that
the world's accounts, authorizations and update routing stay where they are.

**Cloud passwords** (§1.6).  :meth:`LoginState.set_password` stores the SRP record of an
account: salt1 (an 8-byte server prefix plus 32 bytes, as a client would make it), salt2,
``v`` and a version; never the password.  ``auth.signIn`` with a correct code for such an
account answers **401 SESSION_PASSWORD_NEEDED** and leaves the key *password pending* on that
DC (the wrapped original handler had logged it in; that is undone).  ``account.getPassword``
issues a fresh ``srp_B``/``srp_id`` each time (single use); ``auth.checkPassword`` checks the
srp_id (``SRP_ID_INVALID``: unknown, used, or issued to another key), the version
(``SRP_PASSWORD_CHANGED``), then M1 (``PASSWORD_HASH_INVALID``, also for
``inputCheckPasswordEmpty`` and for an A outside (1, p−1)), and logs the key in.

**QR login** (§2.6).  ``auth.exportLoginToken`` from key K on DC d issues a token valid for
:attr:`LoginState.qr_ttl` seconds and makes K's session reachable for ``updateLoginToken``
(see :func:`update_route`).  ``auth.acceptLoginToken`` (an authorized key of user U) marks it
accepted (``AUTH_TOKEN_INVALID``/``_EXPIRED``/``_ALREADY_ACCEPTED``), pushes
``updateShort(updateLoginToken)`` to K and answers an ``authorization`` describing K.  K's
next export answers ``loginTokenSuccess`` (U lives on d), 401 ``SESSION_PASSWORD_NEEDED`` (U
lives on d and has 2FA) or ``loginTokenMigrateTo(home(U), T′)``; ``auth.importLoginToken(T′)``
on that DC then answers ``loginTokenSuccess`` or 401 ``SESSION_PASSWORD_NEEDED`` (T′ is single
use, ``AUTH_TOKEN_INVALID`` on another DC).  An export before acceptance issues a new token.

**Bots** (§3).  :meth:`LoginState.add_bot` creates a bot account homed on a chosen DC with the
token ``"<bot_id>:<secret>"``.  ``auth.importBotAuthorization`` answers ``ACCESS_TOKEN_INVALID``
(malformed, unknown, wrong secret), ``ACCESS_TOKEN_EXPIRED`` (a token replaced by
:meth:`LoginState.revoke_bot_token`), 303 ``USER_MIGRATE_<home>`` on another DC, else logs the
key in as the bot (``user`` with ``self``, ``bot`` and ``bot_info_version``).

**Logout**.  ``auth.logOut`` (kept from :mod:`.handlers`) also clears this module's per-key
state.  ``auth.resetAuthorizations`` (home DC) logs out every other key of the user on every
DC — they get 401 ``AUTH_KEY_UNREGISTERED`` afterwards, which LOGIN.md §4.5 reports as seen in
practice — and answers ``FRESH_RESET_AUTHORISATION_FORBIDDEN`` (406) while the caller's login
is younger than :attr:`LoginState.fresh_reset_age` (0 by default, Telegram: 24 h).

Methods
-------
=============================  ======  ===================================================
account.getPassword            ANY     account.password (has_password with a fresh
                                       challenge for the key's pending or logged-in user)
auth.checkPassword             ANY     auth.authorization; SRP_ID_INVALID,
                                       SRP_PASSWORD_CHANGED, PASSWORD_HASH_INVALID
account.updatePasswordSettings KEY     boolTrue: set, change (new salt1 = a server prefix
                                       + 32 bytes, salt2/g/p the server's) or remove (empty
                                       hash) the password; PASSWORD_HASH_INVALID,
                                       SRP_ID_INVALID, NEW_SALT_INVALID, NEW_SETTINGS_INVALID
auth.signIn                    ANY     as in handlers, plus 401 SESSION_PASSWORD_NEEDED
auth.exportLoginToken          ANY     auth.loginToken / loginTokenSuccess /
                                       loginTokenMigrateTo; API_ID_INVALID,
                                       401 SESSION_PASSWORD_NEEDED
auth.acceptLoginToken          KEY     authorization; AUTH_TOKEN_INVALID, _EXPIRED,
                                       _ALREADY_ACCEPTED
auth.importLoginToken          ANY     auth.loginTokenSuccess; AUTH_TOKEN_INVALID, _EXPIRED,
                                       _ALREADY_ACCEPTED, 401 SESSION_PASSWORD_NEEDED
auth.importBotAuthorization    ANY     auth.authorization (bot user); ACCESS_TOKEN_INVALID,
                                       ACCESS_TOKEN_EXPIRED, API_ID_INVALID, USER_MIGRATE_X
auth.logOut                    KEY     as in handlers; clears pending password / QR state
auth.resetAuthorizations       HOME    boolTrue; FRESH_RESET_AUTHORISATION_FORBIDDEN
=============================  ======  ===================================================
"""

from __future__ import annotations

import base64
import weakref
from typing import TYPE_CHECKING, Any

import attrs

from .. import tl
from ..crypto import srp
from ..errors import LocalProtocolError
from ..login import login_url, parse_login_url
from .handlers import HANDLERS, KEY_HOOKS, Access, Call, method

if TYPE_CHECKING:
    from .world import Account, World

__all__ = [
    "Bot",
    "CloudPassword",
    "LoginState",
    "QrToken",
    "login_state",
    "login_url",
    "parse_login_url",
    "update_route",
]

QR_TTL = 30.0
MIGRATE_TOKEN_TTL = 30.0
SRP_ID_TTL = 600.0
_KeyRef = tuple[int, int]  # (dc_id, auth key id)


@attrs.define(repr=False)
class CloudPassword:
    """What the server keeps for an account with 2FA (§1.6): never the password itself."""

    salt1: bytes
    salt2: bytes
    v: bytes
    hint: str = ""
    version: int = 1

    def __repr__(self) -> str:
        return f"<CloudPassword version={self.version}>"

    def algo(self) -> Any:
        # passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow#3a912d4a
        #   salt1:bytes salt2:bytes g:int p:bytes = PasswordKdfAlgo;
        return tl.api.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=self.salt1, salt2=self.salt2, g=srp.SRP_G, p=srp.pad(srp.SRP_P)
        )


@attrs.define(repr=False)
class _Challenge:
    user_id: int
    key: _KeyRef
    challenge: srp.ServerChallenge
    version: int
    expires_at: float


@attrs.define
class QrToken:
    """One ``auth.exportLoginToken`` token (or a migrate token ``T′``)."""

    token: bytes = attrs.field(repr=False)
    #: the exporting key (for a migrate token: the DC it must be imported on, key unknown)
    dc_id: int
    key_id: int | None
    expires_at: float
    accepted_by: int | None = None
    #: a loginTokenMigrateTo token (single use, imported with auth.importLoginToken)
    migrate: bool = False
    used: bool = False
    init: Any = None


@attrs.define
class Bot:
    """A bot account: ``token`` is ``"<user_id>:<secret>"``."""

    user_id: int
    dc_id: int
    secret: str = attrs.field(repr=False)
    revoked: set[str] = attrs.field(factory=set, repr=False)

    @property
    def token(self) -> str:
        return f"{self.user_id}:{self.secret}"


class LoginState:
    """Passwords, SRP challenges, QR tokens, bots and per-key login state of one world."""

    def __init__(self, world: World) -> None:
        self._world = weakref.ref(world)
        self.qr_ttl = QR_TTL
        self.migrate_token_ttl = MIGRATE_TOKEN_TTL
        self.srp_id_ttl = SRP_ID_TTL
        #: seconds a login must be old before it may call auth.resetAuthorizations
        self.fresh_reset_age = 0.0
        self.passwords: dict[int, CloudPassword] = {}
        self.bots: dict[int, Bot] = {}
        self.qr_tokens: dict[bytes, QrToken] = {}
        #: (dc, key) -> user whose password the key must still give (§1.8)
        self.password_pending: dict[_KeyRef, int] = {}
        #: (dc, key) -> the last QR token it exported
        self._qr_by_key: dict[_KeyRef, bytes] = {}
        #: (dc, key) -> pseudo user id under which the shell registers the exporting session
        self._routes: dict[_KeyRef, int] = {}
        self._challenges: dict[int, _Challenge] = {}
        self._next_route = -1
        #: (dc, key) -> the 401 its calls get after auth.resetAuthorizations (§5.5)
        self.revoked: dict[_KeyRef, str] = {}
        #: user -> the salt2 offered in new_algo while no password is set (§1.7: it must come back)
        self._server_salt2: dict[int, bytes] = {}
        #: export token -> the key that exported it; imported key -> the key it came from
        self._exported_by: dict[bytes, _KeyRef] = {}
        self._imported_from: dict[_KeyRef, _KeyRef] = {}

    @property
    def world(self) -> World:
        world = self._world()
        assert world is not None
        return world

    def __repr__(self) -> str:
        return (
            f"<LoginState passwords={len(self.passwords)} bots={len(self.bots)} "
            f"qr_tokens={len(self.qr_tokens)} pending={len(self.password_pending)}>"
        )

    # ------------------------------------------------------------------ configuration

    def set_password(self, user_id: int, password: str | None, *, hint: str = "") -> None:
        """Give account ``user_id`` a cloud password (None removes it).  The salts are what a
        client would send when setting it (§1.7): server prefix + 32 bytes, and 16 bytes."""
        self.world.user(user_id)
        if password is None:
            self.passwords.pop(user_id, None)
            return
        rng = self.world.rng
        salt1, salt2 = rng(8) + rng(32), rng(16)
        old = self.passwords.get(user_id)
        self.passwords[user_id] = CloudPassword(
            salt1=salt1,
            salt2=salt2,
            v=srp.verifier(password, salt1, salt2),
            hint=hint,
            version=1 if old is None else old.version + 1,
        )

    def add_bot(self, dc_id: int, *, name: str = "Test Bot", username: str | None = None) -> Bot:
        """A bot homed on ``dc_id`` with a fresh token."""
        world = self.world
        world.dc(dc_id)
        n = len(self.bots) + 1
        # bots have no phone; a reserved non-numeric key keeps them out of phone lookups
        account = world.add_user(f"bot:{n}", dc_id, first_name=name, username=username or f"test{n}_bot")
        bot = Bot(user_id=account.id, dc_id=dc_id, secret=self._secret())
        self.bots[account.id] = bot
        return bot

    def revoke_bot_token(self, user_id: int) -> Bot:
        """Replace a bot's token: the old one then answers ACCESS_TOKEN_EXPIRED."""
        bot = self.bots[user_id]
        bot.revoked.add(bot.secret)
        bot.secret = self._secret()
        return bot

    def _secret(self) -> str:
        return base64.urlsafe_b64encode(self.world.rng(26)).decode().rstrip("=")[:35]

    def accept_login_token(self, token: bytes | str, user_id: int, now: float) -> QrToken:
        """Accept a pending QR token as ``user_id`` (what ``auth.acceptLoginToken`` does from a
        signed-in device; for tests and the emulator's control channel).  Raises RpcError."""
        if isinstance(token, str):
            token = parse_login_url(token)
        return _accept(self, bytes(token), self.world.user(user_id), now, "auth.acceptLoginToken")

    # ------------------------------------------------------------------ per-key state

    def forget_key(self, dc_id: int, key_id: int) -> None:
        ref = (dc_id, key_id)
        self.password_pending.pop(ref, None)
        self._qr_by_key.pop(ref, None)
        self._routes.pop(ref, None)
        self.revoked.pop(ref, None)
        self._imported_from.pop(ref, None)

    def login_root(self, ref: _KeyRef) -> _KeyRef:
        """The key that logged in, following imports back (one client's keys share a root)."""
        seen = {ref}
        while ref in self._imported_from:
            ref = self._imported_from[ref]
            if ref in seen:
                break
            seen.add(ref)
        return ref

    def route(self, dc_id: int, key_id: int) -> int | None:
        return self._routes.get((dc_id, key_id))

    def _route_for(self, ref: _KeyRef) -> int:
        route = self._routes.get(ref)
        if route is None:
            route = self._routes[ref] = self._next_route
            self._next_route -= 1
        return route

    def has_password(self, user_id: int) -> bool:
        return user_id in self.passwords

    def is_bot(self, user_id: int) -> bool:
        return user_id in self.bots


_STATES: weakref.WeakKeyDictionary[World, LoginState] = weakref.WeakKeyDictionary()


def login_state(world: World) -> LoginState:
    """The :class:`LoginState` of ``world`` (created on first use)."""
    state = _STATES.get(world)
    if state is None:
        state = _STATES[world] = LoginState(world)
    return state


def unauthorized_reason(world: World, dc_id: int, key_id: int) -> str:
    """The 401 a key that is not logged in gets for a method that needs a login (§5.5)."""
    state = _STATES.get(world)
    ref = (dc_id, key_id)
    if state is not None:
        if ref in state.password_pending:
            return "SESSION_PASSWORD_NEEDED"  # §1.8: safe for every client
        if ref in state.revoked:
            return state.revoked[ref]
    return "AUTH_KEY_UNREGISTERED"


def update_route(world: World, dc_id: int, key_id: int) -> int | None:
    """The routing id the shell registers a *not logged-in* key's session under, or None.

    A key waiting for a QR login must receive ``updateLoginToken`` (§2.2 step 4) although it
    has no user yet: it gets a negative pseudo user id for :meth:`World.push_update`.
    """
    state = _STATES.get(world)
    return None if state is None else state.route(dc_id, key_id)


KEY_HOOKS.route = update_route
KEY_HOOKS.unauthorized = unauthorized_reason


# --------------------------------------------------------------------------- helpers


def _user_tl(state: LoginState, account: Account) -> Any:
    user = account.to_tl(is_self=True)
    if state.is_bot(account.id):
        # user#b1b8cc83 ... bot:flags.14?true ... bot_info_version:flags.14?int ...: the same bit,
        # so a bot user must carry bot_info_version (§3.2)
        user = attrs.evolve(user, bot=True, bot_info_version=1, phone=None)
    return user


def _authorization(state: LoginState, account: Account) -> Any:
    # auth.authorization#2ea2c0d4 flags:# setup_password_required:flags.1?true
    #   otherwise_relogin_days:flags.1?int tmp_sessions:flags.0?int future_auth_token:flags.2?bytes
    #   user:User = auth.Authorization;
    return tl.api.auth.Authorization(user=_user_tl(state, account))


def _log_in(call: Call, state: LoginState, account: Account) -> Any:
    from .world import AuthKind

    state.forget_key(call.dc.id, call.key_id)
    call.world.authorize(call.dc.id, call.key_id, account.id, AuthKind.LOGIN, call.now)
    return _authorization(state, account)


def _password_needed(call: Call, state: LoginState, account: Account) -> Exception:
    """The key now owes ``account``'s password on this DC (§1.8): 401, not 400."""
    call.world.deauthorize(call.dc.id, call.key_id)
    state.forget_key(call.dc.id, call.key_id)
    state.password_pending[(call.dc.id, call.key_id)] = account.id
    return call.error(401, "SESSION_PASSWORD_NEEDED")


def _check_api_id(call: Call, api_id: int) -> None:
    if api_id <= 0:
        raise call.error(400, "API_ID_INVALID")


# --------------------------------------------------------------------------- 2FA


_original_sign_in = HANDLERS["auth.signIn"][1]


@method("auth.signIn")
def sign_in(call: Call, q: Any) -> Any:
    # auth.signIn#8d52a951 flags:# phone_number:string phone_code_hash:string
    #   phone_code:flags.0?string email_verification:flags.1?EmailVerification = auth.Authorization;
    result = _original_sign_in(call, q)
    state = login_state(call.world)
    if type(result).QUALNAME == "auth.authorization" and state.has_password(result.user.id):
        raise _password_needed(call, state, call.world.user(result.user.id))
    state.forget_key(call.dc.id, call.key_id)
    return result


@method("account.getPassword")
def get_password(call: Call, q: Any) -> Any:
    # account.getPassword#548a30f5 = account.Password;
    # account.password#957b50fb flags:# has_recovery:flags.0?true has_secure_values:flags.1?true
    #   has_password:flags.2?true current_algo:flags.2?PasswordKdfAlgo srp_B:flags.2?bytes
    #   srp_id:flags.2?long hint:flags.3?string email_unconfirmed_pattern:flags.4?string
    #   new_algo:PasswordKdfAlgo new_secure_algo:SecurePasswordKdfAlgo secure_random:bytes
    #   pending_reset_date:flags.5?int login_email_pattern:flags.6?string = account.Password;
    world, state = call.world, login_state(call.world)
    ref = (call.dc.id, call.key_id)
    user_id = state.password_pending.get(ref)
    if user_id is None:
        user_id = world.user_for_key(call.dc.id, call.key_id)
    record = state.passwords.get(user_id) if user_id is not None else None
    rng = world.rng
    # the client makes its new salt1 from this prefix (§1.7); salt2, g and p stay the server's
    if record is not None:
        salt2 = record.salt2
    elif user_id is not None:
        salt2 = state._server_salt2.setdefault(user_id, rng(16))
    else:
        salt2 = rng(16)
    new_algo = tl.api.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
        salt1=rng(8),
        salt2=salt2,
        g=srp.SRP_G,
        p=srp.pad(srp.SRP_P),
    )
    # securePasswordKdfAlgoPBKDF2HMACSHA512iter100000#bbf2dda0 salt:bytes
    new_secure_algo = tl.api.SecurePasswordKdfAlgoPBKDF2HMACSHA512iter100000(salt=rng(8))
    secure_random = rng(256)
    if record is None or user_id is None:
        return tl.api.account.Password(
            new_algo=new_algo, new_secure_algo=new_secure_algo, secure_random=secure_random
        )
    challenge = srp.server_challenge(record.v, rng)
    srp_id = int.from_bytes(rng(8), "little", signed=True)
    while srp_id in state._challenges or srp_id == 0:
        srp_id = int.from_bytes(rng(8), "little", signed=True)
    state._challenges[srp_id] = _Challenge(
        user_id=user_id,
        key=ref,
        challenge=challenge,
        version=record.version,
        expires_at=call.now + state.srp_id_ttl,
    )
    return tl.api.account.Password(
        has_password=True,
        current_algo=record.algo(),
        srp_B=challenge.B,
        srp_id=srp_id,
        hint=record.hint or None,
        new_algo=new_algo,
        new_secure_algo=new_secure_algo,
        secure_random=secure_random,
    )


@method("auth.checkPassword")
def check_password(call: Call, q: Any) -> Any:
    # auth.checkPassword#d18b4d16 password:InputCheckPasswordSRP = auth.Authorization;
    # inputCheckPasswordEmpty#9880f658 = InputCheckPasswordSRP;
    # inputCheckPasswordSRP#d27ff082 srp_id:long A:bytes M1:bytes = InputCheckPasswordSRP;
    world, state = call.world, login_state(call.world)
    ref = (call.dc.id, call.key_id)
    check = q.password
    if type(check).QUALNAME == "inputCheckPasswordEmpty":
        user_id = state.password_pending.get(ref)
        if user_id is not None and state.has_password(user_id):
            raise call.error(400, "PASSWORD_HASH_INVALID")
        raise call.error(400, "SRP_ID_INVALID")
    pending = _verify_srp(call, state, check)
    account = world.user(pending.user_id)
    if state.password_pending.get(ref) == account.id:
        return _log_in(call, state, account)
    if world.user_for_key(call.dc.id, call.key_id) == account.id:
        return _authorization(state, account)  # a logged-in key proving its password again
    raise call.error(400, "SRP_ID_INVALID")


def _verify_srp(call: Call, state: LoginState, check: Any) -> _Challenge:
    """Check an ``inputCheckPasswordSRP`` against the challenge it answers (§1.6 steps 1-4)."""
    ref = (call.dc.id, call.key_id)
    pending = state._challenges.pop(check.srp_id, None)  # single use (§1.6)
    if pending is None or pending.key != ref or call.now > pending.expires_at:
        raise call.error(400, "SRP_ID_INVALID")
    record = state.passwords.get(pending.user_id)
    if record is None or record.version != pending.version:
        raise call.error(400, "SRP_PASSWORD_CHANGED")
    ok = srp.server_verify(
        v=record.v,
        challenge=pending.challenge,
        A=bytes(check.A),
        M1=bytes(check.M1),
        salt1=record.salt1,
        salt2=record.salt2,
    )
    if not ok:
        raise call.error(400, "PASSWORD_HASH_INVALID")
    return pending


@method("account.updatePasswordSettings", Access.KEY)
def update_password_settings(call: Call, q: Any) -> Any:
    # account.updatePasswordSettings#a59b102f password:InputCheckPasswordSRP
    #   new_settings:account.PasswordInputSettings = Bool;
    # account.passwordInputSettings#c23727c9 flags:# new_algo:flags.0?PasswordKdfAlgo
    #   new_password_hash:flags.0?bytes hint:flags.0?string email:flags.1?string
    #   new_secure_settings:flags.2?SecureSecretSettings = account.PasswordInputSettings;
    state = login_state(call.world)
    assert call.account is not None
    user_id = call.account.id
    current = state.passwords.get(user_id)
    check = q.password
    if type(check).QUALNAME == "inputCheckPasswordEmpty":
        if current is not None:
            raise call.error(400, "PASSWORD_HASH_INVALID")
    else:
        if current is None:
            raise call.error(400, "SRP_ID_INVALID")
        if _verify_srp(call, state, check).user_id != user_id:
            raise call.error(400, "SRP_ID_INVALID")
    settings = q.new_settings
    algo, new_hash = settings.new_algo, settings.new_password_hash
    if algo is None and new_hash is None:
        raise call.error(400, "NEW_SETTINGS_EMPTY")
    if not new_hash:  # remove (tdlib sends passwordKdfAlgoUnknown, Telethon the old algo)
        state.passwords.pop(user_id, None)
        return True
    if type(algo).QUALNAME != "passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow":
        raise call.error(400, "NEW_SETTINGS_INVALID")
    # suggested rule of §1.7: salt2, g and p are the server's, salt1 = prefix + 32 bytes
    salt2 = current.salt2 if current is not None else state._server_salt2.get(user_id)
    if (
        bytes(algo.salt2) != salt2
        or algo.g != srp.SRP_G
        or int.from_bytes(algo.p, "big") != srp.SRP_P
        or len(algo.salt1) != 8 + 32
    ):
        raise call.error(400, "NEW_SALT_INVALID")
    value = int.from_bytes(new_hash, "big")
    if len(new_hash) != 256 or not 1 < value < srp.SRP_P - 1:
        raise call.error(400, "NEW_SETTINGS_INVALID")
    state.passwords[user_id] = CloudPassword(
        salt1=bytes(algo.salt1),
        salt2=bytes(algo.salt2),
        v=bytes(new_hash),
        hint=settings.hint or "",
        version=1 if current is None else current.version + 1,
    )
    return True


# --------------------------------------------------------------------------- QR login


@method("auth.exportLoginToken")
def export_login_token(call: Call, q: Any) -> Any:
    # auth.exportLoginToken#b7e085fe api_id:int api_hash:string except_ids:Vector<long>
    #   = auth.LoginToken;
    _check_api_id(call, q.api_id)
    world, state = call.world, login_state(call.world)
    ref = (call.dc.id, call.key_id)
    previous = state.qr_tokens.get(state._qr_by_key.get(ref, b""))
    if previous is not None and previous.accepted_by is not None:
        account = world.user(previous.accepted_by)
        del state.qr_tokens[previous.token]
        del state._qr_by_key[ref]
        if account.home_dc != call.dc.id:
            # auth.loginTokenMigrateTo#68e9916 dc_id:int token:bytes = auth.LoginToken;
            migrate = _new_token(state, account.home_dc, None, call.now + state.migrate_token_ttl)
            migrate.accepted_by, migrate.migrate = account.id, True
            return tl.api.auth.LoginTokenMigrateTo(dc_id=account.home_dc, token=migrate.token)
        if state.has_password(account.id):
            raise _password_needed(call, state, account)
        # auth.loginTokenSuccess#390d5c5e authorization:auth.Authorization = auth.LoginToken;
        return tl.api.auth.LoginTokenSuccess(authorization=_log_in(call, state, account))
    if previous is not None:
        del state.qr_tokens[previous.token]  # a refreshed QR code replaces the shown one
    fresh = _new_token(state, call.dc.id, call.key_id, call.now + state.qr_ttl)
    fresh.init = call.ctx.init
    state._qr_by_key[ref] = fresh.token
    state._route_for(ref)
    # auth.loginToken#629f1980 expires:int token:bytes = auth.LoginToken;
    return tl.api.auth.LoginToken(expires=int(fresh.expires_at), token=fresh.token)


def _new_token(state: LoginState, dc_id: int, key_id: int | None, expires_at: float) -> QrToken:
    token = state.world.rng(32)
    while token in state.qr_tokens:
        token = state.world.rng(32)
    entry = state.qr_tokens[token] = QrToken(token=token, dc_id=dc_id, key_id=key_id, expires_at=expires_at)
    return entry


def _accept(state: LoginState, token: bytes, account: Account, now: float, qualname: str) -> QrToken:
    from ..errors import rpc_error_from

    entry = state.qr_tokens.get(token)
    if entry is None or entry.migrate:
        raise rpc_error_from(400, "AUTH_TOKEN_INVALID", qualname)
    if now > entry.expires_at:
        raise rpc_error_from(400, "AUTH_TOKEN_EXPIRED", qualname)
    if entry.accepted_by is not None:
        raise rpc_error_from(400, "AUTH_TOKEN_ALREADY_ACCEPTED", qualname)
    entry.accepted_by = account.id
    assert entry.key_id is not None
    route = state.route(entry.dc_id, entry.key_id)
    if route is not None:
        # updateLoginToken#564fe691 = Update;  pushed as updateShort(update, date) (§2.2 step 4)
        state.world.push_update(route, tl.api.UpdateLoginToken(), now=now)
    return entry


@method("auth.acceptLoginToken", Access.KEY)
def accept_login_token(call: Call, q: Any) -> Any:
    # auth.acceptLoginToken#e894ad4d token:bytes = Authorization;
    # authorization#ad01d61d flags:# current:flags.0?true official_app:flags.1?true
    #   password_pending:flags.2?true ... hash:long device_model:string platform:string
    #   system_version:string api_id:int app_name:string app_version:string date_created:int
    #   date_active:int ip:string country:string region:string = Authorization;
    state = login_state(call.world)
    assert call.account is not None
    entry = _accept(state, bytes(q.token), call.account, call.now, call.qualname)
    init = entry.init
    return tl.api.Authorization(
        password_pending=state.has_password(call.account.id),
        hash=int.from_bytes(entry.token[:8], "little", signed=True),
        device_model=init.device_model if init else "",
        platform="",
        system_version=init.system_version if init else "",
        api_id=init.api_id if init else 0,
        app_name="",
        app_version=init.app_version if init else "",
        date_created=call.date,
        date_active=call.date,
        ip="127.0.0.1",
        country=call.world.country,
        region="",
    )


@method("auth.importLoginToken")
def import_login_token(call: Call, q: Any) -> Any:
    # auth.importLoginToken#95ac5ce4 token:bytes = auth.LoginToken;
    world, state = call.world, login_state(call.world)
    entry = state.qr_tokens.get(bytes(q.token))
    if entry is None or not entry.migrate or entry.dc_id != call.dc.id:
        raise call.error(400, "AUTH_TOKEN_INVALID")
    if call.now > entry.expires_at:
        raise call.error(400, "AUTH_TOKEN_EXPIRED")
    if entry.used:
        raise call.error(400, "AUTH_TOKEN_ALREADY_ACCEPTED")
    entry.used = True
    assert entry.accepted_by is not None
    account = world.user(entry.accepted_by)
    if state.has_password(account.id):
        raise _password_needed(call, state, account)
    return tl.api.auth.LoginTokenSuccess(authorization=_log_in(call, state, account))


# --------------------------------------------------------------------------- bots


@method("auth.importBotAuthorization")
def import_bot_authorization(call: Call, q: Any) -> Any:
    # auth.importBotAuthorization#67a3ff2c flags:int api_id:int api_hash:string
    #   bot_auth_token:string = auth.Authorization;
    _check_api_id(call, q.api_id)
    world, state = call.world, login_state(call.world)
    bot_id, sep, secret = q.bot_auth_token.partition(":")
    bot = state.bots.get(int(bot_id)) if sep and bot_id.isascii() and bot_id.isdigit() else None
    if bot is None:
        raise call.error(400, "ACCESS_TOKEN_INVALID")
    if secret != bot.secret:
        raise call.error(400, "ACCESS_TOKEN_EXPIRED" if secret in bot.revoked else "ACCESS_TOKEN_INVALID")
    account = world.user(bot.user_id)
    if account.home_dc != call.dc.id:
        raise call.error(303, f"USER_MIGRATE_{account.home_dc}")
    return _log_in(call, state, account)


# --------------------------------------------------------------------------- logout


_original_log_out = HANDLERS["auth.logOut"][1]


@method("auth.logOut", Access.KEY)
def log_out(call: Call, q: Any) -> Any:
    # auth.logOut#3e72ba19 = auth.LoggedOut;
    login_state(call.world).forget_key(call.dc.id, call.key_id)
    return _original_log_out(call, q)


@method("auth.resetAuthorizations", Access.HOME)
def reset_authorizations(call: Call, q: Any) -> Any:
    # auth.resetAuthorizations#9fab0d1a = Bool;
    world, state = call.world, login_state(call.world)
    assert call.account is not None and call.auth is not None
    if call.now - call.auth.since < state.fresh_reset_age:
        raise call.error(406, "FRESH_RESET_AUTHORISATION_FORBIDDEN")
    mine = state.login_root((call.dc.id, call.key_id))
    for dc in world.dcs.values():
        for key_id, auth in list(dc.authorizations.items()):
            ref = (dc.id, key_id)
            # "all sessions except the current one": the caller's imported keys are its own
            if auth.user_id == call.account.id and state.login_root(ref) != mine:
                world.deauthorize(dc.id, key_id)
                state.forget_key(dc.id, key_id)
                state.revoked[ref] = "SESSION_REVOKED"
    return True


# --------------------------------------------------------------------------- lineage, bot users


_original_export = HANDLERS["auth.exportAuthorization"]
_original_import = HANDLERS["auth.importAuthorization"]


@method("auth.exportAuthorization", _original_export[0])
def export_authorization(call: Call, q: Any) -> Any:
    # auth.exportAuthorization#e5bfffcd dc_id:int = auth.ExportedAuthorization;
    result = _original_export[1](call, q)
    login_state(call.world)._exported_by[bytes(result.bytes)] = (call.dc.id, call.key_id)
    return result


@method("auth.importAuthorization", _original_import[0])
def import_authorization(call: Call, q: Any) -> Any:
    # auth.importAuthorization#a57a7dad id:long bytes:bytes = auth.Authorization;
    state = login_state(call.world)
    source = state._exported_by.pop(bytes(q.bytes), None)
    result = _original_import[1](call, q)
    ref = (call.dc.id, call.key_id)
    state.forget_key(*ref)
    if source is not None and source != ref:
        state._imported_from[ref] = source
    return _bot_user_fix(state, result)


def _bot_user_fix(state: LoginState, result: Any) -> Any:
    """A bot's user object carries ``bot``/``bot_info_version`` wherever it is answered."""
    user = getattr(result, "user", None)
    if user is not None and state.is_bot(user.id):
        return attrs.evolve(result, user=attrs.evolve(user, bot=True, bot_info_version=1, phone=None))
    return result


_original_get_users = HANDLERS["users.getUsers"]


@method("users.getUsers", _original_get_users[0])
def get_users(call: Call, q: Any) -> Any:
    # users.getUsers#d91a548 id:Vector<InputUser> = Vector<User>;
    state = login_state(call.world)
    return [
        attrs.evolve(u, bot=True, bot_info_version=1, phone=None) if state.is_bot(u.id) else u
        for u in _original_get_users[1](call, q)
    ]
