"""Reading and writing the session formats of Telethon and the Pyrogram family (pure: no I/O
except reading the file handed in, never writing it).

Formats (learnt from each library's source; nothing of theirs is copied)
------------------------------------------------------------------------
**Telethon** ``StringSession`` (version ``"1"``)::

    "1" + urlsafe_base64( >B {4|16}s H 256s )  =  dc_id, packed IPv4|IPv6, port, auth_key

(353 characters with an IPv4 address, 369 with IPv6; the base64 keeps its padding).

**Telethon** ``.session`` (SQLite): table ``version(version)``, 7 in Telethon <= 1.40-ish and 8
since (v8 adds ``sessions.tmp_auth_key``); table ``sessions(dc_id, server_address, port,
auth_key, takeout_id[, tmp_auth_key])`` with one row.  Neither format records the user id nor
test mode: the importer learns the user id from the server (``users.getUsers([inputUserSelf])``)
with the imported key, on the home DC.

**Pyrogram / kurigram / pyrofork** session strings (urlsafe base64, ``=`` padding stripped)::

    >B ? 256s I ?     dc_id, test_mode, auth_key, user_id (32-bit), is_bot      351 chars (old)
    >B ? 256s Q ?     dc_id, test_mode, auth_key, user_id (64-bit), is_bot      356 chars (old)
    >B I ? 256s Q ?   dc_id, api_id, test_mode, auth_key, user_id, is_bot       362 chars (2.x)

**Pyrogram family** ``.session`` (SQLite): table ``version(number)`` (Pyrogram 2.0.x: 3;
pyrofork: 4, with ``dc_options``; kurigram: up to 7, with ``server_address`` and ``port`` in
``sessions``); table ``sessions(dc_id, [server_address, port,] api_id, test_mode, auth_key,
date, user_id, is_bot)`` with one row.  Columns are read by name: upgraded files have the
newer columns at the end, fresh ones in the middle.

Errors: anything that is not one of these raises :class:`SessionFormatError` with what was
expected; a file that is a dcpool session, or a session without a key, says so.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import os
import sqlite3
import struct
from pathlib import Path
from typing import Any

import attrs

from ..errors import StorageError
from ..storage.base import AUTH_KEY_SIZE

__all__ = [
    "ForeignSession",
    "Source",
    "SessionFormatError",
    "SessionNotSignedIn",
    "SessionExists",
    "parse_session_string",
    "read_session_file",
    "telethon_string",
    "pyrogram_string",
]


class SessionFormatError(StorageError):
    """The input is not a session of a known format (or is corrupt).  Nothing was written."""


class SessionNotSignedIn(StorageError):
    """The session holds no auth key, or its key is not signed in."""


class SessionExists(StorageError):
    """The target dcpool session already holds a login: importing would overwrite it."""


class Source(enum.StrEnum):
    """Where a :class:`ForeignSession` was read from."""

    TELETHON_STRING = "telethon-string"
    TELETHON_FILE = "telethon-sqlite"
    TELETHON_CLIENT = "telethon-client"
    PYROGRAM_STRING = "pyrogram-string"
    PYROGRAM_FILE = "pyrogram-sqlite"
    PYROGRAM_CLIENT = "pyrogram-client"


@attrs.frozen
class ForeignSession:
    """A login read from another library: the home DC, its key and what else was recorded."""

    source: str
    dc_id: int
    auth_key: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes hidden>")
    #: None when the format does not record it (Telethon)
    user_id: int | None = None
    test_mode: bool | None = None
    server_address: str | None = None
    port: int | None = None
    api_id: int | None = None
    is_bot: bool | None = None
    #: the format's version (Telethon "1" / 7 / 8; Pyrogram string layout or SQLite number)
    version: str = ""


# --------------------------------------------------------------------------- strings

_TELETHON_VERSION = "1"
_TELETHON_FORMAT = ">B{}sH256s"

# (layout, has api_id, user id struct code) by the length of the stripped string
_PYROGRAM_LAYOUTS: dict[int, tuple[str, str]] = {
    351: (">B?256sI?", "old-32"),
    356: (">B?256sQ?", "old-64"),
    362: (">BI?256sQ?", "2"),
}


def _urlsafe_decode(text: str, what: str) -> bytes:
    try:
        # validate=True: the default silently drops characters outside the alphabet
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SessionFormatError(f"{what}: not valid base64 ({exc})") from None


def _check_dc(dc_id: int, what: str) -> int:
    if not 1 <= dc_id <= 1000:
        raise SessionFormatError(f"{what}: DC id {dc_id} is not a DC")
    return dc_id


def _check_key(key: bytes | None, what: str) -> bytes:
    if key is None or not any(key):
        raise SessionNotSignedIn(f"{what}: the session holds no auth key")
    if len(key) != AUTH_KEY_SIZE:
        raise SessionFormatError(f"{what}: auth key is {len(key)} bytes, expected {AUTH_KEY_SIZE}")
    return bytes(key)


def parse_session_string(text: str) -> ForeignSession:
    """A Telethon ``StringSession`` or a Pyrogram-family session string."""
    if not isinstance(text, str):
        raise SessionFormatError(f"a session string must be str, not {type(text).__name__}")
    text = text.strip()
    if not text:
        raise SessionFormatError("empty session string")
    if text[0] == _TELETHON_VERSION and len(text) in (353, 369):
        return _parse_telethon_string(text)
    layout = _PYROGRAM_LAYOUTS.get(len(text.rstrip("=")))
    if layout is not None:
        return _parse_pyrogram_string(text.rstrip("="), *layout)
    raise SessionFormatError(
        f"unknown session string ({len(text)} characters): expected a Telethon StringSession "
        "(version 1, 353 or 369 characters) or a Pyrogram/kurigram/pyrofork session string "
        "(351, 356 or 362 characters)"
    )


def _parse_telethon_string(text: str) -> ForeignSession:
    what = "Telethon StringSession"
    raw = _urlsafe_decode(text[1:], what)
    ip_len = len(raw) - (1 + 2 + AUTH_KEY_SIZE)
    if ip_len not in (4, 16):
        raise SessionFormatError(f"{what}: {len(raw)} bytes decoded, expected 263 or 275")
    dc_id, ip, port, key = struct.unpack(_TELETHON_FORMAT.format(ip_len), raw)
    return ForeignSession(
        source=Source.TELETHON_STRING,
        dc_id=_check_dc(dc_id, what),
        auth_key=_check_key(key, what),
        server_address=ipaddress.ip_address(ip).compressed,
        port=port,
        version=_TELETHON_VERSION,
    )


def _parse_pyrogram_string(text: str, layout: str, version: str) -> ForeignSession:
    what = "Pyrogram session string"
    raw = _urlsafe_decode(text, what)
    if len(raw) != struct.calcsize(layout):
        raise SessionFormatError(f"{what}: {len(raw)} bytes decoded, expected {struct.calcsize(layout)}")
    api_id: int | None = None
    if version == "2":
        dc_id, api_id, test_mode, key, user_id, is_bot = struct.unpack(layout, raw)
    else:
        dc_id, test_mode, key, user_id, is_bot = struct.unpack(layout, raw)
    return ForeignSession(
        source=Source.PYROGRAM_STRING,
        dc_id=_check_dc(dc_id, what),
        auth_key=_check_key(key, what),
        user_id=user_id or None,
        test_mode=bool(test_mode),
        api_id=api_id,
        is_bot=bool(is_bot),
        version=version,
    )


def telethon_string(dc_id: int, auth_key: bytes, address: str, port: int) -> str:
    """Telethon's ``StringSession`` text for this login (``StringSession(text)`` loads it)."""
    ip = ipaddress.ip_address(address).packed
    packed = struct.pack(_TELETHON_FORMAT.format(len(ip)), dc_id, ip, port, auth_key)
    return _TELETHON_VERSION + base64.urlsafe_b64encode(packed).decode("ascii")


