"""Schema-driven classes, created lazily (spec §2).

Theory of operation
-------------------
The schemas (``api`` = layer 228, ``mtproto`` = core, ``api158`` = Pyrogram's layer 158,
``history`` = every definition of layers 100..228, :mod:`dcpool.tl.history`) are parsed on first
use (:func:`schema`); ids are looked up in that order, so the history is only parsed when an id
that none of the others has is met.  A class is generated for a combinator the first time
it is asked for by name (``api.help.GetConfig``) or met by id while decoding
(:func:`reader_for_id`), then cached.

For each class we generate Python source for two functions and ``exec`` it once:

* ``_tl_read(r)`` reads the fields that follow the constructor id (this is also the *bare* form)
  and calls the attrs ``__init__``;
* ``_tl_write(self, out)`` appends the constructor id and the fields to ``out`` (a list of
  ``bytes`` later joined once); ``_tl_write_bare`` does the same without the id.

Flags (spec §2.5): a ``#`` param that some ``name:flagsN.B?T`` refers to is not a field.  The
writer sets bit B when any field on that bit is present (``true`` fields: truthy; others: not
None) and then writes every non-``true`` field on that bit; a field that is None while a sibling
set its bit is written as the zero value of its type (0, "", b"", [], False).  The reader ignores
unknown bits.  ``{X:Type}`` params are not serialized; ``!X``/``Object`` fields are any boxed
object (a TL object or :class:`~dcpool.tl.Raw`).

Hand-written pieces (spec §3.6, §8.1, §2.7): ``message`` (the bare container item; ``bytes`` is
computed from ``body`` on write and delimits ``body`` on read; an undecodable body becomes
``Raw``), ``rpc_result`` (``result`` spans the rest of the buffer; undecodable -> ``Raw``, e.g. a
``Vector<long>`` whose item type only the query knows) and ``gzip_packed`` (the class exists for
writing; reading any gzip_packed returns the unpacked object).  ``boolTrue``/``boolFalse`` read as
Python bools.
"""

from __future__ import annotations

import keyword
import threading
from typing import Any, Callable, Iterable

import attrs

from ..errors import TLDecodeError
from . import _binary, ids
from ._base import TLFunction, TLObject
from ._binary import Raw, Reader, bytes_repr
from .schema_parser import Combinator, Param, TLType, parse_schema, parse_type

__all__ = ["schema", "namespace", "class_for", "reader_for_id", "Schema", "Namespace", "FieldSpec"]

SCHEMA_FILES = {"api": "api.tl", "mtproto": "mtproto.tl", "api158": "api158.tl"}

#: Core constructors that tdesktop's file comments out because clients parse them by hand
#: (spec §2.7, §3.6, §8.1) and Pyrogram's extra ``msg_resend_ans_req`` (§8.4).
EXTRA_CORE = """
rpc_result#f35c6d01 req_msg_id:long result:Object = RpcResult;
message#5bb8e511 msg_id:long seqno:int bytes:int body:Object = Message;
msg_container#73f1f8dc messages:vector<message> = MessageContainer;
msg_copy#e06046b2 orig_message:Message = MessageCopy;
gzip_packed#3072cfa1 packed_data:bytes = Object;
msg_resend_ans_req#8610baeb msg_ids:Vector<long> = MsgResendReq;
"""

_LOCK = threading.RLock()


class FieldSpec:
    """One attrs field of a generated class, with its schema param (used by tests/tools)."""

    __slots__ = ("name", "pyname", "type", "flag", "bit")

    def __init__(self, param: Param) -> None:
        self.name = param.name
        self.pyname = py_name(param.name)
        self.type = param.type
        self.flag = param.flag
        self.bit = param.bit

    def __repr__(self) -> str:
        cond = f"{self.flag}.{self.bit}?" if self.flag is not None else ""
        return f"FieldSpec({self.pyname}: {cond}{self.type})"


def py_name(name: str) -> str:
    """Schema field name -> attribute name (keywords and ``self`` get a trailing ``_``)."""
    if keyword.iskeyword(name) or name == "self":
        return name + "_"
    return name


