"""The Telegram behaviour of an emulated multi-DC cluster: one :class:`World` shared by all DCs.

Theory of operation
-------------------
The emulator is split like the rest of dcpool: a network *shell* (``server.py`` /
``cluster.py``: sockets, transports, handshakes, MTProto sessions) and this *pure core*, which
knows what Telegram would answer.  The shell decrypts a client message, and for every RPC it
calls::

    result: bytes = world.handle(dc_id, ctx, key_id, body, now)       # or raises RpcError

with the DC that received it, a mutable :class:`ConnectionContext` it keeps per connection, the
auth key id, the request's serialized body and the current time.  ``handle`` parses the
request, unwraps ``invokeWithLayer`` / ``initConnection`` / ``invokeWithoutUpdates`` /
``invokeAfterMsg(s)`` (recording the layer in ``ctx``), runs the innermost method and returns
its result serialized *in the client's layer* (:mod:`dcpool.testing.layers`), or raises a
:class:`dcpool.errors.RpcError` (built with ``rpc_error_from``) that the shell turns into
``rpc_error``.  Nothing here touches a socket, a clock or a global RNG: ``now`` is an argument
and randomness comes from ``World.rng`` (``os.urandom`` unless the test passes its own).
The per-method behaviour lives in :mod:`dcpool.testing.handlers` (whose docstring lists every
method, its errors, and the error names chosen for unknown or unsupported requests).

What the world holds
--------------------
* **DCs** (:class:`DcState`): ids (default 1–5; :meth:`World.test_cluster` gives the test-mode
  preset: DCs 1–3 and ``config.test_mode = true``), endpoints (set by the shell once it has
  bound its ports: IPv4 host/port, optional IPv6, optional media-only endpoints), and for each
  DC its :class:`~dcpool.testing.faults.DcFaults`, :class:`~dcpool.testing.stats.DcStats`, the
  authorizations of its auth keys and the layer last announced per key.
* **Config**: TTL of ``help.getConfig`` (``expires = now + config_ttl``), the cluster's
  "nearest DC" (answer of ``help.getNearestDc`` and target of ``NETWORK_MIGRATE_X``).
* **Accounts** (:class:`Account`), each with a *home DC*.  The reserved test numbers
  ``99966XYYYY`` (spec §12.3) exist from the start on DC X for every DC X of the cluster — so
  Telethon, which cannot sign up, can sign in — and their login code is ``XXXXX``.  Other
  numbers are unregistered until ``auth.signUp`` creates them on the DC that ran it (or a test
  calls :meth:`World.add_user`); their code is the issuing DC's digit repeated 5 times, unless
  :attr:`World.fixed_codes` says otherwise.  :meth:`World.move_user` changes a home DC at any
  time.
* **Authorizations**, per (DC, auth key id) (spec §12.2 step 4, §11.3).  A key becomes
  authorized by ``auth.signIn``/``auth.signUp`` (kind ``LOGIN``) or ``auth.importAuthorization``
  (kind ``IMPORTED``).  Any authorized key may download files and read stats on its DC; account
  methods (``users.getUsers``, ``users.getFullUser``, ``updates.getState``,
  ``updates.getDifference``) run only on the user's home DC and answer ``USER_MIGRATE_X``
  elsewhere.  ``auth.exportAuthorization`` runs on the home DC, and also on a DC where the key
  *logged in* before the user was moved away (so a client can follow a moved user by exporting
  from where it is logged in; option ``export_from_former_home``, see :mod:`dcpool.testing`);
  an imported key elsewhere gets ``USER_MIGRATE_X``.
* **Options** (:attr:`World.OPTIONS`, :meth:`World.set_option`): the behaviours Telegram's
  docs leave open, documented in :mod:`dcpool.testing`.
* **Export tokens**: random bytes bound to (user, source DC, target DC), single use, valid for
  :attr:`World.export_ttl` seconds.
* **Files** (:class:`~dcpool.testing.files.StoredFile`) and **channels** (:class:`Channel`, only
  for ``stats.getBroadcastStats`` and its ``STATS_MIGRATE_X``).
* **Update routing** (UPDATES.md §1.1): the world cannot send.  The shell registers a session
  of a logged-in user after each request it runs that did not use ``invokeWithoutUpdates``
  (:meth:`World.register_session`, which makes it the user's last active session) and
  unregisters it after one that did, or when it closes; it installs a sink
  (:meth:`World.set_update_sink`).  :meth:`World.push_update` serializes an update in that
  session's layer and calls ``sink(handle, payload)`` for exactly one session: the user's last
  active one *on its home DC*.  Sessions on other DCs and download/upload lanes (which wrap
  their requests in ``invokeWithoutUpdates``) never get updates.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from .. import tl
from ..crypto import Rng
from ..errors import ConfigError, LocalProtocolError, UnknownDc
from .faults import DcFaults
from .files import StoredFile, StoredPhoto
from .layers import to_layer
from .stats import ClusterStats, ClusterStatsSnapshot, DcStats

__all__ = [
    "World",
    "DcState",
    "Endpoint",
    "ConnectionContext",
    "InitInfo",
    "Account",
    "AuthKind",
    "Authorization",
    "ExportToken",
    "PendingCode",
    "Channel",
    "StoredFile",
    "StoredPhoto",
    "UpdateSink",
    "DEFAULT_DC_IDS",
    "TEST_DC_IDS",
]

#: ``sink(session_handle, payload)``: the shell sends ``payload`` (a serialized boxed Updates
#: object) to that session as an unsolicited server message.
UpdateSink = Callable[[Any, bytes], None]

DEFAULT_DC_IDS = (1, 2, 3, 4, 5)
TEST_DC_IDS = (1, 2, 3)
TEST_PHONE_PREFIX = "99966"
#: the lowest API layer served (spec §10; issue 13: layers 133 to 228, higher ones as 228)
MIN_LAYER = 133
#: Schema names of the ``Updates`` constructors: the only top-level objects Telethon accepts
#: as unsolicited messages (spec §14).  Anything else is wrapped in ``updateShort``.
UPDATES_QUALNAMES = frozenset(
    {
        "updatesTooLong",
        "updateShortMessage",
        "updateShortChatMessage",
        "updateShort",
        "updatesCombined",
        "updates",
        "updateShortSentMessage",
    }
)


def _uint(rng: Rng, nbytes: int = 8) -> int:
    """A positive random id of ``8*nbytes - 1`` bits, never 0."""
    return (int.from_bytes(rng(nbytes), "little") >> 1) or 1


def _int64(rng: Rng) -> int:
    return int.from_bytes(rng(8), "little", signed=True)


@attrs.frozen
class Endpoint:
    host: str
    port: int

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host


class AuthKind(enum.Enum):
    #: auth.signIn / auth.signUp on this DC
    LOGIN = "login"
    #: auth.importAuthorization on this DC
    IMPORTED = "imported"


@attrs.frozen
class Authorization:
    """The user an auth key is logged in as, on one DC."""

    user_id: int
    kind: AuthKind
    since: float = 0.0


@attrs.frozen
class InitInfo:
    """What the client told ``initConnection`` (spec §10)."""

    api_id: int
    device_model: str
    system_version: str
    app_version: str
    system_lang_code: str
    lang_pack: str
    lang_code: str


@attrs.define
class ConnectionContext:
    """Per-connection state the shell creates and passes to every :meth:`World.handle` call.

    ``handle`` updates it; the shell may read it (e.g. ``user_id`` to register the connection's
    session for updates once the key is logged in).
    """

    #: layer from the last invokeWithLayer on this connection (None: not announced yet)
    layer: int | None = None
    #: the last initConnection parameters
    init: InitInfo | None = None
    #: the user this connection's key is authorized as on its DC, after the last call
    user_id: int | None = None
    #: True if the last request came inside invokeWithoutUpdates
    without_updates: bool = False
    #: requests handled on this connection
    requests: int = 0


@attrs.define
class DcState:
    """Everything the world keeps about one DC."""

    id: int
    faults: DcFaults
    stats: DcStats
    ipv4: Endpoint | None = None
    ipv6: Endpoint | None = None
    #: media-only endpoints (IPv4 and/or IPv6)
    media: list[Endpoint] = attrs.field(factory=list)
    #: auth key id -> authorization on this DC
    authorizations: dict[int, Authorization] = attrs.field(factory=dict)
    #: auth key id -> layer last announced with this key (fallback for connections that do
    #: not repeat invokeWithLayer; spec §10 stores the layer with the key)
    key_layers: dict[int, int] = attrs.field(factory=dict)
    #: auth key id -> what its initConnection said (spec §10: a key without one gets
    #: CONNECTION_NOT_INITED for any API call not wrapped in initConnection)
    key_inits: dict[int, InitInfo] = attrs.field(factory=dict)
    #: a CDN DC (spec §11.4; :mod:`.uploads` adds them): ``dcOption.cdn`` is set for it
    cdn: bool = False


@attrs.define
class Account:
    """A user account; ``home_dc`` is where its data lives (spec §11.3)."""

    id: int
    access_hash: int
    phone: str
    first_name: str
    last_name: str
    home_dc: int
    username: str | None = None
    pts: int = 1
    qts: int = 0
    seq: int = 0
    #: the profile photo (:meth:`World.set_profile_photo`), None for none
    photo: StoredPhoto | None = None

    def to_tl(self, *, is_self: bool) -> Any:
        """The layer-228 ``user`` object (convert with :mod:`.layers` for older clients)."""
        # user#b1b8cc83 flags:# self:flags.10?true ... id:long access_hash:flags.0?long
        #   first_name:flags.1?string last_name:flags.2?string username:flags.3?string
        #   phone:flags.4?string photo:flags.5?UserProfilePhoto status:flags.6?UserStatus ... = User;
        return tl.api.User(
            self_=is_self,
            id=self.id,
            access_hash=self.access_hash,
            first_name=self.first_name,
            last_name=self.last_name or None,
            username=self.username,
            phone=self.phone,
            photo=self.photo.profile_photo() if self.photo is not None else None,
            status=tl.api.UserStatusEmpty(),
        )


@attrs.define
class ExportToken:
    """An ``auth.exportAuthorization`` token (spec §11.3)."""

    token: bytes
    user_id: int
    source_dc: int
    target_dc: int
    expires_at: float
    used: bool = False


@attrs.define
class PendingCode:
    """A login code sent by ``auth.sendCode`` and not yet used up."""

    phone_code_hash: str
    phone: str
    dc_id: int
    code: str
    expires_at: float
    #: signIn checked the code but the number has no account: signUp may follow
    verified: bool = False


@attrs.define
class Channel:
    """A broadcast channel, only used for ``stats.getBroadcastStats`` (``STATS_MIGRATE_X``)."""

    id: int
    access_hash: int
    stats_dc: int
    title: str = ""
    followers: int = 0
    #: the channel photo (:meth:`World.set_chat_photo`), None for none
    photo: StoredPhoto | None = None

    def input_channel(self) -> Any:
        # inputChannel#f35aec28 channel_id:long access_hash:long = InputChannel;
        return tl.api.InputChannel(channel_id=self.id, access_hash=self.access_hash)


class World:
    """The shared state and Telegram behaviour of an emulated cluster (see module docstring)."""

    def __init__(
        self,
        dc_ids: Iterable[int] = DEFAULT_DC_IDS,
        *,
        test_mode: bool = False,
        nearest_dc: int | None = None,
        config_ttl: int = 3600,
        export_ttl: float = 300.0,
        code_ttl: float = 300.0,
        country: str = "NL",
        rng: Rng = os.urandom,
        require_init_connection: bool = True,
        min_layer: int = MIN_LAYER,
    ) -> None:
        ids = sorted(set(dc_ids))
        if not ids or any(not isinstance(d, int) or d <= 0 for d in ids):
            raise ConfigError(f"DC ids must be positive ints, got {ids!r}")
        self.test_mode = test_mode
        #: seconds between config.date and config.expires
        self.config_ttl = config_ttl
        #: lifetime of an exported authorization token
        self.export_ttl = export_ttl
        #: lifetime of a login code
        self.code_ttl = code_ttl
        #: ISO-3166 code answered by help.getNearestDc
        self.country = country
        self.rng: Rng = rng
        #: spec §10: the first API call on an auth key must be wrapped in initConnection,
        #: else 400 CONNECTION_NOT_INITED (as Telegram does).  False: assume a default layer.
        self.require_init_connection = require_init_connection
        #: the lowest layer invokeWithLayer may announce; below it 400 CONNECTION_LAYER_INVALID
        self.min_layer = min_layer
        #: §3.3/§8.3: client msg_ids strictly increase per session, seq_no consistent (bad_msg
        #: 16/20/32/33 otherwise).  The shell copies it to each DC's ServerCore.
        self.strict_msg_order = True
        #: auth.exportAuthorization on a DC where the key *logged in* while it was the user's
        #: home, after the user moved away (Telegram's docs do not say; see module docstring):
        #: True allows it, False answers USER_MIGRATE_X (home DC only)
        self.export_from_former_home = True
        self.cluster_stats = ClusterStats.for_dcs(ids)
        self.dcs: dict[int, DcState] = {
            dc: DcState(id=dc, faults=DcFaults(dc), stats=self.cluster_stats[dc]) for dc in ids
        }
        if nearest_dc is None:
            nearest_dc = 2 if 2 in self.dcs else ids[0]
        self.nearest_dc = self._check_dc(nearest_dc)
        #: create the reserved 99966XYYYY accounts on demand
        self.test_numbers = True
        #: phone -> login code, overriding the default rule
        self.fixed_codes: dict[str, str] = {}
        #: False: an unexpected exception inside a handler is turned into 500
        #: EMULATOR_INTERNAL_ERROR (and kept in ``internal_errors``); True: it propagates
        self.strict = False
        self.internal_errors: list[BaseException] = []
        self.accounts: dict[int, Account] = {}
        self.phones: dict[str, int] = {}
        self.files: dict[int, StoredFile] = {}
        self.photos: dict[int, StoredPhoto] = {}
        self.channels: dict[int, Channel] = {}
        self.tokens: dict[bytes, ExportToken] = {}
        self.codes: dict[str, PendingCode] = {}
        self._next_user_id = 1_000_001
        self._next_channel_id = 2_000_001
        #: user id -> {id(handle): (handle, layer, dc_id)}, least recently active first
        self._sessions: dict[int, dict[int, tuple[Any, int | None, int | None]]] = {}
        self._update_sink: UpdateSink | None = None

    #: the options :meth:`options` / :meth:`set_option` expose (name -> type), documented in
    #: the dcpool.testing docs ("Emulator semantics the docs leave open")
    OPTIONS: dict[str, type] = {
        "require_init_connection": bool,
        "min_layer": int,
        "strict_msg_order": bool,
        "export_from_former_home": bool,
        "test_numbers": bool,
        "config_ttl": int,
        "export_ttl": float,
        "code_ttl": float,
        "nearest_dc": int,
        "country": str,
        "strict": bool,
    }

    def options(self) -> dict[str, Any]:
        """The current value of every option in :attr:`OPTIONS`."""
        return {name: getattr(self, name) for name in self.OPTIONS}

    def set_option(self, name: str, value: Any) -> None:
        """Change one option of :attr:`OPTIONS` (type-checked; ints accepted for floats)."""
        kind = self.OPTIONS.get(name)
        if kind is None:
            raise ConfigError(f"unknown emulator option {name!r}")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ConfigError(f"option {name!r} takes a {kind.__name__}, got {value!r}")
        if name == "nearest_dc":
            assert isinstance(value, int)  # checked against OPTIONS above
            self._check_dc(value)
        setattr(self, name, value)

    @classmethod
    def test_cluster(cls, **kwargs: Any) -> World:
        """The test-mode preset: DCs 1–3, ``config.test_mode = true`` (spec §15)."""
        kwargs.setdefault("test_mode", True)
        return cls(TEST_DC_IDS, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<World dcs={self.dc_ids} test_mode={self.test_mode} nearest={self.nearest_dc} "
            f"users={len(self.accounts)} files={len(self.files)}>"
        )

    # ------------------------------------------------------------------ DCs

    @property
    def dc_ids(self) -> tuple[int, ...]:
        return tuple(self.dcs)

    def _check_dc(self, dc_id: int) -> int:
        if dc_id not in self.dcs:
            raise UnknownDc(dc_id)
        return dc_id

    def dc(self, dc_id: int) -> DcState:
        try:
            return self.dcs[dc_id]
        except KeyError:
            raise UnknownDc(dc_id) from None

    def faults(self, dc_id: int) -> DcFaults:
        return self.dc(dc_id).faults

    def stats(self, dc_id: int) -> DcStats:
        return self.dc(dc_id).stats

    def stats_snapshot(self) -> ClusterStatsSnapshot:
        return self.cluster_stats.snapshot()

    def set_endpoint(
        self,
        dc_id: int,
        host: str,
        port: int,
        *,
        ipv6: tuple[str, int] | None = None,
        media: Sequence[tuple[str, int]] = (),
    ) -> None:
        """Set where DC ``dc_id`` listens (the shell calls this once its ports are bound).

        ``host`` is the plain IPv4 endpoint; ``ipv6`` an optional IPv6 (host, port); ``media``
        optional media-only endpoints (IPv4 or IPv6, told apart by a ``:`` in the host).
        """
        dc = self.dc(dc_id)
        dc.ipv4 = Endpoint(host, port)
        dc.ipv6 = Endpoint(*ipv6) if ipv6 is not None else None
        dc.media = [Endpoint(h, p) for h, p in media]

    def dc_options(self) -> list[Any]:
        """``config.dc_options``: every plain IPv4 entry first (DC order), then IPv6, then the
        media-only ones.  Telethon takes the first entry matching (id, ipv6, cdn) and ignores
        ``media_only`` (spec §11.1), so plain entries must come before media ones."""
        # dcOption#18b7a10d flags:# ipv6:flags.0?true media_only:flags.1?true tcpo_only:flags.2?true
        #   cdn:flags.3?true static:flags.4?true this_port_only:flags.5?true id:int
        #   ip_address:string port:int secret:flags.10?bytes = DcOption;
        DcOption = tl.api.DcOption
        dcs = list(self.dcs.values())
        out = [
            DcOption(cdn=d.cdn or None, id=d.id, ip_address=d.ipv4.host, port=d.ipv4.port)
            for d in dcs
            if d.ipv4
        ]
        out += [
            DcOption(ipv6=True, cdn=d.cdn or None, id=d.id, ip_address=d.ipv6.host, port=d.ipv6.port)
            for d in dcs
            if d.ipv6
        ]
        for want_v6 in (False, True):
            out += [
                DcOption(ipv6=want_v6, media_only=True, id=d.id, ip_address=e.host, port=e.port)
                for d in dcs
                for e in d.media
                if e.is_ipv6 == want_v6
            ]
        return out

    # ------------------------------------------------------------------ accounts

    @staticmethod
    def test_phone(dc_id: int, suffix: int = 0) -> str:
        """The reserved test number ``99966XYYYY`` of DC ``dc_id`` (spec §12.3)."""
        if not 0 <= dc_id <= 9 or not 0 <= suffix <= 9999:
            raise LocalProtocolError("test numbers need a one-digit DC and a 4-digit suffix")
        return f"{TEST_PHONE_PREFIX}{dc_id}{suffix:04d}"

    def test_phone_dc(self, phone: str) -> int | None:
        """The DC X of a reserved number ``99966XYYYY`` of this cluster, else None."""
        if (
            self.test_numbers
            and len(phone) == 10
            and phone.startswith(TEST_PHONE_PREFIX)
            and phone.isdigit()
            and int(phone[5]) in self.dcs
        ):
            return int(phone[5])
        return None

    def login_code(self, phone: str, dc_id: int) -> str:
        """The code ``auth.sendCode`` on DC ``dc_id`` sends to ``phone``: ``fixed_codes[phone]``,
        else the DC's digit repeated five times (``XXXXX`` for test numbers, spec §12.3)."""
        fixed = self.fixed_codes.get(phone)
        if fixed is not None:
            return fixed
        return (str(dc_id) * 5)[:5]

    def add_user(
        self,
        phone: str,
        home_dc: int | None = None,
        *,
        first_name: str = "Test",
        last_name: str = "",
        username: str | None = None,
        rng: Rng | None = None,
    ) -> Account:
        """Register an account (test helper; ``auth.signUp`` uses it too)."""
        if phone in self.phones:
            raise LocalProtocolError(f"phone {phone} is already registered")
        if home_dc is None:
            home_dc = self.test_phone_dc(phone) or self.nearest_dc
        self._check_dc(home_dc)
        account = Account(
            id=self._next_user_id,
            access_hash=_int64(rng or self.rng),
            phone=phone,
            first_name=first_name,
            last_name=last_name,
            home_dc=home_dc,
            username=username,
        )
        self._next_user_id += 1
        self.accounts[account.id] = account
        self.phones[phone] = account.id
        return account

    def user_by_phone(self, phone: str) -> Account | None:
        """The account of ``phone``; reserved test numbers come into existence here."""
        user_id = self.phones.get(phone)
        if user_id is not None:
            return self.accounts[user_id]
        test_dc = self.test_phone_dc(phone)
        if test_dc is not None:
            return self.add_user(phone, test_dc, first_name="Test", last_name=phone[-4:])
        return None

    def user(self, user_id: int) -> Account:
        try:
            return self.accounts[user_id]
        except KeyError:
            raise LocalProtocolError(f"no user {user_id}") from None

    def move_user(self, user_id: int, dc_id: int) -> None:
        """Move a user's home to ``dc_id``.  Takes effect on the next request: account methods
        on the old home then answer ``USER_MIGRATE_<dc_id>``."""
        self.user(user_id).home_dc = self._check_dc(dc_id)

    # ------------------------------------------------------------------ authorizations

    def authorize(
        self,
        dc_id: int,
        key_id: int,
        user_id: int,
        kind: AuthKind = AuthKind.LOGIN,
        now: float = 0.0,
    ) -> Authorization:
        """Bind auth key ``key_id`` on DC ``dc_id`` to ``user_id`` (handlers and tests)."""
        self.user(user_id)
        auth = Authorization(user_id, kind, now)
        self.dc(dc_id).authorizations[key_id] = auth
        return auth

    def authorization(self, dc_id: int, key_id: int) -> Authorization | None:
        return self.dc(dc_id).authorizations.get(key_id)

    def user_for_key(self, dc_id: int, key_id: int) -> int | None:
        auth = self.authorization(dc_id, key_id)
        return None if auth is None else auth.user_id

    def deauthorize(self, dc_id: int, key_id: int) -> None:
        """Log key ``key_id`` out on DC ``dc_id`` (``auth.logOut``)."""
        self.dc(dc_id).authorizations.pop(key_id, None)

    def forget_key(self, dc_id: int, key_id: int) -> None:
        """Forget everything tied to an auth key (the shell calls it when it drops a key)."""
        dc = self.dc(dc_id)
        dc.authorizations.pop(key_id, None)
        dc.key_layers.pop(key_id, None)
        dc.key_inits.pop(key_id, None)

    # ------------------------------------------------------------------ files and channels

    def add_file(
        self,
        dc_id: int,
        data: bytes | None = None,
        size: int | None = None,
        rng: Rng | None = None,
        *,
        mtime: int = 0,
        thumbs: dict[str, bytes | int] | None = None,
        mime_type: str = "application/octet-stream",
        file_name: str = "",
    ) -> StoredFile:
        """Store a document on DC ``dc_id``: ``data`` as given, or ``size`` bytes of
        deterministic pseudo-random content (generated lazily, see :mod:`.files`).
        ``thumbs`` maps photo size types (``"m"``...) to a thumbnail's content or size; a
        client downloads one with ``inputDocumentFileLocation(thumb_size=<type>)``."""
        stored = self._blob(dc_id, data, size, rng, mtime=mtime)
        stored.mime_type, stored.file_name = mime_type, file_name
        for kind, spec in (thumbs or {}).items():
            stored.thumbs[kind] = self._blob_of(dc_id, spec, rng)
        self.files[stored.id] = stored
        return stored

    def _blob_of(self, dc_id: int, spec: bytes | int, rng: Rng | None) -> StoredFile:
        if isinstance(spec, int):
            return self._blob(dc_id, None, spec, rng)
        return self._blob(dc_id, bytes(spec), None, rng)

    def _blob(
        self, dc_id: int, data: bytes | None, size: int | None, rng: Rng | None, *, mtime: int = 0
    ) -> StoredFile:
        """Content stored on a DC, with a fresh id (not registered anywhere)."""
        self._check_dc(dc_id)
        rng = rng or self.rng
        if data is None and size is None:
            raise LocalProtocolError("add_file needs data or size")
        if data is not None:
            data = bytes(data)
            if size is not None and size != len(data):
                raise LocalProtocolError(f"size {size} != len(data) {len(data)}")
            size = len(data)
        assert size is not None
        if size < 0:
            raise LocalProtocolError("negative file size")
        file_id = _uint(rng)
        while file_id in self.files or file_id in self.photos:
            file_id = _uint(rng)
        return StoredFile(
            id=file_id,
            access_hash=_int64(rng),
            file_reference=rng(16),
            dc_id=dc_id,
            size=size,
            mtime=mtime,
            content=data,
            seed=None if data is not None else rng(32),
        )

    def add_photo(
        self,
        dc_id: int,
        sizes: dict[str, bytes | int] | None = None,
        *,
        date: int = 0,
        rng: Rng | None = None,
    ) -> StoredPhoto:
        """Store a photo on DC ``dc_id``: ``sizes`` maps photo size types to content or a size
        (default: ``s``, ``m``, ``x`` and the profile sizes ``a``, ``c``).  Downloaded with
        ``inputPhotoFileLocation(thumb_size=<type>)``."""
        self._check_dc(dc_id)
        if sizes is None:
            sizes = {"s": 1500, "m": 12_000, "x": 60_000, "a": 4000, "c": 30_000}
        if not sizes:
            raise LocalProtocolError("a photo needs at least one size")
        blobs = {kind: self._blob_of(dc_id, spec, rng) for kind, spec in sizes.items()}
        first = next(iter(blobs.values()))
        photo = StoredPhoto(
            id=first.id,
            access_hash=first.access_hash,
            file_reference=first.file_reference,
            dc_id=dc_id,
            sizes=blobs,
            date=date,
        )
        self.photos[photo.id] = photo
        return photo

    def set_profile_photo(
        self, user_id: int, dc_id: int | None = None, sizes: dict[str, bytes | int] | None = None
    ) -> StoredPhoto:
        """Give a user a profile photo stored on ``dc_id`` (default: the user's home DC);
        ``user.photo`` then names it and ``inputPeerPhotoFileLocation`` downloads it."""
        account = self.user(user_id)
        account.photo = self.add_photo(account.home_dc if dc_id is None else dc_id, sizes)
        return account.photo

    def set_chat_photo(
        self, channel_id: int, dc_id: int, sizes: dict[str, bytes | int] | None = None
    ) -> StoredPhoto:
        """Give a channel a photo stored on ``dc_id``."""
        channel = self.channels.get(channel_id)
        if channel is None:
            raise LocalProtocolError(f"no channel {channel_id}")
        channel.photo = self.add_photo(dc_id, sizes)
        return channel.photo

    def add_channel(
        self, stats_dc: int, *, title: str = "", followers: int = 0, rng: Rng | None = None
    ) -> Channel:
        """Create a channel whose statistics live on DC ``stats_dc``."""
        self._check_dc(stats_dc)
        channel = Channel(
            id=self._next_channel_id,
            access_hash=_int64(rng or self.rng),
            stats_dc=stats_dc,
            title=title,
            followers=followers,
        )
        self._next_channel_id += 1
        self.channels[channel.id] = channel
        return channel

    # ------------------------------------------------------------------ updates

    def set_update_sink(self, sink: UpdateSink | None) -> None:
        """Install the shell's ``sink(handle, payload)`` (None removes it)."""
        self._update_sink = sink

    def register_session(
        self, user_id: int, handle: Any, *, layer: int | None = None, dc_id: int | None = None
    ) -> None:
        """Record that ``handle`` (any hashable object the shell chooses — a session, a
        connection) is a live session of ``user_id`` that wants updates and was active just
        now: it becomes the user's *last active* session (registering again moves it to the
        end).  ``dc_id`` is the DC it is connected to (None: any); ``layer`` fixes the layer
        its updates are encoded in; without it, ``handle.layer`` is read at push time if
        present (a :class:`ConnectionContext` works), else layer 228."""
        entries = self._sessions.setdefault(user_id, {})
        entries.pop(id(handle), None)
        entries[id(handle)] = (handle, layer, dc_id)

    def unregister_session(self, user_id: int, handle: Any) -> None:
        """``handle`` no longer wants updates (it closed, logged out, or its last request
        used invokeWithoutUpdates)."""
        entries = self._sessions.get(user_id)
        if entries is None:
            return
        entries.pop(id(handle), None)
        if not entries:
            del self._sessions[user_id]

    def sessions(self, user_id: int) -> tuple[Any, ...]:
        """The registered sessions of ``user_id``, least recently active first."""
        return tuple(h for h, _, _ in self._sessions.get(user_id, {}).values())

    def update_target(self, user_id: int) -> Any | None:
        """The session :meth:`push_update` delivers to: the user's last active registered
        session on its home DC (UPDATES.md §1.1: "the last active connection, except
        connections for downloading/uploading files"), or None."""
        target = self._target(user_id)
        return None if target is None else target[0]

    def _target(self, user_id: int) -> tuple[Any, int | None] | None:
        account = self.accounts.get(user_id)
        entries = self._sessions.get(user_id)
        if not entries:
            return None
        for handle, layer, dc_id in reversed(entries.values()):
            if dc_id is None or account is None or dc_id == account.home_dc:
                return handle, layer
        return None

    def push_update(self, user_id: int, update: Any, *, now: float = 0.0) -> int:
        """Send ``update`` to the user's last active session on its home DC (see
        :meth:`update_target`) through the sink: never to a session on another DC, never to
        one whose last request used ``invokeWithoutUpdates``, and to one session only.

        ``update`` should be an ``Updates`` object (``updateShort``, ``updates``...: Telethon
        accepts nothing else unsolicited, spec §14); a bare ``Update`` is wrapped in
        ``updateShort(update, date=now)``.  Returns the number of sessions it was handed to:
        1, or 0 when there is no such session or no sink is installed.
        """
        if type(update).QUALNAME not in UPDATES_QUALNAMES:
            # updateShort#78d4dec1 update:Update date:int = Updates;
            update = tl.api.UpdateShort(update=update, date=int(now))
        sink = self._update_sink
        target = self._target(user_id)
        if sink is None or target is None:
            return 0
        handle, layer = target
        if layer is None:
            layer = getattr(handle, "layer", None) or tl.LAYER
        sink(handle, to_layer(update, layer).to_bytes())
        return 1

    # ------------------------------------------------------------------ requests

    def layer_for(self, dc_id: int, ctx: ConnectionContext | None, key_id: int) -> int:
        """The layer a request on this connection/key is answered in (spec §10)."""
        if ctx is not None and ctx.layer is not None:
            return ctx.layer
        return self.dc(dc_id).key_layers.get(key_id, tl.LAYER)

    def handle(
        self,
        dc_id: int,
        ctx: ConnectionContext,
        key_id: int,
        body: bytes | memoryview,
        now: float,
        *,
        session_id: int | None = None,
        msg_id: int | None = None,
    ) -> bytes:
        """Run one RPC received by DC ``dc_id`` and return its serialized (boxed) result, in the
        client's layer, for the shell to put in ``rpc_result``.  Raises
        :class:`dcpool.errors.RpcError` for ``rpc_error``.  With ``session_id`` and ``msg_id``
        the execution is also counted (:meth:`DcStats.record_execution`)."""
        from .rpc import handle_request  # the world's methods depend on the world: a lazy edge

        return handle_request(
            self, dc_id, ctx, key_id, body, now, session_id=session_id, msg_id=msg_id
        )

    def call(
        self,
        dc_id: int,
        key_id: int,
        query: Any,
        now: float = 0.0,
        ctx: ConnectionContext | None = None,
    ) -> Any:
        """Test convenience: serialize ``query``, :meth:`handle` it, parse the result with the
        query's ``read_result``.  Raises RpcError like ``handle``."""
        if ctx is None:
            ctx = ConnectionContext()
        data = self.handle(dc_id, ctx, key_id, query.to_bytes(), now)
        inner = query
        while hasattr(inner, "query") and type(inner).RESULT_TYPE == "X":
            inner = inner.query
        return type(inner).read_result(data)
