"""The whole dcpool exception tree, in one place.

::

    DcPoolError
    ├── LocalProtocolError            you misused an API (wrong state, bad argument)
    │   └── UploadError               EmptyUpload, UploadTooBig, UploadSourceMismatch,
    │                                 UploadPartMissing (transfers/upload.py)
    ├── RemoteProtocolError           the peer sent something that breaks the protocol
    │   ├── TLDecodeError             bytes that do not parse as TL
    │   ├── FramingError              a transport frame that cannot be right
    │   ├── TransportErrorCode        the peer sent a transport error (-404, -429, -444, ...)
    │   ├── BadMsgNotification        the server rejected a message (bad_msg_notification)
    │   └── SecurityError             a check of the security guidelines failed
    │       ├── HandshakeSecurityError    ... during auth-key creation
    │       │   ├── NonceMismatch, NewNonceHashMismatch, AnswerHashMismatch
    │       │   ├── UnknownFingerprint, BadDhPrime, BadDhG, BadDhValue
    │       └── MessageSecurityError      ... on an encrypted message
    │           ├── AuthKeyIdMismatch, MsgKeyMismatch, BadMessageLength, BadPadding
    │           ├── SessionIdMismatch, MsgIdParity, MsgIdOutOfWindow, MsgIdReplayed
    ├── HandshakeError                the handshake failed without a security breach
    ├── NetworkError
    │   ├── ConnectError              no endpoint of a DC could be reached
    │   ├── ConnectionLost            an established connection broke
    │   └── PoolClosed                the pool (or connection) was closed under the call
    ├── RequestTimeout                a request got no answer in time
    ├── OutcomeUnknown                sent and acknowledged, then the connection died:
    │                                 the server may or may not have executed it
    ├── RpcError(code, name, value)   the server answered rpc_error
    │   ├── MigrateError(dc_id)       303 *_MIGRATE_X
    │   │   ├── PhoneMigrate, NetworkMigrate, UserMigrate   (home DC moves)
    │   │   └── FileMigrate, StatsMigrate                   (retry elsewhere, home stays)
    │   ├── FloodWait(seconds)        420 FLOOD_WAIT_X and friends
    │   ├── BadRequest                400
    │   ├── Unauthorized              401 (AuthKeyUnregistered, LoggedOut, ...)
    │   ├── Forbidden / NotFound / NotAcceptable / ServerError
    ├── MigrationError                too many hops, or a loop between DCs
    ├── TransferError                 exporting/importing an authorization failed for good
    ├── ConfigError                   bad DC configuration
    │   └── UnknownDc                 a DC id nobody knows
    └── StorageError
        ├── CorruptStorage            the session file cannot be read (never overwritten)
        └── StorageModeMismatch       a test session opened in production mode or vice versa

Errors are raised where a layer knows what went wrong, and translated once at each layer
boundary with ``raise New(...) from exc``.  No message or repr in this module may contain key
material: callers pass ids and sizes, never keys.
"""

from __future__ import annotations

import re

__all__ = [
    "CdnHashMismatch",
    "DcPoolError",
    "LocalProtocolError",
    "UploadError",
    "EmptyUpload",
    "UploadTooBig",
    "UploadSourceMismatch",
    "UploadPartMissing",
    "RemoteProtocolError",
    "TLDecodeError",
    "FramingError",
    "TransportErrorCode",
    "BadMsgNotification",
    "SecurityError",
    "HandshakeSecurityError",
    "NonceMismatch",
    "NewNonceHashMismatch",
    "AnswerHashMismatch",
    "UnknownFingerprint",
    "BadDhPrime",
    "BadDhG",
    "BadDhValue",
    "MessageSecurityError",
    "AuthKeyIdMismatch",
    "MsgKeyMismatch",
    "BadMessageLength",
    "BadPadding",
    "SessionIdMismatch",
    "MsgIdParity",
    "MsgIdOutOfWindow",
    "MsgIdReplayed",
    "HandshakeError",
    "NetworkError",
    "ConnectError",
    "ConnectionLost",
    "PoolClosed",
    "RequestTimeout",
    "OutcomeUnknown",
    "RpcError",
    "MigrateError",
    "PhoneMigrate",
    "NetworkMigrate",
    "UserMigrate",
    "FileMigrate",
    "StatsMigrate",
    "FloodWait",
    "BadRequest",
    "Unauthorized",
    "AuthKeyUnregistered",
    "LoggedOut",
    "LOGIN_LOSS_MESSAGES",
    "Forbidden",
    "NotFound",
    "NotAcceptable",
    "ServerError",
    "MigrationError",
    "TransferError",
    "ConfigError",
    "UnknownDc",
    "StorageError",
    "CorruptStorage",
    "StorageModeMismatch",
    "rpc_error_from",
]


