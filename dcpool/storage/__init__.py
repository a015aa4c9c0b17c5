"""Session storage: what must survive a restart, behind a small synchronous protocol.

What is kept
------------
* ``mode``: ``"prod"`` or ``"test"``.  A session belongs to one of Telegram's two separate
  networks (spec §15, §16); opening it in the other mode raises
  :class:`~dcpool.errors.StorageModeMismatch` and changes nothing.
* the home DC id and the id of the signed-in user;
* per DC, a :class:`DcRecord`: the permanent auth key (256 bytes), its key id
  (``SHA1(key)[12:20]`` as a signed LE int64, spec §4.1), when it was created, the user it is
  authorized for (or None), and the last server salt;
* the last ``help.getConfig`` answer as an opaque blob with its expiry and fetch time
  (:class:`ConfigSnapshot`, spec §11.1).  Storage never parses it.

The protocol (every backend, every method synchronous and fast; call them from trio between
awaits)::

    class Storage(Protocol):
        mode: str                                           # "prod" | "test"
        get_home_dc() -> int | None ;  set_home_dc(dc_id)
        get_user_id() -> int | None ;  set_user_id(user_id | None)
        get_dc(dc_id) -> DcRecord | None ;  list_dcs() -> list[DcRecord]   # sorted by dc_id
        save_auth_key(dc_id, auth_key, key_id, created_at)  # atomic; replaces the old key and
                                                            # forgets its salt and authorization
        drop_auth_key(dc_id)                                # no-op if there is none
        set_authorized(dc_id, user_id | None, *, key_id=None) -> bool
        clear_all_authorizations()                          # logout / another user: clears every
                                                            # DC's mark and the user id, atomically
        set_salt(dc_id, salt, *, key_id=None) -> bool
        get_config() -> ConfigSnapshot | None ;  set_config(blob, expires, fetched_at)
        close()

Rules:

* A :class:`DcRecord` exists only while its DC has a key; the salt and the authorization mark
  belong to that key.  ``set_salt``/``set_authorized`` on a DC without a key do nothing and
  return False.  With ``key_id=...`` they also do nothing (False) when the stored key is no
  longer that one: a late write for a key that was replaced between two awaits cannot land on
  its successor.
* A DC counts as authorized for the signed-in user when ``record.authorized_user_id ==
  storage.get_user_id()``; the marks make the authorization transfer (spec §11.3) run once per
  DC, not once per process.
* ``save_auth_key`` checks that the key is 256 bytes and that ``key_id`` is its id, and raises
  :class:`~dcpool.errors.LocalProtocolError` otherwise: a mismatch would only show up later as
  a mysterious -404.  Other bad arguments raise the same.
* Each write is one transaction: a key is fully stored (with its id and time) or absent.
* Nothing secret appears in reprs, log lines or error messages: key bytes and salts are hidden.

Backends: :class:`MemoryStorage` (dicts; sessions die with the process) and
:class:`SqliteStorage` (one private 0600 file, WAL, versioned schema with migrations, refuses
corrupt or foreign files without touching them: see :mod:`dcpool.storage.sqlite`).

``open_storage(None | path | object, *, mode)`` picks one, and :func:`session_summary` reads a
session file for ``dcpool session show`` (no key bytes, no salts).
"""

from __future__ import annotations

import os

from ..errors import LocalProtocolError, StorageModeMismatch
from .base import (
    AUTH_KEY_SIZE,
    ConfigSnapshot,
    DcRecord,
    Mode,
    Storage,
    auth_key_id,
    check_mode,
)
from .memory import MemoryStorage
from .sqlite import CURRENT_VERSION, SqliteStorage, session_summary

__all__ = [
    "AUTH_KEY_SIZE",
    "CURRENT_VERSION",
    "ConfigSnapshot",
    "DcRecord",
    "MemoryStorage",
    "Mode",
    "SqliteStorage",
    "Storage",
    "auth_key_id",
    "open_storage",
    "session_summary",
]


def open_storage(
    session: str | os.PathLike[str] | Storage | None, *, mode: str
) -> Storage:
    """Turn what the user passed as ``session=`` into a :class:`Storage`.

    * ``None``: a fresh :class:`MemoryStorage`;
    * a ``str`` or path-like: a :class:`SqliteStorage` on that file (created 0600 if missing);
    * any other object: used as it is, after checking that it looks like a Storage and that its
      ``mode`` is ``mode`` (else :class:`~dcpool.errors.StorageModeMismatch`).
    """
    mode = check_mode(mode)
    if session is None:
        return MemoryStorage(mode)
    if isinstance(session, (str, os.PathLike)):
        return SqliteStorage(session, mode)
    if not isinstance(session, Storage):
        raise LocalProtocolError(
            f"session must be None, a path or a Storage, not {type(session).__name__}"
        )
    if session.mode != mode:
        raise StorageModeMismatch(
            f"the given storage holds a {session.mode} session; the pool runs in {mode} mode"
        )
    return session
