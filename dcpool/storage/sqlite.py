"""SQLite storage: one small file per session, crash-safe, private, versioned.

Theory of operation
-------------------
*Opening* follows a fixed order, and nothing is written until every check has passed, so a file
we refuse is left byte-for-byte as it was:

1. A missing file is created with ``os.open(..., O_CREAT | O_EXCL, 0o600)`` (then ``fchmod`` to
   0600, since the umask could have removed the owner's write bit) *before* SQLite touches it,
   so there is no window in which the auth keys sit in a world-readable file.  SQLite creates
   its ``-wal``/``-shm`` side files with the permissions of the database file.
2. An existing file must be empty (a crash right after step 1: treated as new) or start with
   the SQLite magic and hold at least a full 100-byte header; anything else is
   :class:`~dcpool.errors.CorruptStorage`.  This check reads bytes with plain Python, so random
   data never reaches SQLite.
3. SQLite checks, on a *read-only* connection (even the WAL checkpoint that a read-write
   connection runs when it closes must not touch a file we refuse; only a hot rollback journal,
   left by a crash inside our own transaction, makes us retry read-write so SQLite can undo
   it): ``PRAGMA quick_check`` (catches truncation), ``application_id`` must be ours
   (:data:`APPLICATION_ID`, "dcpl") or the database must be completely empty; a foreign SQLite
   database is refused.  ``user_version`` is the schema version; the tables and columns must be
   exactly those of that version, and triggers or views are refused (a crafted file must not be
   able to run SQL on our writes; ``trusted_schema`` is off too).
4. The stored mode must equal the requested one, else
   :class:`~dcpool.errors.StorageModeMismatch` (test keys must never meet production DCs).
5. Every stored key is checked: 256 bytes, and ``key_id == SHA1(key)[12:20]``.
6. Only now do we write: migrations (all of them in one ``BEGIN IMMEDIATE`` transaction, so a
   crash during a migration leaves the old version intact), then ``journal_mode=WAL`` and
   ``synchronous=FULL``.

*Writes* are one transaction each (``BEGIN IMMEDIATE`` ... ``COMMIT``), so a key is either fully
stored, together with its id and creation time, or absent; WAL with ``synchronous=FULL`` makes a
commit durable before the method returns.

Schema history
--------------
* v1: ``meta(key, value)`` (mode, home_dc, user_id); ``dcs(dc_id, auth_key,
  authorized_user_id, salt)``; ``config(id=1, blob, expires, fetched_at)``.
* v2: ``dcs`` gains ``key_id`` (computed from the key during migration) and
  ``created_at`` (NULL for migrated keys: v1 did not record it), plus CHECK constraints on the
  key length.
* v3 (current): the updates state (issue 16): ``updates_state(id=1, pts, qts, date, seq)`` and
  ``updates_channels(channel_id, pts, access_hash)``; written by :mod:`dcpool.updates` only
  after the consumer acknowledged the updates up to that state.

Adding a version: append the DDL to ``_COLUMNS``, write ``_migrate_N_to_N1`` and register it in
``_MIGRATIONS``; ``CURRENT_VERSION`` follows.

A ``SqliteStorage`` is used from the thread that opened it (the trio thread): SQLite
connections are not shared between threads here.  Two processes may open the same file (SQLite
locks it; a writer that cannot get the lock within 2 s raises
:class:`~dcpool.errors.StorageError`), but one session file should belong to one pool.

Nothing secret is logged: log lines and reprs carry DC ids and key ids (which travel in clear on
the wire anyway), never key bytes or salts.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import (
    CorruptStorage,
    LocalProtocolError,
    StorageError,
    StorageModeMismatch,
)
from .base import (
    AUTH_KEY_SIZE,
    MODES,
    ConfigSnapshot,
    DcRecord,
    auth_key_id,
    check_auth_key,
    check_blob,
    check_dc_id,
    check_int64,
    check_mode,
    check_time,
)

__all__ = ["SqliteStorage", "session_summary", "APPLICATION_ID", "CURRENT_VERSION"]

log = logging.getLogger("dcpool.storage")

#: ``PRAGMA application_id`` of every dcpool session file: b"dcpl" read big-endian.
APPLICATION_ID = int.from_bytes(b"dcpl", "big")

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_HEADER_SIZE = 100

# The exact column lists of each schema version (order as created), used to recognise a file.
_COLUMNS: dict[int, dict[str, tuple[str, ...]]] = {
    1: {
        "meta": ("key", "value"),
        "dcs": ("dc_id", "auth_key", "authorized_user_id", "salt"),
        "config": ("id", "blob", "expires", "fetched_at"),
    },
    2: {
        "meta": ("key", "value"),
        "dcs": ("dc_id", "auth_key", "key_id", "created_at", "authorized_user_id", "salt"),
        "config": ("id", "blob", "expires", "fetched_at"),
    },
    3: {
        "meta": ("key", "value"),
        "dcs": ("dc_id", "auth_key", "key_id", "created_at", "authorized_user_id", "salt"),
        "config": ("id", "blob", "expires", "fetched_at"),
        "updates_state": ("id", "pts", "qts", "date", "seq"),
        "updates_channels": ("channel_id", "pts", "access_hash"),
    },
}
CURRENT_VERSION = max(_COLUMNS)

_META_DDL = "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value)"
_DCS_V2_DDL = f"""CREATE TABLE {{name}} (
    dc_id INTEGER PRIMARY KEY NOT NULL,
    auth_key BLOB NOT NULL CHECK (typeof(auth_key) = 'blob' AND length(auth_key) = {AUTH_KEY_SIZE}),
    key_id INTEGER NOT NULL,
    created_at REAL,
    authorized_user_id INTEGER,
    salt INTEGER
)"""
_CONFIG_DDL = """CREATE TABLE config (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    blob BLOB NOT NULL,
    expires REAL NOT NULL,
    fetched_at REAL NOT NULL
)"""


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """v1 -> v2: add key_id (computed, since v1 only had the key) and created_at (unknown)."""
    rows = conn.execute("SELECT dc_id, auth_key, authorized_user_id, salt FROM dcs").fetchall()
    conn.execute(_DCS_V2_DDL.format(name="dcs_v2"))
    conn.executemany(
        "INSERT INTO dcs_v2 (dc_id, auth_key, key_id, created_at, authorized_user_id, salt)"
        " VALUES (?, ?, ?, NULL, ?, ?)",
        [(dc, key, auth_key_id(key), user, salt) for dc, key, user, salt in rows],
    )
    conn.execute("DROP TABLE dcs")
    conn.execute("ALTER TABLE dcs_v2 RENAME TO dcs")


_UPDATES_STATE_DDL = """CREATE TABLE updates_state (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    pts INTEGER NOT NULL,
    qts INTEGER NOT NULL,
    date INTEGER NOT NULL,
    seq INTEGER NOT NULL
)"""
_UPDATES_CHANNELS_DDL = """CREATE TABLE updates_channels (
    channel_id INTEGER PRIMARY KEY NOT NULL,
    pts INTEGER,
    access_hash INTEGER
)"""


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """v2 -> v3: add the (empty) updates state tables."""
    conn.execute(_UPDATES_STATE_DDL)
    conn.execute(_UPDATES_CHANNELS_DDL)


_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_1_to_2, 2: _migrate_2_to_3}


# --------------------------------------------------------------------------- file checks


def _create_private_file(path: Path) -> bool:
    """Create ``path`` as an empty 0600 file.  Returns False if it already existed."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as exc:
        raise StorageError(f"cannot create session file {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)  # the umask may have cleared bits of 0o600; make it exact
    finally:
        os.close(fd)
    return True


def _check_header(path: Path) -> bool:
    """Step 2 of the docstring.  Returns True when the file is empty (a new session)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SQLITE_HEADER_SIZE)
    except IsADirectoryError as exc:
        raise CorruptStorage(f"{path} is a directory, not a session file") from exc
    except OSError as exc:
        raise StorageError(f"cannot read session file {path}: {exc.strerror}") from exc
    if not head:
        return True
    if not head.startswith(_SQLITE_MAGIC):
        raise CorruptStorage(f"{path} is not a dcpool session (not an SQLite file)")
    if len(head) < _SQLITE_HEADER_SIZE:
        raise CorruptStorage(f"{path} is truncated (shorter than an SQLite header)")
    return False


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(os.fspath(path.absolute()))
    if read_only:
        uri += "?mode=ro"
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per write.
        # check_same_thread=False: the pool writes from a worker thread (dcpool.pool.writer),
        # one write at a time, while the trio thread may read.
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=2.0,
                               check_same_thread=False)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open session file {path}: {exc}") from exc
    return conn


class _NeedsRecovery(Exception):
    """A read-only connection met a hot rollback journal (a crash inside a transaction in
    rollback-journal mode, e.g. while the file was being initialised): SQLite must write to
    recover it, which is a repair of our own interrupted write, not an overwrite."""


def _translate(exc: sqlite3.Error, path: Path, *, inspecting: bool = False) -> Exception:
    """The one place where sqlite3 errors become dcpool errors."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StorageError(f"session file {path} is locked by another process ({exc})")
    if code == sqlite3.SQLITE_READONLY:
        if inspecting:
            return _NeedsRecovery()
        return StorageError(f"session file {path} is read-only ({exc})")
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return CorruptStorage(f"{path} is not a readable SQLite database ({exc})")
    return StorageError(f"cannot use session file {path}: {exc}")


def _inspect_file(path: Path) -> tuple[int, str | None]:
    """Steps 3 to 5 with a read-only connection, so that nothing we do while checking (not
    even the WAL checkpoint a read-write connection makes when it closes) can modify a file we
    end up refusing."""
    conn = _connect(path, read_only=True)
    try:
        return _inspect(conn, path)
    except _NeedsRecovery:
        pass
    finally:
        conn.close()
    log.info("recovering an interrupted write in %s", path)
    conn = _connect(path, read_only=False)
    try:
        return _inspect(conn, path)
    except _NeedsRecovery:
        raise StorageError(f"session file {path} is read-only") from None
    finally:
        conn.close()


def _inspect(conn: sqlite3.Connection, path: Path) -> tuple[int, str | None]:
    """Steps 3 and 5.  Returns ``(version, stored_mode)``; version 0 means an empty database.
    Reads only."""
    try:
        conn.execute("PRAGMA trusted_schema = OFF")
        check = conn.execute("PRAGMA quick_check").fetchall()
        if check != [("ok",)]:
            raise CorruptStorage(f"{path} is damaged (SQLite quick_check failed)")
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        objects = conn.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        ).fetchall()
    except sqlite3.Error as exc:
        raise _translate(exc, path, inspecting=True) from exc

    if app_id != APPLICATION_ID:
        if app_id == 0 and version == 0 and not objects:
            return 0, None  # an empty database: ours to initialise
        raise CorruptStorage(f"{path} is an SQLite database, but not a dcpool session")
    if version > CURRENT_VERSION:
        raise StorageError(
            f"{path} has session schema v{version}; this dcpool reads up to v{CURRENT_VERSION}"
        )
    expected = _COLUMNS.get(version)
    if expected is None:
        raise CorruptStorage(f"{path} has an unknown session schema version {version}")
    tables = {name for kind, name in objects if kind == "table"}
    others = [name for kind, name in objects if kind not in ("table", "index")]
    if tables != set(expected) or others:
        raise CorruptStorage(f"{path} does not have the tables of session schema v{version}")
    try:
        for table, columns in expected.items():
            got = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
            if got != columns:
                raise CorruptStorage(f"{path}: table {table} does not match schema v{version}")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        key_column = "key_id" if version >= 2 else "NULL"
        keys = conn.execute(f"SELECT dc_id, auth_key, {key_column} FROM dcs").fetchall()
    except sqlite3.Error as exc:
        raise _translate(exc, path, inspecting=True) from exc

    mode = meta.get("mode")
    if mode not in MODES:
        raise CorruptStorage(f"{path} does not record a valid mode")
    for name in ("home_dc", "user_id"):
        if meta.get(name) is not None and type(meta[name]) is not int:
            raise CorruptStorage(f"{path}: meta value {name} is not an integer")
    for dc_id, key, key_id in keys:
        if not isinstance(key, bytes) or len(key) != AUTH_KEY_SIZE:
            raise CorruptStorage(f"{path}: the auth key of DC {dc_id} has the wrong size")
        if version >= 2 and key_id != auth_key_id(key):
            raise CorruptStorage(f"{path}: the auth key of DC {dc_id} does not match its key id")
    return version, mode


