"""Session formats of Telethon and the Pyrogram family: every layout in use, and precise errors
for anything else (nothing is written, nothing is overwritten)."""

from __future__ import annotations

import base64
import os
import sqlite3
import struct

import pytest

from dcpool import sessions
from dcpool.errors import StorageModeMismatch
from dcpool.storage import MemoryStorage, SqliteStorage, auth_key_id

KEY = bytes((i * 7 + 3) % 256 for i in range(256))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# ----------------------------------------------------------------- strings


@pytest.mark.parametrize("address", ["149.154.167.91", "2001:67c:4e8:f004::a"])
def test_telethon_string_round_trip(address):
    text = sessions.telethon_string(4, KEY, address, 443)
    assert text[0] == "1" and len(text) in (353, 369)
    s = sessions.parse_session_string(text)
    assert (s.source, s.dc_id, s.auth_key, s.server_address, s.port) == ("telethon-string", 4, KEY, address, 443)
    assert s.user_id is None and s.test_mode is None
    assert "hidden" in repr(s) and KEY.hex()[:16] not in repr(s)


def test_telethon_string_is_what_telethon_reads():
    telethon = pytest.importorskip("telethon.sessions")
    text = sessions.telethon_string(5, KEY, "91.108.56.130", 443)
    ss = telethon.StringSession(text)
    assert (ss.dc_id, ss.server_address, ss.port, ss.auth_key.key) == (5, "91.108.56.130", 443, KEY)
    assert ss.save() == text


@pytest.mark.parametrize(
    "layout, values, expected",
    [
        (">B?256sI?", (2, False, KEY, 123456789, False), ("old-32", None, 123456789, False, False)),
        (">B?256sQ?", (1, True, KEY, 7_000_000_000, True), ("old-64", None, 7_000_000_000, True, True)),
        (">BI?256sQ?", (4, 12345, False, KEY, 7_000_000_001, False), ("2", 12345, 7_000_000_001, False, False)),
    ],
)
def test_pyrogram_strings_every_layout(layout, values, expected):
    text = _b64(struct.pack(layout, *values))
    s = sessions.parse_session_string(text)
    version, api_id, user_id, test_mode, is_bot = expected
    assert (s.source, s.version, s.dc_id, s.auth_key) == ("pyrogram-string", version, values[0], KEY)
    assert (s.api_id, s.user_id, s.test_mode, s.is_bot) == (api_id, user_id, test_mode, is_bot)


def test_pyrogram_export_round_trip():
    storage = MemoryStorage("test")
    sessions.import_session(sessions.ForeignSession("x", 2, KEY, user_id=99), storage)
    text = sessions.export_session(storage, "pyrogram", api_id=777)
    s = sessions.parse_session_string(text)
    assert (s.dc_id, s.api_id, s.test_mode, s.auth_key, s.user_id, s.is_bot) == (2, 777, True, KEY, 99, False)
    assert len(text) == 362


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("hello", "unknown session string"),
        ("1" + "!" * 352, "base64"),
        (_b64(struct.pack(">BI?256sQ?", 0, 1, False, KEY, 1, False)), "DC id 0"),
        (_b64(struct.pack(">BI?256sQ?", 2, 1, False, bytes(256), 1, False)), "no auth key"),
        ("2" + "A" * 352, "unknown session string"),  # Telethon has only version 1
    ],
)
def test_bad_strings_get_precise_errors(text, message):
    with pytest.raises((sessions.SessionFormatError, sessions.SessionNotSignedIn), match=message):
        sessions.parse_session_string(text)


# ----------------------------------------------------------------- files


def _telethon_file(path, version: int, key: bytes = KEY) -> None:
    conn = sqlite3.connect(path)
    extra = ", tmp_auth_key blob" if version >= 8 else ""
    conn.executescript(f"""
        create table version (version integer primary key);
        create table sessions (dc_id integer primary key, server_address text, port integer,
                               auth_key blob, takeout_id integer{extra});
        create table entities (id integer primary key, hash integer not null, username text,
                               phone integer, name text, date integer);
    """)
    conn.execute("insert into version values (?)", (version,))
    row = (4, "149.154.167.91", 443, key, None) + ((b"",) if version >= 8 else ())
    conn.execute(f"insert into sessions values ({','.join('?' * len(row))})", row)
    conn.commit()
    conn.close()


_PYRO_V3 = """
    CREATE TABLE sessions (dc_id INTEGER PRIMARY KEY, api_id INTEGER, test_mode INTEGER,
                           auth_key BLOB, date INTEGER NOT NULL, user_id INTEGER, is_bot INTEGER);
    CREATE TABLE peers (id INTEGER PRIMARY KEY, access_hash INTEGER, type INTEGER NOT NULL,
                        username TEXT, phone_number TEXT, last_update_on INTEGER);
    CREATE TABLE version (number INTEGER PRIMARY KEY);
"""
_KURI_V7_FRESH = """
    CREATE TABLE sessions (dc_id INTEGER PRIMARY KEY, server_address TEXT, port INTEGER,
                           api_id INTEGER, test_mode INTEGER, auth_key BLOB, date INTEGER NOT NULL,
                           user_id INTEGER, is_bot INTEGER);
    CREATE TABLE version (number INTEGER PRIMARY KEY);
"""


