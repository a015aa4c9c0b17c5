"""The main job, driven like a user drives it: ``dcpool demo`` and friends in a subprocess."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def _dcpool(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dcpool.cli", *args],
        capture_output=True, text=True, timeout=timeout,
    )


def test_demo_json_shows_migration_one_export_per_foreign_dc_then_none(tmp_path):
    session = tmp_path / "demo.session"
    out = _dcpool("demo", "--json", "--session", str(session))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["ok"] is True
    first, second = summary["runs"]
    # signing in from DC 1 with a DC-2 number: PHONE_MIGRATE_2, home moves to 2
    assert any(m["error"] == "PHONE_MIGRATE_X" and m["to"] == 2 for m in first["migrations"])
    assert first["home_dc"] == 2
    # files live on DCs 1, 3, 4, 5: one export (on DC 2) and one import per foreign DC
    assert first["dcs"]["2"]["exports"] == 4
    assert {dc: first["dcs"][dc]["imports"] for dc in ("1", "3", "4", "5")} == dict.fromkeys(("1", "3", "4", "5"), 1)
    assert first["handshakes"] == 5
    # the second run reuses the session file: no key exchange, no export, same bytes
    assert second["handshakes"] == 0
    assert second["exports"] == 0 and second["imports"] == 0
    assert second["files_ok"] and first["files_ok"]

    shown = _dcpool("session", "show", "--json", str(session), timeout=30)
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["home_dc"] == 2
    assert sorted(d["dc_id"] for d in info["dcs"]) == [1, 2, 3, 4, 5]
    assert all(d["authorized_user_id"] == info["user_id"] for d in info["dcs"])
    # no key material in what `session show` prints
    import sqlite3

    db = sqlite3.connect(f"file:{session}?mode=ro", uri=True)
    try:
        keys = [row[0] for row in db.execute("select auth_key from dcs")]
    finally:
        db.close()
    assert len(keys) == 5
    for key in keys:
        assert key.hex() not in shown.stdout and key.hex().upper() not in shown.stdout


def test_config_command_lists_the_emulated_dcs():
    out = _dcpool("config", "--json", timeout=60)
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)
    assert sorted({o["id"] for o in config["dc_options"]}) == [1, 2, 3, 4, 5]
    assert all(o["ip_address"] == "127.0.0.1" for o in config["dc_options"])


def test_demo_against_telegram_fails_fast_without_network():
    out = _dcpool("demo", "--telegram-test", "--api-id", "1", "--api-hash", "x", timeout=90)
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0, "one-line reason expected"
    assert out.stderr.startswith("dcpool demo:")


def test_session_show_refuses_a_corrupt_file_and_leaves_it(tmp_path):
    path = tmp_path / "junk.session"
    path.write_bytes(b"not a database" * 100)
    out = _dcpool("session", "show", str(path), timeout=30)
    assert out.returncode == 2
    assert "CorruptStorage" in out.stderr
    assert path.read_bytes() == b"not a database" * 100
