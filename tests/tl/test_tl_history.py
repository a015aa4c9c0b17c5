"""The layer history (dcpool.tl.history): package data, layer rules, decoding old ids."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from dcpool import tl
from dcpool.tl import _runtime, history

SPEC_HISTORY = pathlib.Path("/work/shared/spec/schema/layers/api-history.tl")


def test_package_data_is_the_spec_file_verbatim() -> None:
    if not SPEC_HISTORY.exists():
        pytest.skip("the spec directory is not available")
    assert history.history_text() == SPEC_HISTORY.read_text(encoding="utf-8")


def test_every_definition_parsed_with_its_layers() -> None:
    combs = history.combinators()
    assert len(combs) == 3548  # README: 3,548 definitions
    known = history.known_layers()
    assert known[0] == 100 and known[-1] == 228 and 194 not in known and 158 in known
    for comb in combs:
        assert comb.id is not None
        layers = history.layers_of(comb.id)
        assert layers and layers <= set(known), comb


@pytest.mark.parametrize(
    "layer,effective",
    [(100, 100), (131, 131), (133, 135), (134, 135), (158, 158), (159, 158), (194, 193),
     (198, 198), (226, 225), (227, 225), (228, 228), (229, 228), (1000, 228)],
)
def test_effective_layer(layer: int, effective: int) -> None:
    assert history.effective_layer(layer) == effective


@pytest.mark.parametrize(
    "layer,cid",
    [(133, 0x3FF6ECB0), (158, 0x8F97C628), (185, 0x83314FCA), (195, 0x83314FCA),
     (196, 0x4B46C37E), (199, 0x4B46C37E), (200, 0x020B1422), (216, 0x020B1422),
     (217, 0x31774388), (220, 0x31774388), (225, 0x31774388), (228, 0xB1B8CC83)],
)
def test_user_has_the_readme_ids(layer: int, cid: int) -> None:
    assert history.combinator_at("user", layer).id == cid
    assert tl.class_at_layer("user", layer).CONSTRUCTOR_ID == cid


def test_ids_shared_with_228_or_158_are_the_same_classes() -> None:
    assert tl.class_at_layer("user", 228) is tl.api.User
    assert tl.class_at_layer("user", 158) is tl.api158.User
    assert tl.class_at_layer("inputPeerSelf", 140) is tl.api.InputPeerSelf
    assert tl.class_at_layer("user", 198) is not tl.class_at_layer("user", 220)
    assert tl.class_at_layer("storyItem", 133) is None  # stories came later
    assert tl.class_at_layer("noSuchThing", 200) is None


def test_constructors_of_a_type_in_a_layer() -> None:
    names = {c.name for c in history.constructors_of("User", 198)}
    assert names == {"user", "userEmpty"}
    assert {c.id for c in history.constructors_of("User", 198)} >= {0x4B46C37E}


def test_old_ids_decode_through_tl_loads() -> None:
    old = tl.class_at_layer("user", 198)(id=7, first_name="Old", self_=True)
    back = tl.loads(old.to_bytes())
    assert type(back) is type(old) and back == old
    assert back.SCHEMA == "history" and back.QUALNAME == "user"


_FILL = {"int": 1, "long": 2, "#": 3, "double": 0.5, "string": "s", "bytes": b"b",
         "int128": bytes(16), "int256": bytes(32), "Bool": True, "true": True}


def _value(t):
    if t.name in _FILL:
        return _FILL[t.name]
    if t.is_vector:
        return []
    return tl.api.InputPeerEmpty()  # any boxed object: the reader decodes by id


def test_every_history_class_builds_and_round_trips() -> None:
    checked = 0
    for comb in history.combinators():
        cls = _runtime.class_for("history", comb)
        assert cls.CONSTRUCTOR_ID == comb.id or comb.id == 0x27D69997  # a duplicated id
        if any(f.type.is_bare_name and f.type.name not in _FILL for f in cls._tl_params):
            continue  # bare object fields need their own constructor: covered elsewhere
        obj = cls(**{f.pyname: _value(f.type) for f in cls._tl_params})
        data = obj.to_bytes()
        assert data[:4] == cls.CONSTRUCTOR_ID.to_bytes(4, "little")
        assert tl.loads(data) == obj, comb
        checked += 1
    assert checked > 3400


def test_import_does_not_load_the_history() -> None:
    code = (
        "import dcpool.tl as tl\n"
        "from dcpool.tl import history\n"
        "tl.loads(tl.api.help.GetConfig().to_bytes())\n"
        "print(history._HISTORY is None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
