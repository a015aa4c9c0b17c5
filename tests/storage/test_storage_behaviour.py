"""Behaviour every Storage backend shares (memory and SQLite run the same tests)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcpool.errors import LocalProtocolError, StorageModeMismatch
from dcpool.storage import (
    ConfigSnapshot,
    DcRecord,
    MemoryStorage,
    SqliteStorage,
    Storage,
    open_storage,
)


def make_key(seed: int) -> tuple[bytes, int]:
    key = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(8))
    # spec §4.1: key id = SHA1(key)[12:20] as a signed little-endian int64, computed directly
    key_id = int.from_bytes(hashlib.sha1(key).digest()[12:20], "little", signed=True)
    return key, key_id


@pytest.fixture(params=["memory", "sqlite"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "memory":
        s: Storage = MemoryStorage("prod")
    else:
        s = SqliteStorage(tmp_path / "session.db", "prod")
    yield s
    s.close()


def test_fresh_storage_is_empty(storage: Storage) -> None:
    assert isinstance(storage, Storage)
    assert storage.mode == "prod"
    assert storage.get_home_dc() is None
    assert storage.get_user_id() is None
    assert storage.get_dc(2) is None
    assert storage.list_dcs() == []
    assert storage.get_config() is None


def test_auth_key_round_trip(storage: Storage) -> None:
    key, key_id = make_key(1)
    storage.save_auth_key(2, key, key_id, 1700000000.5)
    rec = storage.get_dc(2)
    assert rec == DcRecord(dc_id=2, auth_key=key, key_id=key_id, created_at=1700000000.5)
    assert rec.authorized_user_id is None and rec.salt is None
    assert storage.get_dc(1) is None
    assert [r.dc_id for r in storage.list_dcs()] == [2]


def test_list_dcs_sorted(storage: Storage) -> None:
    for dc in (4, 1, 3):
        key, kid = make_key(dc)
        storage.save_auth_key(dc, key, kid, float(dc))
    assert [r.dc_id for r in storage.list_dcs()] == [1, 3, 4]


def test_save_replaces_key_and_forgets_salt_and_authorization(storage: Storage) -> None:
    old, old_id = make_key(1)
    storage.save_auth_key(2, old, old_id, 1.0)
    assert storage.set_salt(2, 0x1234)
    assert storage.set_authorized(2, 777)
    new, new_id = make_key(2)
    storage.save_auth_key(2, new, new_id, 2.0)
    rec = storage.get_dc(2)
    assert rec is not None
    assert (rec.auth_key, rec.key_id, rec.created_at) == (new, new_id, 2.0)
    assert rec.salt is None
    assert rec.authorized_user_id is None


def test_save_auth_key_rejects_bad_arguments_and_stores_nothing(storage: Storage) -> None:
    key, kid = make_key(1)
    with pytest.raises(LocalProtocolError):
        storage.save_auth_key(2, key[:255], kid, 1.0)  # wrong size
    with pytest.raises(LocalProtocolError):
        storage.save_auth_key(2, key, kid ^ 1, 1.0)  # key id of another key
    with pytest.raises(LocalProtocolError):
        storage.save_auth_key(2, key, kid, float("nan"))
    with pytest.raises(LocalProtocolError):
        storage.save_auth_key(True, key, kid, 1.0)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        storage.save_auth_key("2", key, kid, 1.0)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        storage.save_auth_key(2, "text", kid, 1.0)  # type: ignore[arg-type]
    assert storage.list_dcs() == []


def test_key_id_error_message_has_no_key_material(storage: Storage) -> None:
    key, kid = make_key(1)
    with pytest.raises(LocalProtocolError) as info:
        storage.save_auth_key(2, key, kid ^ 1, 1.0)
    assert key.hex() not in str(info.value) and repr(key) not in str(info.value)


def test_drop_auth_key(storage: Storage) -> None:
    key, kid = make_key(1)
    storage.save_auth_key(2, key, kid, 1.0)
    storage.drop_auth_key(2)
    assert storage.get_dc(2) is None
    storage.drop_auth_key(2)  # dropping nothing is fine
    storage.drop_auth_key(5)


def test_salt_and_authorization_need_a_key(storage: Storage) -> None:
    assert storage.set_salt(3, 99) is False
    assert storage.set_authorized(3, 5) is False
    assert storage.get_dc(3) is None


def test_key_id_guard_ignores_writes_for_a_replaced_key(storage: Storage) -> None:
    old, old_id = make_key(1)
    new, new_id = make_key(2)
    storage.save_auth_key(2, old, old_id, 1.0)
    storage.save_auth_key(2, new, new_id, 2.0)
    # a late write meant for the old key must not land on the new one
    assert storage.set_salt(2, 42, key_id=old_id) is False
    assert storage.set_authorized(2, 7, key_id=old_id) is False
    rec = storage.get_dc(2)
    assert rec is not None and rec.salt is None and rec.authorized_user_id is None
    assert storage.set_salt(2, 42, key_id=new_id) is True
    assert storage.set_authorized(2, 7, key_id=new_id) is True
    rec = storage.get_dc(2)
    assert rec is not None and (rec.salt, rec.authorized_user_id) == (42, 7)


def test_salt_accepts_the_int64_range_only(storage: Storage) -> None:
    key, kid = make_key(1)
    storage.save_auth_key(1, key, kid, 1.0)
    for salt in (-(1 << 63), (1 << 63) - 1, 0):
        assert storage.set_salt(1, salt)
        assert storage.get_dc(1).salt == salt  # type: ignore[union-attr]
    with pytest.raises(LocalProtocolError):
        storage.set_salt(1, 1 << 63)


def test_authorization_marks(storage: Storage) -> None:
    for dc in (1, 2, 4):
        key, kid = make_key(dc)
        storage.save_auth_key(dc, key, kid, 1.0)
    storage.set_user_id(555)
    assert storage.set_authorized(2, 555)
    assert storage.set_authorized(4, 555)
    assert {r.dc_id: r.authorized_user_id for r in storage.list_dcs()} == {1: None, 2: 555, 4: 555}
    assert storage.set_authorized(4, None)  # clear one mark
    assert storage.get_dc(4).authorized_user_id is None  # type: ignore[union-attr]
    storage.clear_all_authorizations()
    assert all(r.authorized_user_id is None for r in storage.list_dcs())
    assert storage.get_user_id() is None
    # keys and salts survive a logout: only the marks go
    assert [r.dc_id for r in storage.list_dcs()] == [1, 2, 4]


def test_home_dc_and_user_id(storage: Storage) -> None:
    storage.set_home_dc(4)
    assert storage.get_home_dc() == 4
    storage.set_home_dc(2)
    assert storage.get_home_dc() == 2
    storage.set_user_id(1 << 40)
    assert storage.get_user_id() == 1 << 40
    storage.set_user_id(None)
    assert storage.get_user_id() is None
    with pytest.raises(LocalProtocolError):
        storage.set_home_dc(None)  # type: ignore[arg-type]


def test_config_snapshot(storage: Storage) -> None:
    storage.set_config(b"\x1e\x24\x1a\xcc" + b"x" * 1000, expires=2000.0, fetched_at=1000.0)
    assert storage.get_config() == ConfigSnapshot(
        blob=b"\x1e\x24\x1a\xcc" + b"x" * 1000, expires=2000.0, fetched_at=1000.0
    )
    storage.set_config(b"new", expires=3000, fetched_at=2500)
    snap = storage.get_config()
    assert snap is not None and (snap.blob, snap.expires, snap.fetched_at) == (b"new", 3000.0, 2500.0)
    assert "3 bytes" in repr(snap) and "b'new'" not in repr(snap)
    with pytest.raises(LocalProtocolError):
        storage.set_config("text", 1.0, 1.0)  # type: ignore[arg-type]


def test_reprs_hide_key_and_salt(storage: Storage) -> None:
    key, kid = make_key(9)
    storage.save_auth_key(2, key, kid, 1.0)
    storage.set_salt(2, 0x0123456789ABCDEF)
    rec = storage.get_dc(2)
    for text in (repr(rec), str(rec), repr(storage), repr(storage.list_dcs())):
        assert key.hex() not in text
        assert repr(key)[2:40] not in text
        assert str(0x0123456789ABCDEF) not in text
    assert str(kid) in repr(rec)


def test_logs_hold_no_secrets(storage: Storage, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key, kid = make_key(3)
    salt = 0x7EADBEEF12345678
    storage.save_auth_key(2, key, kid, 1.0)
    storage.set_salt(2, salt)
    storage.set_authorized(2, 1)
    storage.set_home_dc(2)
    storage.clear_all_authorizations()
    storage.drop_auth_key(2)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert key.hex() not in everything and str(salt) not in everything and hex(salt) not in everything
    for record in caplog.records:
        assert not any(isinstance(a, (bytes, bytearray)) for a in (record.args or ()))


def test_closed_storage_refuses_calls(storage: Storage) -> None:
    storage.close()
    storage.close()  # idempotent
    with pytest.raises(LocalProtocolError):
        storage.get_home_dc()
    with pytest.raises(LocalProtocolError):
        storage.set_home_dc(1)


def test_bad_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LocalProtocolError):
        MemoryStorage("production")
    with pytest.raises(LocalProtocolError):
        SqliteStorage(tmp_path / "x.db", "production")
    assert not (tmp_path / "x.db").exists()
    with pytest.raises(LocalProtocolError):
        open_storage(None, mode="Test")


def test_sqlite_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    key, kid = make_key(5)
    with SqliteStorage(path, "test") as s:
        s.save_auth_key(3, key, kid, 12.5)
        s.set_salt(3, -5)
        s.set_authorized(3, 99)
        s.set_user_id(99)
        s.set_home_dc(3)
        s.set_config(b"blob", 100.0, 50.0)
    with SqliteStorage(path, "test") as s:
        assert s.get_dc(3) == DcRecord(
            dc_id=3, auth_key=key, key_id=kid, created_at=12.5, authorized_user_id=99, salt=-5
        )
        assert (s.get_user_id(), s.get_home_dc()) == (99, 3)
        assert s.get_config() == ConfigSnapshot(blob=b"blob", expires=100.0, fetched_at=50.0)


# --------------------------------------------------------------------------- open_storage


def test_open_storage_dispatch(tmp_path: Path) -> None:
    mem = open_storage(None, mode="test")
    assert isinstance(mem, MemoryStorage) and mem.mode == "test"
    s1 = open_storage(str(tmp_path / "a.db"), mode="prod")
    s2 = open_storage(tmp_path / "b.db", mode="prod")
    assert isinstance(s1, SqliteStorage) and isinstance(s2, SqliteStorage)
    s1.close()
    s2.close()
    given = MemoryStorage("prod")
    assert open_storage(given, mode="prod") is given


def test_open_storage_checks_a_given_object(tmp_path: Path) -> None:
    with pytest.raises(StorageModeMismatch):
        open_storage(MemoryStorage("test"), mode="prod")
    with pytest.raises(LocalProtocolError):
        open_storage(object(), mode="prod")  # type: ignore[arg-type]


def test_open_storage_accepts_a_path_like(tmp_path: Path) -> None:
    class P(os.PathLike[str]):
        def __fspath__(self) -> str:
            return str(tmp_path / "pl.db")

    s = open_storage(P(), mode="prod")
    s.close()
    assert (tmp_path / "pl.db").exists()
