"""Fault soak: many requests through one pool across 5 emulated DCs while the DCs misbehave.

Usage::

    python tools/soak.py --requests 10000 [--seed 1] [--concurrency 16] [--json]

Theory of operation
-------------------
A seeded plan of requests runs through one :func:`dcpool.open_pool` against a 5-DC
:func:`dcpool.testing.open_cluster`, signed in as a reserved test number (home DC 2):

* ``download``   — ``upload.getFile`` of one part of a document on any DC (idempotent), 10 % of
  them sent to the wrong DC first (``FILE_MIGRATE``); the bytes are checked;
* ``whole_file`` — a whole small document through ``pool.download`` (parallel parts);
* ``home``       — ``users.getFullUser(inputUserSelf)`` on the home DC (idempotent; meets
  ``USER_MIGRATE`` once the user is moved);
* ``send_code``  — ``auth.sendCode`` for a fresh reserved number of the DC it is sent to:
  **not idempotent**; each one carries a unique phone number;
* ``nonidem_get`` — ``upload.getFile`` of a unique (document, offset) sent with a name the pool
  does not know, i.e. **not idempotent** for the pool, on any DC (needs an authorization
  transfer off the home DC).

While they run, a seeded schedule (by progress, so that it does not depend on speed) arms the
emulator's faults: connections dropped after N packets, connections cut abruptly (by the
server or by the client), ``-404`` transport errors (never on the DC holding the login: a real
``-404`` there means "logged out"), salt rotations, forward clock jumps (bad_msg 16/17),
``FLOOD_WAIT`` on ``auth.exportAuthorization`` and ``AUTH_BYTES_INVALID`` on
``auth.importAuthorization`` (on the first transfers, and later each with a ``-404`` that
forces a new transfer), and, once, the user's move to another DC (``USER_MIGRATE``).  A few DCs get 1–4 ms of latency so that abrupt
cuts really lose answers in flight.

Counted (and printed):

* ``lost``: requests that neither returned nor raised within a generous bound (must be 0);
* ``untyped``: exceptions that are not :class:`dcpool.errors.DcPoolError` (must be 0);
* ``duplicate non-idempotent executions``: by the emulator's execution counter (the same
  (key, session, msg_id) executed twice) and by the unique tag each non-idempotent request
  carries (the same request executed twice under any msg_id) — both must be 0;
* ``corrupted``: answers with wrong bytes (must be 0);
* leaks after the pool closed: ``pool.statistics().tasks`` and the emulator's live connections
  (both must be 0).

The test ``tests/reliability/test_soak.py`` runs the same engine with a small plan.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import trio

from dcpool import tl
from dcpool.errors import DcPoolError, RpcError
from dcpool.pool import open_pool
from dcpool.testing import open_cluster
from dcpool.testing.handlers import WRAPPERS

DCS = (1, 2, 3, 4, 5)
PHONE = "9996621234"
PART = 4096
NONIDEM_NAME = "upload.getFile/non-idempotent"

#: share of each kind of request in the plan
MIX = {"download": 0.50, "whole_file": 0.04, "home": 0.16, "send_code": 0.15, "nonidem_get": 0.15}
#: the share of requests that must be answered (the rest: errors a user must see)
MIN_ANSWERED = 0.995
#: kinds the pool must never execute twice
NON_IDEMPOTENT = frozenset({"send_code", "nonidem_get"})


@attrs.define
class SoakReport:
    requests: int = 0
    ok: int = 0
    by_kind: Counter[str] = attrs.field(factory=Counter)
    typed_errors: Counter[str] = attrs.field(factory=Counter)
    errors_by_kind: Counter[str] = attrs.field(factory=Counter)  # "kind on DC: error"
    untyped_errors: Counter[str] = attrs.field(factory=Counter)
    lost: int = 0
    corrupted: int = 0
    duplicate_msg_executions: int = 0  # non-idempotent (key, session, msg_id) executed > 1
    duplicate_tag_executions: int = 0  # non-idempotent request executed > 1 under any msg_id
    any_duplicate_msg_executions: int = 0  # every method, by the emulator's counter
    leaked_tasks: int = -1
    leaked_connections: int = -1
    faults: Counter[str] = attrs.field(factory=Counter)
    emulator_errors: Counter[str] = attrs.field(factory=Counter)  # rpc_errors the DCs answered
    home_moves: list[str] = attrs.field(factory=list)
    migrations: int = 0
    transfers: int = 0
    #: FLOOD_WAIT-family answers the pool waited out and re-sent (requests, then exports)
    flood_waits_waited: int = 0
    transfer_flood_waits: int = 0
    server_retries: int = 0
    reconnects: int = 0
    handshakes: int = 0
    elapsed: float = 0.0
    examples: dict[str, str] = attrs.field(factory=dict)

    @property
    def answered_ratio(self) -> float:
        return self.ok / self.requests if self.requests else 1.0

    def failures(self) -> list[str]:
        out = []
        if self.lost:
            out.append(f"{self.lost} requests lost")
        if self.untyped_errors:
            out.append(f"untyped errors: {dict(self.untyped_errors)} {self.examples}")
        if self.duplicate_msg_executions or self.duplicate_tag_executions:
            out.append(f"non-idempotent requests executed twice: by msg_id "
                       f"{self.duplicate_msg_executions}, by request {self.duplicate_tag_executions}")
        if self.corrupted:
            out.append(f"{self.corrupted} corrupted answers")
        if self.leaked_tasks != 0:
            out.append(f"pool tasks after close: {self.leaked_tasks}")
        if self.leaked_connections != 0:
            out.append(f"emulator connections after close: {self.leaked_connections}")
        accounted = self.ok + self.corrupted + self.lost + sum(self.typed_errors.values()) \
            + sum(self.untyped_errors.values())
        if accounted != self.requests:
            out.append("requests do not add up")
        return out

    def as_dict(self) -> dict[str, Any]:
        d = attrs.asdict(self)
        d["answered_ratio"] = self.answered_ratio
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in d.items()}

    def format(self) -> str:
        errs = ", ".join(f"{k} {v}" for k, v in self.typed_errors.most_common()) or "none"
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items()))
        return "\n".join([
            f"soak: {self.requests} requests in {self.elapsed:.1f} s ({kinds})",
            f"  answered: {self.ok} ({self.answered_ratio:.2%}); typed errors: "
            f"{sum(self.typed_errors.values())} ({errs})",
            f"  flood waits waited out: {self.flood_waits_waited} on requests, "
            f"{self.transfer_flood_waits} on exports; 500-class retries: {self.server_retries}",
            *(["  typed errors by request: " + ", ".join(
                f"{k} {v}" for k, v in self.errors_by_kind.most_common(8))] if self.errors_by_kind else []),
            f"  lost (no answer, no error): {self.lost}",
            f"  untyped errors: {sum(self.untyped_errors.values())} {dict(self.untyped_errors) or ''}",
            f"  non-idempotent executed twice: {self.duplicate_msg_executions} (same msg_id), "
            f"{self.duplicate_tag_executions} (same request, any msg_id)",
            f"  duplicate executions of any request (emulator counter): "
            f"{self.any_duplicate_msg_executions}",
            f"  corrupted answers: {self.corrupted}",
            f"  leaked after close: pool tasks {self.leaked_tasks}, emulator connections "
            f"{self.leaked_connections}",
            f"  faults injected: {faults}",
            f"  rpc errors answered by the emulator: "
            f"{', '.join(f'{k} {v}' for k, v in self.emulator_errors.most_common())}",
            f"  home moves: {', '.join(self.home_moves) or 'none'}; migrations {self.migrations}; "
            f"transfers {self.transfers}; reconnects {self.reconnects}; key exchanges "
            f"{self.handshakes}",
        ])


# --------------------------------------------------------------------------- the plan


@attrs.frozen
class Spec:
    kind: str
    dc: int
    offset: int = 0
    hint: int | None = None
    phone: str = ""


def make_plan(n: int, rng: random.Random) -> list[Spec]:
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    suffixes = {dc: iter(rng.sample(range(10000), 10000)) for dc in DCS}
    nonidem_next = dict.fromkeys(DCS, 0)
    plan = []
    for _ in range(n):
        kind = rng.choices(kinds, weights)[0]
        dc = rng.choice(DCS)
        if kind == "download":
            hint = rng.choice([d for d in DCS if d != dc]) if rng.random() < 0.1 else dc
            plan.append(Spec(kind, dc, offset=rng.randrange(0, 64) * PART, hint=hint))
        elif kind == "send_code":
            suffix = next(suffixes[dc])
            while f"99966{dc}{suffix:04d}" == PHONE:
                suffix = next(suffixes[dc])
            plan.append(Spec(kind, dc, phone=f"99966{dc}{suffix:04d}"))
        elif kind == "nonidem_get":
            plan.append(Spec(kind, dc, offset=nonidem_next[dc] * PART))
            nonidem_next[dc] += 1
        else:
            plan.append(Spec(kind, dc))
    return plan


# --------------------------------------------------------------------------- counting executions


def _innermost(body: bytes) -> Any:
    query = tl.loads(body)
    for _ in range(16):
        if isinstance(query, tl.Raw):
            query = tl.loads(query.to_bytes())
        if getattr(type(query), "QUALNAME", None) not in WRAPPERS:
            return query
        query = query.query
    return None


class ExecutionCounter:
    """Wraps ``world.handle`` to count, per non-idempotent request, how often it really ran
    (the handler returned a result) — under any msg_id — and which msg triples carried one."""

    def __init__(self, world: Any, nonidem_files: set[int]) -> None:
        self.world = world
        self.nonidem_files = nonidem_files
        self.by_tag: Counter[tuple] = Counter()
        self.by_msg: Counter[tuple] = Counter()
        self._orig = world.handle
        world.handle = self.handle

    def tag_of(self, body: bytes) -> tuple | None:
        try:
            query = _innermost(bytes(body))
        except DcPoolError:
            return None
        name = getattr(type(query), "QUALNAME", None)
        if name == "auth.sendCode":
            return ("send_code", query.phone_number)
        if name == "upload.getFile" and getattr(query.location, "id", None) in self.nonidem_files:
            return ("nonidem_get", query.location.id, query.offset)
        return None

    def handle(self, dc_id: int, ctx: Any, key_id: int, body: Any, now: float, *,
               session_id: int | None = None, msg_id: int | None = None) -> bytes:
        tag = self.tag_of(body)
        if tag is not None and session_id is not None:
            self.by_msg[(dc_id, key_id, session_id, msg_id)] += 1
        result = self._orig(dc_id, ctx, key_id, body, now, session_id=session_id, msg_id=msg_id)
        if tag is not None:
            self.by_tag[tag] += 1  # executed: the handler produced an answer
        return result


# --------------------------------------------------------------------------- faults


FAULT_KINDS = ["drop_after", "abrupt_server", "abrupt_client", "minus_404", "salt", "clock"]


def make_schedule(n: int, rng: random.Random) -> list[tuple[int, str]]:
    """(request progress, fault) pairs; the compound faults each appear at least once."""
    count = max(12, n // 25)
    kinds = [rng.choice(FAULT_KINDS) for _ in range(count)]
    # the mandatory ones, spread over the run (the move happens around the middle)
    kinds[count // 5] = "flood_export"
    kinds[(2 * count) // 5] = "auth_bytes_invalid"
    kinds[count // 2] = "move_user"
    if count >= 20:
        kinds[(4 * count) // 5] = "flood_export"
    step = n / (count + 1)
    return [(int(step * (i + 1)), k) for i, k in enumerate(kinds)]


class Injector:
    def __init__(self, cluster: Any, pool: Any, user_id: int, rng: random.Random, report: SoakReport):
        self.cluster = cluster
        self.world = cluster.world
        self.pool = pool
        self.user_id = user_id
        self.rng = rng
        self.report = report
        #: where the user will move (chosen now, so that no -404 is ever armed there)
        self.move_target = rng.choice([d for d in DCS if d != pool.home_dc])

    def _login_dcs(self) -> set[int]:
        # A -404 there would log the user out (a real -404 means "key unknown"): avoided, for
        # the home DC, the user's DC and the DC the user will move to.
        return {self.pool.home_dc, self.world.user(self.user_id).home_dc, self.move_target}

    def _foreign(self) -> int:
        return self.rng.choice([d for d in DCS if d not in self._login_dcs()])

    def inject(self, kind: str) -> None:
        rng, world = self.rng, self.world
        dc = rng.choice(DCS)
        self.report.faults[kind] += 1
        if kind == "drop_after":
            world.faults(dc).drop_connections(after_messages=rng.randint(1, 4), count=1)
            self.cluster.drop_connections(dc)  # so that the next connection meets it soon
        elif kind == "abrupt_server":
            self.cluster.drop_connections(dc)
        elif kind == "abrupt_client":
            self.pool.drop_connections(dc)
        elif kind == "minus_404":
            world.faults(self._foreign()).transport_error(-404, count=1)
        elif kind == "salt":
            world.faults(dc).rotate_salt(count=1)
        elif kind == "clock":
            # Forward only: the emulator's msg_id generator is monotonic (see ServerCore).  More
            # than 300 s, so that the client's msg_ids become "too old" and the server answers
            # bad_msg_notification 16, the protocol's way to fix a clock (spec §8.3).  A jump
            # of 30..300 s is a different story: see tests/reliability/test_clock.py.
            world.faults(dc).clock_offset += rng.uniform(310.0, 600.0)
        elif kind == "flood_export":
            world.faults(self.pool.home_dc).flood_wait("auth.exportAuthorization", 1, count=1)
            world.faults(self._foreign()).transport_error(-404, count=1)  # forces a new transfer
        elif kind == "first_transfer_faults":
            # Before any request: the first export answers FLOOD_WAIT and one DC's first import
            # AUTH_BYTES_INVALID, so that both happen in every run, however short.
            world.faults(self.pool.home_dc).flood_wait("auth.exportAuthorization", 1, count=1)
            world.faults(self._foreign()).auth_bytes_invalid(count=1)
        elif kind == "auth_bytes_invalid":
            target = self._foreign()
            world.faults(target).auth_bytes_invalid(count=1)
            world.faults(target).transport_error(-404, count=1)
        elif kind == "move_user":
            account = world.user(self.user_id)
            target = self.move_target
            state = next((s for s in self.pool.dc_states() if s.dc_id == target), None)
            authorized = state is not None and state.authorized_user == self.user_id
            self.report.home_moves.append(f"user moved {account.home_dc} -> {target}"
                                          f"{'' if authorized else ' (not authorized there yet)'}")
            world.move_user(self.user_id, target)
        else:  # pragma: no cover
            raise ValueError(kind)


# --------------------------------------------------------------------------- the run


async def run_soak(
    requests: int = 400,
    *,
    seed: int = 1,
    concurrency: int = 16,
    request_timeout: float = 8.0,
    lost_after: float = 60.0,
    progress: Callable[[int, int], None] | None = None,
) -> SoakReport:
    """Run the soak and return its report (see the module docstring)."""
    rng = random.Random(seed)
    report = SoakReport(requests=requests)
    plan = make_plan(requests, rng)
    schedule = make_schedule(requests, rng)
    t0 = time.perf_counter()
    async with open_cluster() as cluster:
        world = cluster.world
        files = {dc: cluster.add_file(dc, size=64 * PART) for dc in DCS}
        small = {dc: cluster.add_file(dc, size=5 * PART + 123) for dc in DCS}
        needed = Counter(s.dc for s in plan if s.kind == "nonidem_get")
        nonidem = {dc: cluster.add_file(dc, size=max(1, needed[dc]) * PART) for dc in DCS}
        counter = ExecutionCounter(world, {f.id for f in nonidem.values()})
        for dc in rng.sample(DCS, 3):
            world.faults(dc).latency = rng.uniform(0.001, 0.004)

        async with open_pool(api_id=1, api_hash="soak", dc_list=cluster.dc_list(),
                             rsa_keys=cluster.rsa_keys(), home_dc=2,
                             request_timeout=request_timeout) as pool:
            user = await pool.sign_in(PHONE, "22222")
            injector = Injector(cluster, pool, user.id, rng, report)
            injector.inject("first_transfer_faults")
            done = 0
            progressed = trio.Event()
            limiter = trio.CapacityLimiter(concurrency)

            async def run_one(spec: Spec) -> None:
                nonlocal done, progressed
                async with limiter:
                    with trio.move_on_after(lost_after) as scope:
                        try:
                            ok = await _execute(pool, spec, files, small, nonidem, user.id)
                        except DcPoolError as exc:
                            name = type(exc).__name__
                            if isinstance(exc, RpcError):
                                name += f"({exc.message})"
                            report.typed_errors[name] += 1
                            where = "" if spec.kind == "home" else f" on DC {spec.dc}"
                            report.errors_by_kind[f"{spec.kind}{where}: {name}"] += 1
                        except Exception as exc:  # an untyped error is a finding
                            report.untyped_errors[type(exc).__name__] += 1
                            report.examples.setdefault(type(exc).__name__, repr(exc)[:300])
                        else:
                            if ok:
                                report.ok += 1
                            else:
                                report.corrupted += 1
                    if scope.cancelled_caught:
                        report.lost += 1
                    report.by_kind[spec.kind] += 1
                    done += 1
                    progressed.set()
                    progressed = trio.Event()
                    if progress is not None:
                        progress(done, requests)

            async def inject_faults() -> None:
                for at, kind in schedule:
                    while done < at:
                        await progressed.wait()
                    injector.inject(kind)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(inject_faults)
                async with trio.open_nursery() as work:
                    for spec in plan:
                        work.start_soon(run_one, spec)
                nursery.cancel_scope.cancel()
            stats = pool.statistics()
            report.migrations = stats.migrations
            report.transfers = stats.transfers
            report.flood_waits_waited = stats.flood_waits
            report.transfer_flood_waits = stats.transfer_flood_waits
            report.server_retries = stats.server_retries
            report.reconnects = sum(d.reconnects for d in stats.dcs.values())
        report.leaked_tasks = pool.statistics().tasks
        with trio.move_on_after(5):
            while any(cluster.live_connections(dc) for dc in DCS):
                await trio.sleep(0.01)
        report.leaked_connections = sum(cluster.live_connections(dc) for dc in DCS)
        snapshot = cluster.statistics()
        report.handshakes = snapshot.total("handshakes")
        for dc_stats in snapshot.dcs.values():
            report.emulator_errors.update(dc_stats.errors)
        report.duplicate_msg_executions = sum(1 for n in counter.by_msg.values() if n > 1)
        report.duplicate_tag_executions = sum(1 for n in counter.by_tag.values() if n > 1)
        report.any_duplicate_msg_executions = len(cluster.statistics().duplicates())
    report.elapsed = time.perf_counter() - t0
    return report


async def _execute(pool: Any, spec: Spec, files: dict, small: dict, nonidem: dict, user_id: int) -> bool:
    """Run one request of the plan; True if the answer is right."""
    api = tl.api
    if spec.kind == "download":
        f = files[spec.dc]
        req = api.upload.GetFile(location=f.input_location(), offset=spec.offset, limit=PART)
        # the hint may be wrong: FILE_MIGRATE then sends it where the file lives
        result = await pool.invoke(req, dc_id=spec.hint, lane="download")
        return bytes(result.bytes) == bytes(f.chunk(spec.offset, PART))
    if spec.kind == "whole_file":
        f = small[spec.dc]
        data = bytearray()
        async with pool.download(f.input_location(), dc_id=spec.dc, part_size=PART,
                                 parallel=3) as chunks:
            async for chunk in chunks:
                data += chunk
        return bytes(data) == f.data
    if spec.kind == "home":
        result = await pool.invoke(api.users.GetFullUser(id=api.InputUserSelf()))
        return result.users[0].id == user_id
    if spec.kind == "send_code":
        req = api.auth.SendCode(phone_number=spec.phone, api_id=pool.api_id, api_hash=pool.api_hash,
                                settings=api.CodeSettings())
        result = await pool.invoke(req, dc_id=spec.dc)
        return bool(result.phone_code_hash)
    if spec.kind == "nonidem_get":
        f = nonidem[spec.dc]
        req = api.upload.GetFile(location=f.input_location(), offset=spec.offset, limit=PART)
        raw = await pool.invoke_raw(req.to_bytes(), dc_id=spec.dc, name=NONIDEM_NAME)
        result = tl.loads(raw)
        return bytes(result.bytes) == bytes(f.chunk(spec.offset, PART))
    raise ValueError(spec.kind)  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=8.0, help="per-request timeout (s)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if not args.json and (now - last[0] > 2 or done == total):
            last[0] = now
            print(f"  {done}/{total}", file=sys.stderr)

    report = trio.run(lambda: run_soak(args.requests, seed=args.seed, concurrency=args.concurrency,
                                       request_timeout=args.timeout, progress=progress))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        print(report.format())
    failures = report.failures()
    if report.answered_ratio < MIN_ANSWERED:
        # (a CLI-size run only: a few hundred requests are too few for a share to mean much)
        failures.append(f"only {report.answered_ratio:.2%} answered (want >= {MIN_ANSWERED:.1%})")
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
