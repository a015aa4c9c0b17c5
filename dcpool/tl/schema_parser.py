"""Parser for TL schema text (``.tl`` files), spec §2.

Theory of operation
-------------------
A schema is a list of one-line declarations (``combinators``)::

    name#id {X:Type} field:type field2:flags.N?type = ResultType;

separated into constructors and functions by ``---types---``/``---functions---`` markers, with
``//`` comments.  :func:`parse_schema` turns every declaration into a :class:`Combinator`;
built-in lines (``int ? = Int;``, ``int128 4*[ int ] = Int128;``, ``vector {t:Type} # [ t ] =
Vector t;``, ``bytes = Bytes;``) parse too and come back with ``builtin=True``.

Field types are parsed into :class:`TLType` trees (``Vector<Vector<TlsBlock>>`` nests).
:func:`normalize` applies the CRC32 rule of spec §2.6 to a declaration, and
:meth:`Combinator.crc32` gives the id that rule predicts; the schema's explicit ``#id`` is
always what goes on the wire (spec §19 V1 lists the declarations whose CRC differs).

This module has no dependency on the rest of dcpool and no side effects.
"""

from __future__ import annotations

import re
import zlib
from typing import Iterator

__all__ = [
    "TLType",
    "Param",
    "Combinator",
    "SchemaSyntaxError",
    "parse_type",
    "parse_line",
    "parse_schema",
    "normalize",
    "camel_name",
    "BUILTIN_TYPES",
]

#: Names that are wire primitives, never generated classes.
BUILTIN_TYPES = frozenset(
    {"int", "long", "double", "string", "bytes", "int128", "int256", "#", "true", "Bool", "Object", "Type"}
)

#: Declarations that describe primitives rather than objects (``int ? = Int;`` ...).
_BUILTIN_DECLS = frozenset({"int", "long", "double", "string", "bytes", "int128", "int256", "vector"})

_LINE_RE = re.compile(
    r"^(?P<name>[A-Za-z_][\w.]*)(?:#(?P<id>[0-9a-fA-F]{1,8}))?(?P<params>(?:\s[^=]*)?)=\s*(?P<result>[^;]+?)\s*;$"
)
_PARAM_RE = re.compile(r"^(?P<name>\w+):(?:(?P<flag>\w+)\.(?P<bit>\d+)\?)?(?P<type>.+)$")
_GENERIC_RE = re.compile(r"^\{(?P<name>\w+):(?P<type>\w+)\}$")


class SchemaSyntaxError(ValueError):
    """A schema line that is not a TL declaration."""


class TLType:
    """A parsed type expression.

    ``name`` is the bare type name (``int``, ``Vector``, ``vector``, ``User``, ``message``,
    ``storage.FileType``, ``Object``, ``X``); ``item`` the element type of a vector; ``bare`` is
    True for ``%Type`` and lowercase constructor names; ``bang`` for ``!X``.
    """

    __slots__ = ("name", "item", "percent", "bang")

    def __init__(self, name: str, item: "TLType | None" = None, percent: bool = False, bang: bool = False):
        self.name = name
        self.item = item
        self.percent = percent
        self.bang = bang

    @property
    def is_vector(self) -> bool:
        return self.name in ("Vector", "vector")

    @property
    def is_bare_name(self) -> bool:
        """A lowercase constructor name or a ``%Type`` (a bare object, §2.2)."""
        if self.percent:
            return True
        if self.name in BUILTIN_TYPES or self.is_vector or self.bang:
            return False
        return self.name.rsplit(".", 1)[-1][:1].islower()

    def __str__(self) -> str:
        s = ("!" if self.bang else "") + ("%" if self.percent else "") + self.name
        if self.item is not None:
            s += f"<{self.item}>"
        return s

    def __repr__(self) -> str:
        return f"TLType({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TLType) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class Param:
    """One ``name:type`` field; ``flag``/``bit`` are set for ``name:flags.N?type``."""

    __slots__ = ("name", "type", "flag", "bit")

    def __init__(self, name: str, type: TLType, flag: str | None = None, bit: int | None = None):
        self.name = name
        self.type = type
        self.flag = flag
        self.bit = bit

    @property
    def is_true_flag(self) -> bool:
        return self.flag is not None and self.type.name == "true"

    def __str__(self) -> str:
        cond = f"{self.flag}.{self.bit}?" if self.flag is not None else ""
        return f"{self.name}:{cond}{self.type}"

    def __repr__(self) -> str:
        return f"Param({str(self)!r})"


class Combinator:
    """One declaration of a schema."""

    __slots__ = ("name", "id", "params", "generics", "result", "is_function", "builtin", "line", "lineno")

    def __init__(
        self,
        name: str,
        id: int | None,
        params: list[Param],
        generics: dict[str, str],
        result: str,
        is_function: bool,
        builtin: bool,
        line: str,
        lineno: int,
    ) -> None:
        self.name = name
        self.id = id
        self.params = params
        self.generics = generics
        self.result = result
        self.is_function = is_function
        self.builtin = builtin
        self.line = line
        self.lineno = lineno

    @property
    def namespace(self) -> str:
        return self.name.rpartition(".")[0]

    @property
    def camel(self) -> str:
        return camel_name(self.name.rpartition(".")[2])

    @property
    def flag_fields(self) -> frozenset[str]:
        """Names of the ``#`` params used as flags (not object fields; computed on write)."""
        used = {p.flag for p in self.params if p.flag is not None}
        return frozenset(p.name for p in self.params if p.type.name == "#" and p.name in used)

    def normalized(self) -> str:
        return normalize(self.line)

    def crc32(self) -> int:
        return zlib.crc32(self.normalized().encode("utf-8"))

    def signature(self) -> str:
        """The declaration without its id, exactly as typed (``bytes`` and ``string`` differ)."""
        gens = "".join(f" {{{k}:{v}}}" for k, v in self.generics.items())
        return f"{self.name}{gens}{''.join(' ' + str(p) for p in self.params)} = {self.result}"

    def __repr__(self) -> str:
        i = f"#{self.id:08x}" if self.id is not None else ""
        return f"Combinator({self.name}{i}{' function' if self.is_function else ''})"


