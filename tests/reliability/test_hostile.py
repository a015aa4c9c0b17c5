"""The pool against hostile DCs (dcpool.testing.hostile) over real loopback sockets.

One pool, one ``dc_list``: the normal emulated DCs 1 and 2 next to one hostile DC per fault
(DC 3, 4, ...), every hostile DC breaking exactly one rule the client checks.  For each fault
the test observes, through the pool's public surface:

* ``pool.events()``: the first ``disconnected`` event of that DC names the precise error class
  (:data:`dcpool.testing.hostile.EXPECTED_ERRORS`), followed by ``backoff`` and a new attempt
  (the connection is dropped and retried, never trusted);
* the request: a faulted key exchange fails the waiting request with that precise error (the
  pool runs with ``connect_attempts=1``: waiting callers are told after the first failed
  attempt); a faulted message is never delivered — the request is re-sent on the next
  connection, and is withdrawn by the test once the fault has been seen twice;
* a later request to that DC fails with a typed dcpool error (the DC is gone by then);
* storage holds no auth key for a DC whose key exchange was faulted, and that DC never saw an
  API request;
* requests to DCs 1 and 2 of the same pool succeed meanwhile and afterwards; nothing leaks.

A key exchange costs ~0.3 s of CPU (pq factoring, 2048-bit powers, RSA): to keep the test
short, each hostile DC stops listening once its fault has been observed, so later dials are
refused cheaply.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import attrs
import pytest
import trio

from dcpool import errors, tl
from dcpool.pool import open_pool
from dcpool.testing import open_cluster
from dcpool.testing.hostile import (
    EXPECTED_ERRORS,
    HANDSHAKE_FAULTS,
    Misbehavior,
    attach,
    open_hostile_server,
)

pytestmark = pytest.mark.e2e

HANDSHAKE_CASES = [f for f in EXPECTED_ERRORS if f in HANDSHAKE_FAULTS]
MESSAGE_CASES = [f for f in EXPECTED_ERRORS if f not in HANDSHAKE_FAULTS]
#: Message faults are cheap once the key exists: let the DC show them twice before it stops.
CHEAP = set(MESSAGE_CASES)


@attrs.define
class Observation:
    reasons: list[str] = attrs.field(factory=list)
    after_first: list[str] = attrs.field(factory=list)  # event kinds after the first disconnect
    observed: trio.Event = attrs.field(factory=trio.Event)
    trigger_error: BaseException | None = None
    short_error: BaseException | None = None
    short_result: object = None
    key_stored: bool | None = None
    requests_served: int = 0


def _error_class(reason: str) -> type[BaseException] | None:
    return getattr(errors, reason.split(":", 1)[0], None)


async def _run(faults: list, *, honest: bool = True) -> tuple[dict, dict, dict]:
    """Run every fault on its own hostile DC (3, 4, ...) of one pool; returns
    (observations by fault, results of the normal DCs, leak figures)."""
    first = 3
    dcs = {first + i: f for i, f in enumerate(faults)}
    honest_dc = first + len(faults) if honest else None
    obs = {f: Observation() for f in faults}
    normal: dict[str, object] = {}
    leaks: dict[str, int] = {}
    last = first + len(faults) + (1 if honest else 0)
    with trio.fail_after(60):
        async with open_cluster(dc_ids=range(1, last)) as cluster, AsyncExitStack() as stack:
            hostiles = {}
            for dc, fault in dcs.items():
                kw = {"misbehave": [fault]} if isinstance(fault, Misbehavior) else {"tamper": fault}
                hostiles[dc] = await stack.enter_async_context(
                    open_hostile_server(dc, cluster.private_key, world=cluster.world, **kw)
                )
                attach(cluster, hostiles[dc])
            if honest_dc is not None:
                hostiles[honest_dc] = await stack.enter_async_context(
                    open_hostile_server(honest_dc, cluster.private_key, world=cluster.world)
                )
                attach(cluster, hostiles[honest_dc])

            async with open_pool(api_id=1, api_hash="reliability", dc_list=cluster.dc_list(),
                                 rsa_keys=cluster.rsa_keys(), home_dc=1,
                                 connect_attempts=1) as pool:
                async with pool.events(buffer=100_000) as events, trio.open_nursery() as nursery:

                    async def monitor() -> None:
                        async for ev in events:
                            fault = dcs.get(ev.dc_id)
                            if fault is None:
                                continue
                            o = obs[fault]
                            if o.reasons:
                                o.after_first.append(ev.kind)
                                if ev.kind == "backoff" and fault not in CHEAP:
                                    # a failed key exchange: the waiting call was told and the
                                    # idle connection backs off (and then stops dialing)
                                    o.observed.set()
                            if ev.kind != "disconnected":
                                continue
                            o.reasons.append(ev.data["reason"])
                            if len(o.reasons) >= (2 if fault in CHEAP else 1):
                                hostiles[ev.dc_id].stop()
                            if len(o.reasons) >= 2:  # seen, and retried after a backoff
                                o.observed.set()

                    async def case(dc: int, fault) -> None:
                        o = obs[fault]
                        with trio.CancelScope() as trigger:
                            if fault in CHEAP:
                                nursery.start_soon(_wait_then_cancel, o.observed, trigger)
                            try:
                                await pool.invoke(tl.api.help.GetNearestDc(), dc_id=dc, timeout=45)
                            except Exception as exc:  # recorded, asserted below
                                o.trigger_error = exc
                        await o.observed.wait()
                        try:  # the DC is gone now: a typed error, whichever
                            o.short_result = await pool.invoke(tl.api.help.GetNearestDc(),
                                                               dc_id=dc, timeout=0.5)
                        except Exception as exc:
                            o.short_error = exc
                        o.key_stored = pool.storage.get_dc(dc) is not None
                        o.requests_served = hostiles[dc].requests

                    async def normal_dc(dc: int, label: str) -> None:
                        try:
                            normal[label] = await pool.invoke(tl.api.help.GetNearestDc(), dc_id=dc,
                                                              timeout=45)
                        except Exception as exc:
                            normal[label] = exc

                    nursery.start_soon(monitor)
                    async with trio.open_nursery() as cases:
                        for dc, fault in dcs.items():
                            cases.start_soon(case, dc, fault)
                        cases.start_soon(normal_dc, 1, "dc1 during")
                        cases.start_soon(normal_dc, 2, "dc2 during")
                        if honest_dc is not None:
                            cases.start_soon(normal_dc, honest_dc, "honest hostile")
                    await normal_dc(1, "dc1 after")
                    await normal_dc(2, "dc2 after")
                    nursery.cancel_scope.cancel()
            leaks["pool tasks"] = pool.statistics().tasks
            with trio.move_on_after(5):
                while any(h.connections_live for h in hostiles.values()) or any(
                    cluster.live_connections(d) for d in (1, 2)
                ):
                    await trio.sleep(0.01)
            leaks["live connections"] = sum(h.connections_live for h in hostiles.values()) + sum(
                cluster.live_connections(d) for d in (1, 2)
            )
    return obs, normal, leaks


async def _wait_then_cancel(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _check(faults: list, obs: dict, normal: dict, leaks: dict, *, keyless: bool) -> None:
    problems = []
    for fault in faults:
        o = obs[fault]
        want = EXPECTED_ERRORS[fault]
        got = _error_class(o.reasons[0]) if o.reasons else None
        if got is not want:
            problems.append(f"{fault.value}: first disconnect {o.reasons[:1]}, want {want.__name__}")
        if "backoff" not in o.after_first:
            problems.append(f"{fault.value}: no backoff after the failure ({o.after_first})")
        if "connected" in o.after_first and keyless:
            problems.append(f"{fault.value}: a connection became ready after a failed handshake")
        trigger = o.trigger_error
        if keyless and type(trigger) is not want:
            problems.append(f"{fault.value}: the request got {trigger!r}, want {want.__name__}")
        if not keyless and trigger is not None and type(trigger) not in (want, errors.RequestTimeout):
            problems.append(f"{fault.value}: the request got {trigger!r}")
        if not isinstance(o.short_error, errors.DcPoolError):
            problems.append(f"{fault.value}: later request gave {o.short_result!r} / {o.short_error!r}")
        if keyless and o.key_stored:
            problems.append(f"{fault.value}: an auth key was stored for the hostile DC")
        if keyless and o.requests_served:
            problems.append(f"{fault.value}: the hostile DC received {o.requests_served} API requests")
    for label, result in normal.items():
        if type(result).__name__ != "NearestDc":
            problems.append(f"{label}: {result!r}")
    if leaks != {"pool tasks": 0, "live connections": 0}:
        problems.append(f"leaks: {leaks}")
    assert not problems, "\n".join(problems)


async def test_handshake_faults_are_refused():
    obs, normal, leaks = await _run(HANDSHAKE_CASES)
    _check(HANDSHAKE_CASES, obs, normal, leaks, keyless=True)
    # every security fault is a SecurityError subclass; the three server refusals are not
    for fault in HANDSHAKE_CASES:
        want = EXPECTED_ERRORS[fault]
        assert issubclass(want, errors.SecurityError) == (want is not errors.HandshakeError)


async def test_message_faults_are_refused():
    obs, normal, leaks = await _run(MESSAGE_CASES, honest=False)
    _check(MESSAGE_CASES, obs, normal, leaks, keyless=False)
    for fault in MESSAGE_CASES:
        # the key exchange itself was honest: its key is kept; nothing tampered was accepted
        assert obs[fault].key_stored, fault