class DcPoolError(Exception):
    """Root of every error dcpool raises on purpose."""


# --------------------------------------------------------------------------- protocol


class LocalProtocolError(DcPoolError):
    """The caller misused an API: wrong state, bad argument.  A bug on our side."""


class RemoteProtocolError(DcPoolError):
    """The peer broke the protocol.  The connection that carried it should be dropped."""


class TLDecodeError(RemoteProtocolError):
    """Bytes that do not parse as the expected TL (truncated, unknown constructor, ...)."""


class FramingError(RemoteProtocolError):
    """A transport frame that cannot be right (bad length, bad CRC, too large, bad header)."""


class TransportErrorCode(RemoteProtocolError):
    """The peer sent a 4-byte transport error such as -404 (spec §7.7)."""

    def __init__(self, code: int) -> None:
        self.code = code
        meaning = {
            -404: "auth key unknown, bad handshake query, or broken framing",
            -429: "transport flood",
            -444: "invalid DC id",
            -403: "forbidden",
        }.get(code, "unknown transport error")
        super().__init__(f"transport error {code}: {meaning}")


class BadMsgNotification(RemoteProtocolError):
    """The server rejected one of our messages with a code we cannot recover from (spec §8.3)."""

    def __init__(self, code: int, bad_msg_id: int = 0) -> None:
        self.code = code
        self.bad_msg_id = bad_msg_id
        super().__init__(f"bad_msg_notification code {code} for msg_id {bad_msg_id}")


class SecurityError(RemoteProtocolError):
    """A check required by MTProto's security guidelines failed.  Nothing from the message
    (and no key from a handshake) may be used."""


class CdnHashMismatch(SecurityError):
    """A CDN chunk does not match its ``fileHash`` (spec §11.4): the CDN (or the path to it)
    returned bad bytes.  The chunk is never handed to the caller."""

    def __init__(self, offset: int, message: str = "") -> None:
        self.offset = offset
        super().__init__(message or f"CDN chunk at offset {offset} fails its SHA-256 check")


class UploadError(LocalProtocolError):
    """An upload the pool refuses before sending anything, or whose source misbehaved
    (spec §13.1; issue 15)."""


class EmptyUpload(UploadError):
    """A 0-byte file: Telegram (and the emulator) refuse it with FILE_PARTS_INVALID, so the
    pool says so first, locally."""


class UploadTooBig(UploadError):
    """More parts than ``upload_max_fileparts_default`` (4000) at this part size."""


class UploadSourceMismatch(UploadError):
    """The source yielded a different number of bytes than its announced ``size``."""


class UploadPartMissing(UploadError):
    """The DC still reports a part missing after it was re-sent (or the source cannot be
    read again to re-send it)."""


class HandshakeSecurityError(SecurityError):
    """A security check of the auth-key handshake failed (spec §5)."""


class NonceMismatch(HandshakeSecurityError):
    """nonce or server_nonce differs from what this handshake uses."""


class NewNonceHashMismatch(HandshakeSecurityError):
    """new_nonce_hash (server_DH_params_fail / dh_gen_*) is not the expected one."""


class AnswerHashMismatch(HandshakeSecurityError):
    """The SHA1 in front of an encrypted handshake answer is wrong, or its padding is too long."""


class UnknownFingerprint(HandshakeSecurityError):
    """None of the server's RSA fingerprints is one we know."""


class BadDhPrime(HandshakeSecurityError):
    """dh_prime is not a 2048-bit safe prime."""


class BadDhG(HandshakeSecurityError):
    """g is outside 2..7 or fails the quadratic-residue condition for dh_prime."""


class BadDhValue(HandshakeSecurityError):
    """g_a or g_b lies outside (1, p-1) or outside [2^(2048-64), p - 2^(2048-64)]."""


class MessageSecurityError(SecurityError):
    """A check on a received encrypted message failed (spec §4.5)."""


class AuthKeyIdMismatch(MessageSecurityError):
    """The message names an auth_key_id that is not ours."""


class MsgKeyMismatch(MessageSecurityError):
    """The msg_key recomputed after decryption differs from the one received."""


