#!/usr/bin/env python3
"""Generate the typing stubs ``dcpool/tl/api.pyi`` and ``dcpool/tl/mtproto.pyi`` from the
schemas the runtime uses, so that IDEs complete TL classes and mypy checks them.

    python tools/gen_tl_stubs.py            # rewrite the stubs
    python tools/gen_tl_stubs.py --check    # exit 1 if a committed stub is out of date (CI)

What a stub holds (for every constructor and function the runtime can build, i.e. every
declaration with an id, under the runtime's own class names and namespaces):

* a class per combinator, deriving from ``TLObject`` / ``TLFunction``, with its fields as
  attributes and a keyword-only ``__init__`` (optional flag fields default to None, ``true``
  flags to False, exactly as the runtime's attrs classes);
* field types: ``int``/``long``/``#`` -> int, ``double`` -> float, ``string`` -> str,
  ``bytes``/``int128``/``int256`` -> bytes, ``Bool``/``true`` -> bool, ``Vector<T>`` -> list,
  an abstract type -> the union of its constructors (a private alias ``_Type`` or
  ``_ns_Type``), generic or ``Object`` -> Any;
* for functions, ``read_result(data) -> <the result type>`` (generic wrappers: Any);
* namespaces (``messages``, ``help``...) as classes holding their classes, which is how the
  runtime's namespace objects behave for attribute access.

The stubs declare no module ``__getattr__``: a name that is not in the schema is an error for
mypy, as it is at run time.  Names and the collision rule come from the runtime's own schema
index (:func:`dcpool.tl._runtime.schema`), so stubs and classes cannot disagree on a name.
"""

from __future__ import annotations

import argparse
import builtins
import keyword
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dcpool.tl import _runtime  # noqa: E402  (the runtime's schema index: names, collisions)
from dcpool.tl.schema_parser import Combinator, TLType  # noqa: E402

KINDS = ("api", "mtproto")
OUTPUT = {kind: ROOT / "dcpool" / "tl" / f"{kind}.pyi" for kind in KINDS}

_PRIMITIVES = {
    "int": "_b.int", "long": "_b.int", "#": "_b.int", "double": "_b.float", "string": "_b.str",
    "bytes": "_b.bytes", "int128": "_b.bytes", "int256": "_b.bytes", "Bool": "_b.bool",
    "true": "_b.bool",
}
_ANY = "_Any"


def _py_name(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) or name == "self" else name


def _alias(type_name: str) -> str:
    return "_" + type_name.replace(".", "_")


