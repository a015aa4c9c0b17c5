"""The SQLite file itself: permissions, corrupt and foreign files, mode mismatch, migrations,
hot-journal recovery and the ``session show`` summary."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dcpool.errors import CorruptStorage, StorageError, StorageModeMismatch
from dcpool.storage import CURRENT_VERSION, DcRecord, SqliteStorage, session_summary
from dcpool.storage.sqlite import APPLICATION_ID


def make_key(seed: int) -> tuple[bytes, int]:
    key = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(8))
    return key, int.from_bytes(hashlib.sha1(key).digest()[12:20], "little", signed=True)


def mode_bits(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def populated(path: Path, mode: str = "prod") -> Path:
    key, kid = make_key(1)
    with SqliteStorage(path, mode) as s:
        s.save_auth_key(2, key, kid, 10.0)
        s.set_salt(2, 77)
        s.set_home_dc(2)
        s.set_config(b"cfg", 100.0, 50.0)
    return path


# --------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("mask", [0o022, 0o000, 0o277])
def test_new_file_is_0600_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    path = tmp_path / "s.db"
    with umask(mask):
        s = SqliteStorage(path, "prod")
    try:
        assert mode_bits(path) == 0o600
        key, kid = make_key(1)
        s.save_auth_key(1, key, kid, 1.0)  # the write bit must be there
        # SQLite gives its WAL side files the database file's permissions
        for side in ("-wal", "-shm"):
            side_path = Path(str(path) + side)
            if side_path.exists():
                assert mode_bits(side_path) == 0o600
    finally:
        s.close()


def test_existing_file_permissions_are_left_alone(tmp_path: Path) -> None:
    path = populated(tmp_path / "s.db")
    os.chmod(path, 0o640)
    SqliteStorage(path, "prod").close()
    assert mode_bits(path) == 0o640


def test_empty_existing_file_is_a_new_session(tmp_path: Path) -> None:
    # a crash right after the 0600 file was created leaves it empty: not corrupt
    path = tmp_path / "s.db"
    path.touch(mode=0o600)
    with SqliteStorage(path, "test") as s:
        assert s.list_dcs() == []
    assert session_summary(path)["mode"] == "test"


# --------------------------------------------------------------------------- corrupt files


def _random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(8192))


def _sqlite_magic_then_garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + random.Random(2).randbytes(4000))


def _short_header(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\x10\x00" * 10)


def _truncated_half(path: Path) -> None:
    populated(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_to_one_page(path: Path) -> None:
    populated(path)
    path.write_bytes(path.read_bytes()[:4096])


def _foreign_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE songs (title TEXT, artist TEXT)")
    conn.execute("INSERT INTO songs VALUES ('a', 'b')")
    conn.commit()
    conn.close()


def _foreign_sqlite_same_table_names(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value)")
    conn.execute("CREATE TABLE dcs (dc_id INTEGER PRIMARY KEY, auth_key BLOB)")
    conn.execute("CREATE TABLE config (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()


def _wrong_schema_missing_table(path: Path) -> None:
    populated(path)
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE config")
    conn.commit()
    conn.close()


def _wrong_schema_extra_column(path: Path) -> None:
    populated(path)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE dcs ADD COLUMN extra TEXT")
    conn.commit()
    conn.close()


def _unknown_version(path: Path) -> None:
    populated(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 0")  # ours, but no version we ever wrote
    conn.commit()
    conn.close()


def _trigger_added(path: Path) -> None:
    populated(path)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TRIGGER t AFTER UPDATE ON meta BEGIN DELETE FROM dcs; END")
    conn.commit()
    conn.close()


def _key_id_mismatch(path: Path) -> None:
    populated(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE dcs SET key_id = key_id + 1")
    conn.commit()
    conn.close()


def _bad_mode(path: Path) -> None:
    populated(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = 'staging' WHERE key = 'mode'")
    conn.commit()
    conn.close()


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "random bytes": _random_bytes,
    "sqlite magic then garbage": _sqlite_magic_then_garbage,
    "short header": _short_header,
    "truncated to half": _truncated_half,
    "truncated to one page": _truncated_to_one_page,
    "foreign sqlite db": _foreign_sqlite,
    "foreign db with our table names": _foreign_sqlite_same_table_names,
    "wrong schema: missing table": _wrong_schema_missing_table,
    "wrong schema: extra column": _wrong_schema_extra_column,
    "unknown schema version": _unknown_version,
    "trigger added": _trigger_added,
    "key id does not match key": _key_id_mismatch,
    "invalid mode": _bad_mode,
}


@pytest.mark.parametrize("damage", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
@pytest.mark.parametrize("mode", ["prod", "test"])
def test_corrupt_file_is_refused_and_left_untouched(
    tmp_path: Path, damage: Callable[[Path], None], mode: str
) -> None:
    path = tmp_path / "s.db"
    damage(path)
    before = path.read_bytes()
    with pytest.raises(CorruptStorage) as info:
        SqliteStorage(path, mode)
    assert str(path) in str(info.value)
    with pytest.raises(CorruptStorage):
        session_summary(path)
    assert path.read_bytes() == before


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = populated(tmp_path / "s.db")
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {CURRENT_VERSION + 1}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="newer|reads up to") as info:
        SqliteStorage(path, "prod")
    assert not isinstance(info.value, CorruptStorage)
    assert path.read_bytes() == before


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CorruptStorage):
        SqliteStorage(tmp_path, "prod")


def test_missing_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        SqliteStorage(tmp_path / "nope" / "s.db", "prod")


# --------------------------------------------------------------------------- mode mismatch


@pytest.mark.parametrize(("stored", "requested"), [("prod", "test"), ("test", "prod")])
def test_mode_mismatch_is_refused_and_left_untouched(
    tmp_path: Path, stored: str, requested: str
) -> None:
    path = populated(tmp_path / "s.db", stored)
    before = path.read_bytes()
    with pytest.raises(StorageModeMismatch, match=f"{stored} session.*{requested} mode"):
        SqliteStorage(path, requested)
    assert path.read_bytes() == before
    with SqliteStorage(path, stored) as s:  # still perfectly usable in its own mode
        assert s.get_home_dc() == 2


def test_mode_mismatch_does_not_even_checkpoint_a_leftover_wal(tmp_path: Path) -> None:
    # A session whose process died with committed data still in the WAL: a read-write
    # connection would checkpoint it into the file when closing.  Refusing must not.
    src = tmp_path / "live.db"
    s = SqliteStorage(src, "prod")
    key, kid = make_key(3)
    s.save_auth_key(4, key, kid, 1.0)
    copy = tmp_path / "crashed.db"
    for suffix in ("", "-wal"):
        shutil.copyfile(str(src) + suffix, str(copy) + suffix)
    s.close()
    assert os.path.getsize(str(copy) + "-wal") > 0
    before = copy.read_bytes()
    with pytest.raises(StorageModeMismatch):
        SqliteStorage(copy, "test")
    assert copy.read_bytes() == before
    with SqliteStorage(copy, "prod") as ok:  # the committed key is there
        assert ok.get_dc(4) is not None


# --------------------------------------------------------------------------- migrations


V1_DDL = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value)",
    "CREATE TABLE dcs (dc_id INTEGER PRIMARY KEY NOT NULL, auth_key BLOB NOT NULL,"
    " authorized_user_id INTEGER, salt INTEGER)",
    "CREATE TABLE config (id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1), blob BLOB NOT NULL,"
    " expires REAL NOT NULL, fetched_at REAL NOT NULL)",
]


def make_v1(path: Path, mode: str = "prod", keys: dict[int, bytes] | None = None) -> None:
    """A session file as schema v1 wrote it, built by hand."""
    conn = sqlite3.connect(path)
    for ddl in V1_DDL:
        conn.execute(ddl)
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)", [("mode", mode), ("home_dc", 4), ("user_id", 1234)]
    )
    keys = keys if keys is not None else {2: make_key(2)[0], 4: make_key(4)[0]}
    conn.executemany(
        "INSERT INTO dcs VALUES (?, ?, ?, ?)",
        [(dc, key, 1234 if dc == 4 else None, -dc) for dc, key in keys.items()],
    )
    conn.execute("INSERT INTO config VALUES (1, ?, 500.0, 400.0)", (b"old config",))
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_v1_file_migrates_to_current(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    make_v1(path)
    with SqliteStorage(path, "prod") as s:
        key2, kid2 = make_key(2)
        key4, kid4 = make_key(4)
        assert s.list_dcs() == [
            DcRecord(dc_id=2, auth_key=key2, key_id=kid2, created_at=None, salt=-2),
            DcRecord(
                dc_id=4, auth_key=key4, key_id=kid4, created_at=None, authorized_user_id=1234,
                salt=-4,
            ),
        ]
        assert (s.get_home_dc(), s.get_user_id()) == (4, 1234)
        cfg = s.get_config()
        assert cfg is not None and (cfg.blob, cfg.expires, cfg.fetched_at) == (b"old config", 500.0, 400.0)
        # and it works as a current session
        key, kid = make_key(9)
        s.save_auth_key(2, key, kid, 77.0)
    assert user_version(path) == CURRENT_VERSION
    with SqliteStorage(path, "prod") as s:  # reopening is a no-op
        assert s.get_dc(2).created_at == 77.0  # type: ignore[union-attr]
    summary = session_summary(path)
    assert summary["schema_version"] == CURRENT_VERSION


def test_v1_in_the_other_mode_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    make_v1(path, mode="test")
    before = path.read_bytes()
    with pytest.raises(StorageModeMismatch):
        SqliteStorage(path, "prod")
    assert path.read_bytes() == before
    assert user_version(path) == 1


def test_v1_with_a_bad_key_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    make_v1(path, keys={2: b"short"})
    before = path.read_bytes()
    with pytest.raises(CorruptStorage):
        SqliteStorage(path, "prod")
    assert path.read_bytes() == before


def test_summary_reads_v1_without_migrating(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    make_v1(path)
    before = path.read_bytes()
    summary = session_summary(path)
    assert summary["schema_version"] == 1
    assert [d["key_id"] for d in summary["dcs"]] == [make_key(2)[1], make_key(4)[1]]
    assert [d["created_at"] for d in summary["dcs"]] == [None, None]
    assert path.read_bytes() == before


# --------------------------------------------------------------------------- recovery


def test_hot_rollback_journal_is_recovered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A crash inside a rollback-journal transaction leaves a hot journal; the read-only check
    cannot roll it back, so opening retries read-write and SQLite undoes the half-write."""
    path = populated(tmp_path / "s.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA cache_size = 1")  # force uncommitted pages out to the file
    conn.execute("BEGIN")
    conn.execute("UPDATE config SET blob = ?", (b"\xee" * 200_000,))
    crashed = tmp_path / "crashed.db"
    shutil.copyfile(path, crashed)
    shutil.copyfile(str(path) + "-journal", str(crashed) + "-journal")
    conn.execute("ROLLBACK")
    conn.close()
    assert crashed.read_bytes() != path.read_bytes()  # the half-written pages are in the copy
    caplog.set_level("INFO", logger="dcpool.storage")
    with SqliteStorage(crashed, "prod") as s:
        cfg = s.get_config()
        assert cfg is not None and cfg.blob == b"cfg"
        assert s.get_dc(2) is not None
    assert any("recovering" in r.getMessage() for r in caplog.records)
    assert not Path(str(crashed) + "-journal").exists()


