"""Base classes of every generated TL class (no schema needed to import this module)."""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import LocalProtocolError

__all__ = ["TLObject", "TLFunction"]


class TLObject:
    """Base of every schema constructor and function class.

    Subclasses are attrs classes generated from the schema by :mod:`dcpool.tl._runtime`; they
    fill in the class constants below and ``_tl_write`` (which appends the boxed serialization
    of ``self`` to a list of parts).
    """

    __slots__ = ()

    CONSTRUCTOR_ID: ClassVar[int]
    #: the schema name, e.g. "help.getConfig"
    QUALNAME: ClassVar[str]
    IS_FUNCTION: ClassVar[bool] = False
    #: the declared result type ("Config", "Vector<long>", "X", or "InputPeer" for a constructor)
    RESULT_TYPE: ClassVar[str]
    #: "api" (layer 228), "api158", "mtproto" or "history" (an id of an older layer only)
    SCHEMA: ClassVar[str]

    def _tl_write(self, out: list[bytes]) -> None:  # pragma: no cover - replaced per class
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Boxed serialization (constructor id, then the fields; flags computed)."""
        out: list[bytes] = []
        try:
            self._tl_write(out)
        except LocalProtocolError:
            raise
        except (AttributeError, TypeError, ValueError, OverflowError) as exc:
            raise LocalProtocolError(f"cannot serialize {type(self).QUALNAME}: {exc}") from exc
        return b"".join(out)

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Any:
        """Read one boxed object and check that it is an instance of this class."""
        from ._binary import Reader  # (not the package: a submodule must not import it back)

        obj = Reader(data).read_object()
        if type(obj) is not cls:
            from ..errors import TLDecodeError

            raise TLDecodeError(f"expected {cls.QUALNAME}, got {type(obj).__qualname__}")
        return obj


class TLFunction(TLObject):
    """Base of schema functions (RPC queries); ``read_result`` parses their answer."""

    __slots__ = ()
    IS_FUNCTION: ClassVar[bool] = True