def pyrogram_string(dc_id: int, api_id: int, test_mode: bool, auth_key: bytes, user_id: int,
                    is_bot: bool = False) -> str:
    """A Pyrogram 2.x / kurigram / pyrofork session string (``Client(session_string=...)``)."""
    packed = struct.pack(">BI?256sQ?", dc_id, api_id, test_mode, auth_key, user_id, is_bot)
    return base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")


# --------------------------------------------------------------------------- files

_SQLITE_MAGIC = b"SQLite format 3\x00"


def read_session_file(path: str | os.PathLike[str]) -> ForeignSession:
    """A Telethon or Pyrogram-family ``.session`` file, opened read-only (never modified)."""
    p = Path(path)
    what = str(p)
    try:
        with open(p, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
    except FileNotFoundError:
        raise SessionFormatError(f"{what}: no such file") from None
    except OSError as exc:
        raise SessionFormatError(f"{what}: cannot read: {exc.strerror}") from None
    if head != _SQLITE_MAGIC:
        raise SessionFormatError(f"{what}: not an SQLite file, so not a Telethon or Pyrogram session")
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise SessionFormatError(f"{what}: cannot open: {exc}") from None
    try:
        return _read_session_db(conn, what)
    except sqlite3.DatabaseError as exc:
        raise SessionFormatError(f"{what}: corrupt SQLite file: {exc}") from None
    finally:
        conn.close()


def _single_row(rows: list[Any], cols: list[str], what: str) -> dict[str, Any]:
    if not rows:
        raise SessionNotSignedIn(f"{what}: the sessions table is empty")
    if len(rows) > 1:
        raise SessionFormatError(f"{what}: {len(rows)} rows in sessions, expected one")
    return dict(zip(cols, rows[0]))


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _read_session_db(conn: sqlite3.Connection, what: str) -> ForeignSession:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "sessions" not in tables or "version" not in tables:
        if "dcs" in tables or "meta" in tables:
            raise SessionFormatError(f"{what}: this is a dcpool session already (nothing to import)")
        raise SessionFormatError(f"{what}: no 'sessions' and 'version' tables: not a Telethon or Pyrogram session")
    version_cols = _columns(conn, "version")
    cols = _columns(conn, "sessions")
    version_row = conn.execute("SELECT * FROM version").fetchone()
    version = version_row[0] if version_row else None
    rows = conn.execute("SELECT * FROM sessions").fetchall()
    if version_cols == ["version"]:
        # Telethon: version(version); sessions(dc_id, server_address, port, auth_key,
        # takeout_id[, tmp_auth_key]) -- v7 has no tmp_auth_key, v8 (Telethon 1.4x) adds it
        if version not in (7, 8):
            raise SessionFormatError(f"{what}: Telethon session version {version}, expected 7 or 8")
        if not {"dc_id", "server_address", "port", "auth_key"} <= set(cols):
            raise SessionFormatError(f"{what}: Telethon session without the expected columns ({cols})")
        row = _single_row(rows, cols, what)
        return ForeignSession(
            source=Source.TELETHON_FILE,
            dc_id=_check_dc(int(row["dc_id"]), what),
            auth_key=_check_key(row["auth_key"], what),
            server_address=row["server_address"],
            port=row["port"],
            version=str(version),
        )
    if version_cols == ["number"] and {"dc_id", "test_mode", "auth_key", "user_id", "is_bot"} <= set(cols):
        # Pyrogram 2.0 (3), pyrofork (4..), kurigram (up to 7): the same row, read by name
        if not isinstance(version, int) or not 2 <= version <= 7:
            raise SessionFormatError(f"{what}: Pyrogram session version {version}, expected 2 to 7")
        row = _single_row(rows, cols, what)
        return ForeignSession(
            source=Source.PYROGRAM_FILE,
            dc_id=_check_dc(int(row["dc_id"]), what),
            auth_key=_check_key(row["auth_key"], what),
            user_id=row["user_id"] or None,
            test_mode=bool(row["test_mode"]),
            server_address=row.get("server_address"),
            port=row.get("port"),
            api_id=row.get("api_id"),
            is_bot=bool(row["is_bot"]),
            version=str(version),
        )
    raise SessionFormatError(f"{what}: unknown session layout (sessions columns {cols})")
