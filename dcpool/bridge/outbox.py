"""The durable outbox: numbered events, the update state they came from, delivery progress.

Why one store for all of it: an event and the ``state_after`` of the update it came from are
written in ONE transaction (:meth:`OutboxDb.append`), and the updates manager resumes from that
state row, so a kill -9 at any instant either keeps both or neither: nothing is lost, and an
update redelivered after a crash is recognised by its ``dedupe_key`` (unique per account) and
not numbered twice.  Webhook progress (``delivered``/``dropped`` per event) lives beside it,
so deliveries resume after a restart too.

Backends: SQLite (one process; a file, WAL) and PostgreSQL (fleets; ``postgresql://`` DSN,
sync psycopg 3 run in worker threads: psycopg's async mode is asyncio-only, EVENTS.md §2.2).
The SQL is shared; the dialects differ in placeholders and the id column.  On PostgreSQL,
appends take a transaction-level advisory lock so ids become visible in id order: a reader
following ``id > cursor`` (SSE, Pusher fan-out, webhooks) never skips a late-committing id.

Fencing: a fleet account's state row carries the lease ``epoch`` of its writer; an append with
an older epoch than the row's fails with :class:`StaleLease` and writes nothing, so a process
that lost its lease (paused past the TTL) cannot write behind the new owner's back.

The sync :class:`OutboxDb` is wrapped by :class:`Outbox`, which runs every call in a worker
thread one at a time (one connection) and wakes readers when events were appended.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import trio

from .events import NewEvent, OutboxEvent

__all__ = ["OutboxDb", "Outbox", "StaleLease", "open_outbox_db", "Lease"]


class StaleLease(Exception):
    """An append or state write carried a lease epoch older than the stored one."""


@attrs.frozen
class Lease:
    account: str
    owner: str
    epoch: int
    expires_at: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS bridge_events (
    id {id_col},
    account TEXT NOT NULL,
    event TEXT NOT NULL,
    type TEXT NOT NULL,
    chat TEXT,
    dedupe_key TEXT NOT NULL,
    time DOUBLE PRECISION NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (account, dedupe_key)
);
CREATE TABLE IF NOT EXISTS bridge_state (
    account TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    epoch BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bridge_kv (
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (account, name)
);
CREATE TABLE IF NOT EXISTS bridge_delivery (
    hook TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (hook, event_id)
);
CREATE TABLE IF NOT EXISTS bridge_hook (
    hook TEXT PRIMARY KEY,
    cursor BIGINT NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    dropped BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bridge_member (
    owner TEXT PRIMARY KEY,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS bridge_lease (
    account TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
"""

_COLUMNS = "id, account, event, type, chat, dedupe_key, time, data"


def _row_event(row: Sequence[Any]) -> OutboxEvent:
    return OutboxEvent(id=int(row[0]), account=row[1], event=row[2], type=row[3], chat=row[4],
                       dedupe_key=row[5], time=float(row[6]), data=json.loads(row[7]))


