"""The API schema of every layer from 100 to 228: which definition a name has in a given layer.

Theory of operation
-------------------
``schema/api-history.tl.gz`` is the protocol data of ``spec/schema/layers/api-history.tl``
(see its README): one line per ``name#id`` that ever existed in layers 100..228, each preceded
by ``// @layers A-B,C-D``, the *known* layers in which exactly that id exists (a range runs over
known layers only).  The header line lists the known layers.  Nothing is read at import time:
the file is inflated and parsed on the first call (about 0.2 s), then kept.

:func:`effective_layer` maps any announced layer to a known one: the nearest lower known layer
(README rule), a layer above 228 to 228.  **One deliberate exception:** layers 132..134 are
missing from the history, and the nearest lower known layer, 131, still has 32-bit user and
chat ids (``user#938458c1 ... id:int``) while layer 133 is the one that made them 64-bit; a
client of layer 133 or 134 cannot read those, so they get the definitions of layer 135
(``user#3ff6ecb0 ... id:long``), the nearest known layer with 64-bit ids.

:func:`combinator_at` answers "which ``name#id`` does a client of layer L expect for ``name``"
(None when the name does not exist in that layer); :func:`class_at` gives the TL class for it
(:func:`dcpool.tl._runtime.class_for` with kind ``"history"``: an id that layer 228 or 158 also
has resolves to the very same class as ``tl.api``/``tl.api158``).  Decoding any historical id
works through ``tl.loads`` (the history is the last schema ``reader_for_id`` consults).
"""

from __future__ import annotations

import bisect
import re
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .schema_parser import Combinator

__all__ = [
    "OLDEST",
    "NEWEST",
    "known_layers",
    "effective_layer",
    "combinator_at",
    "class_at",
    "constructors_of",
    "layers_of",
    "history_text",
]

#: oldest and newest layer of the history
OLDEST = 100
NEWEST = 228

#: The file name of the compressed history inside ``dcpool/tl/schema``.
HISTORY_FILE = "api-history.tl.gz"

#: unknown layers answered with a *higher* known layer (see the module docstring)
_GAP_UP = {132: 135, 133: 135, 134: 135}

_LAYERS_RE = re.compile(r"^// @layers ([0-9,\-]+)\s*$")
_KNOWN_RE = re.compile(r"known layers: ([0-9 ]+)\)")

_LOCK = threading.Lock()


class _History:
    def __init__(self, text: str) -> None:
        from .schema_parser import parse_line

        m = _KNOWN_RE.search(text[:2000])
        if m is None:
            raise ValueError("api-history.tl: no 'known layers' header")
        self.known: tuple[int, ...] = tuple(int(x) for x in m.group(1).split())
        self.combinators: list[Combinator] = []
        #: name -> [(frozenset of known layers, combinator)]
        self.by_name: dict[str, list[tuple[frozenset[int], Combinator]]] = {}
        self.layers_by_id: dict[int, frozenset[int]] = {}
        is_function = False
        pending: frozenset[int] | None = None
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line:
                continue
            lm = _LAYERS_RE.match(line)
            if lm is not None:
                pending = self._expand(lm.group(1))
                continue
            if line.startswith("//"):
                continue
            if line == "---functions---":
                is_function = True
                continue
            if line == "---types---":
                is_function = False
                continue
            comb = parse_line(line, is_function=is_function, lineno=lineno)
            if pending is None:
                raise ValueError(f"api-history.tl line {lineno}: definition without '// @layers'")
            self.combinators.append(comb)
            self.by_name.setdefault(comb.name, []).append((pending, comb))
            if comb.id is not None:
                self.layers_by_id[comb.id] = self.layers_by_id.get(comb.id, frozenset()) | pending
            pending = None
        self._at: dict[tuple[str, int], Combinator | None] = {}
        #: result type -> names of the constructors that ever had it
        self.names_by_type: dict[str, list[str]] = {}
        for comb in self.combinators:
            if not comb.is_function:
                names = self.names_by_type.setdefault(comb.result, [])
                if comb.name not in names:
                    names.append(comb.name)

    def _expand(self, spec: str) -> frozenset[int]:
        out: set[int] = set()
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            a, b = int(lo), int(hi or lo)
            out.update(k for k in self.known if a <= k <= b)
        return frozenset(out)

    def effective(self, layer: int) -> int:
        if layer >= self.known[-1]:
            return self.known[-1]
        if layer in _GAP_UP:
            return _GAP_UP[layer]
        i = bisect.bisect_right(self.known, layer)
        return self.known[max(i - 1, 0)]

    def at(self, name: str, layer: int) -> Combinator | None:
        key = (name, layer)
        try:
            return self._at[key]
        except KeyError:
            pass
        k = self.effective(layer)
        found = None
        for layers, comb in self.by_name.get(name, ()):
            if k in layers:
                found = comb
                break
        self._at[key] = found
        return found


_HISTORY: _History | None = None


def history_text() -> str:
    """The uncompressed ``api-history.tl`` (read from the package data)."""
    import gzip
    from importlib.resources import files

    data = files("dcpool.tl").joinpath("schema", HISTORY_FILE).read_bytes()
    return gzip.decompress(data).decode("utf-8")


def _history() -> _History:
    global _HISTORY
    h = _HISTORY
    if h is None:
        with _LOCK:
            h = _HISTORY
            if h is None:
                h = _HISTORY = _History(history_text())
    return h


def combinators() -> list[Combinator]:
    """Every definition of the history (for :mod:`dcpool.tl._runtime`)."""
    return _history().combinators


def known_layers() -> tuple[int, ...]:
    """The layers whose full schema the history was made from (ascending)."""
    return _history().known


def effective_layer(layer: int) -> int:
    """The known layer whose definitions a client announcing ``layer`` is answered with."""
    return _history().effective(layer)


def combinator_at(name: str, layer: int) -> Combinator | None:
    """The definition of schema name ``name`` in effect at ``layer`` (None: not in that layer)."""
    return _history().at(name, layer)


def constructors_of(type_name: str, layer: int) -> list[Combinator]:
    """The constructors of boxed type ``type_name`` in effect at ``layer``."""
    h = _history()
    out = []
    for name in h.names_by_type.get(type_name, ()):
        comb = h.at(name, layer)
        if comb is not None and comb.result == type_name and not comb.is_function:
            out.append(comb)
    return out


def layers_of(constructor_id: int) -> frozenset[int]:
    """The known layers in which ``constructor_id`` exists (empty if never)."""
    return _history().layers_by_id.get(constructor_id, frozenset())
