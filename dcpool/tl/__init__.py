"""dcpool.tl: the TL (Type Language) runtime — schema, binary reader/writer, objects.

Theory of operation
-------------------
* :mod:`dcpool.tl._binary` holds the wire primitives of spec §2 (``Reader``, ``pack_*``) and
  :mod:`dcpool.tl.ids` the constructor ids that the session layer handles by hand.  Both import
  instantly; importing :mod:`dcpool.tl` parses no schema and builds no class.
* The schemas ship as package data in ``dcpool/tl/schema/`` (``api.tl``: layer 228 verbatim;
  ``mtproto.tl``: tdesktop's core schema with binary fields declared ``bytes``; ``api158.tl``:
  Pyrogram's layer 158; ``api-history.tl.gz``: every definition of layers 100..228 with the
  layers it exists in).  :mod:`dcpool.tl.schema_parser` parses them on first use.
* :mod:`dcpool.tl._runtime` turns one combinator into an attrs class when it is first needed
  (by name through ``api``/``mtproto``/``api158``, or by id while decoding), generating a
  specialised reader and writer for it.  Classes are cached for the life of the process.

Naming
------
Schema name split on ``_``, first letter of each part capitalised, rest kept:
``p_q_inner_data_dc -> PQInnerDataDc``, ``req_DH_params -> ReqDHParams``,
``help.getConfig -> api.help.GetConfig``.  ``true#3fedd339`` becomes ``api.True_`` (``True`` is
a keyword).  Fields keep their schema names; Python keywords and ``self`` get a trailing ``_``.
``flags``/``flags2`` (type ``#``) are not fields: writers compute them.

Name collisions
---------------
Within one namespace no constructor and function share a CamelName in layer 228, the core
schema or layer 158 (``tests/tl/test_tl_schema.py::test_no_name_collisions`` checks it).  Should
one appear, the constructor keeps the plain name and the function gets a trailing ``_``
(``_runtime.Schema`` implements that rule; ``test_collision_rule_implementation`` checks it).  Two *ids* are declared twice in layer 228:
tdlib's ``invokeWith...Prefix`` helpers reuse the ids of ``invokeWithBusinessConnection``,
``invokeWithGooglePlayIntegrity``, ``invokeWithApnsSecret`` and ``invokeWithReCaptcha``; when
decoding such an id the combinator whose CRC32 matches its id (the real wrapper) wins.

Objects
-------
Mutable attrs classes (``slots``, keyword-only, ``eq`` by value, so not hashable); the repr
shows the schema path (``help.GetConfig()``) and shortens long ``bytes``.  ``to_bytes()`` (same
as ``bytes(obj)``) writes the boxed form and raises :class:`~dcpool.errors.LocalProtocolError`
for values that cannot be serialized.  Functions have ``RESULT_TYPE`` and ``read_result(data)``
(generic wrappers such as ``invokeWithLayer`` delegate to their ``query`` when called on an
instance).  Several optional fields may share one flag bit (``auth.authorization``,
``codeSettings``, ``user.bot``/``bot_info_version``): the bit is set if any of them is given,
and a missing sibling is written as its zero value.

Layers
------
``tl.loads`` decodes every id of the core schema, of layer 228, of layer 158 (ids that layer
228 lacks) and of every layer 100..228 (:mod:`dcpool.tl.history`, parsed only when an id that
the others lack is met).  ``api158.X`` is the layer-228 class when the id is the same in both
layers; likewise ``class_at_layer(name, layer)`` returns the ``api``/``api158`` class for an
id those layers share.  dcpool's own client always speaks layer 228 (:data:`LAYER`).
"""

from __future__ import annotations

from typing import Any

from ..errors import TLDecodeError
from . import ids
from ._base import TLFunction, TLObject
from ._binary import (
    MAX_GZIP_UNPACKED,
    Raw,
    Reader,
    gzip_pack,
    pack_bare_vector,
    pack_bool,
    pack_bytes,
    pack_double,
    pack_int,
    pack_int128,
    pack_int256,
    pack_long,
    pack_string,
    pack_uint,
    pack_ulong,
    pack_vector,
    put_bytes,
    set_reader_resolver,
)

#: The API layer whose schema ``api`` implements.
LAYER = 228

__all__ = [
    "LAYER",
    "ids",
    "api",
    "api158",
    "mtproto",
    "loads",
    "dumps",
    "reader_for_id",
    "class_at_layer",
    "Reader",
    "Raw",
    "TLObject",
    "TLFunction",
    "pack_int",
    "pack_uint",
    "pack_long",
    "pack_ulong",
    "pack_double",
    "pack_int128",
    "pack_int256",
    "pack_bytes",
    "pack_string",
    "pack_bool",
    "pack_vector",
    "pack_bare_vector",
    "put_bytes",
    "gzip_pack",
    "MAX_GZIP_UNPACKED",
]


def loads(data: bytes | bytearray | memoryview) -> Any:
    """Read one boxed TL object (any id of the API, layer-158 or core schema).

    ``gzip_packed`` is unpacked transparently.  Trailing bytes after the object are ignored.
    Raises :class:`dcpool.errors.TLDecodeError` on bad input.
    """
    try:
        return Reader(data).read_object()
    except RecursionError:
        raise TLDecodeError("TL data nested too deeply") from None


def reader_for_id(cid: int) -> Any:
    """The reader of constructor ``cid`` (TLDecodeError if no schema knows it)."""
    from ._runtime import reader_for_id as find

    return find(cid)


def class_at_layer(name: str, layer: int) -> Any:
    """The TL class a client of ``layer`` reads for schema name ``name`` (None: not in that
    layer); loads the layer history on first use."""
    from ._runtime import class_at_layer as find

    return find(name, layer)


set_reader_resolver(reader_for_id)  # Reader.read_object's fallback for ids it has not met


def dumps(obj: Any) -> bytes:
    """Boxed serialization of a TL object or :class:`Raw` (same as ``obj.to_bytes()``)."""
    return obj.to_bytes()


from . import api, api158, mtproto  # noqa: E402  (tiny lazy modules; no schema is parsed here)