def _file_mode_bits(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --------------------------------------------------------------------------- the storage


class SqliteStorage:
    """A :class:`~dcpool.storage.Storage` in an SQLite file (see the module docstring).

    ``SqliteStorage(path, mode="prod")`` opens or creates the session.  Raises
    :class:`~dcpool.errors.CorruptStorage` or :class:`~dcpool.errors.StorageModeMismatch`
    without modifying the file.
    """

    def __init__(self, path: str | os.PathLike[str], mode: str = "prod") -> None:
        self.mode: str = check_mode(mode)
        self.path = Path(path)
        created = _create_private_file(self.path)
        if created:
            log.debug("created session file %s", self.path)
        fresh = _check_header(self.path)
        if not fresh and _file_mode_bits(self.path) & 0o077:
            # Not ours to chmod (the user made it); say so, since it holds auth keys.
            log.warning("session file %s is readable by other users", self.path)
        version, stored_mode = (0, None) if fresh else _inspect_file(self.path)
        if stored_mode is not None and stored_mode != self.mode:
            raise StorageModeMismatch(
                f"{self.path} holds a {stored_mode} session; it was opened in {self.mode} mode"
            )
        # One write transaction at a time on the shared connection: the pool's writer thread
        # and the updates manager's state store (its own worker thread) both write here, and
        # interleaved BEGIN/COMMIT on one sqlite3 connection fail ("no transaction is active").
        self._write_lock = threading.Lock()
        # Every check passed: from here on we may write.
        conn = _connect(self.path, read_only=False)
        try:
            self._conn = conn
            self._tx_lock = threading.Lock()
            if version == 0:
                self._initialise()
            elif version < CURRENT_VERSION:
                self._migrate(version)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        except BaseException:
            conn.close()
            raise
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SqliteStorage {str(self.path)!r} mode={self.mode} {state}>"

    def __enter__(self) -> SqliteStorage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------------- plumbing

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction.  BEGIN IMMEDIATE takes the write lock up front, so a
        concurrent writer fails at BEGIN instead of half-way through."""
        with self._write_lock:
            yield from self._tx_locked()

    def _tx_locked(self) -> Iterator[sqlite3.Connection]:
        conn = self._live()
        # One connection, two writers (the pool's writer thread and the trio thread, e.g. the
        # updates store): without this lock the second BEGIN fails ("cannot start a transaction
        # within a transaction").  Write transactions are short: the trio thread waits at most
        # one of them.
        with self._tx_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc
            yield from self._in_tx(conn)

    def _in_tx(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the transaction may already be gone (e.g. SQLITE_FULL rolls back)
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, self.path) from exc
            raise

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self._live()
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    def _live(self) -> sqlite3.Connection:
        if getattr(self, "_closed", False):
            raise LocalProtocolError("storage is closed")
        return self._conn

    def _initialise(self) -> None:
        with self._tx() as conn:
            conn.execute(_META_DDL)
            conn.execute(_DCS_V2_DDL.format(name="dcs"))
            conn.execute(_CONFIG_DDL)
            conn.execute(_UPDATES_STATE_DDL)
            conn.execute(_UPDATES_CHANNELS_DDL)
            conn.execute("INSERT INTO meta (key, value) VALUES ('mode', ?)", (self.mode,))
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {CURRENT_VERSION}")
        log.info("initialised %s session schema v%d in %s", self.mode, CURRENT_VERSION, self.path)

    def _migrate(self, version: int) -> None:
        start = version
        with self._tx() as conn:
            while version < CURRENT_VERSION:
                _MIGRATIONS[version](conn)
                version += 1
            # user_version lives in the database header and is part of the transaction.
            conn.execute(f"PRAGMA user_version = {version}")
        log.info("migrated session %s from schema v%d to v%d", self.path, start, version)

    def _meta(self, key: str) -> Any:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def _set_meta(self, key: str, value: int | None) -> None:
        with self._tx() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    # ----------------------------------------------------------------------- home DC / user

    def get_home_dc(self) -> int | None:
        return self._meta("home_dc")  # type: ignore[no-any-return]

    def set_home_dc(self, dc_id: int) -> None:
        self._set_meta("home_dc", check_dc_id(dc_id))
        log.debug("home DC set to %d", dc_id)

    def get_user_id(self) -> int | None:
        return self._meta("user_id")  # type: ignore[no-any-return]

    def set_user_id(self, user_id: int | None) -> None:
        self._set_meta("user_id", None if user_id is None else check_int64("user_id", user_id))

    # ----------------------------------------------------------------------- keys

    _SELECT_DC = "SELECT dc_id, auth_key, key_id, created_at, authorized_user_id, salt FROM dcs"

    def get_dc(self, dc_id: int) -> DcRecord | None:
        rows = self._read(self._SELECT_DC + " WHERE dc_id = ?", (check_dc_id(dc_id),))
        return _record(*rows[0]) if rows else None

    def list_dcs(self) -> list[DcRecord]:
        return [_record(*row) for row in self._read(self._SELECT_DC + " ORDER BY dc_id")]

    def save_auth_key(self, dc_id: int, auth_key: bytes, key_id: int, created_at: float) -> None:
        dc_id = check_dc_id(dc_id)
        key, kid = check_auth_key(auth_key, key_id)
        created = check_time("created_at", created_at)
        with self._tx() as conn:
            # INSERT OR REPLACE rewrites the whole row: the old key's salt and authorization
            # mark go with it (a new key is unauthorized until proven otherwise).
            conn.execute(
                "INSERT OR REPLACE INTO dcs"
                " (dc_id, auth_key, key_id, created_at, authorized_user_id, salt)"
                " VALUES (?, ?, ?, ?, NULL, NULL)",
                (dc_id, key, kid, created),
            )
        log.debug("saved auth key %d for DC %d", kid, dc_id)

    def drop_auth_key(self, dc_id: int) -> None:
        with self._tx() as conn:
            cur = conn.execute("DELETE FROM dcs WHERE dc_id = ?", (check_dc_id(dc_id),))
        if cur.rowcount:
            log.debug("dropped auth key of DC %d", dc_id)

    def set_authorized(self, dc_id: int, user_id: int | None, *, key_id: int | None = None) -> bool:
        uid = None if user_id is None else check_int64("user_id", user_id)
        return self._update_dc("authorized_user_id", uid, check_dc_id(dc_id), key_id)

    def clear_all_authorizations(self) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE dcs SET authorized_user_id = NULL")
            conn.execute("DELETE FROM meta WHERE key IN ('user_id', 'login_kind')")
        log.debug("cleared all authorizations")

    # How the stored login was made (dcpool.login: "phone", "qr", "bot", "+password"), for
    # ``dcpool session show``.  Optional: not part of the Storage protocol.
    def get_login_kind(self) -> str | None:
        value = self._meta("login_kind")
        return value if isinstance(value, str) else None

    def set_login_kind(self, kind: str | None) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM meta WHERE key = 'login_kind'")
            if kind is not None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('login_kind', ?)", (str(kind),))

    def set_salt(self, dc_id: int, salt: int, *, key_id: int | None = None) -> bool:
        return self._update_dc("salt", check_int64("salt", salt), check_dc_id(dc_id), key_id)

    def _update_dc(self, column: str, value: int | None, dc_id: int, key_id: int | None) -> bool:
        # The key_id guard makes a late write for a key that has since been replaced a no-op.
        sql = f"UPDATE dcs SET {column} = ? WHERE dc_id = ?"
        args: tuple[Any, ...] = (value, dc_id)
        if key_id is not None:
            sql += " AND key_id = ?"
            args += (check_int64("key_id", key_id),)
        with self._tx() as conn:
            cur = conn.execute(sql, args)
        return cur.rowcount > 0

    # ----------------------------------------------------------------------- config

    def get_config(self) -> ConfigSnapshot | None:
        rows = self._read("SELECT blob, expires, fetched_at FROM config WHERE id = 1")
        if not rows:
            return None
        blob, expires, fetched_at = rows[0]
        return ConfigSnapshot(blob=bytes(blob), expires=float(expires), fetched_at=float(fetched_at))

    def set_config(self, blob: bytes, expires: float, fetched_at: float) -> None:
        args = (
            check_blob(blob),
            check_time("expires", expires),
            check_time("fetched_at", fetched_at),
        )
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO config (id, blob, expires, fetched_at) VALUES (1, ?, ?, ?)",
                args,
            )

    # ----------------------------------------------------------------------- updates state

    def get_updates_state(self) -> tuple[tuple[int, int, int, int], dict[int, int]] | None:
        """((pts, qts, date, seq), {channel_id: pts}) as last saved, or None."""
        rows = self._read("SELECT pts, qts, date, seq FROM updates_state WHERE id = 1")
        if not rows:
            return None
        channels = self._read("SELECT channel_id, pts FROM updates_channels WHERE pts IS NOT NULL")
        pts, qts, date, seq = (int(v) for v in rows[0])
        return (pts, qts, date, seq), {int(c): int(p) for c, p in channels}

    def set_updates_state(self, pts: int, qts: int, date: int, seq: int,
                          channels: dict[int, int | None]) -> None:
        """Store the common state and the given channel pts (None: forget the pts), at once."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO updates_state (id, pts, qts, date, seq) VALUES (1, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET pts = excluded.pts, qts = excluded.qts,"
                " date = excluded.date, seq = excluded.seq",
                (pts, qts, date, seq),
            )
            conn.executemany(
                "INSERT INTO updates_channels (channel_id, pts) VALUES (?, ?)"
                " ON CONFLICT (channel_id) DO UPDATE SET pts = excluded.pts",
                list(channels.items()),
            )

    def get_channel_access_hashes(self) -> dict[int, int]:
        rows = self._read("SELECT channel_id, access_hash FROM updates_channels WHERE access_hash IS NOT NULL")
        return {int(c): int(h) for c, h in rows}

    def set_channel_access_hash(self, channel_id: int, access_hash: int) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO updates_channels (channel_id, access_hash) VALUES (?, ?)"
                " ON CONFLICT (channel_id) DO UPDATE SET access_hash = excluded.access_hash",
                (channel_id, access_hash),
            )

    def close(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            self._conn.close()


def _record(
    dc_id: int,
    key: bytes,
    key_id: int,
    created_at: float | None,
    user: int | None,
    salt: int | None,
) -> DcRecord:
    return DcRecord(
        dc_id=dc_id,
        auth_key=bytes(key),
        key_id=key_id,
        created_at=created_at,
        authorized_user_id=user,
        salt=salt,
    )


# --------------------------------------------------------------------------- CLI helper


def session_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``dcpool session show`` prints: everything about a session file except secrets.

    Opens the file read-only (no migration, no mode check: it reports the stored mode), with the
    same validation as :class:`SqliteStorage`, so a corrupt file raises
    :class:`~dcpool.errors.CorruptStorage` and is not modified.  Key bytes and salts are never
    included; key ids are (they are sent in clear with every message).
    """
    p = Path(path)
    if not p.exists():
        raise StorageError(f"no session file at {p}")
    if _check_header(p):
        raise CorruptStorage(f"{p} is empty: no session was ever stored in it")
    version, mode = _inspect_file(p)
    conn = _connect(p, read_only=True)
    try:
        if version == 0:
            raise CorruptStorage(f"{p} is an empty SQLite database, not a dcpool session")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if version >= 2:
            rows = conn.execute(
                "SELECT dc_id, key_id, created_at, authorized_user_id, salt IS NOT NULL"
                " FROM dcs ORDER BY dc_id"
            ).fetchall()
        else:
            rows = [
                (dc, auth_key_id(key), None, user, has_salt)
                for dc, key, user, has_salt in conn.execute(
                    "SELECT dc_id, auth_key, authorized_user_id, salt IS NOT NULL"
                    " FROM dcs ORDER BY dc_id"
                )
            ]
        config = conn.execute("SELECT expires, fetched_at, length(blob) FROM config").fetchone()
    except sqlite3.Error as exc:
        raise _translate(exc, p) from exc
    finally:
        conn.close()
    return {
        "path": os.fspath(p),
        "schema_version": version,
        "mode": mode,
        "home_dc": meta.get("home_dc"),
        "user_id": meta.get("user_id"),
        "login_kind": meta.get("login_kind"),
        "dcs": [
            {
                "dc_id": dc_id,
                "key_id": key_id,
                "created_at": created_at,
                "authorized_user_id": user,
                "has_salt": bool(has_salt),
            }
            for dc_id, key_id, created_at, user, has_salt in rows
        ],
        "config": None
        if config is None
        else {"expires": config[0], "fetched_at": config[1], "size": config[2]},
    }
