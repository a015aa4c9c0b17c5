"""The migration policy: which action a ``*_MIGRATE_X`` error asks for (pure, spec §9, §11.3).

====================  ==========================================  ===============
error                 meaning                                     action
====================  ==========================================  ===============
PHONE_MIGRATE_X       the phone's account lives on DC X           home := X, retry
NETWORK_MIGRATE_X     new user; DC X is nearest                   home := X, retry
USER_MIGRATE_X        the signed-in user lives on DC X            home := X, retry
FILE_MIGRATE_X        the file lives on DC X                      retry on X
STATS_MIGRATE_X       the statistics live on DC X                 retry on X
====================  ==========================================  ===============

A request follows at most ``max_hops`` migrations, and never revisits a DC it was sent away
from (A -> B -> A is a loop: the cluster disagrees with itself, and looping would never end).
"""

from __future__ import annotations

import attrs

from ..errors import MigrateError, MigrationError


@attrs.frozen
class MoveHome:
    """The home DC moves to ``dc_id``; the request is retried there."""

    dc_id: int


@attrs.frozen
class RetryOn:
    """Retry this request on ``dc_id``; the home DC stays."""

    dc_id: int


Action = MoveHome | RetryOn


def decide(error: MigrateError) -> Action:
    """The action for one migrate error."""
    if error.moves_home:
        return MoveHome(error.dc_id)
    return RetryOn(error.dc_id)


@attrs.define
class HopTracker:
    """Counts the hops of one request and detects loops."""

    max_hops: int = 5
    visited: list[int] = attrs.field(factory=list)

    def hop(self, from_dc: int, error: MigrateError) -> Action:
        """Record leaving ``from_dc`` because of ``error``; raise MigrationError on a loop or
        when the hop budget is spent."""
        action = decide(error)
        if from_dc not in self.visited:
            self.visited.append(from_dc)
        if action.dc_id in self.visited:
            path = " -> ".join(map(str, [*self.visited, action.dc_id]))
            raise MigrationError(f"migration loop ({error.name}): {path}") from error
        if len(self.visited) > self.max_hops:
            raise MigrationError(
                f"gave up after {self.max_hops} migrations: {' -> '.join(map(str, self.visited))}"
            ) from error
        return action