class OutboxDb:
    """Synchronous outbox on one DB-API connection (SQLite or psycopg)."""

    def __init__(self, conn: Any, dialect: str, clock: Callable[[], float] = time.time) -> None:
        self._conn = conn
        self.dialect = dialect
        self._clock = clock
        id_col = ("INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite"
                  else "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
        with self._tx() as cur:
            if dialect == "postgresql":
                cur.execute("SELECT pg_advisory_xact_lock(7170001)")  # one schema creator
            for stmt in _SCHEMA.format(id_col=id_col).split(";"):
                if stmt.strip():
                    cur.execute(stmt)

    # ------------------------------------------------------------------ plumbing

    def _sql(self, sql: str) -> str:
        return sql if self.dialect == "sqlite" else sql.replace("?", "%s")

    class _Tx:
        def __init__(self, db: OutboxDb) -> None:
            self.db = db

        def __enter__(self) -> Any:
            conn = self.db._conn
            if self.db.dialect == "sqlite":
                conn.execute("BEGIN IMMEDIATE")
            self.cur = conn.cursor()
            return self

        def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
            self.cur.execute(self.db._sql(sql), tuple(params))
            return self.cur

        def __exit__(self, exc_type: Any, *rest: Any) -> None:
            if exc_type is None:
                self.db._conn.commit()
            else:
                self.db._conn.rollback()
            self.cur.close()

    def _tx(self) -> OutboxDb._Tx:
        return OutboxDb._Tx(self)

    def close(self) -> None:
        self._conn.close()

    # ------------------------------------------------------------------ events + state

    def append(self, account: str, events: Iterable[NewEvent], state: Mapping[str, Any] | None = None,
               *, epoch: int | None = None) -> list[int]:
        """Number and store ``events`` and (if given) the account's ``state``, atomically.

        Events whose ``dedupe_key`` is already stored for the account are skipped (their old id
        stands).  Returns the new ids.  Raises :class:`StaleLease` (nothing written) when
        ``epoch`` is older than the state row's epoch.
        """
        ids: list[int] = []
        now = self._clock()
        with self._tx() as tx:
            if self.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(7170002)")  # ids visible in order
            if epoch is not None:
                row = tx.execute("SELECT epoch FROM bridge_state WHERE account = ?", (account,)).fetchone()
                if row is not None and int(row[0]) > epoch:
                    raise StaleLease(f"account {account}: epoch {epoch} < stored {row[0]}")
            for ev in events:
                # look first: a conflicting INSERT would still burn an id (gaps confuse readers)
                if tx.execute("SELECT 1 FROM bridge_events WHERE account = ? AND dedupe_key = ?",
                              (account, ev.dedupe_key)).fetchone() is not None:
                    continue
                cur = tx.execute(
                    "INSERT INTO bridge_events (account, event, type, chat, dedupe_key, time, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account, dedupe_key) DO NOTHING RETURNING id",
                    (account, ev.event, ev.type, ev.chat, ev.dedupe_key, now,
                     json.dumps(ev.data, separators=(",", ":"), sort_keys=True)))
                row = cur.fetchone()
                if row is not None:
                    ids.append(int(row[0]))
            if state is not None:
                tx.execute(
                    "INSERT INTO bridge_state (account, state, epoch) VALUES (?, ?, ?) "
                    "ON CONFLICT (account) DO UPDATE SET state = excluded.state, epoch = excluded.epoch",
                    (account, json.dumps(dict(state), sort_keys=True), epoch or 0))
        return ids

    def init_state(self, account: str, state: Mapping[str, Any], *, epoch: int | None = None) -> bool:
        """Store ``state`` as the account's state row only if it has none yet (the updates
        manager's first position, from getState, before any event).  Never overwrites a row
        written with events.  Returns whether it wrote."""
        with self._tx() as tx:
            if tx.execute("SELECT 1 FROM bridge_state WHERE account = ?", (account,)).fetchone() is not None:
                return False
            tx.execute(
                "INSERT INTO bridge_state (account, state, epoch) VALUES (?, ?, ?) "
                "ON CONFLICT (account) DO NOTHING",
                (account, json.dumps(dict(state), sort_keys=True), epoch or 0))
        return True

    def load_state(self, account: str) -> dict[str, Any] | None:
        with self._tx() as tx:
            row = tx.execute("SELECT state FROM bridge_state WHERE account = ?", (account,)).fetchone()
        return None if row is None else json.loads(row[0])

    def load_kv(self, account: str, name: str) -> Any:
        with self._tx() as tx:
            row = tx.execute("SELECT value FROM bridge_kv WHERE account = ? AND name = ?", (account, name)).fetchone()
        return None if row is None else json.loads(row[0])

    def save_kv(self, account: str, name: str, value: Any) -> None:
        with self._tx() as tx:
            tx.execute("INSERT INTO bridge_kv (account, name, value) VALUES (?, ?, ?) "
                       "ON CONFLICT (account, name) DO UPDATE SET value = excluded.value",
                       (account, name, json.dumps(value)))

    def read_after(self, after_id: int, limit: int = 500, *, account: str | None = None) -> list[OutboxEvent]:
        with self._tx() as tx:
            if account is None:
                rows = tx.execute(f"SELECT {_COLUMNS} FROM bridge_events WHERE id > ? ORDER BY id LIMIT ?",
                                  (after_id, limit)).fetchall()
            else:
                rows = tx.execute(f"SELECT {_COLUMNS} FROM bridge_events WHERE id > ? AND account = ? "
                                  "ORDER BY id LIMIT ?", (after_id, account, limit)).fetchall()
        return [_row_event(r) for r in rows]

    def last_id(self) -> int:
        with self._tx() as tx:
            row = tx.execute("SELECT COALESCE(MAX(id), 0) FROM bridge_events").fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ webhook progress

    def hook_pending(self, hook: str, limit: int) -> tuple[list[OutboxEvent], bool]:
        """Undelivered events for ``hook`` (oldest first) and whether it is disabled."""
        with self._tx() as tx:
            tx.execute("INSERT INTO bridge_hook (hook) VALUES (?) ON CONFLICT (hook) DO NOTHING", (hook,))
            cursor, disabled = tx.execute("SELECT cursor, disabled FROM bridge_hook WHERE hook = ?", (hook,)).fetchone()
            rows = tx.execute(
                f"SELECT {_COLUMNS} FROM bridge_events e WHERE e.id > ? AND NOT EXISTS "
                "(SELECT 1 FROM bridge_delivery d WHERE d.hook = ? AND d.event_id = e.id) ORDER BY e.id LIMIT ?",
                (cursor, hook, limit)).fetchall()
        return [_row_event(r) for r in rows], bool(disabled)

    def hook_settle(self, hook: str, event_id: int, outcome: str) -> None:
        """Record ``outcome`` ("delivered", "dropped" or "filtered") of one event."""
        self.hook_settle_many(hook, [(event_id, outcome)])

    def hook_settle_many(self, hook: str, outcomes: Iterable[tuple[int, str]]) -> None:
        """Record many outcomes in one transaction and move the cursor past the contiguous
        settled prefix (so the delivery table stays small)."""
        with self._tx() as tx:
            for event_id, outcome in outcomes:
                tx.execute("INSERT INTO bridge_delivery (hook, event_id, outcome) VALUES (?, ?, ?) "
                           "ON CONFLICT (hook, event_id) DO NOTHING", (hook, event_id, outcome))
                if outcome == "dropped":
                    tx.execute("UPDATE bridge_hook SET dropped = dropped + 1 WHERE hook = ?", (hook,))
            cursor = int(tx.execute("SELECT cursor FROM bridge_hook WHERE hook = ?", (hook,)).fetchone()[0])
            # advance over ids that are settled (or missing: ids are never reused)
            row = tx.execute(
                "SELECT MIN(e.id) FROM bridge_events e WHERE e.id > ? AND NOT EXISTS "
                "(SELECT 1 FROM bridge_delivery d WHERE d.hook = ? AND d.event_id = e.id)",
                (cursor, hook)).fetchone()
            new_cursor = (int(row[0]) - 1) if row[0] is not None else int(
                tx.execute("SELECT COALESCE(MAX(id), 0) FROM bridge_events").fetchone()[0])
            if new_cursor > cursor:
                tx.execute("UPDATE bridge_hook SET cursor = ? WHERE hook = ?", (new_cursor, hook))
                tx.execute("DELETE FROM bridge_delivery WHERE hook = ? AND event_id <= ?", (hook, new_cursor))

    def hook_disable(self, hook: str) -> None:
        with self._tx() as tx:
            tx.execute("UPDATE bridge_hook SET disabled = 1 WHERE hook = ?", (hook,))

    def hook_backlog(self, hook: str) -> dict[str, int]:
        with self._tx() as tx:
            row = tx.execute("SELECT cursor, disabled, dropped FROM bridge_hook WHERE hook = ?", (hook,)).fetchone()
            if row is None:
                return {"pending": 0, "disabled": 0, "dropped": 0}
            pending = tx.execute(
                "SELECT COUNT(*) FROM bridge_events e WHERE e.id > ? AND NOT EXISTS "
                "(SELECT 1 FROM bridge_delivery d WHERE d.hook = ? AND d.event_id = e.id)",
                (row[0], hook)).fetchone()[0]
        return {"pending": int(pending), "disabled": int(row[1]), "dropped": int(row[2])}

    # ------------------------------------------------------------------ leases (fleets)

    def lease_claim(self, account: str, owner: str, ttl: float) -> Lease | None:
        """Take ``account`` if its lease is free, expired or already ours; bump the epoch when
        it changes hands.  Returns the lease, or None when another owner holds it."""
        now = self._clock()
        with self._tx() as tx:
            row = tx.execute("SELECT owner, epoch, expires_at FROM bridge_lease WHERE account = ?"
                             + (" FOR UPDATE" if self.dialect == "postgresql" else ""), (account,)).fetchone()
            if row is None:
                epoch = 1
                tx.execute("INSERT INTO bridge_lease (account, owner, epoch, expires_at) VALUES (?, ?, ?, ?)",
                           (account, owner, epoch, now + ttl))
            elif row[0] == owner and float(row[2]) >= now:
                epoch = int(row[1])
                tx.execute("UPDATE bridge_lease SET expires_at = ? WHERE account = ?", (now + ttl, account))
            elif float(row[2]) < now:
                epoch = int(row[1]) + 1
                tx.execute("UPDATE bridge_lease SET owner = ?, epoch = ?, expires_at = ? WHERE account = ?",
                           (owner, epoch, now + ttl, account))
            else:
                return None
        return Lease(account, owner, epoch, now + ttl)

    def lease_renew(self, lease: Lease, ttl: float) -> Lease | None:
        """Extend a lease we still hold (same owner and epoch); None when it was lost."""
        now = self._clock()
        with self._tx() as tx:
            cur = tx.execute("UPDATE bridge_lease SET expires_at = ? WHERE account = ? AND owner = ? "
                             "AND epoch = ? AND expires_at >= ?",
                             (now + ttl, lease.account, lease.owner, lease.epoch, now))
            ok = cur.rowcount == 1
        return attrs.evolve(lease, expires_at=now + ttl) if ok else None

    def lease_renew_all(self, leases: list[Lease], ttl: float) -> list[Lease | None]:
        """:meth:`lease_renew` for many leases in one transaction (one round trip a period)."""
        now = self._clock()
        out: list[Lease | None] = []
        with self._tx() as tx:
            for lease in leases:
                cur = tx.execute("UPDATE bridge_lease SET expires_at = ? WHERE account = ? AND owner = ? "
                                 "AND epoch = ? AND expires_at >= ?",
                                 (now + ttl, lease.account, lease.owner, lease.epoch, now))
                out.append(attrs.evolve(lease, expires_at=now + ttl) if cur.rowcount == 1 else None)
        return out

    def lease_release(self, lease: Lease) -> None:
        with self._tx() as tx:
            tx.execute("UPDATE bridge_lease SET expires_at = 0 WHERE account = ? AND owner = ? AND epoch = ?",
                       (lease.account, lease.owner, lease.epoch))

    def member_heartbeat(self, owner: str, ttl: float) -> int:
        """Announce ``owner`` as a live fleet member for ``ttl`` s; returns how many members
        are live (the fair share of accounts is ceil(accounts / members))."""
        now = self._clock()
        with self._tx() as tx:
            tx.execute("INSERT INTO bridge_member (owner, expires_at) VALUES (?, ?) "
                       "ON CONFLICT (owner) DO UPDATE SET expires_at = excluded.expires_at", (owner, now + ttl))
            row = tx.execute("SELECT COUNT(*) FROM bridge_member WHERE expires_at >= ?", (now,)).fetchone()
        return int(row[0])

    def member_leave(self, owner: str) -> None:
        with self._tx() as tx:
            tx.execute("DELETE FROM bridge_member WHERE owner = ?", (owner,))

    def leases(self) -> list[Lease]:
        with self._tx() as tx:
            rows = tx.execute("SELECT account, owner, epoch, expires_at FROM bridge_lease ORDER BY account").fetchall()
        return [Lease(r[0], r[1], int(r[2]), float(r[3])) for r in rows]


def open_outbox_db(target: str | os.PathLike[str], clock: Callable[[], float] = time.time) -> OutboxDb:
    """``postgresql://...`` → PostgreSQL; anything else is a SQLite path (0600)."""
    text = os.fspath(target)
    if text.startswith(("postgresql://", "postgres://")):
        import psycopg  # noqa: PLC0415  (only fleets need it)

        return OutboxDb(psycopg.connect(text, autocommit=False), "postgresql", clock)
    if text != ":memory:" and not os.path.exists(text):
        fd = os.open(text, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    conn = sqlite3.connect(text, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL: a committed transaction survives the process being killed (kill -9); only
    # an OS crash or power loss may lose the last few.  FULL costs an fsync per event batch.
    conn.execute("PRAGMA synchronous=NORMAL")
    return OutboxDb(conn, "sqlite", clock)


class Outbox:
    """Async face of :class:`OutboxDb`: calls run in a worker thread, one at a time, and
    :meth:`wait_for_new` wakes readers after an append (in this process; other processes of a
    fleet are seen by polling, ``poll_interval``)."""

    def __init__(self, db: OutboxDb, poll_interval: float = 1.0) -> None:
        self.db = db
        self._lock = trio.Lock()
        self._thread_lock = threading.Lock()
        self._appended = trio.Event()
        self.poll_interval = poll_interval

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        async with self._lock:
            def run() -> Any:
                with self._thread_lock:
                    return fn(*args, **kwargs)
            return await trio.to_thread.run_sync(run)

    async def append(self, account: str, events: Iterable[NewEvent], state: Mapping[str, Any] | None = None,
                     *, epoch: int | None = None) -> list[int]:
        ids = await self._call(self.db.append, account, list(events), state, epoch=epoch)
        if ids:
            self._appended.set()
            self._appended = trio.Event()
        return ids

    async def wait_for_new(self) -> None:
        """Return after the next local append, or after ``poll_interval`` (fleet writers)."""
        with trio.move_on_after(self.poll_interval):
            await self._appended.wait()

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.db, name)
        if not callable(fn):
            return fn

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._call(fn, *args, **kwargs)

        return call

    async def aclose(self) -> None:
        await self._call(self.db.close)
