"""dcpool: talk to every Telegram datacenter correctly and fast.

The trio-based API (``open_pool``, ``Pool``) is imported lazily, so that importing the sans-IO
layers (``dcpool.tl``, ``dcpool.crypto``, ``dcpool.transport``, ``dcpool.mtproto``) never pulls
in trio, sockets or asyncio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import *  # noqa: F401,F403  (errors are plain Python: safe to import eagerly)
from .errors import __all__ as _error_names

__version__ = "0.1.0"

_LAZY = {
    "open_pool": "dcpool.pool",
    "Pool": "dcpool.pool",
}

__all__ = ["open_pool", "Pool", "__version__", *_error_names]

if TYPE_CHECKING:  # pragma: no cover
    from .pool import Pool, open_pool


def __getattr__(name: str) -> Any:
    import importlib
    import importlib.util

    module_name = _LAZY.get(name)
    if module_name is None:
        # a subpackage not imported yet (``dcpool.testing.open_cluster()`` after ``import dcpool``)
        public = name.isidentifier() and not name.startswith("_")
        if not public or importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'dcpool' has no attribute {name!r}")
        return importlib.import_module(f"{__name__}.{name}")

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