# --------------------------------------------------------------------------- summary


def test_session_summary_has_everything_but_secrets(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    key, kid = make_key(5)
    salt = 0x5A17_5A17_5A17_5A17
    with SqliteStorage(path, "test") as s:
        s.save_auth_key(2, key, kid, 1234.5)
        s.set_salt(2, salt)
        s.set_authorized(2, 42)
        s.set_user_id(42)
        s.set_home_dc(2)
        s.set_config(b"c" * 10, expires=9999.0, fetched_at=9000.0)
    before = path.read_bytes()
    summary = session_summary(path)
    assert summary == {
        "path": str(path),
        "schema_version": CURRENT_VERSION,
        "mode": "test",
        "home_dc": 2,
        "user_id": 42,
        "login_kind": None,
        "dcs": [
            {
                "dc_id": 2,
                "key_id": kid,
                "created_at": 1234.5,
                "authorized_user_id": 42,
                "has_salt": True,
            }
        ],
        "config": {"expires": 9999.0, "fetched_at": 9000.0, "size": 10},
    }
    text = repr(summary)
    assert key.hex() not in text and str(salt) not in text
    assert path.read_bytes() == before


def test_session_summary_of_nothing(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        session_summary(tmp_path / "missing.db")
    (tmp_path / "empty.db").touch()
    with pytest.raises(CorruptStorage):
        session_summary(tmp_path / "empty.db")


def test_login_kind_is_kept_and_cleared_with_the_login(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    with SqliteStorage(path, "test") as s:
        assert s.get_login_kind() is None
        s.set_user_id(7)
        s.set_login_kind("qr+password")
    assert session_summary(path)["login_kind"] == "qr+password"
    with SqliteStorage(path, "test") as s:
        assert s.get_login_kind() == "qr+password"
        s.clear_all_authorizations()
        assert s.get_login_kind() is None
