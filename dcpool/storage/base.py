"""Values and the ``Storage`` protocol shared by every storage backend.

See the package docstring (:mod:`dcpool.storage`) for the theory of operation.  This module
holds what both backends need: the frozen records handed out to callers, the protocol itself,
and the argument checks both backends run before they write anything (so that a wrong argument
fails the same way, with :class:`~dcpool.errors.LocalProtocolError`, whatever the backend).
"""

from __future__ import annotations

import hashlib
import math
from typing import Literal, Protocol, runtime_checkable

import attrs

from ..errors import LocalProtocolError

__all__ = [
    "AUTH_KEY_SIZE",
    "MODES",
    "Mode",
    "DcRecord",
    "ConfigSnapshot",
    "Storage",
    "auth_key_id",
    "check_mode",
]

Mode = Literal["prod", "test"]
MODES: tuple[str, ...] = ("prod", "test")

#: Permanent auth keys are 2048 bits (spec §5.9).
AUTH_KEY_SIZE = 256

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def auth_key_id(auth_key: bytes) -> int:
    """The 64 lower-order bits of SHA1(auth_key), i.e. ``SHA1(key)[12:20]`` read as a signed
    LE int64 (spec §4.1).  Computed here with hashlib so that storage does not depend on the
    crypto package."""
    return int.from_bytes(hashlib.sha1(auth_key).digest()[12:20], "little", signed=True)


def _hidden_bytes(value: bytes | None) -> str:
    # reprs must never show key material (errors.py: "No message or repr ... may contain key
    # material"); the length is enough to debug with.
    return "None" if value is None else f"<{len(value)} bytes hidden>"


def _hidden_salt(value: int | None) -> str:
    # The salt travels inside the encrypted part of every message: keep it out of logs too.
    return "None" if value is None else "<set>"


@attrs.frozen
class DcRecord:
    """What storage knows about one DC: its permanent auth key and what hangs off it.

    A record exists only while the DC has a key.  The salt and the authorization mark belong
    to the key: replacing or dropping the key forgets them (a new key is a new client for the
    server, which must be authorized again, spec §11.3).
    """

    dc_id: int
    auth_key: bytes = attrs.field(repr=_hidden_bytes)
    #: signed int64, SHA1(auth_key)[12:20] little-endian (spec §4.1)
    key_id: int
    #: unix time the key was created (as passed by the caller); None for a key migrated from
    #: session schema v1, which did not record it
    created_at: float | None
    #: the user this key is logged in as, or None when it is not (known to be) authorized
    authorized_user_id: int | None = None
    #: the last server salt seen for this key (signed int64), or None before the first one
    salt: int | None = attrs.field(default=None, repr=_hidden_salt)


@attrs.frozen
class ConfigSnapshot:
    """The last ``help.getConfig`` answer, kept as an opaque blob (the boxed TL bytes: storage
    does not parse it) plus when it was fetched and when Telegram says it expires."""

    blob: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    expires: float
    fetched_at: float


@runtime_checkable
class Storage(Protocol):
    """A session store.  Every method is synchronous and fast; callers run them from trio
    between awaits.  Each write is atomic.  See :mod:`dcpool.storage` for the rules.

    Optional attribute ``writes_block`` (default True): False tells the pool that writes never
    block (in memory), so it need not run them on a worker thread."""

    mode: str

    def get_home_dc(self) -> int | None: ...

    def set_home_dc(self, dc_id: int) -> None: ...

    def get_dc(self, dc_id: int) -> DcRecord | None: ...

    def list_dcs(self) -> list[DcRecord]: ...

    def save_auth_key(self, dc_id: int, auth_key: bytes, key_id: int, created_at: float) -> None: ...

    def drop_auth_key(self, dc_id: int) -> None: ...

    def set_authorized(
        self, dc_id: int, user_id: int | None, *, key_id: int | None = None
    ) -> bool: ...

    def clear_all_authorizations(self) -> None: ...

    def set_salt(self, dc_id: int, salt: int, *, key_id: int | None = None) -> bool: ...

    def get_user_id(self) -> int | None: ...

    def set_user_id(self, user_id: int | None) -> None: ...

    def get_config(self) -> ConfigSnapshot | None: ...

    def set_config(self, blob: bytes, expires: float, fetched_at: float) -> None: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- argument checks


def check_mode(mode: object) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise LocalProtocolError(f"storage mode must be 'prod' or 'test', not {mode!r}")
    return mode


def check_dc_id(dc_id: object) -> int:
    # bool is an int subclass; True as a DC id is always a bug.
    if not isinstance(dc_id, int) or isinstance(dc_id, bool):
        raise LocalProtocolError(f"dc_id must be an int, not {type(dc_id).__name__}")
    if not -(1 << 31) <= dc_id < (1 << 31):
        raise LocalProtocolError(f"dc_id {dc_id} does not fit a TL int")
    return dc_id


def check_int64(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise LocalProtocolError(f"{name} must be an int, not {type(value).__name__}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise LocalProtocolError(f"{name} does not fit a signed int64")
    return value


def check_time(name: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise LocalProtocolError(f"{name} must be a finite number of unix seconds")
    return float(value)


def check_auth_key(auth_key: object, key_id: object) -> tuple[bytes, int]:
    """A key is stored only if it is 256 bytes and ``key_id`` is really its id: a mismatch
    here would make every later message fail with a confusing -404."""
    if not isinstance(auth_key, (bytes, bytearray, memoryview)):
        raise LocalProtocolError("auth_key must be bytes")
    key = bytes(auth_key)
    if len(key) != AUTH_KEY_SIZE:
        raise LocalProtocolError(f"auth_key must be {AUTH_KEY_SIZE} bytes, got {len(key)}")
    kid = check_int64("key_id", key_id)
    if auth_key_id(key) != kid:
        # Only ids in the message: never key bytes.
        raise LocalProtocolError(f"key_id {kid} is not the id of the given auth_key")
    return key, kid


def check_blob(blob: object) -> bytes:
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise LocalProtocolError("config blob must be bytes")
    return bytes(blob)
