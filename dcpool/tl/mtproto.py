"""MTProto core constructors and functions (schema/mtproto.tl + the hand-parsed ones), created on first use.

``mtproto.ReqPqMulti``, ``mtproto.ResPQ``, ``mtproto.MsgContainer``: see :mod:`dcpool.tl` for the naming rules.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    from . import _runtime

    value = _runtime.namespace("mtproto").resolve(name)
    globals()[name] = value  # cache: next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    from . import _runtime

    return sorted(_runtime.namespace("mtproto").names())
