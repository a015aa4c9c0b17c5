"""`dcpool session import` / `dcpool session export`: what a user types, end to end."""

from __future__ import annotations

import base64
import os
import struct

from dcpool import sessions
from dcpool.cli import main
from dcpool.storage import SqliteStorage

KEY = bytes((i * 13 + 1) % 256 for i in range(256))


def _pyrogram_string(test_mode: bool = False) -> str:
    raw = struct.pack(">BI?256sQ?", 3, 4242, test_mode, KEY, 5_000_000_123, False)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_import_pyrogram_string_then_export_both_formats(tmp_path, capsys):
    out = tmp_path / "me.session"
    assert main(["session", "import", "--string", _pyrogram_string(test_mode=True), "--session", str(out)]) == 0
    assert "home DC 3" in capsys.readouterr().out
    assert os.stat(out).st_mode & 0o077 == 0  # private file
    with SqliteStorage(out, mode="test") as store:
        assert (store.get_home_dc(), store.get_user_id(), store.get_dc(3).auth_key) == (3, 5_000_000_123, KEY)

    assert main(["session", "export", str(out), "--format", "pyrogram", "--api-id", "4242"]) == 0
    assert capsys.readouterr().out.strip() == _pyrogram_string(test_mode=True)

    assert main(["session", "export", str(out), "--format", "telethon", "--address", "10.0.0.1:8443"]) == 0
    back = sessions.parse_session_string(capsys.readouterr().out.strip())
    assert (back.dc_id, back.auth_key, back.server_address, back.port) == (3, KEY, "10.0.0.1", 8443)


def test_import_never_overwrites(tmp_path, capsys):
    out = tmp_path / "me.session"
    out.write_bytes(b"precious")
    assert main(["session", "import", "--string", _pyrogram_string(), "--session", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"


def test_import_errors_are_precise_and_leave_nothing(tmp_path, capsys):
    out = tmp_path / "me.session"
    assert main(["session", "import", "--string", "garbage", "--session", str(out)]) == 2
    assert "SessionFormatError: unknown session string" in capsys.readouterr().err
    telethon = sessions.telethon_string(2, KEY, "127.0.0.1", 443)
    assert main(["session", "import", "--string", telethon, "--session", str(out)]) == 2
    assert "does not record its user" in capsys.readouterr().err
    bad = tmp_path / "bad.session"
    bad.write_text("not sqlite")
    assert main(["session", "import", str(bad), "--session", str(out)]) == 2
    assert "not an SQLite file" in capsys.readouterr().err
    assert main(["session", "import", "--string", _pyrogram_string(test_mode=False), "--test-mode",
                 "--session", str(out)]) == 2
    assert "production session" in capsys.readouterr().err
    assert not out.exists()
    # a Telethon string with the user given explicitly works
    assert main(["session", "import", "--string", telethon, "--user-id", "77", "--session", str(out)]) == 0
    with SqliteStorage(out) as store:
        assert (store.get_home_dc(), store.get_user_id()) == (2, 77)


def test_export_errors(tmp_path, capsys):
    assert main(["session", "export", str(tmp_path / "none.session"), "--format", "telethon"]) == 2
    assert "no such dcpool session" in capsys.readouterr().err
    out = tmp_path / "me.session"
    assert main(["session", "import", "--string", _pyrogram_string(), "--session", str(out)]) == 0
    assert main(["session", "export", str(out), "--format", "pyrogram"]) == 2
    assert "api_id" in capsys.readouterr().err
