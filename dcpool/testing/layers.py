"""Answering each client in its own API layer, and reading its requests (spec §10, §17.2).

Theory of operation
-------------------
Handlers build their results with layer-228 classes (``tl.api``) and read requests as layer-228
classes.  A client announces its layer with ``invokeWithLayer``; the world remembers it per
connection and per auth key.  Two generic rewrites, driven by schema *names* and the layer
history (:mod:`dcpool.tl.history`, every ``name#id`` of layers 100..228), make that work for
every layer and for every handler, including ones added later:

* :func:`to_layer` (answers, updates): every object of a result tree is rebuilt as the
  definition its schema name has in the client's layer (``user`` -> ``user#83314fca`` for a
  layer-190 client).  Objects whose id is the same in both layers are kept, so the walk allocates
  only where something changes, and a layer >= 228 is returned untouched.
* :func:`from_layer` (requests): ``tl.loads`` decodes any historical id (the history is the
  last schema the TL runtime consults), then every object of the request tree is rebuilt as the
  layer-228 class of the same name, so handlers see one set of classes.

Rebuilding copies the fields both definitions have, by name, when the value fits the target
field's type (``int`` within 32 bits, ``string``, a TL object whose result type is the field's
type after its own rewrite, vectors item by item: items that do not fit are dropped).  A field
the value does not fit, or that the source lacks, is left out when optional, and otherwise gets
a neutral value: 0, "", b"", [], False, or for a boxed type the simplest constructor of that
type in the target layer (fewest required fields, recursively filled); :data:`FILL` overrides
that per ``(schema name, field)`` where a neutral value would mislead a client.  A constructor
that does not exist at all in the client's layer is sent as it is (the emulator never sends
such objects to old clients in its own flows; a handler that does should check
:func:`exists_in`).

Layers below 133 (32-bit user ids) are not served: :data:`OLDEST_SERVED`; the session rules
module decides what to answer to them (``CONNECTION_LAYER_INVALID``).  Layers 132..134, missing
from the history, are answered with layer 135's definitions (see :mod:`dcpool.tl.history`).
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from .. import tl
from ..errors import LocalProtocolError
from ..tl import history

__all__ = [
    "OLDEST_SERVED",
    "NEWEST_SERVED",
    "answer_layer",
    "is_served",
    "exists_in",
    "to_layer",
    "from_layer",
    "to_layer158",
    "uses_layer158",
    "LAYER_158_MAX",
    "FILL",
]

#: the oldest and newest layer the emulator speaks (a newer client is answered in the newest)
OLDEST_SERVED = 133
NEWEST_SERVED = tl.LAYER

#: kept for callers of the two-layout era: a layer at most this gets layer-158 constructors
LAYER_158_MAX = 158

#: Neutral values that differ from the generic zero: schema name -> field -> value factory.
FILL: dict[str, dict[str, Callable[[], Any]]] = {
    # config#330b4067 / config#232566ac (layers <= 152) ... saved_gifs_limit:int
    #   stickers_faved_limit:int pinned_dialogs_count_max:int pinned_infolder_count_max:int ...
    # Telegram's own values for these limits (help.getAppConfig carries them from layer 155 on).
    "config": {
        "saved_gifs_limit": lambda: 200,
        "stickers_faved_limit": lambda: 5,
        "pinned_dialogs_count_max": lambda: 5,
        "pinned_infolder_count_max": lambda: 100,
    },
}

_LOCK = threading.Lock()


def answer_layer(layer: int) -> int:
    """The layer whose definitions a client announcing ``layer`` is answered with (>= 228 ->
    228; a layer missing from the history -> the known layer standing for it).  Two clients with
    the same answer layer get byte-identical answers."""
    if layer >= NEWEST_SERVED:
        return NEWEST_SERVED
    return history.effective_layer(layer)


def is_served(layer: int) -> bool:
    return layer >= OLDEST_SERVED


def uses_layer158(layer: int) -> bool:
    return layer <= LAYER_158_MAX


def exists_in(qualname: str, layer: int) -> bool:
    """Whether schema name ``qualname`` exists in ``layer``."""
    return history.combinator_at(qualname, answer_layer(layer)) is not None


# --------------------------------------------------------------------------- type fitting

_INT32 = range(-(2**31), 2**31)
_PRIM_ZERO: dict[str, Any] = {
    "int": 0, "long": 0, "#": 0, "double": 0.0, "string": "", "bytes": b"",
    "int128": bytes(16), "int256": bytes(32), "Bool": False, "true": False,
}
_MISSING = object()


class _Rewriter:
    """One direction of rewriting: ``resolve(src_cls) -> target class``; zero values are made
    with the definitions of ``layer``."""

    def __init__(self, layer: int, resolve: Callable[[Any], Any]) -> None:
        self.layer = layer
        self._resolve = resolve
        self._targets: dict[Any, Any] = {}
        self._plans: dict[tuple[Any, Any], tuple[tuple[Any, str | None], ...]] = {}
        self._zero_ctor: dict[str, Any] = {}

    # -- classes

    def target(self, cls: Any) -> Any:
        t = self._targets.get(cls)
        if t is None:
            t = self._resolve(cls) or cls
            self._targets[cls] = t
        return t

    def plan(self, src: Any, dst: Any) -> tuple[tuple[Any, str | None], ...]:
        key = (src, dst)
        p = self._plans.get(key)
        if p is None:
            have = {f.name: f.pyname for f in src._tl_params}
            p = tuple((f, have.get(f.name)) for f in dst._tl_params)
            self._plans[key] = p
        return p

    # -- values

    def rewrite(self, obj: Any) -> Any:
        if isinstance(obj, list):
            out = [self.rewrite(item) for item in obj]
            return obj if all(a is b for a, b in zip(out, obj)) else out
        if not isinstance(obj, tl.TLObject) or not hasattr(type(obj), "_tl_params"):
            return obj
        src: Any = type(obj)
        dst = self.target(src)
        changed = dst is not src
        kwargs: dict[str, Any] = {}
        for field, src_name in self.plan(src, dst):
            value = getattr(obj, src_name) if src_name is not None else _MISSING
            new = self.fit(value, field.type) if value is not None and value is not _MISSING else _MISSING
            if new is _MISSING:
                new = self.absent(dst, field)
            if new is not value:
                changed = True
            kwargs[field.pyname] = new
        if not changed:
            return obj
        return dst(**kwargs)

    def absent(self, dst: Any, field: Any) -> Any:
        fill = FILL.get(dst.QUALNAME, {}).get(field.name)
        if fill is not None:
            return fill()
        if field.flag is not None:
            return False if field.type.name == "true" else None
        return self.zero(field.type, dst.QUALNAME, 0)

    def fit(self, value: Any, t: Any) -> Any:
        """``value`` rewritten for a field of type ``t``, or _MISSING if it does not fit."""
        name = t.name
        if name == "true":
            return bool(value)
        if name in ("int", "#"):
            return value if type(value) is int and value in _INT32 else _MISSING
        if name == "long":
            return value if type(value) is int else _MISSING
        if name == "double":
            return value if isinstance(value, (int, float)) and not isinstance(value, bool) else _MISSING
        if name == "string":
            return value if isinstance(value, str) else _MISSING
        if name in ("bytes", "int128", "int256"):
            return value if isinstance(value, (bytes, bytearray, memoryview)) else _MISSING
        if name == "Bool":
            return value if isinstance(value, bool) else _MISSING
        if t.is_vector:
            if not isinstance(value, list):
                return _MISSING
            out = []
            same = True
            for item in value:
                new = self.fit(item, t.item)
                if new is _MISSING:
                    same = False
                    continue
                same = same and new is item
                out.append(new)
            return value if same else out
        if isinstance(value, tl.Raw):
            return value
        if not isinstance(value, tl.TLObject):
            return _MISSING
        new = self.rewrite(value)
        if name in ("Object", "X", "Type") or t.bang:
            return new
        cls: Any = type(new)
        if t.is_bare_name and not t.percent:
            return new if cls.QUALNAME == name else _MISSING
        return new if cls.RESULT_TYPE == name else _MISSING

    def zero(self, t: Any, owner: str, depth: int) -> Any:
        """A neutral value of type ``t`` in ``self.layer``."""
        if t.name in _PRIM_ZERO:
            return _PRIM_ZERO[t.name]
        if t.is_vector:
            return []
        cls = self.zero_class(t.name)
        if cls is None or depth > 6:
            raise LocalProtocolError(
                f"cannot express {owner} in layer {self.layer}: no neutral value of type {t}"
            )
        kwargs = {}
        for f in cls._tl_params:
            if f.flag is None:
                kwargs[f.pyname] = self.zero(f.type, cls.QUALNAME, depth + 1)
        return cls(**kwargs)

    def zero_class(self, type_name: str) -> Any:
        try:
            return self._zero_ctor[type_name]
        except KeyError:
            pass
        best: tuple[int, str, Any] | None = None
        for comb in history.constructors_of(type_name, self.layer):
            cost = sum(1 for p in comb.params if p.flag is None and p.name not in comb.flag_fields)
            key = (cost, comb.name)
            if best is None or key < best[:2]:
                best = (cost, comb.name, comb)
        cls = None if best is None else tl.class_at_layer(best[2].name, self.layer)
        self._zero_ctor[type_name] = cls
        return cls


_DOWN: dict[int, _Rewriter] = {}
_UP: _Rewriter | None = None


def _down(layer: int) -> _Rewriter:
    r = _DOWN.get(layer)
    if r is None:
        with _LOCK:
            r = _DOWN.get(layer)
            if r is None:
                r = _DOWN[layer] = _Rewriter(
                    layer, lambda cls: tl.class_at_layer(cls.QUALNAME, layer)
                    if getattr(cls, "SCHEMA", "mtproto") != "mtproto" else None
                )
    return r


def _to_228(cls: Any) -> Any:
    if getattr(cls, "SCHEMA", "mtproto") in ("api", "mtproto"):
        return None
    return tl.class_at_layer(cls.QUALNAME, NEWEST_SERVED)


def _up() -> _Rewriter:
    global _UP
    r = _UP
    if r is None:
        with _LOCK:
            r = _UP
            if r is None:
                r = _UP = _Rewriter(NEWEST_SERVED, _to_228)
    return r


# --------------------------------------------------------------------------- public API


def to_layer(obj: Any, layer: int) -> Any:
    """``obj`` (a layer-228 TL object, list, or plain value) as a client of ``layer`` reads it.
    Unchanged parts are the same objects; ``obj`` itself is never modified."""
    effective = answer_layer(layer)
    if effective >= NEWEST_SERVED:
        return obj
    return _down(effective).rewrite(obj)


def from_layer(query: Any) -> Any:
    """A request decoded from any layer, rewritten with layer-228 classes (same object if it
    already is one)."""
    return _up().rewrite(query)


def to_layer158(obj: Any) -> Any:
    """``to_layer(obj, 158)`` (Pyrogram 2.0.106's layer)."""
    return to_layer(obj, 158)
