"""Above the per-DC state: home DC, migrations, authorization transfers, retries, deadlines.
See :mod:`dcpool.router.router`."""

from .deadline import CallTrace, Stage
from .router import FILE_DC_MEMORY, Router

__all__ = ["Router", "Stage", "CallTrace", "FILE_DC_MEMORY"]
