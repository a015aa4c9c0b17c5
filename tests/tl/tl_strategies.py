"""Hypothesis strategies built from the TL schema: one per class, depth-limited.

``class_strategy(cls)`` draws a valid instance of any generated class: primitives cover their
full wire range, optional fields sharing one flag bit are drawn together (all present or all
absent, so that a round trip is exact), vectors hold at most two items, and below
``MAX_DEPTH`` only the constructors that terminate soonest are used.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from typing import Any

from hypothesis import strategies as st

from dcpool import tl
from dcpool.tl import _runtime
from dcpool.tl.schema_parser import TLType

MAX_DEPTH = 2
INF = 10**9

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
BYTES = st.one_of(st.binary(max_size=12), st.binary(min_size=250, max_size=300))

_PRIM: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "#": st.integers(0, 2**32 - 1),
    "double": st.floats(allow_nan=False),
    "int128": st.binary(min_size=16, max_size=16),
    "int256": st.binary(min_size=32, max_size=32),
    "string": TEXT,
    "bytes": BYTES,
    "Bool": st.booleans(),
    "true": st.booleans(),
}


def _objects() -> st.SearchStrategy[Any]:
    """Values for ``Object``/``!X`` fields: a few boxed objects that decode to themselves."""
    mt, api = tl.mtproto, tl.api
    return st.one_of(
        st.builds(mt.Pong, msg_id=_PRIM["long"], ping_id=_PRIM["long"]),
        st.just(api.help.GetConfig()),
        st.builds(api.InputPeerChat, chat_id=_PRIM["long"]),
    )


def _kind_of(cls: type) -> str:
    return cls.SCHEMA


def _ctors_for(kind: str, type_name: str) -> list[type]:
    combs = _runtime.schema(kind).by_type.get(type_name) or _runtime.schema("api").by_type.get(type_name, [])
    k = kind if _runtime.schema(kind).by_type.get(type_name) else "api"
    return [_runtime.class_for(k, c) for c in combs if c.id is not None]


@lru_cache(maxsize=None)
def _ranks(kind: str) -> dict[str, int]:
    """Fixed point: rank of a type = fewest nested required objects before a leaf."""
    s = _runtime.schema(kind)
    rank: dict[str, int] = {}
    changed = True
    while changed:
        changed = False
        for c in s.combinators:
            if c.is_function or c.id is None:
                continue
            r = 0
            for p in c.params:
                if p.flag is not None or p.type.is_vector or p.type.name in _PRIM:
                    continue
                if p.type.name == "Object" or p.type.bang:
                    continue
                name = p.type.name
                r = max(r, rank.get(name, INF) + 1 if not p.type.is_bare_name else 0)
            if r < rank.get(c.result, INF):
                rank[c.result] = r
                changed = True
    return rank


def _ctor_rank(cls: type) -> int:
    ranks = _ranks(_kind_of(cls))
    r = 0
    for f in cls._tl_params:
        if f.flag is not None or f.type.is_vector or f.type.name in _PRIM:
            continue
        if f.type.name == "Object" or f.type.bang or f.type.is_bare_name:
            continue
        r = max(r, ranks.get(f.type.name, _ranks("api").get(f.type.name, INF)) + 1)
    return r


def type_strategy(t: TLType, kind: str, depth: int) -> st.SearchStrategy[Any]:
    if t.name in _PRIM and not t.percent:
        return _PRIM[t.name]
    if t.is_vector:
        assert t.item is not None
        size = 2 if depth == 0 else (1 if depth < MAX_DEPTH else 0)
        return st.lists(type_strategy(t.item, kind, depth + 1), max_size=size)
    if t.name == "Object" or t.bang:
        return _objects()
    if t.is_bare_name:
        gen = _runtime._Gen(kind, None)  # type: ignore[arg-type]
        return class_strategy(gen.bare_class(t), depth + 1)
    ctors = _ctors_for(kind, t.name)
    if not ctors:
        raise LookupError(f"no constructor for type {t.name}")
    if depth >= MAX_DEPTH:
        best = min(_ctor_rank(c) for c in ctors)
        ctors = [c for c in ctors if _ctor_rank(c) == best]
    return st.one_of([class_strategy(c, depth + 1) for c in ctors])


@lru_cache(maxsize=None)
def class_strategy(cls: type, depth: int = 0) -> st.SearchStrategy[Any]:
    """Instances of ``cls``; ``depth`` limits nesting."""
    if cls.QUALNAME == "gzip_packed":
        return _objects().map(lambda o: cls(packed_data=gzip.compress(o.to_bytes(), mtime=0)))
    groups: dict[tuple[str, int], list[Any]] = {}
    for f in cls._tl_params:
        if f.flag is not None:
            groups.setdefault((f.flag, f.bit), []).append(f)
    return _build(cls, depth, groups)


@st.composite
def _build(draw: Any, cls: type, depth: int, groups: dict[tuple[str, int], list[Any]]) -> Any:
    # One module-level composite: creating composites per class is slow (source inspection).
    kind = _kind_of(cls)
    kwargs: dict[str, Any] = {}
    present = {
        key: draw(st.booleans()) if depth < MAX_DEPTH or all(f.type.name == "true" for f in fs) else False
        for key, fs in groups.items()
    }
    for f in cls._tl_params:
        if f.flag is not None:
            on = present[(f.flag, f.bit)]
            if f.type.name == "true":
                kwargs[f.pyname] = on
            elif on:
                kwargs[f.pyname] = draw(type_strategy(f.type, kind, depth))
            else:
                kwargs[f.pyname] = None
        else:
            kwargs[f.pyname] = draw(type_strategy(f.type, kind, depth))
    obj = cls(**kwargs)
    if cls.QUALNAME == "message" and cls.SCHEMA == "mtproto":
        obj.bytes = len(obj.body.to_bytes())  # the reader reports the real body length
    return obj
