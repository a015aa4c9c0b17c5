"""Crash safety: a writer killed with SIGKILL at arbitrary points never leaves a half-stored key.

A child process writes keys, salts, authorization marks, the config and the home DC in a loop,
printing a line after each committed write.  The test reads a (seeded) random number of lines,
then SIGKILLs it, so the kill lands at some point of a later write.  Then it reopens the file
and checks: it opens (never "corrupt"), SQLite's integrity check passes, every key is whole
and matches its id (computed here with hashlib, spec §4.1), every value belongs with the key
it sits next to, and every write the child reported as done is there (durability).
"""

from __future__ import annotations

import hashlib
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dcpool.storage import SqliteStorage

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

CHILD = r"""
import hashlib, sys
from dcpool.storage import SqliteStorage

def make_key(n):
    key = b"".join(hashlib.sha256(b"%d:%d" % (n, i)).digest() for i in range(8))
    return key, int.from_bytes(hashlib.sha1(key).digest()[12:20], "little", signed=True)

path, n = sys.argv[1], int(sys.argv[2])
print("opening", flush=True)
s = SqliteStorage(path, "prod")
while True:
    dc = 1 + n % 5
    key, kid = make_key(n)
    s.save_auth_key(dc, key, kid, float(n)); print(n, "key", flush=True)
    s.set_salt(dc, n, key_id=kid); print(n, "salt", flush=True)
    s.set_authorized(dc, n * 7, key_id=kid); print(n, "auth", flush=True)
    s.set_config(b"cfg%d;" % n * (1 + n % 300), float(n), float(n)); print(n, "config", flush=True)
    s.set_home_dc(dc); print(n, "home", flush=True)
    s.set_user_id(n * 7); print(n, "user", flush=True)
    if n % 7 == 0:
        s.clear_all_authorizations(); print(n, "clear", flush=True)
    n += 1
"""


def make_key(n: int) -> bytes:
    return b"".join(hashlib.sha256(b"%d:%d" % (n, i)).digest() for i in range(8))


def key_id_of(key: bytes) -> int:
    return int.from_bytes(hashlib.sha1(key).digest()[12:20], "little", signed=True)


def run_and_kill(path: Path, start: int, lines_before_kill: int) -> list[tuple[int, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    done: list[tuple[int, str]] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"opening\n", proc.stderr.read() if proc.stderr else b""
        # 0 lines: the kill lands while the file is being opened (or created and initialised)
        for _ in range(lines_before_kill):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else b""
            n, what = line.split()
            done.append((int(n), what.decode()))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert proc.returncode == -signal.SIGKILL
    return done


def check_consistent(path: Path, done: list[tuple[int, str]]) -> int:
    """Reopen and check every invariant; returns the highest n found."""
    with SqliteStorage(path, "prod") as s:  # must not raise CorruptStorage
        highest = -1
        for rec in s.list_dcs():
            n = int(rec.created_at)  # type: ignore[arg-type]
            highest = max(highest, n)
            assert rec.created_at == float(n)
            assert rec.dc_id == 1 + n % 5
            assert rec.auth_key == make_key(n)
            assert len(rec.auth_key) == 256
            assert rec.key_id == key_id_of(rec.auth_key)
            assert rec.salt in (None, n)  # a salt never outlives its key
            assert rec.authorized_user_id in (None, n * 7)
        cfg = s.get_config()
        if cfg is not None:
            n = int(cfg.expires)
            assert cfg.fetched_at == cfg.expires == float(n)
            assert cfg.blob == b"cfg%d;" % n * (1 + n % 300)
        home = s.get_home_dc()
        assert home is None or 1 <= home <= 5
        user = s.get_user_id()
        assert user is None or user % 7 == 0

        # durability: what the child reported as committed is there
        for n, what in done[-1:]:
            rec = s.get_dc(1 + n % 5)
            assert rec is not None and rec.created_at is not None and rec.created_at >= n
            if what in ("config", "home", "user", "clear"):
                assert cfg is not None and cfg.expires >= n
            if what == "salt" and rec.created_at == n:
                assert rec.salt == n

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    return highest


def test_sigkill_at_random_points_never_corrupts(tmp_path: Path) -> None:
    rng = random.Random(20260721)
    path = tmp_path / "crash.db"
    start = 0
    kills_mid_open = 0
    for iteration in range(20):
        # a few kills during open (the first one during creation), the rest mid-loop
        lines = 0 if iteration in (0, 7) else rng.randint(1, 40)
        kills_mid_open += lines == 0
        done = run_and_kill(path, start, lines)
        highest = check_consistent(path, done)
        start = max([highest] + [n for n, _ in done]) + 1
    assert kills_mid_open == 2
    assert start > 20  # the loop really made progress