def class_name(comb: Combinator) -> str:
    name = comb.camel
    if keyword.iskeyword(name):  # true#3fedd339 = True  -> True_
        name += "_"
    return name


# --------------------------------------------------------------------------- schemas


class Schema:
    """One parsed schema file plus indexes."""

    def __init__(self, kind: str, combinators: list[Combinator]) -> None:
        self.kind = kind
        self.combinators = [c for c in combinators if not c.builtin]
        self.builtins = [c for c in combinators if c.builtin]
        self.by_name: dict[str, Combinator] = {}
        self.by_id: dict[int, Combinator] = {}
        self.by_type: dict[str, list[Combinator]] = {}
        for c in self.combinators:
            self.by_name[c.name] = c
            if not c.is_function:
                self.by_type.setdefault(c.result, []).append(c)
            if c.id is None:
                continue  # tdesktop's tlsBlock*/tdlib's test.* helpers: never on the wire
            prev = self.by_id.get(c.id)
            # Duplicate ids (tdlib's invokeWith*Prefix): the declaration whose CRC matches wins.
            if prev is None or (prev.crc32() != prev.id and c.crc32() == c.id):
                self.by_id[c.id] = c
        # Namespaces and CamelName lookup; a function whose CamelName equals a constructor's in
        # the same namespace would get a trailing "_" (none exist today: see the test).
        self.names: dict[str, dict[str, Combinator]] = {}
        for c in sorted(self.combinators, key=lambda c: c.is_function):
            ns = self.names.setdefault(c.namespace, {})
            cname = class_name(c)
            if cname in ns:
                cname += "_"
            ns[cname] = c
        for nsname in list(self.names):
            parts = nsname.split(".")
            for i in range(1, len(parts)):
                self.names.setdefault(".".join(parts[:i]), {})


_SCHEMAS: dict[str, Schema] = {}


def _load_text(filename: str) -> str:
    from importlib.resources import files

    return files("dcpool.tl").joinpath("schema", filename).read_text(encoding="utf-8")


def schema(kind: str) -> Schema:
    """The parsed schema ``"api"``, ``"mtproto"``, ``"api158"`` or ``"history"`` (every
    definition of layers 100..228, :mod:`dcpool.tl.history`; cached)."""
    s = _SCHEMAS.get(kind)
    if s is None:
        with _LOCK:
            s = _SCHEMAS.get(kind)
            if s is None:
                if kind == "history":
                    from . import history

                    combs = list(history.combinators())
                else:
                    combs = parse_schema(_load_text(SCHEMA_FILES[kind]))
                if kind == "mtproto":
                    combs += parse_schema(EXTRA_CORE)
                s = _SCHEMAS[kind] = Schema(kind, combs)
    return s


# --------------------------------------------------------------------------- namespaces


