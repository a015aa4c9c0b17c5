"""Sessions of other libraries: import a Telethon / Pyrogram / kurigram / pyrofork login into
dcpool storage, export dcpool's home login back as their session strings.

::

    from dcpool import sessions
    foreign = sessions.load_session("telethon.session")          # or string="1Aa..."
    store = SqliteStorage("me.session")                          # a NEW dcpool session
    sessions.import_session(foreign, store)
    if store.get_user_id() is None:                              # Telethon does not record it
        await sessions.identify_user(store, api_id=..., api_hash=...)
    text = sessions.export_session(store, "telethon")            # StringSession(text)

See :mod:`dcpool.sessions.formats` for the formats and :mod:`dcpool.sessions.transfer` for the
rules (no key exchange, no sign-in, nothing overwritten).
"""

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
from .transfer import FORMATS, export_session, identify_user, import_session, load_session

__all__ = [
    "FORMATS",
    "ForeignSession",
    "SessionExists",
    "SessionFormatError",
    "SessionNotSignedIn",
    "export_session",
    "identify_user",
    "import_session",
    "load_session",
    "parse_session_string",
    "pyrogram_string",
    "read_session_file",
    "telethon_string",
]