class BadMessageLength(MessageSecurityError):
    """Encrypted data not a multiple of 16, or message_data_length impossible."""


class BadPadding(MessageSecurityError):
    """Padding outside 12..1024 bytes."""


class SessionIdMismatch(MessageSecurityError):
    """The message belongs to a session that is not ours."""


class MsgIdParity(MessageSecurityError):
    """A msg_id with the wrong low bits for its sender (server ids are odd)."""


class MsgIdOutOfWindow(MessageSecurityError):
    """A msg_id more than 300 s in the past or 30 s in the future.

    ``server_time_offset`` is the clock offset the (authenticated) message implies; the
    connection that drops the message uses it to resynchronise before reconnecting."""

    server_time_offset: float | None = None


class MsgIdReplayed(MessageSecurityError):
    """A msg_id already seen, or below the replay window."""


class HandshakeError(DcPoolError):
    """The auth-key handshake failed without a security breach (e.g. -404, dh_gen_fail,
    too many retries).

    ``transport_code`` is set by the server role (``ServerHandshake``) to the transport error
    to send for a bad query (-404, or -444 for a wrong DC); None otherwise.
    """

    def __init__(self, message: str = "", *, transport_code: int | None = None) -> None:
        self.transport_code = transport_code
        super().__init__(message)

    def __reduce__(self):  # keep pickling/copying working with the keyword-only argument
        return (type(self), (str(self),), {"transport_code": self.transport_code})


# --------------------------------------------------------------------------- network


class NetworkError(DcPoolError):
    """Something between us and the DC failed."""


class ConnectError(NetworkError):
    """No endpoint of the DC could be reached."""


class ConnectionLost(NetworkError):
    """An established connection broke (EOF, reset, transport error)."""


class PoolClosed(NetworkError):
    """The pool or connection was closed while the call was waiting."""


class RequestTimeout(DcPoolError, TimeoutError):
    """A request got no answer in the time allowed.  ``stage`` says what the call was doing
    when its deadline passed (``"waiting for the answer"``, ``"connecting"``,
    ``"authorization transfer"``, ``"flood wait"``, ``"migration"``, ``"routing"``)."""

    def __init__(self, message: str = "", *, stage: str | None = None) -> None:
        super().__init__(message)
        self.stage = stage


class OutcomeUnknown(DcPoolError):
    """A non-idempotent request was acknowledged by the server, then its connection was lost
    before the answer arrived: the server may or may not have executed it.  dcpool never
    re-sends such a request on its own."""

    def __init__(self, request_name: str, dc_id: int) -> None:
        self.request_name = request_name
        self.dc_id = dc_id
        super().__init__(
            f"{request_name} on DC {dc_id}: acknowledged, then the connection was lost; "
            "the server may have executed it"
        )


# --------------------------------------------------------------------------- RPC errors


class RpcError(DcPoolError):
    """The server answered a request with rpc_error (spec §9).

    ``code`` is the HTTP-like number, ``name`` the error text with its numeric parameter
    replaced by ``X`` (``FLOOD_WAIT_X``), ``message`` the text as received, ``value`` the
    parameter (or None).
    """

    def __init__(self, code: int, message: str, request_name: str | None = None) -> None:
        self.code = code
        self.message = message
        match = _PARAM_RE.match(message)
        if match:
            self.name = match.group(1) + "_X" + (match.group(3) or "")
            self.value: int | None = int(match.group(2))
        else:
            self.name = message
            self.value = None
        self.request_name = request_name
        where = f" (caused by {request_name})" if request_name else ""
        super().__init__(f"{code} {message}{where}")

    def __reduce__(self):  # keep pickling/copying working despite the custom __init__
        return (type(self), (self.code, self.message, self.request_name))


# NAME_123 or NAME_123_SUFFIX (e.g. FILE_PART_3_MISSING)
_PARAM_RE = re.compile(r"^([A-Z0-9_]*?)_(\d+)((?:_[A-Z]+)*)$")


class MigrateError(RpcError):
    """303: repeat the request on DC ``dc_id``."""

    #: True when the user's home DC moves (PHONE/NETWORK/USER), False when only this request
    #: goes elsewhere (FILE/STATS).
    moves_home = False

    @property
    def dc_id(self) -> int:
        assert self.value is not None
        return self.value


class PhoneMigrate(MigrateError):
    moves_home = True


class NetworkMigrate(MigrateError):
    moves_home = True


class UserMigrate(MigrateError):
    moves_home = True


class FileMigrate(MigrateError):
    pass