def _pyrogram_file(path, schema: str, version: int, *, upgraded_to_7: bool = False) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(schema)
    conn.execute("INSERT INTO version VALUES (?)", (version,))
    cols = [r[1] for r in conn.execute("PRAGMA table_info(sessions)")]
    values = {"dc_id": 5, "server_address": "91.108.56.130", "port": 443, "api_id": 6,
              "test_mode": 0, "auth_key": KEY, "date": 0, "user_id": 424242, "is_bot": 0}
    conn.execute(f"INSERT INTO sessions ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                 [values[c] for c in cols])
    if upgraded_to_7:  # kurigram's migration appends the address columns at the end
        conn.execute("ALTER TABLE sessions ADD server_address TEXT")
        conn.execute("ALTER TABLE sessions ADD port INTEGER")
        conn.execute("UPDATE sessions SET server_address = '91.108.56.130', port = 443")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", [7, 8])
def test_telethon_files(tmp_path, version):
    path = tmp_path / "t.session"
    _telethon_file(path, version)
    mtime = os.stat(path).st_mtime_ns
    s = sessions.load_session(path)
    assert (s.source, s.version, s.dc_id, s.auth_key, s.server_address, s.port) == (
        "telethon-sqlite", str(version), 4, KEY, "149.154.167.91", 443)
    assert os.stat(path).st_mtime_ns == mtime  # read-only


@pytest.mark.parametrize(
    "schema, version, upgraded",
    [(_PYRO_V3, 3, False), (_PYRO_V3, 4, False), (_KURI_V7_FRESH, 7, False), (_PYRO_V3, 7, True)],
    ids=["pyrogram-2.0-v3", "pyrofork-v4", "kurigram-v7", "kurigram-upgraded-v7"],
)
def test_pyrogram_family_files(tmp_path, schema, version, upgraded):
    path = tmp_path / "p.session"
    _pyrogram_file(path, schema, version, upgraded_to_7=upgraded)
    s = sessions.load_session(path)
    assert (s.source, s.version, s.dc_id, s.auth_key, s.user_id, s.api_id) == (
        "pyrogram-sqlite", str(version), 5, KEY, 424242, 6)
    assert (s.test_mode, s.is_bot) == (False, False)
    if version == 7:
        assert (s.server_address, s.port) == ("91.108.56.130", 443)


def test_bad_files_get_precise_errors(tmp_path):
    with pytest.raises(sessions.SessionFormatError, match="no such file"):
        sessions.load_session(tmp_path / "missing.session")
    text = tmp_path / "text.session"
    text.write_text("hello")
    with pytest.raises(sessions.SessionFormatError, match="not an SQLite file"):
        sessions.load_session(text)
    truncated = tmp_path / "trunc.session"
    _telethon_file(truncated, 7)
    truncated.write_bytes(truncated.read_bytes()[:100] + b"\xff" * 2000)
    with pytest.raises(sessions.SessionFormatError):
        sessions.load_session(truncated)
    other = tmp_path / "other.session"
    sqlite3.connect(other).executescript("create table x (a); insert into x values (1);")
    with pytest.raises(sessions.SessionFormatError, match="not a Telethon or Pyrogram"):
        sessions.load_session(other)
    unsigned = tmp_path / "unsigned.session"
    _telethon_file(unsigned, 7, key=b"")
    with pytest.raises(sessions.SessionNotSignedIn, match="no auth key"):
        sessions.load_session(unsigned)
    old = tmp_path / "old.session"
    _telethon_file(old, 7)
    sqlite3.connect(old).execute("update version set version = 5").connection.commit()
    with pytest.raises(sessions.SessionFormatError, match="version 5"):
        sessions.load_session(old)
    mine = tmp_path / "dcpool.session"
    SqliteStorage(mine).close()
    with pytest.raises(sessions.SessionFormatError, match="dcpool session already"):
        sessions.load_session(mine)


# ----------------------------------------------------------------- import rules


def test_import_writes_key_home_and_user():
    storage = MemoryStorage("prod")
    foreign = sessions.ForeignSession("pyrogram-string", 5, KEY, user_id=11, test_mode=False)
    sessions.import_session(foreign, storage)
    record = storage.get_dc(5)
    assert storage.get_home_dc() == 5 and storage.get_user_id() == 11
    assert record.auth_key == KEY and record.key_id == auth_key_id(KEY) and record.authorized_user_id == 11


def test_import_refuses_wrong_mode_and_existing_login():
    test_session = sessions.ForeignSession("pyrogram-string", 2, KEY, user_id=1, test_mode=True)
    storage = MemoryStorage("prod")
    with pytest.raises(StorageModeMismatch):
        sessions.import_session(test_session, storage)
    assert storage.list_dcs() == [] and storage.get_home_dc() is None
    storage.save_auth_key(1, KEY, auth_key_id(KEY), 0.0)
    with pytest.raises(sessions.SessionExists):
        sessions.import_session(sessions.ForeignSession("x", 2, KEY), storage)
    assert storage.get_home_dc() is None


def test_export_needs_what_the_format_records(tmp_path):
    storage = MemoryStorage("prod")
    with pytest.raises(sessions.SessionNotSignedIn):
        sessions.export_session(storage, "telethon")
    sessions.import_session(sessions.ForeignSession("x", 4, KEY), storage)
    # the built-in production address of DC 4
    s = sessions.parse_session_string(sessions.export_session(storage, "telethon"))
    assert s.dc_id == 4 and s.auth_key == KEY and s.port == 443
    with pytest.raises(sessions.SessionNotSignedIn, match="user"):
        sessions.export_session(storage, "pyrogram", api_id=1)
    with pytest.raises(sessions.SessionFormatError, match="no such"):
        sessions.export_session(tmp_path / "none.session", "telethon")
