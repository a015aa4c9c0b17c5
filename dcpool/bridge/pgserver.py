"""A throwaway PostgreSQL server for tests and demos: ``initdb`` + ``pg_ctl`` in a temp dir.

Uses the machine's ``postgresql`` package (binaries on PATH or under /usr/lib/postgresql/*/bin).
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` system user
(``runuser``).  Trust authentication on a loopback TCP port chosen free; ``dsn`` connects as
that OS user's database superuser.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

__all__ = ["PgServer", "PgUnavailable", "find_pg_bin"]


class PgUnavailable(RuntimeError):
    """PostgreSQL's binaries are missing or the server would not start (the reason is the
    message)."""


def find_pg_bin() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(os.path.realpath(found))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgServer:
    def __init__(self) -> None:
        self.bin = find_pg_bin()
        if self.bin is None:
            raise PgUnavailable("PostgreSQL binaries (pg_ctl, initdb) not found: apt-get install postgresql")
        self.dir = tempfile.mkdtemp(prefix="dcpool-pg-")
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.dsn = f"postgresql://{self.user or os.environ.get('USER', 'postgres')}@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        cmd = list(argv)
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def start(self) -> PgServer:
        if self.bin is None:
            raise PgUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) found")
        data = os.path.join(self.dir, "data")
        if self.user is not None:
            shutil.chown(self.dir, user=self.user)
        out = self._run(os.path.join(self.bin, "initdb"), "-D", data, "-A", "trust", "-U", self.user or os.environ.get("USER", "postgres"), "--no-sync")
        if out.returncode != 0:
            raise PgUnavailable(f"initdb failed: {out.stderr.strip()[-500:]}")
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off -c max_connections=200"
        out = self._run(os.path.join(self.bin, "pg_ctl"), "-D", data, "-o", opts, "-l",
                        os.path.join(self.dir, "log"), "-w", "-t", "60", "start")
        if out.returncode != 0:
            raise PgUnavailable(f"pg_ctl start failed: {out.stderr.strip()[-500:]} {out.stdout.strip()[-500:]}")
        return self

    def stop(self) -> None:
        self._run(os.path.join(self.bin or "", "pg_ctl"), "-D", os.path.join(self.dir, "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def fresh_database(self, name: str) -> str:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn.rsplit("/", 1)[0] + "/" + name
