"""Test helpers: build requests with a given layer's definitions, check answers against a layer."""

from __future__ import annotations

from typing import Any

from dcpool import tl
from dcpool.tl import history


def cls_at(name: str, layer: int) -> type:
    cls = tl.class_at_layer(name, layer)
    assert cls is not None, f"{name} does not exist in layer {layer}"
    return cls


def make(name: str, layer: int, /, **fields: Any) -> Any:
    """``name`` built with layer ``layer``'s definition (fields it lacks are left out)."""
    cls = cls_at(name, layer)
    have = {f.pyname for f in cls._tl_params}
    return cls(**{k: v for k, v in fields.items() if k in have})


def assert_in_layer(obj: Any, layer: int, path: str = "result") -> int:
    """Every API object of ``obj`` is a constructor of ``layer`` (per the history); returns how
    many objects were checked."""
    known = history.effective_layer(layer)
    if isinstance(obj, list):
        return sum(assert_in_layer(x, layer, f"{path}[{i}]") for i, x in enumerate(obj))
    if not isinstance(obj, tl.TLObject):
        return 0
    cid = type(obj).CONSTRUCTOR_ID
    assert known in history.layers_of(cid), (
        f"{path}: {type(obj).QUALNAME}#{cid:08x} is not a constructor of layer {layer}"
    )
    n = 1
    for f in type(obj)._tl_params:
        n += assert_in_layer(getattr(obj, f.pyname), layer, f"{path}.{f.name}")
    return n


def wrap(layer: int, query: Any) -> Any:
    """``invokeWithLayer(layer, initConnection(query))`` as layer ``layer`` writes them."""
    # invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X;
    # initConnection#c1cd5ea9 {X:Type} flags:# api_id:int device_model:string ... query:!X = X;
    init = make(
        "initConnection", layer, api_id=1, device_model="sweep", system_version="1",
        app_version="1", system_lang_code="en", lang_pack="", lang_code="en", query=query,
    )
    return make("invokeWithLayer", layer, layer=layer, query=init)
