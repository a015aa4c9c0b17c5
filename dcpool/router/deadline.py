"""One deadline per call, and which stage of the call was running when it passed.

``pool.invoke(..., timeout=T)`` gives the *whole* call T seconds of trio's clock: migration
hops, authorization transfers (and a FLOOD_WAIT they wait out), reconnects and retries all fit
inside.  The router runs the call in one cancel scope with that deadline and keeps a
:class:`CallTrace` of the stage it is in, so that :class:`~dcpool.errors.RequestTimeout` can
say what was going on.
"""

from __future__ import annotations

import enum
import math

import attrs
import trio

from ..errors import RequestTimeout

__all__ = ["Stage", "CallTrace"]


class Stage(enum.StrEnum):
    ROUTING = "routing"
    #: waiting for (or running) the authorization transfer to the target DC
    TRANSFER = "authorization transfer"
    #: waiting out a FLOOD_WAIT (of the request, or of the authorization export)
    FLOOD_WAIT = "flood wait"
    #: the call is queued on a connection that is not ready (dialing, key exchange, backoff)
    CONNECTING = "connecting"
    #: sent, waiting for the answer
    ANSWER = "waiting for the answer"
    #: moving home after a *_MIGRATE_X
    MIGRATION = "migration"


@attrs.define
class CallTrace:
    """The stages one call went through (for the timeout message and tests)."""

    name: str
    timeout: float | None
    deadline: float
    stage: Stage = Stage.ROUTING
    hops: int = 0

    @classmethod
    def start(cls, name: str, timeout: float | None) -> CallTrace:
        deadline = math.inf if timeout is None else trio.current_time() + timeout
        return cls(name=name, timeout=timeout, deadline=deadline)

    def timed_out(self) -> RequestTimeout:
        hops = f", after {self.hops} migration(s)" if self.hops else ""
        return RequestTimeout(f"{self.name}: no answer within {self.timeout} s "
                              f"(while {self.stage}{hops})", stage=str(self.stage))
