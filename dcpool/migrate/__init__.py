"""The pure migration policy: which action a ``*_MIGRATE_X`` error asks for.  See
:mod:`dcpool.migrate.policy`; the migration loop that uses it is :mod:`dcpool.router`."""

from .policy import Action, HopTracker, MoveHome, RetryOn, decide

__all__ = ["Action", "decide", "HopTracker", "MoveHome", "RetryOn"]
