"""The PostgreSQL session storage passes the shared Storage behaviour suite, persists across
reopen, and refuses writes under a stale lease epoch."""

import importlib.util
import os

import pytest

from dcpool.errors import LocalProtocolError
from dcpool.storage import Storage
from dcpool.storage.postgres import PostgresStorage

_spec = importlib.util.spec_from_file_location(
    "storage_behaviour_shared",
    os.path.join(os.path.dirname(__file__), "..", "storage", "test_storage_behaviour.py"))
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
make_key = _shared.make_key

# every backend-agnostic behaviour test, run against this backend (through the fixture below)
_BACKEND_TESTS = [name for name in dir(_shared) if name.startswith("test_") and
                  "storage" in _shared.__dict__[name].__code__.co_varnames[:_shared.__dict__[name].__code__.co_argcount]]
globals().update({name: getattr(_shared, name) for name in _BACKEND_TESTS})


@pytest.fixture
def storage(pg_dsn):
    s = PostgresStorage(pg_dsn, "acc", "prod")
    yield s
    s.close()


def test_is_a_storage(storage):
    assert isinstance(storage, Storage)
    assert len(_BACKEND_TESTS) >= 10


def test_persists_across_reopen_and_fences(pg_dsn):
    key, kid = make_key(1)
    s = PostgresStorage(pg_dsn, "acc", "prod", epoch=1)
    s.set_home_dc(2)
    s.save_auth_key(2, key, kid, 100.0)
    s.set_salt(2, -5)
    s.set_authorized(2, 77)
    s.set_user_id(77)
    s.close()
    t = PostgresStorage(pg_dsn, "acc", "prod", epoch=2)
    rec = t.get_dc(2)
    assert (t.get_home_dc(), t.get_user_id(), rec.auth_key, rec.key_id, rec.salt, rec.authorized_user_id) == (2, 77, key, kid, -5, 77)
    t.set_salt(2, 9)  # the new owner writes under epoch 2
    stale = PostgresStorage(pg_dsn, "acc", "prod", epoch=1)
    with pytest.raises(LocalProtocolError):
        stale.set_salt(2, 1)
    stale.close()
    other = PostgresStorage(pg_dsn, "other", "prod")
    assert other.list_dcs() == []
    other.close()
    t.close()
