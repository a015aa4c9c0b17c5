"""Layer-158 (Pyrogram 2.0.106) API constructors and functions, created on first use.

``api158.User`` (user#8f97c628), ``api158.auth.SignUp``.  A name whose id also exists in layer
228 resolves to the layer-228 class (same id, same wire form): see :mod:`dcpool.tl` for the naming rules.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    from . import _runtime

    value = _runtime.namespace("api158").resolve(name)
    globals()[name] = value  # cache: next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    from . import _runtime

    return sorted(_runtime.namespace("api158").names())
