"""PostgreSQL session storage for fleets: many accounts' sessions in one database.

One row per account (``dcpool_sessions``): the whole session (home DC, user id, per-DC key,
key id, creation time, authorization mark, salt, config snapshot) as one JSON document, written
in one transaction per change, so every write is atomic like the SQLite backend's.  Reads come
from an in-process copy (a :class:`MemoryStorage`, which also owns the argument checks and the
rules of the protocol), so the synchronous ``Storage`` calls the pool makes between awaits cost
nothing; only writes (keys, salts, authorizations: rare) go to the database.

Fencing: with ``epoch=`` (the account's lease epoch, see :mod:`dcpool.bridge.outbox`) a write
is refused with :class:`~dcpool.errors.LocalProtocolError` when the stored row was written under
a newer epoch: a process that lost its lease cannot overwrite the new owner's keys or salts.

Key material is stored in the database (as the SQLite backend stores it in its 0600 file):
protect the database accordingly.  Nothing secret is logged or shown in reprs.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ..errors import LocalProtocolError
from .base import check_mode
from .memory import MemoryStorage

__all__ = ["PostgresStorage"]

_SCHEMA = """CREATE TABLE IF NOT EXISTS dcpool_sessions (
    account TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    session TEXT NOT NULL,
    epoch BIGINT NOT NULL DEFAULT 0
)"""


def _dump(mem: MemoryStorage) -> str:
    cfg = mem.get_config()
    return json.dumps({
        "home_dc": mem.get_home_dc(),
        "user_id": mem.get_user_id(),
        "dcs": [{"dc_id": r.dc_id, "auth_key": base64.b64encode(r.auth_key).decode(), "key_id": r.key_id,
                 "created_at": r.created_at, "authorized_user_id": r.authorized_user_id, "salt": r.salt}
                for r in mem.list_dcs()],
        "config": None if cfg is None else {"blob": base64.b64encode(cfg.blob).decode(),
                                            "expires": cfg.expires, "fetched_at": cfg.fetched_at},
    })


def _load(mem: MemoryStorage, text: str) -> None:
    data = json.loads(text)
    if data.get("home_dc") is not None:
        mem.set_home_dc(data["home_dc"])
    mem.set_user_id(data.get("user_id"))
    for r in data.get("dcs", []):
        mem.save_auth_key(r["dc_id"], base64.b64decode(r["auth_key"]), r["key_id"],
                          r["created_at"] if r["created_at"] is not None else 0.0)
        if r.get("authorized_user_id") is not None:
            mem.set_authorized(r["dc_id"], r["authorized_user_id"])
        if r.get("salt") is not None:
            mem.set_salt(r["dc_id"], r["salt"])
    cfg = data.get("config")
    if cfg is not None:
        mem.set_config(base64.b64decode(cfg["blob"]), cfg["expires"], cfg["fetched_at"])


class PostgresStorage:
    """A :class:`~dcpool.storage.Storage` for account ``account`` in a PostgreSQL database."""

    def __init__(self, dsn: str, account: str, mode: str = "prod", *, epoch: int | None = None) -> None:
        import psycopg  # noqa: PLC0415  (only fleets need it)

        self.mode: str = check_mode(mode)
        self.account = account
        self.epoch = epoch
        self._mem = MemoryStorage(self.mode)
        self._conn = psycopg.connect(dsn, autocommit=False)
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(7170003)")
            self._conn.execute(_SCHEMA)
            row = self._conn.execute("SELECT mode, session FROM dcpool_sessions WHERE account = %s",
                                     (account,)).fetchone()
        if row is not None:
            if row[0] != self.mode:
                from ..errors import StorageModeMismatch  # noqa: PLC0415

                self._conn.close()
                raise StorageModeMismatch(f"account {account!r} holds a {row[0]} session, not {self.mode}")
            _load(self._mem, row[1])

    def __repr__(self) -> str:
        return f"<PostgresStorage account={self.account!r} mode={self.mode}>"

    def __enter__(self) -> PostgresStorage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _persist(self) -> None:
        text = _dump(self._mem)
        with self._conn.transaction():
            if self.epoch is not None:
                row = self._conn.execute("SELECT epoch FROM dcpool_sessions WHERE account = %s FOR UPDATE",
                                         (self.account,)).fetchone()
                if row is not None and int(row[0]) > self.epoch:
                    raise LocalProtocolError(
                        f"account {self.account!r}: lease epoch {self.epoch} is stale (stored {row[0]})")
            self._conn.execute(
                "INSERT INTO dcpool_sessions (account, mode, session, epoch) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (account) DO UPDATE SET session = excluded.session, epoch = excluded.epoch",
                (self.account, self.mode, text, self.epoch or 0))

    # reads: the in-process copy
    def get_home_dc(self) -> int | None:
        return self._mem.get_home_dc()

    def get_user_id(self) -> int | None:
        return self._mem.get_user_id()

    def get_dc(self, dc_id: int) -> Any:
        return self._mem.get_dc(dc_id)

    def list_dcs(self) -> list[Any]:
        return self._mem.list_dcs()

    def get_config(self) -> Any:
        return self._mem.get_config()

    # writes: the copy checks and applies, then the row is written in one transaction
    def set_home_dc(self, dc_id: int) -> None:
        self._mem.set_home_dc(dc_id)
        self._persist()

    def set_user_id(self, user_id: int | None) -> None:
        self._mem.set_user_id(user_id)
        self._persist()

    def save_auth_key(self, dc_id: int, auth_key: bytes, key_id: int, created_at: float) -> None:
        self._mem.save_auth_key(dc_id, auth_key, key_id, created_at)
        self._persist()

    def drop_auth_key(self, dc_id: int) -> None:
        self._mem.drop_auth_key(dc_id)
        self._persist()

    def set_authorized(self, dc_id: int, user_id: int | None, *, key_id: int | None = None) -> bool:
        changed = self._mem.set_authorized(dc_id, user_id, key_id=key_id)
        if changed:
            self._persist()
        return changed

    def clear_all_authorizations(self) -> None:
        self._mem.clear_all_authorizations()
        self._persist()

    def set_salt(self, dc_id: int, salt: int, *, key_id: int | None = None) -> bool:
        changed = self._mem.set_salt(dc_id, salt, key_id=key_id)
        if changed:
            self._persist()
        return changed

    def set_config(self, blob: bytes, expires: float, fetched_at: float) -> None:
        self._mem.set_config(blob, expires, fetched_at)
        self._persist()

    def close(self) -> None:
        self._mem.close()
        if not self._conn.closed:
            self._conn.close()