class StatsMigrate(MigrateError):
    pass


class FloodWait(RpcError):
    """420: wait ``seconds`` before repeating (FLOOD_WAIT_0 counts as 1 s, as clients do).

    ``deadline`` (trio clock) is set when dcpool remembers the wait, e.g. for an authorization
    export: no new export is sent before it."""

    deadline: float | None = None

    @property
    def seconds(self) -> int:
        return max(1, self.value or 0)


class BadRequest(RpcError):
    """400."""


class Unauthorized(RpcError):
    """401."""


class AuthKeyUnregistered(Unauthorized):
    """401 AUTH_KEY_UNREGISTERED: this key is not logged in on this DC."""


class LoggedOut(Unauthorized):
    """The pool's login is gone (LOGIN.md §5.4): the home DC answered a login-loss 401
    (``AUTH_KEY_UNREGISTERED``, ``AUTH_KEY_INVALID``, ``SESSION_REVOKED``, ``SESSION_EXPIRED``,
    ``USER_DEACTIVATED``, ``USER_DEACTIVATED_BAN``), ``AUTH_KEY_DUPLICATED``, or forgot the home
    key of the signed-in user (−404).  Raised for the call that met it and, until a new login
    is observed, for every later call that needs one.  ``reason`` is the server's message (or
    ``AUTH_KEY_NOT_FOUND`` for a −404, ``auth.logOut`` after a log-out)."""

    @property
    def reason(self) -> str:
        return self.message


#: 401 messages meaning the key's login is gone (LOGIN.md §5.1); SESSION_PASSWORD_NEEDED and
#: AUTH_KEY_PERM_EMPTY are not losses.
LOGIN_LOSS_MESSAGES = frozenset({
    "AUTH_KEY_UNREGISTERED", "AUTH_KEY_INVALID", "SESSION_REVOKED", "SESSION_EXPIRED",
    "USER_DEACTIVATED", "USER_DEACTIVATED_BAN",
})


class Forbidden(RpcError):
    """403."""


class NotFound(RpcError):
    """404."""


class NotAcceptable(RpcError):
    """406."""


class ServerError(RpcError):
    """500 and anything unknown (including -503 Timeout)."""


_MIGRATE_CLASSES: dict[str, type[MigrateError]] = {
    "PHONE_MIGRATE_X": PhoneMigrate,
    "NETWORK_MIGRATE_X": NetworkMigrate,
    "USER_MIGRATE_X": UserMigrate,
    "FILE_MIGRATE_X": FileMigrate,
    "STATS_MIGRATE_X": StatsMigrate,
}

_FLOOD_NAMES = {"FLOOD_WAIT_X", "FLOOD_PREMIUM_WAIT_X", "FLOOD_TEST_PHONE_WAIT_X", "SLOWMODE_WAIT_X"}

_BY_CODE: dict[int, type[RpcError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    406: NotAcceptable,
}


def rpc_error_from(code: int, message: str, request_name: str | None = None) -> RpcError:
    """Build the most precise RpcError subclass for an rpc_error(code, message)."""
    probe = RpcError(code, message)
    cls: type[RpcError]
    if probe.name in _MIGRATE_CLASSES and probe.value is not None:
        cls = _MIGRATE_CLASSES[probe.name]
    elif probe.name in _FLOOD_NAMES:
        cls = FloodWait
    elif message == "AUTH_KEY_UNREGISTERED":
        cls = AuthKeyUnregistered
    else:
        cls = _BY_CODE.get(code, ServerError if code >= 500 or code < 0 else RpcError)
    return cls(code, message, request_name)


class MigrationError(DcPoolError):
    """Following *_MIGRATE errors went nowhere: too many hops, or a loop (A -> B -> A)."""


class TransferError(DcPoolError):
    """Moving the authorization to another DC failed for good."""


# --------------------------------------------------------------------------- config & storage


class ConfigError(DcPoolError):
    """The DC configuration is unusable."""


class UnknownDc(ConfigError, LookupError):
    """A DC id that neither the built-in list nor the fetched config knows."""

    def __init__(self, dc_id: int) -> None:
        self.dc_id = dc_id
        super().__init__(f"unknown DC id {dc_id}")


class StorageError(DcPoolError):
    """The session storage failed."""


class CorruptStorage(StorageError):
    """The session file cannot be read.  It is left untouched."""


class StorageModeMismatch(StorageError):
    """The stored session was made for the other mode (test vs production)."""