class _Stub:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.schema = _runtime.schema(kind)
        # combinator name -> dotted class path in the stub ("messages.SendMessage")
        self.paths: dict[str, str] = {}
        for ns, table in self.schema.names.items():
            for cname, comb in table.items():
                if comb.id is not None:
                    self.paths[comb.name] = f"{ns}.{cname}" if ns else cname
        self.types: dict[str, list[str]] = {}
        for result, combs in self.schema.by_type.items():
            members = [self.paths[c.name] for c in combs if c.name in self.paths]
            if members:
                self.types[result] = members
        self.bare_used: set[str] = set()

    # ---------------------------------------------------------------- types

    def annotation(self, t: TLType, generics: dict[str, str]) -> str:
        if t.name in _PRIMITIVES:
            return _PRIMITIVES[t.name]
        if t.is_vector:
            return f"_b.list[{self.annotation(t.item, generics) if t.item else _ANY}]"
        if t.name in generics or t.name in ("Object", "Type", "X"):
            return _ANY
        if t.name in self.types and not (t.percent and False):
            return _alias(t.name)
        if t.name in self.paths:  # a bare constructor (``vector<message>``)
            self.bare_used.add(t.name)
            return "_bare_" + t.name.replace(".", "_")
        return _ANY

    def field_lines(self, comb: Combinator, indent: str) -> tuple[list[str], list[str]]:
        flag_fields = comb.flag_fields
        defaults = _runtime._FIELD_DEFAULTS.get((self.kind, comb.name), {})
        attrs_lines, params = [], []
        for p in comb.params:
            if p.name in flag_fields:
                continue
            ann = self.annotation(p.type, comb.generics)
            # arguments take any sequence where the object stores a list (the writer only
            # iterates), so a caller's list of a narrower type checks (list is invariant)
            arg = "_Sequence[" + ann[len("_b.list["):] if ann.startswith("_b.list[") else ann
            name = _py_name(p.name)
            if p.flag is not None and p.type.name == "true":
                # an absent ``true`` flag reads back as False; None is accepted as "absent"
                attrs_lines.append(f"{indent}{name}: {ann}")
                params.append(f"{name}: {arg} | None = False")
            elif p.flag is not None:
                attrs_lines.append(f"{indent}{name}: {ann} | None")
                params.append(f"{name}: {arg} | None = None")
            elif p.name in defaults:
                attrs_lines.append(f"{indent}{name}: {ann}")
                params.append(f"{name}: {arg} = {defaults[p.name]!r}")
            else:
                attrs_lines.append(f"{indent}{name}: {ann}")
                params.append(f"{name}: {arg}")
        return attrs_lines, params

    def class_lines(self, cname: str, comb: Combinator, indent: str) -> list[str]:
        base = "_TLFunction" if comb.is_function else "_TLObject"
        out = [f"{indent}class {cname}({base}):", f'{indent}    """{comb.line}"""']
        attrs_lines, params = self.field_lines(comb, indent + "    ")
        out += attrs_lines
        signature = ", ".join(["self", "*", *params]) if params else "self"
        out.append(f"{indent}    def __init__({signature}) -> None: ...")
        if comb.is_function:
            if comb.result in comb.generics or comb.result.lstrip("!") in comb.generics:
                result = _ANY
            else:
                from dcpool.tl.schema_parser import parse_type

                result = self.annotation(parse_type(comb.result), comb.generics)
            out.append(f"{indent}    @staticmethod")
            out.append(f"{indent}    def read_result(data: _b.bytes | _b.bytearray | _b.memoryview) -> {result}: ...")
        return out

    # ---------------------------------------------------------------- module

    def render(self) -> str:
        body: list[str] = []
        names = self.schema.names
        root = {c: comb for c, comb in sorted(names.get("", {}).items()) if comb.id is not None}
        for cname, comb in root.items():
            body += self.class_lines(cname, comb, "")
        for ns in sorted(n for n in names if n and "." not in n):
            body += self.namespace_lines(ns, "")
        aliases = []
        for type_name in sorted(self.types):
            members = self.types[type_name]
            value = members[0] if len(members) == 1 else "_Union[" + ", ".join(members) + "]"
            aliases.append(f"{_alias(type_name)}: _TypeAlias = {value}")
        for name in sorted(self.bare_used):
            aliases.append(f"_bare_{name.replace('.', '_')}: _TypeAlias = {self.paths[name]}")
        source = {"api": "layer 228 (dcpool/tl/schema/api.tl)",
                  "mtproto": "the MTProto core schema (dcpool/tl/schema/mtproto.tl + EXTRA_CORE)"}[self.kind]
        header = [
            f"# Typing stubs for dcpool.tl.{self.kind}: {source}.",
            "# Generated by tools/gen_tl_stubs.py: do not edit; regenerate after a schema change",
            "# (tests/tl/test_tl_stubs.py fails while they are out of date).",
            "",
            "import builtins as _b",
            "from typing import Any as _Any, Sequence as _Sequence, TypeAlias as _TypeAlias, Union as _Union",
            "",
            "from ._base import TLFunction as _TLFunction, TLObject as _TLObject",
            "",
        ]
        return "\n".join(header + aliases + [""] + body) + "\n"

    def namespace_lines(self, ns: str, indent: str) -> list[str]:
        short = ns.rpartition(".")[2]
        out = [f"{indent}class {short}:"]
        table = self.schema.names.get(ns, {})
        inner: list[str] = []
        for cname, comb in sorted(table.items()):
            if comb.id is not None:
                inner += self.class_lines(cname, comb, indent + "    ")
        for sub in sorted(n for n in self.schema.names if n.startswith(ns + ".") and "." not in n[len(ns) + 1:]):
            inner += self.namespace_lines(sub, indent + "    ")
        return out + (inner or [f"{indent}    ..."])


def render(kind: str) -> str:
    return _Stub(kind).render()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the stubs are up to date")
    args = parser.parse_args(argv)
    stale = []
    for kind in KINDS:
        text = render(kind)
        path = OUTPUT[kind]
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    if stale:
        print("out of date (run python tools/gen_tl_stubs.py): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


assert builtins  # the stubs refer to builtins explicitly: fields may be called "bytes" or "int"

if __name__ == "__main__":
    sys.exit(main())