class Namespace:
    """A lazy namespace of classes: ``api``, ``api.help``, ``mtproto``, ``api158.auth`` ..."""

    def __init__(self, kind: str, prefix: str) -> None:
        self._kind = kind
        self._prefix = prefix

    def resolve(self, name: str) -> Any:
        s = schema(self._kind)
        table = s.names.get(self._prefix, {})
        comb = table.get(name)
        if comb is not None:
            return class_for(self._kind, comb)
        sub = f"{self._prefix}.{name}" if self._prefix else name
        if sub in s.names:
            return namespace(self._kind, sub)
        where = f"{self._kind}.{self._prefix}" if self._prefix else self._kind
        raise AttributeError(f"TL namespace {where!r} has no constructor, function or namespace {name!r}")

    def names(self) -> list[str]:
        s = schema(self._kind)
        subs = {n[len(self._prefix) + 1 if self._prefix else 0 :].split(".")[0] for n in s.names
                if n and (n.startswith(self._prefix + ".") or not self._prefix)}
        return sorted(set(s.names.get(self._prefix, {})) | subs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = self.resolve(name)
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return self.names()

    def __repr__(self) -> str:
        return f"<TL namespace {self._kind}{'.' + self._prefix if self._prefix else ''}>"


_NAMESPACES: dict[tuple[str, str], Namespace] = {}


def namespace(kind: str, prefix: str = "") -> Namespace:
    key = (kind, prefix)
    ns = _NAMESPACES.get(key)
    if ns is None:
        ns = _NAMESPACES[key] = Namespace(kind, prefix)
    return ns


# --------------------------------------------------------------------------- classes

_CLASSES: dict[tuple[str, str], type] = {}
_MODULES = {
    "api": "dcpool.tl.api",
    "mtproto": "dcpool.tl.mtproto",
    "api158": "dcpool.tl.api158",
    "history": "dcpool.tl.history",
}


def class_at_layer(name: str, layer: int) -> Any:
    """The TL class a client of ``layer`` reads for schema name ``name`` (None: not in that
    layer): the ``api``/``api158`` class where the id is the same, else a history class."""
    from . import history

    comb = history.combinator_at(name, layer)
    if comb is None or comb.id is None:
        return None
    return class_for("history", comb)


def class_for(kind: str, comb: Combinator) -> Any:
    """The class of ``comb`` from schema ``kind`` (built on first use).

    Core, layer-158 or history declarations whose id also exists in layer 228 share the
    layer-228 class (same id, same wire form; for core ones we also require the same field
    list); a history declaration whose id is in layer 158 shares the ``api158`` class.
    """
    # The history has several ids per name (user#3ff6ecb0, user#83314fca...): key by both.
    key = (kind, comb.name if kind != "history" else f"{comb.name}#{comb.id}")
    cls = _CLASSES.get(key)
    if cls is not None:
        return cls
    with _LOCK:
        cls = _CLASSES.get(key)
        if cls is not None:
            return cls
        if kind != "api" and comb.id is not None:
            other = schema("api").by_id.get(comb.id)
            if other is not None and (kind != "mtproto" or other.signature() == comb.signature()):
                cls = class_for("api", other)
            elif kind == "history":
                old = schema("api158").by_id.get(comb.id)
                if old is not None:
                    cls = class_for("api158", old)
        if cls is None:
            cls = _build_class(kind, comb)
        _CLASSES[key] = cls
        return cls


def reader_for_id(cid: int) -> Callable[[Reader], Any]:
    """Reader for a boxed object with constructor id ``cid`` (registered in ``_READERS``)."""
    reader = _binary._READERS.get(cid)
    if reader is not None:
        return reader
    for kind in ("api", "mtproto", "api158", "history"):
        comb = schema(kind).by_id.get(cid)
        if comb is not None:
            cls = class_for(kind, comb)
            reader = cls._tl_read
            _binary._READERS[cid] = reader
            return reader
    raise TLDecodeError(f"unknown TL constructor id 0x{cid:08x}")


# Types that read/write as Python values, with (read expression, pack function, zero value,
# minimum wire size).
_PRIMITIVES: dict[str, tuple[str, str | None, Any, int]] = {
    "int": ("_r.read_int()", "_pack_int", 0, 4),
    "long": ("_r.read_long()", "_pack_long", 0, 8),
    "double": ("_r.read_double()", "_pack_double", 0.0, 8),
    "int128": ("_r.read_int128()", "_pack_int128", bytes(16), 16),
    "int256": ("_r.read_int256()", "_pack_int256", bytes(32), 32),
    "string": ("_r.read_string()", None, "", 4),
    "bytes": ("_r.read_bytes()", None, b"", 4),
    "Bool": ("_r.read_bool()", "_pack_bool", False, 4),
    "#": ("_r.read_uint()", "_pack_uint", 0, 4),
}

_GLOBALS_BASE: dict[str, Any] = {
    "_pack_int": _binary.pack_int,
    "_pack_uint": _binary.pack_uint,
    "_pack_long": _binary.pack_long,
    "_pack_double": _binary.pack_double,
    "_pack_int128": _binary.pack_int128,
    "_pack_int256": _binary.pack_int256,
    "_pack_bytes": _binary.pack_bytes,
    "_put_bytes": _binary.put_bytes,
    "_pack_bool": _binary.pack_bool,
    "_VECTOR": _binary._UINT.pack(ids.VECTOR),
    "_len": len,
    "_bool": bool,
}


class _Gen:
    """Source generator for one class (keeps the extra globals the source needs)."""

    def __init__(self, kind: str, comb: Combinator) -> None:
        self.kind = kind
        self.comb = comb
        self.globals: dict[str, Any] = dict(_GLOBALS_BASE)
        self.counter = 0

    def _name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def bare_class(self, t: TLType) -> Any:
        """The class read/written for a bare type (``%Message``, ``future_salt``)."""
        s = schema(self.kind)
        if t.percent:
            ctors = s.by_type.get(t.name, []) or schema("api").by_type.get(t.name, [])
            if len(ctors) != 1:
                raise TypeError(f"bare %{t.name} needs exactly one constructor, found {len(ctors)}")
            return class_for(self.kind if ctors[0] in s.combinators else "api", ctors[0])
        comb = s.by_name.get(t.name) or schema("api").by_name.get(t.name)
        if comb is None:
            raise TypeError(f"unknown bare type {t.name}")
        return class_for(self.kind if comb in s.combinators else "api", comb)

    def read_expr(self, t: TLType) -> str:
        prim = _PRIMITIVES.get(t.name)
        if prim is not None and not t.percent:
            return prim[0]
        if t.name == "true":
            return "True"
        if t.is_vector:
            assert t.item is not None
            item = self.read_expr(t.item)
            fn = item[:-2] if item.startswith("_r.read_") and item.endswith("()") else f"lambda: {item}"
            method = "read_vector" if t.name == "Vector" else "read_bare_vector"
            return f"_r.{method}({fn}, {min_size(self, t.item)})"
        if t.is_bare_name:
            g = self._name("_bare")
            self.globals[g] = self.bare_class(t)._tl_read
            return f"{g}(_r)"
        return "_r.read_object()"  # boxed type, Object, !X, generic X

    def write_stmts(self, t: TLType, v: str, indent: str) -> list[str]:
        prim = _PRIMITIVES.get(t.name)
        if prim is not None and not t.percent:
            if prim[1] is None:  # string/bytes: header, payload, padding as separate parts
                return [f"{indent}_put_bytes(_out, {v})"]
            return [f"{indent}_out.append({prim[1]}({v}))"]
        if t.name == "true":
            return []
        if t.is_vector:
            assert t.item is not None
            x = self._name("_x")
            lines = []
            if t.name == "Vector":
                lines.append(f"{indent}_out.append(_VECTOR)")
            lines.append(f"{indent}_out.append(_pack_int(_len({v})))")
            lines.append(f"{indent}for {x} in {v}:")
            body = self.write_stmts(t.item, x, indent + "    ")
            lines += body or [f"{indent}    pass"]
            return lines
        if t.is_bare_name:
            return [f"{indent}{v}._tl_write_bare(_out)"]
        return [f"{indent}{v}._tl_write(_out)"]


def min_size(gen: _Gen | None, t: TLType, _depth: int = 0) -> int:
    """Smallest wire size of a value of type ``t`` (vector count sanity check)."""
    prim = _PRIMITIVES.get(t.name)
    if prim is not None and not t.percent:
        return prim[3]
    if t.name == "true":
        return 0
    if t.is_vector:
        return 8 if t.name == "Vector" else 4
    if t.is_bare_name and gen is not None and _depth < 4:
        cls = gen.bare_class(t)
        return sum(
            4 if f.type.name == "#" else min_size(gen, f.type, _depth + 1)
            for f in cls._tl_params
            if f.flag is None
        )
    return 4 if not t.is_bare_name else 0


def _build_class(kind: str, comb: Combinator) -> Any:
    if comb.id is None:
        raise TypeError(f"{comb.name} has no constructor id and cannot be serialized")
    gen = _Gen(kind, comb)
    flag_fields = comb.flag_fields
    fields = [FieldSpec(p) for p in comb.params if p.name not in flag_fields]
    params = comb.params

    # ---------------------------------------------------------------- attrs class
    ns: dict[str, Any] = {"__annotations__": {}}
    for f in fields:
        if f.type.name in ("bytes",) or (f.type.is_vector and f.type.item and f.type.item.name == "bytes"):
            rep: Any = _field_repr_bytes
        else:
            rep = True
        if f.flag is not None:
            default: Any = False if f.type.name == "true" else None
            ns[f.pyname] = attrs.field(default=default, repr=rep)
        elif f.name in _FIELD_DEFAULTS.get((kind, comb.name), {}):
            ns[f.pyname] = attrs.field(default=_FIELD_DEFAULTS[kind, comb.name][f.name], repr=rep)
        else:
            ns[f.pyname] = attrs.field(repr=rep)
        ns["__annotations__"][f.pyname] = _annotation(f.type, f.flag is not None)
    cname = class_name(comb)
    ns["__qualname__"] = f"{comb.namespace}.{cname}" if comb.namespace else cname
    ns["__module__"] = _MODULES[kind]
    ns["__doc__"] = f"TL {'function' if comb.is_function else 'constructor'} ({kind}):\n\n    {comb.line}\n"
    base = TLFunction if comb.is_function else TLObject
    cls: Any = attrs.define(kw_only=True, slots=True, eq=True, order=False, weakref_slot=False)(
        type(cname, (base,), ns)
    )
    cls.CONSTRUCTOR_ID = comb.id
    cls.QUALNAME = comb.name
    cls.RESULT_TYPE = comb.result
    cls.SCHEMA = kind
    cls._tl_params = tuple(fields)
    cls._tl_combinator = comb
    gen.globals["_cls"] = cls
    gen.globals["_ID"] = _binary._UINT.pack(comb.id)

    # ---------------------------------------------------------------- reader
    lines = ["def _tl_read(_r):"]
    kwargs = []
    for p in params:
        local = "_f_" + p.name
        if p.name in flag_fields:
            lines.append(f"    {local} = _r.read_uint()")
            continue
        if p.flag is not None:
            mask = 1 << p.bit  # type: ignore[operator]
            if p.type.name == "true":
                lines.append(f"    {local} = _bool(_f_{p.flag} & {mask})")
            else:
                lines.append(f"    {local} = {gen.read_expr(p.type)} if _f_{p.flag} & {mask} else None")
        else:
            lines.append(f"    {local} = {gen.read_expr(p.type)}")
        kwargs.append(f"{py_name(p.name)}={local}")
    lines.append(f"    return _cls({', '.join(kwargs)})")
    read_src = "\n".join(lines)

    # ---------------------------------------------------------------- writer
    body: list[str] = []
    for p in params:
        if p.name in flag_fields:
            members = [q for q in params if q.flag == p.name]
            terms = []
            for q in members:
                mask = 1 << q.bit  # type: ignore[operator]
                cond = f"self.{py_name(q.name)}" if q.type.name == "true" else f"self.{py_name(q.name)} is not None"
                terms.append(f"({mask} if {cond} else 0)")
            body.append(f"    _f_{p.name} = {' | '.join(terms) or '0'}")
            body.append(f"    _out.append(_pack_uint(_f_{p.name}))")
            continue
        v = f"self.{py_name(p.name)}"
        if p.flag is not None:
            if p.type.name == "true":
                continue
            mask = 1 << p.bit  # type: ignore[operator]
            shared = any(q is not p and q.flag == p.flag and q.bit == p.bit for q in params)
            body.append(f"    if _f_{p.flag} & {mask}:")
            if shared:
                zero_name = gen._name("_zero")
                gen.globals[zero_name] = _zero_value(p.type)
                body.append(f"        _v = {v}")
                body.append(f"        if _v is None: _v = {zero_name}()")
                v = "_v"
            body += gen.write_stmts(p.type, v, "        ") or ["        pass"]
        else:
            body += gen.write_stmts(p.type, v, "    ")
    write_src = "def _tl_write(self, _out):\n    _out.append(_ID)\n" + "\n".join(body) + "\n"
    write_bare_src = "def _tl_write_bare(self, _out):\n" + ("\n".join(body) or "    pass") + "\n"
    src = read_src + "\n\n" + write_src + "\n" + write_bare_src
    exec(compile(src, f"<tl {kind}:{comb.name}>", "exec"), gen.globals)
    cls._tl_read = staticmethod(gen.globals["_tl_read"])
    cls._tl_write = gen.globals["_tl_write"]
    cls._tl_write_bare = gen.globals["_tl_write_bare"]
    cls._tl_source = src

    if comb.is_function:
        _add_result_reader(gen, cls, comb)
    special = _SPECIAL.get((kind, comb.name))
    if special is not None:
        special(cls)
    return cls


def _annotation(t: TLType, optional: bool) -> str:
    if t.name == "true":
        return "bool"
    m = {"int": "int", "long": "int", "#": "int", "double": "float", "int128": "bytes",
         "int256": "bytes", "string": "str", "bytes": "bytes", "Bool": "bool"}
    ann = m.get(t.name)
    if ann is None:
        ann = f"list[{_annotation(t.item, False)}]" if t.is_vector and t.item else "Any"
    return f"{ann} | None" if optional else ann


def _field_repr_bytes(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes_repr(bytes(value))
    if isinstance(value, list):
        return "[" + ", ".join(_field_repr_bytes(v) for v in value) + "]"
    return repr(value)


def _zero_value(t: TLType) -> Callable[[], Any]:
    if t.is_vector:
        return list
    prim = _PRIMITIVES.get(t.name)
    if prim is not None:
        z = prim[2]
        return lambda: z
    def fail() -> Any:
        raise TypeError("a field sharing a flag bit with a present field must be set")
    return fail


# --------------------------------------------------------------------------- results


def _start_result(data: bytes | bytearray | memoryview) -> Reader:
    r = Reader(data)
    if r.remaining >= 4 and r.read_uint() == ids.GZIP_PACKED:
        return r._gunzip_reader()  # spec §8.1: a result may be gzip_packed
    r.pos = 0
    return r


def _add_result_reader(gen: _Gen, cls: Any, comb: Combinator) -> None:
    rtype_text = comb.result
    if " " in rtype_text:  # "Vector t" style (never in practice for functions)
        rtype_text = rtype_text.replace(" ", "<", 1) + ">"
    rtype = parse_type(rtype_text)
    generic = rtype.name in comb.generics or (rtype.item is not None and rtype.item.name in comb.generics)
    expr = "_r.read_object()" if generic else gen.read_expr(rtype)
    src = (
        "def read_result(_data):\n"
        "    _r = _start_result(_data)\n"
        "    try:\n"
        f"        return {expr}\n"
        "    except RecursionError:\n"
        "        raise _TLDecodeError('TL result nested too deeply') from None\n"
    )
    gen.globals["_start_result"] = _start_result
    gen.globals["_TLDecodeError"] = TLDecodeError
    exec(compile(src, f"<tl result {comb.name}>", "exec"), gen.globals)
    fn = gen.globals["read_result"]
    if generic and rtype.name in comb.generics:
        query_field = next((py_name(p.name) for p in comb.params if p.type.bang), None)
        cls.read_result = _GenericResult(fn, query_field)
    else:
        cls.read_result = staticmethod(fn)


class _GenericResult:
    """``read_result`` of a generic wrapper (``invokeWithLayer {X:Type} ... query:!X = X``).

    On an instance it delegates to ``self.query``'s ``read_result`` (so
    ``invokeWithLayer(query=help.getConfig())`` reads a ``Config``); on the class, or when the
    query is a :class:`Raw`, it reads any boxed object.
    """

    def __init__(self, generic_reader: Callable[[Any], Any], query_field: str | None) -> None:
        self._generic = generic_reader
        self._query_field = query_field

    def __get__(self, obj: Any, owner: type | None = None) -> Callable[[Any], Any]:
        if obj is None or self._query_field is None:
            return self._generic
        query = getattr(obj, self._query_field)
        reader = getattr(query, "read_result", None)
        return reader if reader is not None else self._generic


# --------------------------------------------------------------------------- hand-written parts


def _special_message(cls: Any) -> None:
    # message msg_id:long seqno:int bytes:int body:Object = Message;   (spec §3.6, bare)
    def _tl_read(r: Reader) -> Any:
        msg_id = r.read_long()
        seqno = r.read_int()
        n = r.read_int()
        if n < 0 or n > r.remaining:
            raise TLDecodeError(f"message body length {n} exceeds the {r.remaining} bytes left")
        view = r.read_raw(n)
        try:
            body = Reader(view, _gzip_depth=r._gzip_depth).read_object()
        except TLDecodeError:
            body = Raw(bytes(view))  # the session layer decides what to do with it
        return cls(msg_id=msg_id, seqno=seqno, bytes=n, body=body)

    def _tl_write_bare(self: Any, out: list[bytes]) -> None:
        body = self.body.to_bytes()
        out.append(_binary.pack_long(self.msg_id))
        out.append(_binary.pack_int(self.seqno))
        out.append(_binary.pack_int(len(body)))  # `bytes` is always the real body length
        out.append(body)

    def _tl_write(self: Any, out: list[bytes]) -> None:
        out.append(_binary._UINT.pack(ids.MESSAGE))
        _tl_write_bare(self, out)

    cls._tl_read = staticmethod(_tl_read)
    cls._tl_write = _tl_write
    cls._tl_write_bare = _tl_write_bare


def _special_rpc_result(cls: Any) -> None:
    # rpc_result#f35c6d01 req_msg_id:long result:Object = RpcResult;   (spec §8.1)
    def _tl_read(r: Reader) -> Any:
        req_msg_id = r.read_long()
        view = r.read_raw(r.remaining)
        try:
            if view[:4] == _VECTOR_ID:
                # Only the query knows a vector's item type: keep it for fn.read_result().
                raise TLDecodeError("untyped vector")
            result = Reader(view, _gzip_depth=r._gzip_depth).read_object()
        except TLDecodeError:
            result = Raw(bytes(view))  # e.g. Vector<long>: only the query knows the item type
        return cls(req_msg_id=req_msg_id, result=result)

    cls._tl_read = staticmethod(_tl_read)


def _special_gzip(cls: Any) -> None:
    # gzip_packed#3072cfa1 packed_data:bytes = Object;  reading never yields this class: any
    # gzip_packed is inflated by Reader.read_object (spec §2.7).
    cls._tl_read = staticmethod(_binary._read_gzip)

    @classmethod  # type: ignore[misc]
    def pack(klass: type, obj: Any) -> Any:
        """gzip_packed holding ``obj`` (a TL object, Raw or boxed bytes)."""
        import gzip

        data = obj if isinstance(obj, (bytes, bytearray, memoryview)) else obj.to_bytes()
        return klass(packed_data=gzip.compress(bytes(data), 6, mtime=0))

    cls.pack = pack


def _special_bool(value: bool) -> Callable[[Any], None]:
    def apply(cls: Any) -> None:
        cls._tl_read = staticmethod(lambda r: value)  # a Bool reads as a Python bool (§2.3)

    return apply


#: message.bytes is computed on write, so it need not be given.
_FIELD_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {("mtproto", "message"): {"bytes": 0}}

_VECTOR_ID = _binary._UINT.pack(ids.VECTOR)

_SPECIAL: dict[tuple[str, str], Callable[[Any], None]] = {
    ("mtproto", "message"): _special_message,
    ("mtproto", "rpc_result"): _special_rpc_result,
    ("mtproto", "gzip_packed"): _special_gzip,
    ("api", "boolTrue"): _special_bool(True),
    ("api", "boolFalse"): _special_bool(False),
}


def all_classes(kinds: Iterable[str] = ("api", "mtproto", "api158")) -> list[type]:
    """Build (if needed) and return every class with an id (for tests and tools)."""
    out: list[type] = []
    seen: set[int] = set()
    for kind in kinds:
        for comb in schema(kind).combinators:
            if comb.id is None:
                continue
            cls = class_for(kind, comb)
            if id(cls) not in seen:
                seen.add(id(cls))
                out.append(cls)
    return out