def camel_name(name: str) -> str:
    """``p_q_inner_data_dc -> PQInnerDataDc``, ``req_DH_params -> ReqDHParams``,
    ``getConfig -> GetConfig`` (split on ``_``, capitalise each part's first letter)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


_TYPE_CACHE: dict[str, TLType] = {}
_TYPE_NAME_RE = re.compile(r"[\w.]+|#")


def parse_type(text: str) -> TLType:
    """Parse ``Vector<Vector<TlsBlock>>``, ``%Message``, ``!X``, ``flags``-free type text.

    Results are cached and shared: treat them as immutable.
    """
    t = _TYPE_CACHE.get(text)
    if t is None:
        t = _TYPE_CACHE[text] = _parse_type(text)
    return t


def _parse_type(text: str) -> TLType:
    text = text.strip()
    bang = text.startswith("!")
    if bang:
        text = text[1:]
    percent = text.startswith("%")
    if percent:
        text = text[1:]
    lt = text.find("<")
    if lt >= 0:
        if not text.endswith(">"):
            raise SchemaSyntaxError(f"bad type {text!r}")
        item = parse_type(text[lt + 1 : -1])
        name = text[:lt]
        if not re.fullmatch(r"[\w.]+", name):
            raise SchemaSyntaxError(f"bad type {text!r}")
        return TLType(name, item, percent, bang)
    if not _TYPE_NAME_RE.fullmatch(text):
        raise SchemaSyntaxError(f"bad type {text!r}")
    return TLType(text, None, percent, bang)


def normalize(line: str) -> str:
    """The CRC32 input of spec §2.6 for one declaration line."""
    s = line.split("//", 1)[0].strip()
    if s.endswith(";"):
        s = s[:-1]
    s = re.sub(r"^([\w.]+)#[0-9a-fA-F]+", r"\1", s.strip())
    tokens = s.split()
    out: list[str] = []
    for tok in tokens:
        if re.fullmatch(r"\w+:\w+\.\d+\?true", tok):
            continue  # flag-only `true` fields are not part of the id
        if tok.endswith("bytes"):
            tok = re.sub(r"^(\w+:(?:\w+\.\d+\?)?)bytes$", r"\1string", tok)
        out.append(tok)
    s = " ".join(out)
    s = s.replace("<", " ").replace(">", "").replace("{", "").replace("}", "")
    return " ".join(s.split())


def _split_params(text: str) -> list[str]:
    return text.split()


def parse_line(line: str, *, is_function: bool = False, lineno: int = 0) -> Combinator:
    """Parse one declaration (with or without the trailing comment)."""
    src = line.split("//", 1)[0].strip()
    m = _LINE_RE.match(src)
    if not m:
        raise SchemaSyntaxError(f"line {lineno}: not a TL declaration: {line!r}")
    name = m.group("name")
    cid = int(m.group("id"), 16) if m.group("id") else None
    params_text = m.group("params").strip()
    result = m.group("result").strip()
    builtin = name in _BUILTIN_DECLS
    params: list[Param] = []
    generics: dict[str, str] = {}
    if builtin:
        # `int ? = Int;`, `int128 4*[ int ] = Int128;`, `vector {t:Type} # [ t ] = Vector t;`
        for tok in params_text.split():
            g = _GENERIC_RE.match(tok)
            if g:
                generics[g.group("name")] = g.group("type")
            elif not re.fullmatch(r"\?|#|\[|\]|\w+|\d+\*\[", tok):
                raise SchemaSyntaxError(f"line {lineno}: bad built-in declaration {line!r}")
    else:
        for tok in _split_params(params_text):
            g = _GENERIC_RE.match(tok)
            if g:
                generics[g.group("name")] = g.group("type")
                continue
            p = _PARAM_RE.match(tok)
            if not p:
                raise SchemaSyntaxError(f"line {lineno}: bad parameter {tok!r} in {line!r}")
            flag = p.group("flag")
            params.append(
                Param(
                    p.group("name"),
                    parse_type(p.group("type")),
                    flag,
                    int(p.group("bit")) if flag is not None else None,
                )
            )
        nat_names = {q.name for q in params if q.type.name == "#"}
        for prm in params:
            if prm.flag is not None and prm.flag not in nat_names:
                raise SchemaSyntaxError(f"line {lineno}: {prm} refers to an unknown flags field")
        parse_type(result.replace(" ", "<", 1) + ">" if " " in result else result)
    return Combinator(name, cid, params, generics, result, is_function, builtin, src, lineno)


def iter_declarations(text: str) -> Iterator[tuple[int, str, bool]]:
    """Yield ``(lineno, line, is_function)`` for every declaration line of a schema."""
    is_function = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if line == "---functions---":
            is_function = True
            continue
        if line == "---types---":
            is_function = False
            continue
        if re.fullmatch(r"---\w+---", line):
            raise SchemaSyntaxError(f"line {lineno}: unknown section {line!r}")
        yield lineno, line, is_function


def parse_schema(text: str) -> list[Combinator]:
    """Parse a whole schema; raises :class:`SchemaSyntaxError` on the first bad line."""
    return [parse_line(line, is_function=fn, lineno=n) for n, line, fn in iter_declarations(text)]
