"""Moving a login between dcpool storage and other libraries' sessions.

Import (:func:`import_session`) writes the foreign session's home DC, its auth key and, when
the format recorded it, the user id into a dcpool :class:`~dcpool.storage.Storage` that holds
no login yet: the key is the one the other library created, so the pool needs no key exchange
and no sign-in on that DC (the home key counts as signed in for the user, spec §11.3: other DCs
get their authorization by export/import from it).  When the format does not record the user
(Telethon), :func:`identify_user` asks the home DC who the key belongs to
(``users.getUsers([inputUserSelf])``) through a short-lived pool, with that same key.

Export (:func:`export_session`) reads the home DC's key back out, as a Telethon
``StringSession`` or a Pyrogram session string.

Nothing is ever overwritten: importing into a storage that already holds a key or a user raises
:class:`SessionExists` before anything is written.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .. import tl
from ..dcs import DcTable
from ..errors import AuthKeyUnregistered, LocalProtocolError, StorageModeMismatch
from ..storage import Storage, auth_key_id, open_storage
from .formats import (
    ForeignSession,
    SessionExists,
    SessionFormatError,
    SessionNotSignedIn,
    parse_session_string,
    pyrogram_string,
    read_session_file,
    telethon_string,
)

__all__ = ["load_session", "import_session", "identify_user", "export_session", "FORMATS"]

FORMATS = ("telethon", "pyrogram")


def load_session(path: str | os.PathLike[str] | None = None, *, string: str | None = None) -> ForeignSession:
    """Read a foreign session from a file or a string (exactly one of them)."""
    if (path is None) == (string is None):
        raise LocalProtocolError("give a session file path or a session string, not both or neither")
    if string is not None:
        return parse_session_string(string)
    assert path is not None
    return read_session_file(path)


def _holds_login(storage: Storage) -> bool:
    return bool(storage.list_dcs()) or storage.get_user_id() is not None


def import_session(session: ForeignSession, storage: Storage, *, user_id: int | None = None) -> None:
    """Write ``session`` into an empty ``storage`` (see the module docstring).

    ``user_id`` fills in a user the format did not record; if it is still unknown afterwards,
    run :func:`identify_user`.  Raises :class:`SessionExists` (storage holds a login) or
    :class:`~dcpool.errors.StorageModeMismatch` (test session into prod storage or vice versa)
    before writing anything.
    """
    if _holds_login(storage):
        raise SessionExists("the dcpool session already holds a login: import into a new one")
    if session.test_mode is not None and session.test_mode != (storage.mode == "test"):
        kind = "test" if session.test_mode else "production"
        raise StorageModeMismatch(f"the {session.source} session is a {kind} session; "
                                  f"the dcpool storage is in {storage.mode} mode")
    if user_id is not None and session.user_id is not None and user_id != session.user_id:
        raise LocalProtocolError(f"user id {user_id} given, but the session belongs to {session.user_id}")
    uid = session.user_id if session.user_id is not None else user_id
    key_id = auth_key_id(session.auth_key)
    storage.save_auth_key(session.dc_id, session.auth_key, key_id, time.time())
    storage.set_home_dc(session.dc_id)
    if uid is not None:
        storage.set_user_id(uid)
        storage.set_authorized(session.dc_id, uid, key_id=key_id)


async def identify_user(storage: Storage, *, api_id: int, api_hash: str, **pool_options: Any) -> int:
    """Ask the home DC whose login the stored key is, and record it (trio).

    Uses the imported key (no key exchange, no sign-in).  Raises :class:`SessionNotSignedIn`
    if the key is not signed in.
    """
    from .. import open_pool  # the pool sits above sessions in the import order

    home = storage.get_home_dc()
    record = storage.get_dc(home) if home is not None else None
    if home is None or record is None:
        raise SessionNotSignedIn("the dcpool session holds no home key to identify")
    async with open_pool(api_id=api_id, api_hash=api_hash, storage=storage,
                         test_mode=storage.mode == "test", **pool_options) as pool:
        try:
            users = await pool.invoke(tl.api.users.GetUsers(id=[tl.api.InputUserSelf()]), dc_id=home)
        except AuthKeyUnregistered:
            raise SessionNotSignedIn(f"the imported key is not signed in on DC {home}") from None
    if not users:
        raise SessionNotSignedIn(f"DC {home} does not know the imported key's user")
    user_id = int(users[0].id)
    storage.set_user_id(user_id)
    storage.set_authorized(home, user_id, key_id=record.key_id)
    return user_id


def _default_address(dc_id: int, test_mode: bool) -> tuple[str, int]:
    options = [o for o in DcTable.builtin(test_mode).options_for(dc_id)
               if not o.ipv6 and not o.media_only and not o.cdn]
    if not options:
        raise LocalProtocolError(f"no built-in IPv4 address for DC {dc_id}: pass address=(host, port)")
    return options[0].ip_address, options[0].port


def export_session(storage: Storage | str | os.PathLike[str], format: str, *,
                   address: tuple[str, int] | None = None, api_id: int | None = None,
                   is_bot: bool = False) -> str:
    """The home login of a dcpool session as a Telethon ``StringSession`` (``format=
    "telethon"``; ``address`` is the home DC's endpoint, by default the built-in one) or a
    Pyrogram session string (``format="pyrogram"``; needs ``api_id``, and a known user)."""
    if format not in FORMATS:
        raise LocalProtocolError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if isinstance(storage, (str, os.PathLike)):
        if not os.path.exists(storage):
            raise SessionFormatError(f"{os.fspath(storage)}: no such dcpool session")
        store = _open_existing(storage)
        try:
            return export_session(store, format, address=address, api_id=api_id, is_bot=is_bot)
        finally:
            store.close()
    home = storage.get_home_dc()
    record = storage.get_dc(home) if home is not None else None
    if home is None or record is None:
        raise SessionNotSignedIn("the dcpool session holds no key for its home DC")
    test_mode = storage.mode == "test"
    if format == "telethon":
        host, port = address if address is not None else _default_address(home, test_mode)
        return telethon_string(home, record.auth_key, host, port)
    user_id = storage.get_user_id()
    if user_id is None:
        raise SessionNotSignedIn("the dcpool session has no signed-in user (Pyrogram needs its id)")
    if api_id is None:
        raise LocalProtocolError("a Pyrogram session string records the api_id: pass api_id")
    return pyrogram_string(home, api_id, test_mode, record.auth_key, user_id, is_bot)


def _open_existing(path: str | os.PathLike[str]) -> Storage:
    """Open an existing dcpool session file in whichever mode it was made."""
    try:
        return open_storage(path, mode="prod")
    except StorageModeMismatch:
        return open_storage(path, mode="test")
