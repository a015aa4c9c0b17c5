"""Answering each client in its own API layer (spec §10, §17.2).

Theory of operation
-------------------
Handlers build their results with layer-228 classes (``tl.api``).  A client announces its layer
with ``invokeWithLayer``; the world remembers it per connection (and per auth key as a
fallback).  Telethon 1.45 speaks 229, whose constructors are those of 228 for everything the
emulator sends, so 228 objects go out unchanged to every client of layer >= 159.

Pyrogram 2.0.106 speaks 158.  Some constructors the emulator sends have a different layout
(and id) there: ``user`` (#b1b8cc83 → #8f97c628), ``userFull``, ``peerSettings``,
``peerNotifySettings``, ``stats.broadcastStats``...  :func:`to_layer158` rewrites a result
tree for such a client: every object whose schema name has a *different* class in
``tl.api158`` is rebuilt as that class from the fields both layouts share (fields that 158
lacks are dropped; the few required 158 fields that 228 lacks get a neutral value from
:data:`FILL_158`).  Objects identical in both layers are kept as they are, so the walk allocates
only where something changes.  Layer-158 *requests* need no conversion: ``tl.loads`` decodes
the 158 ids (``auth.signUp#80eee427``, ``updates.getDifference#25939651``...) into ``api158``
classes with the same schema name and field names, and handlers read fields by name.

A client of a layer between 159 and 227 is answered in 228: the emulator knows only the two
layouts.
"""

from __future__ import annotations

from typing import Any, Callable

import attrs

from .. import tl
from ..errors import LocalProtocolError

__all__ = ["LAYER_158_MAX", "uses_layer158", "to_layer", "to_layer158", "class_for_layer158"]

#: clients whose layer is at most this get layer-158 constructors
LAYER_158_MAX = 158

#: required layer-158 fields that the 228 layout lacks: schema name -> field -> value factory
FILL_158: dict[str, dict[str, Callable[[], Any]]] = {
    # stats.broadcastStats#bdf78394 ... recent_message_interactions:Vector<MessageInteractionCounters>
    "stats.broadcastStats": {"recent_message_interactions": list},
}


def uses_layer158(layer: int) -> bool:
    return layer <= LAYER_158_MAX


def _camel(name: str) -> str:
    # naming rule of dcpool.tl: split on "_", capitalise the first letter of each part
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


_CLASS_158: dict[type, type] = {}


def class_for_layer158(cls: Any) -> Any:
    """The class a layer-158 client expects for objects of ``cls`` (``cls`` itself if the layout
    is the same, or if 158 has no such constructor)."""
    try:
        return _CLASS_158[cls]
    except KeyError:
        pass
    target = cls
    if getattr(cls, "SCHEMA", None) == "api":
        *spaces, name = cls.QUALNAME.split(".")
        try:
            ns: Any = tl.api158
            for space in spaces:
                ns = getattr(ns, space)
            candidate = getattr(ns, _camel(name))
        except (AttributeError, LookupError):
            candidate = None
        # same id in both layers -> api158 resolves to the 228 class itself
        if candidate is not None and candidate.QUALNAME == cls.QUALNAME:
            target = candidate
    _CLASS_158[cls] = target
    return target


def to_layer158(obj: Any) -> Any:
    """Rewrite a result (TL object, list, or plain value) for a layer-158 client."""
    if isinstance(obj, list):
        out = [to_layer158(item) for item in obj]
        return obj if all(a is b for a, b in zip(out, obj)) else out
    if not isinstance(obj, tl.TLObject):
        return obj
    cls: Any = type(obj)  # a generated attrs class
    target = class_for_layer158(cls)
    values: dict[str, Any] = {}
    changed = target is not cls
    for field in attrs.fields(cls):
        value = getattr(obj, field.name)
        if isinstance(value, (list, tl.TLObject)):
            new = to_layer158(value)
            changed = changed or new is not value
            value = new
        values[field.name] = value
    if not changed:
        return obj
    if target is cls:
        return cls(**values)
    wanted = {f.name: f for f in attrs.fields(target)}
    kwargs = {k: v for k, v in values.items() if k in wanted}
    fill = FILL_158.get(cls.QUALNAME, {})
    for name, field in wanted.items():
        if name not in kwargs and field.default is attrs.NOTHING:
            if name not in fill:
                raise LocalProtocolError(
                    f"cannot express {cls.QUALNAME} in layer 158: no value for {name!r}"
                )
            kwargs[name] = fill[name]()
    return target(**kwargs)


def to_layer(obj: Any, layer: int) -> Any:
    """``obj`` as a client of ``layer`` expects it."""
    return to_layer158(obj) if uses_layer158(layer) else obj
