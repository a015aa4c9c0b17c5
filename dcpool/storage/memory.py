"""In-memory storage: the same behaviour as the SQLite backend, gone when the process ends.

Used when no session path is given (every run creates fresh keys) and as the reference
behaviour in tests: both backends run the same test suite.
"""

from __future__ import annotations

import logging

import attrs

from ..errors import LocalProtocolError
from .base import (
    ConfigSnapshot,
    DcRecord,
    check_auth_key,
    check_blob,
    check_dc_id,
    check_int64,
    check_mode,
    check_time,
)

__all__ = ["MemoryStorage"]

log = logging.getLogger("dcpool.storage")


class MemoryStorage:
    """A :class:`~dcpool.storage.Storage` kept in dicts.  Records are frozen, so handing them
    out shares nothing mutable with the caller."""

    #: writes are dict updates: the pool's writer need not move them off the event loop
    writes_block = False

    def __init__(self, mode: str = "prod") -> None:
        self.mode: str = check_mode(mode)
        self._home_dc: int | None = None
        self._user_id: int | None = None
        self._login_kind: str | None = None
        self._dcs: dict[int, DcRecord] = {}
        self._config: ConfigSnapshot | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<MemoryStorage mode={self.mode} dcs={sorted(self._dcs)} home_dc={self._home_dc}>"

    def __enter__(self) -> MemoryStorage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise LocalProtocolError("storage is closed")

    # ----------------------------------------------------------------------- home DC / user

    def get_home_dc(self) -> int | None:
        self._check_open()
        return self._home_dc

    def set_home_dc(self, dc_id: int) -> None:
        self._check_open()
        self._home_dc = check_dc_id(dc_id)

    def get_user_id(self) -> int | None:
        self._check_open()
        return self._user_id

    def set_user_id(self, user_id: int | None) -> None:
        self._check_open()
        self._user_id = None if user_id is None else check_int64("user_id", user_id)

    # ----------------------------------------------------------------------- keys

    def get_dc(self, dc_id: int) -> DcRecord | None:
        self._check_open()
        return self._dcs.get(check_dc_id(dc_id))

    def list_dcs(self) -> list[DcRecord]:
        self._check_open()
        return [self._dcs[k] for k in sorted(self._dcs)]

    def save_auth_key(self, dc_id: int, auth_key: bytes, key_id: int, created_at: float) -> None:
        self._check_open()
        dc_id = check_dc_id(dc_id)
        key, kid = check_auth_key(auth_key, key_id)
        created = check_time("created_at", created_at)
        # A new key starts unauthorized and without a salt: both belonged to the old key.
        self._dcs[dc_id] = DcRecord(dc_id=dc_id, auth_key=key, key_id=kid, created_at=created)
        log.debug("saved auth key %d for DC %d", kid, dc_id)

    def drop_auth_key(self, dc_id: int) -> None:
        self._check_open()
        if self._dcs.pop(check_dc_id(dc_id), None) is not None:
            log.debug("dropped auth key of DC %d", dc_id)

    def set_authorized(self, dc_id: int, user_id: int | None, *, key_id: int | None = None) -> bool:
        self._check_open()
        rec = self._current(check_dc_id(dc_id), key_id)
        if rec is None:
            return False
        uid = None if user_id is None else check_int64("user_id", user_id)
        self._dcs[dc_id] = attrs.evolve(rec, authorized_user_id=uid)
        return True

    def clear_all_authorizations(self) -> None:
        self._check_open()
        self._dcs = {k: attrs.evolve(r, authorized_user_id=None) for k, r in self._dcs.items()}
        self._user_id = None
        self._login_kind = None

    # How the stored login was made (see SqliteStorage.get_login_kind); not in the protocol.
    def get_login_kind(self) -> str | None:
        return self._login_kind

    def set_login_kind(self, kind: str | None) -> None:
        self._check_open()
        self._login_kind = kind

    def set_salt(self, dc_id: int, salt: int, *, key_id: int | None = None) -> bool:
        self._check_open()
        salt = check_int64("salt", salt)
        rec = self._current(check_dc_id(dc_id), key_id)
        if rec is None:
            return False
        self._dcs[dc_id] = attrs.evolve(rec, salt=salt)
        return True

    def _current(self, dc_id: int, key_id: int | None) -> DcRecord | None:
        rec = self._dcs.get(dc_id)
        if rec is None or (key_id is not None and rec.key_id != key_id):
            return None
        return rec

    # ----------------------------------------------------------------------- config

    def get_config(self) -> ConfigSnapshot | None:
        self._check_open()
        return self._config

    def set_config(self, blob: bytes, expires: float, fetched_at: float) -> None:
        self._check_open()
        self._config = ConfigSnapshot(
            blob=check_blob(blob),
            expires=check_time("expires", expires),
            fetched_at=check_time("fetched_at", fetched_at),
        )

    def close(self) -> None:
        self._closed = True
