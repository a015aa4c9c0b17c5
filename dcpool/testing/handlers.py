"""What each emulated DC answers to each API method (the pure RPC core of ``World.handle``).

Theory of operation
-------------------
:func:`handle_request` runs one request, in this order (spec §17.4 step 10):

1. Count the execution when the shell gave ``(session_id, msg_id)``.
2. Parse the body with ``tl.loads``.  If that fails: 400 ``INPUT_METHOD_INVALID`` when the
   innermost method's constructor id is unknown to the emulator's schemas (core, 228, 158),
   400 ``INPUT_FETCH_ERROR`` when the method is known but its arguments do not parse (both
   names are what Telegram itself uses for these cases).
3. Unwrap ``invokeWithLayer`` (the layer is stored in the connection context and for the auth
   key), ``initConnection`` (client info stored in the context), ``invokeWithoutUpdates``,
   ``invokeAfterMsg(s)`` (executed at once: the shell delivers messages in order) and the other
   ``invokeWith*`` wrappers, recursively; the answer is the innermost method's.  A request
   that arrives before any ``invokeWithLayer`` is answered in the layer last announced with the
   same auth key, else in layer 228.
4. A constructor that is not a function → 400 ``INPUT_METHOD_INVALID``.  Count the request
   under the method's schema QUALNAME.  Then the session rules of spec §10: a layer below
   ``World.min_layer`` → 400 ``CONNECTION_LAYER_INVALID``; a key that never sent
   ``initConnection`` on this DC and does not send it now → 400 ``CONNECTION_NOT_INITED``
   (unless ``World.require_init_connection`` is False).  The initConnection info is stored per
   (DC, key) in ``DcState.key_inits``.
5. Armed RPC faults of the DC (:meth:`DcFaults.take_rpc_fault`) — before anything else, so a
   faulted call changes nothing.
6. A method without a handler here → 400 ``METHOD_NOT_SUPPORTED_BY_EMULATOR`` (an
   emulator-specific name, chosen so that a test failure says what is missing).
7. Access check: ``ANY`` methods run on any key; ``KEY`` methods need the key to be authorized
   on this DC (401 ``AUTH_KEY_UNREGISTERED`` otherwise — Telethon's ``is_user_authorized`` relies
   on it, spec §10); ``HOME`` methods additionally run only on the user's home DC
   (303 ``USER_MIGRATE_X`` elsewhere).
8. Run the handler; serialize its result in the client's layer (:mod:`.layers`).  An RpcError
   is counted (``DcStats.errors``) and re-raised for the shell.  Any other exception is a bug
   of the emulator: 500 ``EMULATOR_INTERNAL_ERROR`` (kept in ``World.internal_errors``), or
   re-raised when ``World.strict``.  Finally ``ctx.user_id`` is set to the user the key is
   authorized as on this DC (None if none), so the shell can register sessions for updates.

Methods
-------
=============================  ======  ===================================================
method                         access  answer / errors
=============================  ======  ===================================================
help.getConfig                 ANY     config (dc_options of the world, this_dc, date,
                                       expires = date + ttl, test_mode)
help.getNearestDc              ANY     nearestDc(country, this_dc, nearest_dc)
help.getAppConfig              ANY     help.appConfig(hash=1, jsonObject([])), or
                                       appConfigNotModified when the client sends hash 1
help.getCdnConfig              ANY     cdnConfig([]) (replaced by :mod:`.uploads`: one key
                                       per CDN DC)
auth.sendCode                  ANY     auth.sentCode(sentCodeTypeApp(5), hash);
                                       PHONE_NUMBER_INVALID, 303 PHONE_MIGRATE_X (account on
                                       DC X), 303 NETWORK_MIGRATE_X (unregistered number and
                                       the nearest DC X is another DC)
auth.resendCode (228 and 158)  ANY     auth.sentCode(sentCodeTypeSms(5), same hash);
                                       PHONE_CODE_HASH_EMPTY, PHONE_CODE_EXPIRED
auth.cancelCode                ANY     boolTrue
auth.signIn                    ANY     auth.authorization, or authorizationSignUpRequired
                                       for an unregistered number; PHONE_NUMBER_INVALID,
                                       PHONE_MIGRATE_X, PHONE_CODE_HASH_EMPTY,
                                       PHONE_CODE_EXPIRED, PHONE_CODE_EMPTY, PHONE_CODE_INVALID
auth.signUp (228 and 158)      ANY     auth.authorization; the account is homed on this DC.
                                       PHONE_NUMBER_OCCUPIED, PHONE_CODE_* as signIn (the
                                       code must have been checked by signIn first),
                                       FIRSTNAME_INVALID, LASTNAME_INVALID
auth.logOut                    KEY     auth.loggedOut; the key is no longer authorized here
auth.exportAuthorization       KEY*    auth.exportedAuthorization(user id, token);
                                       USER_MIGRATE_X (see ``world`` docstring),
                                       DC_ID_INVALID (own or unknown DC)
auth.importAuthorization       ANY     auth.authorization; AUTH_BYTES_INVALID (unknown, used,
                                       expired, other target DC, other user id)
users.getUsers                 HOME    Vector<User> (inputUserSelf, or inputUser with the
                                       right access_hash; others are skipped)
users.getFullUser              HOME    users.userFull; USER_ID_INVALID
updates.getState               HOME    updates.state
updates.getDifference (both)   HOME    updates.differenceEmpty
upload.getFile                 KEY     upload.file(storage.filePartial, mtime, bytes) of a
                                       document (``thumb_size`` "": the file, else that
                                       thumbnail), a photo size (inputPhotoFileLocation), or
                                       the small ("a") / big ("c") size of a user's or
                                       channel's photo (inputPeerPhotoFileLocation);
                                       OFFSET_INVALID, LIMIT_INVALID (spec §13.2),
                                       LOCATION_INVALID (another kind of location, a size the
                                       file lacks, a peer photo_id that is not current),
                                       FILE_ID_INVALID (unknown id or wrong access_hash),
                                       PEER_ID_INVALID / CHANNEL_INVALID (bad peer),
                                       303 FILE_MIGRATE_X (stored on DC X), FILE_REFERENCE_EXPIRED
(issue 15)                             uploads, CDN methods, auth.bindTempAuthKey: see
                                       :mod:`.uploads` and :mod:`.pfs`
upload.getFileHashes           KEY     Vector<FileHash>: SHA-256 of each 128 KiB part from the
                                       part holding ``offset``, up to 1 MiB of parts; the
                                       location is checked as for upload.getFile
stats.getBroadcastStats        KEY     a minimal valid stats.broadcastStats (period = the
                                       last 7 days, all values equal to the channel's
                                       ``followers``, every graph ``statsGraph(json="{}")``,
                                       no recent posts); CHANNEL_INVALID, 303
                                       STATS_MIGRATE_X when the channel's stats live on DC X
=============================  ======  ===================================================
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from .. import tl
from ..errors import RpcError, TLDecodeError, rpc_error_from
from .files import StoredFile, StoredPhoto, check_offset_limit, file_hashes, serialize_file_part
from .layers import from_layer, to_layer

if TYPE_CHECKING:
    from .world import Account, Authorization, ConnectionContext, DcState, World

__all__ = [
    "Access",
    "Call",
    "HANDLERS",
    "REQUEST_GATES",
    "handle_request",
    "METHOD_NOT_SUPPORTED",
    "WRAPPERS",
]

METHOD_NOT_SUPPORTED = "METHOD_NOT_SUPPORTED_BY_EMULATOR"
INPUT_METHOD_INVALID = "INPUT_METHOD_INVALID"
INPUT_FETCH_ERROR = "INPUT_FETCH_ERROR"
INTERNAL_ERROR = "EMULATOR_INTERNAL_ERROR"
CONNECTION_NOT_INITED = "CONNECTION_NOT_INITED"
CONNECTION_LAYER_INVALID = "CONNECTION_LAYER_INVALID"

#: methods a key may call before any initConnection: binding a fresh temp key comes first
#: (spec §5.11: "after each bind, call initConnection again")
INIT_EXEMPT = frozenset({"auth.bindTempAuthKey"})

#: schema names of the generic wrappers unwrapped before dispatch (spec §10)
WRAPPERS = frozenset(
    {
        "invokeWithLayer",
        "initConnection",
        "invokeWithoutUpdates",
        "invokeAfterMsg",
        "invokeAfterMsgs",
        "invokeWithMessagesRange",
        "invokeWithTakeout",
        "invokeWithBusinessConnection",
        "invokeWithGooglePlayIntegrity",
        "invokeWithApnsSecret",
        "invokeWithReCaptcha",
    }
)


class Access(enum.Enum):
    """Who may call a method (spec §10 "methods allowed before login", §11.3)."""

    ANY = "any"
    KEY = "key"
    HOME = "home"


@attrs.define
class Call:
    """One request being handled: everything a handler needs."""

    world: World
    dc: DcState
    ctx: ConnectionContext
    key_id: int
    now: float
    layer: int
    qualname: str
    without_updates: bool = False
    #: set by the access check for KEY/HOME methods
    auth: Authorization | None = None
    account: Account | None = None
    #: the key the request arrived on, its session and msg_id (None when the shell gave
    #: none); ``key_id`` is the key whose authorization counts (a bound temp key's permanent
    #: key, see :data:`REQUEST_GATES`)
    transport_key_id: int | None = None
    session_id: int | None = None
    msg_id: int | None = None

    def error(self, code: int, message: str) -> RpcError:
        return rpc_error_from(code, message, self.qualname)

    @property
    def date(self) -> int:
        return int(self.now)


@attrs.define
class KeyHooks:
    """Login state per auth key kept outside the world (:mod:`.accounts` installs these):
    ``route(world, dc_id, key_id)`` is the pseudo user id under which the shell registers the
    session of a key that is not logged in but must get updates (a QR login waiting for
    ``updateLoginToken``), ``unauthorized(...)`` the 401 such a key gets for a method that
    needs a login."""

    route: Callable[[World, int, int], int | None] = lambda world, dc_id, key_id: None
    unauthorized: Callable[[World, int, int], str] = (
        lambda world, dc_id, key_id: "AUTH_KEY_UNREGISTERED"
    )


KEY_HOOKS = KeyHooks()

Handler = Callable[[Call, Any], Any]
#: QUALNAME -> (access, handler)
HANDLERS: dict[str, tuple[Access, Handler]] = {}


#: ``gate(world, dc, key_id, qualname, now) -> key_id``, run in order for every request after
#: the session rules and before the RPC faults: a gate may refuse the request (raise an
#: RpcError) or name the key whose authorization it uses (temp keys bound to a permanent key,
#: spec §5.11).  Modules that add such rules (CDN DCs, PFS) append to it.
RequestGate = Callable[["World", "DcState", int, str, float], int]
REQUEST_GATES: list[RequestGate] = []


def method(qualname: str, access: Access = Access.ANY) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[qualname] = (access, fn)
        return fn

    return register


# --------------------------------------------------------------------------- entry point


def handle_request(
    world: World,
    dc_id: int,
    ctx: ConnectionContext,
    key_id: int,
    body: bytes | memoryview,
    now: float,
    *,
    session_id: int | None = None,
    msg_id: int | None = None,
) -> bytes:
    """See the module docstring and :meth:`World.handle`."""
    dc = world.dc(dc_id)
    stats = dc.stats
    ctx.requests += 1
    if session_id is not None and msg_id is not None:
        stats.record_execution(key_id, session_id, msg_id)
    try:
        try:
            query = tl.loads(body)
        except TLDecodeError:
            method_id = _innermost_id(body)
            label = f"#{method_id:08x}" if method_id is not None else "#????????"
            stats.record_request(label)
            known = method_id is not None and _is_known_id(method_id)
            raise rpc_error_from(400, INPUT_FETCH_ERROR if known else INPUT_METHOD_INVALID) from None

        query, without_updates, inited, bad_layer = _unwrap(query, ctx, dc, key_id, world)
        query = from_layer(query)  # a request of any layer, as layer-228 classes (.layers)
        cls = type(query)
        qualname = getattr(cls, "QUALNAME", "?")
        stats.record_request(qualname)
        if not getattr(cls, "IS_FUNCTION", False):
            raise rpc_error_from(400, INPUT_METHOD_INVALID, qualname)
        if bad_layer:
            # spec §10: a layer the server does not serve
            raise rpc_error_from(400, CONNECTION_LAYER_INVALID, qualname)
        if (
            world.require_init_connection
            and not inited
            and key_id not in dc.key_inits
            and qualname not in INIT_EXEMPT
        ):
            # spec §10: the first API call on a new auth key must come inside initConnection
            raise rpc_error_from(400, CONNECTION_NOT_INITED, qualname)

        transport_key_id = key_id
        for gate in REQUEST_GATES:
            key_id = gate(world, dc, key_id, qualname, now)

        fault = dc.faults.take_rpc_fault(qualname)
        if fault is not None:
            raise fault

        entry = HANDLERS.get(qualname)
        if entry is None:
            raise rpc_error_from(400, METHOD_NOT_SUPPORTED, qualname)
        access, fn = entry
        call = Call(
            world=world,
            dc=dc,
            ctx=ctx,
            key_id=key_id,
            now=now,
            layer=world.layer_for(dc_id, ctx, transport_key_id),
            qualname=qualname,
            without_updates=without_updates,
            transport_key_id=transport_key_id,
            session_id=session_id,
            msg_id=msg_id,
        )
        if access is not Access.ANY:
            _check_access(call, access)
        try:
            result = fn(call, query)
            return _serialize(result, call.layer)
        except RpcError:
            raise
        except Exception as exc:  # an emulator bug must not kill the server task
            if world.strict:
                raise
            world.internal_errors.append(exc)
            raise rpc_error_from(500, INTERNAL_ERROR, qualname) from exc
    except RpcError as exc:
        stats.record_error(exc.message)
        raise
    finally:
        auth = dc.authorizations.get(key_id)
        ctx.user_id = None if auth is None else auth.user_id
        if ctx.user_id is None:  # e.g. a key waiting for a QR login (updateLoginToken)
            ctx.user_id = KEY_HOOKS.route(world, dc_id, key_id)


def _unwrap(
    query: Any, ctx: ConnectionContext, dc: DcState, key_id: int, world: World
) -> tuple[Any, bool, bool, bool]:
    """Peel the generic wrappers off ``query`` (spec §10), recording layer and client info.

    Returns (innermost query, without_updates, initConnection seen, unsupported layer seen)."""
    without_updates = False
    inited = False
    bad_layer = False
    while True:
        if isinstance(query, tl.Raw):
            query = tl.loads(query.to_bytes())
        name = getattr(type(query), "QUALNAME", None)
        if name not in WRAPPERS:
            break
        if name == "invokeWithLayer":
            # invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X;
            if query.layer < world.min_layer:
                bad_layer = True  # not recorded: the key keeps its last valid layer
            else:
                ctx.layer = query.layer
                dc.key_layers[key_id] = query.layer
        elif name == "initConnection":
            # initConnection#c1cd5ea9 {X:Type} flags:# api_id:int device_model:string
            #   system_version:string app_version:string system_lang_code:string lang_pack:string
            #   lang_code:string proxy:flags.0?InputClientProxy params:flags.1?JSONValue query:!X = X;
            from .world import InitInfo

            ctx.init = InitInfo(
                api_id=query.api_id,
                device_model=query.device_model,
                system_version=query.system_version,
                app_version=query.app_version,
                system_lang_code=query.system_lang_code,
                lang_pack=query.lang_pack,
                lang_code=query.lang_code,
            )
            inited = True
        elif name == "invokeWithoutUpdates":
            # invokeWithoutUpdates#bf9459b7 {X:Type} query:!X = X;
            without_updates = True
        # invokeAfterMsg(s): the shell hands us messages in order, so the dependency is met.
        query = query.query
    ctx.without_updates = without_updates
    if inited and not bad_layer and ctx.init is not None:
        # spec §10: the server stores the client info with the auth key (per DC)
        dc.key_inits[key_id] = ctx.init
    return query, without_updates, inited, bad_layer


def _check_access(call: Call, access: Access) -> None:
    auth = call.dc.authorizations.get(call.key_id)
    account = None if auth is None else call.world.accounts.get(auth.user_id)
    if auth is None or account is None:
        # e.g. SESSION_PASSWORD_NEEDED / SESSION_REVOKED for keys in those states
        raise call.error(401, KEY_HOOKS.unauthorized(call.world, call.dc.id, call.key_id))
    call.auth = auth
    call.account = account
    if access is Access.HOME and account.home_dc != call.dc.id:
        raise call.error(303, f"USER_MIGRATE_{account.home_dc}")


def _serialize(result: Any, layer: int) -> bytes:
    if isinstance(result, (bytes, bytearray)):
        return bytes(result)  # already serialized (layer-independent fast paths)
    result = to_layer(result, layer)
    if isinstance(result, bool):
        return tl.pack_bool(result)
    if isinstance(result, list):
        return tl.pack_vector(result, lambda item: item.to_bytes())
    return result.to_bytes()


# --------------------------------------------------------------------------- parse failures



def _is_known_id(cid: int) -> bool:
    try:
        from ..tl import reader_for_id

        reader_for_id(cid)
        return True
    except TLDecodeError:
        return False


def _innermost_id(body: bytes | memoryview) -> int | None:
    """Constructor id of the method inside the wrappers of an unparsable request, or None."""
    ids = tl.ids
    try:
        r = tl.Reader(body)
        for _ in range(16):
            cid = r.read_uint()
            if cid == ids.GZIP_PACKED:
                packed = r.read_bytes()
                unpacked = zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(packed, 1 << 20)
                r = tl.Reader(unpacked)
            elif cid == ids.INVOKE_WITH_LAYER:
                r.read_int()
            elif cid == ids.INIT_CONNECTION:
                flags = r.read_uint()
                r.read_int()
                for _ in range(6):
                    r.read_bytes()
                if flags & 1:
                    r.read_object()
                if flags & 2:
                    r.read_object()
            elif cid in (ids.INVOKE_WITHOUT_UPDATES,):
                pass
            elif cid in (ids.INVOKE_AFTER_MSG, ids.INVOKE_WITH_TAKEOUT):
                r.read_long()
            elif cid == ids.INVOKE_AFTER_MSGS:
                r.read_vector(r.read_long, 8)
            elif cid == ids.INVOKE_WITH_MESSAGES_RANGE:
                r.read_object()
            elif cid in (ids.INVOKE_WITH_BUSINESS_CONNECTION, ids.INVOKE_WITH_RE_CAPTCHA):
                r.read_bytes()
            elif cid in (ids.INVOKE_WITH_GOOGLE_PLAY_INTEGRITY, ids.INVOKE_WITH_APNS_SECRET):
                r.read_bytes()
                r.read_bytes()
            else:
                return cid
    except (TLDecodeError, zlib.error):
        return None
    return None


# --------------------------------------------------------------------------- helpers


def _normalize_phone(call: Call, phone: str) -> str:
    """Digits only (one leading ``+`` tolerated), 5–15 of them, else PHONE_NUMBER_INVALID."""
    digits = phone[1:] if phone.startswith("+") else phone
    if not (5 <= len(digits) <= 15 and digits.isascii() and digits.isdigit()):
        raise call.error(400, "PHONE_NUMBER_INVALID")
    return digits


def _pending_code(call: Call, phone: str, phone_code_hash: str) -> Any:
    """The live PendingCode for (phone, hash) issued on this DC, or the matching error."""
    if not phone_code_hash:
        raise call.error(400, "PHONE_CODE_HASH_EMPTY")
    pending = call.world.codes.get(phone_code_hash)
    if pending is None or pending.phone != phone or pending.dc_id != call.dc.id:
        raise call.error(400, "PHONE_CODE_EXPIRED")
    if call.now > pending.expires_at:
        del call.world.codes[phone_code_hash]
        raise call.error(400, "PHONE_CODE_EXPIRED")
    return pending


def _authorization(call: Call, account: Account) -> Any:
    # auth.authorization#2ea2c0d4 flags:# setup_password_required:flags.1?true
    #   otherwise_relogin_days:flags.1?int tmp_sessions:flags.0?int future_auth_token:flags.2?bytes
    #   user:User = auth.Authorization;
    return tl.api.auth.Authorization(user=account.to_tl(is_self=True))


def _login(call: Call, account: Account) -> Any:
    from .world import AuthKind

    call.world.authorize(call.dc.id, call.key_id, account.id, AuthKind.LOGIN, call.now)
    return _authorization(call, account)


# --------------------------------------------------------------------------- help.*


@method("help.getConfig")
def get_config(call: Call, q: Any) -> Any:
    # help.getConfig#c4f9186b = Config;
    # config#cc1a241e ... date:int expires:int test_mode:Bool this_dc:int dc_options:Vector<DcOption> ...
    world = call.world
    return tl.api.Config(
        date=call.date,
        expires=call.date + world.config_ttl,
        test_mode=world.test_mode,
        this_dc=call.dc.id,
        dc_options=world.dc_options(),
        dc_txt_domain_name="",
        chat_size_max=200,
        megagroup_size_max=200000,
        forwarded_count_max=100,
        online_update_period_ms=210000,
        offline_blur_timeout_ms=5000,
        offline_idle_timeout_ms=30000,
        online_cloud_timeout_ms=300000,
        notify_cloud_delay_ms=30000,
        notify_default_delay_ms=1500,
        push_chat_period_ms=60000,
        push_chat_limit=2,
        edit_time_limit=172800,
        revoke_time_limit=2147483647,
        revoke_pm_time_limit=2147483647,
        rating_e_decay=2419200,
        stickers_recent_limit=200,
        channels_read_media_period=604800,
        call_receive_timeout_ms=20000,
        call_ring_timeout_ms=90000,
        call_connect_timeout_ms=30000,
        call_packet_timeout_ms=10000,
        me_url_prefix="https://t.me/",
        caption_length_max=1024,
        message_length_max=4096,
        webfile_dc_id=world.nearest_dc,
    )


@method("help.getNearestDc")
def get_nearest_dc(call: Call, q: Any) -> Any:
    # help.getNearestDc#1fb33026 = NearestDc;
    # nearestDc#8e1a1775 country:string this_dc:int nearest_dc:int = NearestDc;
    return tl.api.NearestDc(
        country=call.world.country, this_dc=call.dc.id, nearest_dc=call.world.nearest_dc
    )


APP_CONFIG_HASH = 1


@method("help.getAppConfig")
def get_app_config(call: Call, q: Any) -> Any:
    # help.getAppConfig#61e3f854 hash:int = help.AppConfig;
    # help.appConfig#dd18782e hash:int config:JSONValue = help.AppConfig;
    # help.appConfigNotModified#7cde641d = help.AppConfig;
    if q.hash == APP_CONFIG_HASH:
        return tl.api.help.AppConfigNotModified()
    return tl.api.help.AppConfig(hash=APP_CONFIG_HASH, config=tl.api.JsonObject(value=[]))


@method("help.getCdnConfig")
def get_cdn_config(call: Call, q: Any) -> Any:
    # help.getCdnConfig#52029342 = CdnConfig;  cdnConfig#5725e40a public_keys:Vector<CdnPublicKey>
    return tl.api.CdnConfig(public_keys=[])


# --------------------------------------------------------------------------- auth.* (login)


@method("auth.sendCode")
def send_code(call: Call, q: Any) -> Any:
    # auth.sendCode#a677244f phone_number:string api_id:int api_hash:string settings:CodeSettings
    #   = auth.SentCode;
    world = call.world
    phone = _normalize_phone(call, q.phone_number)
    account = world.user_by_phone(phone)
    if account is not None and account.home_dc != call.dc.id:
        # spec §11.3, §12.2: the phone's account lives on DC X
        raise call.error(303, f"PHONE_MIGRATE_{account.home_dc}")
    if account is None and world.nearest_dc != call.dc.id:
        # a new number: Telegram sends it to the DC nearest to the client's IP
        raise call.error(303, f"NETWORK_MIGRATE_{world.nearest_dc}")
    phone_code_hash = world.rng(8).hex()
    while phone_code_hash in world.codes:
        phone_code_hash = world.rng(8).hex()
    from .world import PendingCode

    world.codes[phone_code_hash] = PendingCode(
        phone_code_hash=phone_code_hash,
        phone=phone,
        dc_id=call.dc.id,
        code=world.login_code(phone, call.dc.id),
        expires_at=call.now + world.code_ttl,
    )
    # auth.sentCode#5e002502 flags:# type:auth.SentCodeType phone_code_hash:string
    #   next_type:flags.1?auth.CodeType timeout:flags.2?int = auth.SentCode;
    # auth.sentCodeTypeApp#3dbb5986 length:int = auth.SentCodeType;
    return tl.api.auth.SentCode(
        type=tl.api.auth.SentCodeTypeApp(length=5), phone_code_hash=phone_code_hash
    )


@method("auth.resendCode")
def resend_code(call: Call, q: Any) -> Any:
    # auth.resendCode#cae47523 flags:# phone_number:string phone_code_hash:string
    #   reason:flags.0?string = auth.SentCode;
    # layer 158: auth.resendCode#3ef1a9bf phone_number:string phone_code_hash:string
    phone = _normalize_phone(call, q.phone_number)
    pending = _pending_code(call, phone, q.phone_code_hash)
    pending.expires_at = call.now + call.world.code_ttl
    # auth.sentCodeTypeSms#c000bba2 length:int = auth.SentCodeType;
    return tl.api.auth.SentCode(
        type=tl.api.auth.SentCodeTypeSms(length=5), phone_code_hash=pending.phone_code_hash
    )


@method("auth.cancelCode")
def cancel_code(call: Call, q: Any) -> Any:
    # auth.cancelCode#1f040578 phone_number:string phone_code_hash:string = Bool;
    phone = _normalize_phone(call, q.phone_number)
    pending = _pending_code(call, phone, q.phone_code_hash)
    del call.world.codes[pending.phone_code_hash]
    return True


@method("auth.signIn")
def sign_in(call: Call, q: Any) -> Any:
    # auth.signIn#8d52a951 flags:# phone_number:string phone_code_hash:string
    #   phone_code:flags.0?string email_verification:flags.1?EmailVerification = auth.Authorization;
    world = call.world
    phone = _normalize_phone(call, q.phone_number)
    account = world.user_by_phone(phone)
    if account is not None and account.home_dc != call.dc.id:
        raise call.error(303, f"PHONE_MIGRATE_{account.home_dc}")
    pending = _pending_code(call, phone, q.phone_code_hash)
    code = getattr(q, "phone_code", None)
    if not code:
        raise call.error(400, "PHONE_CODE_EMPTY")
    if code != pending.code:
        raise call.error(400, "PHONE_CODE_INVALID")
    if account is None:
        # auth.authorizationSignUpRequired#44747e9a flags:# terms_of_service:flags.0?help.TermsOfService
        pending.verified = True
        return tl.api.auth.AuthorizationSignUpRequired()
    del world.codes[pending.phone_code_hash]
    return _login(call, account)


@method("auth.signUp")
def sign_up(call: Call, q: Any) -> Any:
    # auth.signUp#aac7b717 flags:# no_joined_notifications:flags.0?true phone_number:string
    #   phone_code_hash:string first_name:string last_name:string = auth.Authorization;
    # layer 158: auth.signUp#80eee427 phone_number:string phone_code_hash:string
    #   first_name:string last_name:string = auth.Authorization;
    world = call.world
    phone = _normalize_phone(call, q.phone_number)
    if world.user_by_phone(phone) is not None:
        raise call.error(400, "PHONE_NUMBER_OCCUPIED")
    pending = _pending_code(call, phone, q.phone_code_hash)
    if not pending.verified:
        # the code is checked by auth.signIn, which answered authorizationSignUpRequired
        raise call.error(400, "PHONE_CODE_INVALID")
    first_name = q.first_name.strip()
    if not first_name or len(first_name) > 64:
        raise call.error(400, "FIRSTNAME_INVALID")
    if len(q.last_name) > 64:
        raise call.error(400, "LASTNAME_INVALID")
    del world.codes[pending.phone_code_hash]
    account = world.add_user(phone, call.dc.id, first_name=first_name, last_name=q.last_name.strip())
    return _login(call, account)


@method("auth.logOut", Access.KEY)
def log_out(call: Call, q: Any) -> Any:
    # auth.logOut#3e72ba19 = auth.LoggedOut;
    # auth.loggedOut#c3a2835f flags:# future_auth_token:flags.0?bytes = auth.LoggedOut;
    call.world.deauthorize(call.dc.id, call.key_id)
    return tl.api.auth.LoggedOut()


# --------------------------------------------------------------------------- auth.* (transfer)


@method("auth.exportAuthorization", Access.KEY)
def export_authorization(call: Call, q: Any) -> Any:
    # auth.exportAuthorization#e5bfffcd dc_id:int = auth.ExportedAuthorization;
    # auth.exportedAuthorization#b434e2b8 id:long bytes:bytes = auth.ExportedAuthorization;
    from .world import AuthKind, ExportToken

    world = call.world
    account, auth = call.account, call.auth
    assert account is not None and auth is not None
    if account.home_dc != call.dc.id and (
        auth.kind is not AuthKind.LOGIN or not world.export_from_former_home
    ):
        # an imported key on a foreign DC cannot re-export (world docstring)
        raise call.error(303, f"USER_MIGRATE_{account.home_dc}")
    if q.dc_id == call.dc.id or q.dc_id not in world.dcs:
        raise call.error(400, "DC_ID_INVALID")
    token = world.rng(32)
    while token in world.tokens:
        token = world.rng(32)
    world.tokens[token] = ExportToken(
        token=token,
        user_id=account.id,
        source_dc=call.dc.id,
        target_dc=q.dc_id,
        expires_at=call.now + world.export_ttl,
    )
    call.dc.stats.record_export()
    return tl.api.auth.ExportedAuthorization(id=account.id, bytes=token)


@method("auth.importAuthorization")
def import_authorization(call: Call, q: Any) -> Any:
    # auth.importAuthorization#a57a7dad id:long bytes:bytes = auth.Authorization;
    from .world import AuthKind

    world = call.world
    token = world.tokens.get(bytes(q.bytes))
    if (
        token is None
        or token.used
        or call.now > token.expires_at
        or token.target_dc != call.dc.id
        or token.user_id != q.id
    ):
        raise call.error(400, "AUTH_BYTES_INVALID")
    account = world.accounts.get(token.user_id)
    if account is None:
        raise call.error(400, "USER_ID_INVALID")
    token.used = True
    current = call.dc.authorizations.get(call.key_id)
    if not (current is not None and current.user_id == account.id and current.kind is AuthKind.LOGIN):
        world.authorize(call.dc.id, call.key_id, account.id, AuthKind.IMPORTED, call.now)
    call.dc.stats.record_import()
    return _authorization(call, account)


# --------------------------------------------------------------------------- users.*, updates.*


def _resolve_input_user(call: Call, input_user: Any) -> Account | None:
    name = type(input_user).QUALNAME
    if name == "inputUserSelf":
        return call.account
    if name == "inputUser":
        account = call.world.accounts.get(input_user.user_id)
        if account is not None and account.access_hash == input_user.access_hash:
            return account
    return None


@method("users.getUsers", Access.HOME)
def get_users(call: Call, q: Any) -> Any:
    # users.getUsers#d91a548 id:Vector<InputUser> = Vector<User>;
    me = call.account
    assert me is not None
    out = []
    for input_user in q.id:
        account = _resolve_input_user(call, input_user)
        if account is not None:
            out.append(account.to_tl(is_self=account.id == me.id))
    return out


@method("users.getFullUser", Access.HOME)
def get_full_user(call: Call, q: Any) -> Any:
    # users.getFullUser#b60f5918 id:InputUser = users.UserFull;
    # users.userFull#3b6d152e full_user:UserFull chats:Vector<Chat> users:Vector<User> = users.UserFull;
    me = call.account
    assert me is not None
    account = _resolve_input_user(call, q.id)
    if account is None:
        raise call.error(400, "USER_ID_INVALID")
    # userFull#6cbe645 flags:# ... id:long about:flags.1?string settings:PeerSettings ...
    #   notify_settings:PeerNotifySettings ... common_chats_count:int ... = UserFull;
    full = tl.api.UserFull(
        id=account.id,
        settings=tl.api.PeerSettings(),
        notify_settings=tl.api.PeerNotifySettings(),
        common_chats_count=0,
    )
    return tl.api.users.UserFull(
        full_user=full, chats=[], users=[account.to_tl(is_self=account.id == me.id)]
    )


@method("updates.getState", Access.HOME)
def get_state(call: Call, q: Any) -> Any:
    # updates.getState#edd4882a = updates.State;
    # updates.state#a56c2a3e pts:int qts:int date:int seq:int unread_count:int = updates.State;
    me = call.account
    assert me is not None
    return tl.api.updates.State(pts=me.pts, qts=me.qts, date=call.date, seq=me.seq, unread_count=0)


@method("updates.getDifference", Access.HOME)
def get_difference(call: Call, q: Any) -> Any:
    # updates.getDifference#19c2f763 flags:# pts:int pts_limit:flags.1?int
    #   pts_total_limit:flags.0?int date:int qts:int qts_limit:flags.2?int = updates.Difference;
    # layer 158: updates.getDifference#25939651 flags:# pts:int pts_total_limit:flags.0?int
    #   date:int qts:int
    # updates.differenceEmpty#5d75a138 date:int seq:int = updates.Difference;
    me = call.account
    assert me is not None
    return tl.api.updates.DifferenceEmpty(date=call.date, seq=me.seq)


# --------------------------------------------------------------------------- files


@method("upload.getFile", Access.KEY)
def get_file(call: Call, q: Any) -> bytes:
    # upload.getFile#be5335be flags:# precise:flags.0?true cdn_supported:flags.1?true
    #   location:InputFileLocation offset:long limit:int = upload.File;
    problem = check_offset_limit(q.offset, q.limit, q.precise)
    if problem is not None:
        raise call.error(400, problem)
    stored = _resolve_location(call, q.location)
    chunk = stored.chunk(q.offset, q.limit)
    call.dc.stats.record_bytes_served(len(chunk))
    return serialize_file_part(chunk, stored.mtime)


@method("upload.getFileHashes", Access.KEY)
def get_file_hashes(call: Call, q: Any) -> Any:
    # upload.getFileHashes#9156982a location:InputFileLocation offset:long = Vector<FileHash>;
    if q.offset < 0:
        raise call.error(400, "OFFSET_INVALID")
    return file_hashes(_resolve_location(call, q.location), q.offset)


def _resolve_location(call: Call, location: Any) -> StoredFile:
    """The content an ``InputFileLocation`` names, on this DC, or the RpcError Telegram gives.

    Checked in this order: the kind of location (400 LOCATION_INVALID for kinds the emulator
    does not store), the id and access_hash (400 FILE_ID_INVALID; a peer photo: 400
    PEER_ID_INVALID), the DC (303 FILE_MIGRATE_X: files stay where they were stored, spec
    §11.3), the file_reference (400 FILE_REFERENCE_EXPIRED), the thumb size (400
    LOCATION_INVALID for a size the file does not have)."""
    world = call.world
    kind = type(location).QUALNAME
    if kind == "inputDocumentFileLocation":
        # inputDocumentFileLocation#bad07584 id:long access_hash:long file_reference:bytes
        #   thumb_size:string = InputFileLocation;
        doc = world.files.get(location.id)
        if doc is None or doc.access_hash != location.access_hash:
            raise call.error(400, "FILE_ID_INVALID")
        _check_dc_and_reference(call, doc.dc_id, doc.file_reference, location.file_reference)
        if not location.thumb_size:
            return doc
        thumb = doc.thumbs.get(location.thumb_size)
        if thumb is None:
            raise call.error(400, "LOCATION_INVALID")
        return thumb
    if kind == "inputPhotoFileLocation":
        # inputPhotoFileLocation#40181ffe id:long access_hash:long file_reference:bytes
        #   thumb_size:string = InputFileLocation;
        photo = world.photos.get(location.id)
        if photo is None or photo.access_hash != location.access_hash:
            raise call.error(400, "FILE_ID_INVALID")
        _check_dc_and_reference(call, photo.dc_id, photo.file_reference, location.file_reference)
        size = photo.sizes.get(location.thumb_size)
        if size is None:
            raise call.error(400, "LOCATION_INVALID")
        return size
    if kind == "inputPeerPhotoFileLocation":
        # inputPeerPhotoFileLocation#37257e99 flags:# big:flags.0?true peer:InputPeer
        #   photo_id:long = InputFileLocation;
        photo = _peer_photo(call, location.peer)
        if photo is None or photo.id != location.photo_id:
            # no photo, or not the current one (the emulator keeps no photo history)
            raise call.error(400, "LOCATION_INVALID")
        _check_dc_and_reference(call, photo.dc_id, None, None)
        size = photo.sizes.get("c" if location.big else "a") or next(iter(photo.sizes.values()))
        return size
    raise call.error(400, "LOCATION_INVALID")


def _check_dc_and_reference(call: Call, dc_id: int, reference: bytes | None, given: Any) -> None:
    if dc_id != call.dc.id:
        # spec §11.3: files live on the DC they were uploaded to
        raise call.error(303, f"FILE_MIGRATE_{dc_id}")
    if reference is not None and bytes(given) != reference:
        raise call.error(400, "FILE_REFERENCE_EXPIRED")


def _peer_photo(call: Call, peer: Any) -> StoredPhoto | None:
    world = call.world
    name = type(peer).QUALNAME
    if name == "inputPeerSelf":
        assert call.account is not None
        return call.account.photo
    if name == "inputPeerUser":
        # inputPeerUser#dde8a54c user_id:long access_hash:long = InputPeer;
        account = world.accounts.get(peer.user_id)
        if account is None or account.access_hash != peer.access_hash:
            raise call.error(400, "PEER_ID_INVALID")
        return account.photo
    if name == "inputPeerChannel":
        # inputPeerChannel#27bcbbfc channel_id:long access_hash:long = InputPeer;
        channel = world.channels.get(peer.channel_id)
        if channel is None or channel.access_hash != peer.access_hash:
            raise call.error(400, "CHANNEL_INVALID")
        return channel.photo
    raise call.error(400, "PEER_ID_INVALID")


# --------------------------------------------------------------------------- stats


@method("stats.getBroadcastStats", Access.KEY)
def get_broadcast_stats(call: Call, q: Any) -> Any:
    # stats.getBroadcastStats#ab42441a flags:# dark:flags.0?true channel:InputChannel
    #   = stats.BroadcastStats;
    ref = q.channel
    if type(ref).QUALNAME != "inputChannel":
        raise call.error(400, "CHANNEL_INVALID")
    channel = call.world.channels.get(ref.channel_id)
    if channel is None or channel.access_hash != ref.access_hash:
        raise call.error(400, "CHANNEL_INVALID")
    if channel.stats_dc != call.dc.id:
        raise call.error(303, f"STATS_MIGRATE_{channel.stats_dc}")
    api = tl.api
    # statsAbsValueAndPrev#cb43acde current:double previous:double = StatsAbsValueAndPrev;
    value = api.StatsAbsValueAndPrev(current=float(channel.followers), previous=float(channel.followers))

    def graph() -> Any:
        # statsGraph#8ea464b6 flags:# json:DataJSON zoom_token:flags.0?string = StatsGraph;
        return api.StatsGraph(json=api.DataJSON(data="{}"))

    # stats.broadcastStats#396ca5fc period:StatsDateRangeDays followers:StatsAbsValueAndPrev ...
    #   recent_posts_interactions:Vector<PostInteractionCounters> = stats.BroadcastStats;
    return api.stats.BroadcastStats(
        period=api.StatsDateRangeDays(min_date=call.date - 7 * 86400, max_date=call.date),
        followers=value,
        views_per_post=value,
        shares_per_post=value,
        reactions_per_post=value,
        views_per_story=value,
        shares_per_story=value,
        reactions_per_story=value,
        enabled_notifications=api.StatsPercentValue(part=float(channel.followers), total=float(channel.followers)),
        growth_graph=graph(),
        followers_graph=graph(),
        mute_graph=graph(),
        top_hours_graph=graph(),
        interactions_graph=graph(),
        iv_interactions_graph=graph(),
        views_by_source_graph=graph(),
        new_followers_by_source_graph=graph(),
        languages_graph=graph(),
        reactions_by_emotion_graph=graph(),
        story_interactions_graph=graph(),
        story_reactions_by_emotion_graph=graph(),
        recent_posts_interactions=[],
    )
