"""CDN file chunks, sans-IO: AES-256-CTR with a per-offset IV, and SHA-256 checks (spec §11.4).

Theory of operation
-------------------
A master DC answers ``upload.getFile`` with::

    upload.fileCdnRedirect#f18cda44 dc_id:int file_token:bytes encryption_key:bytes
        encryption_iv:bytes file_hashes:Vector<FileHash> = upload.File;

The CDN DC serves ``upload.getCdnFile(file_token, offset, limit)`` as the file's bytes
encrypted with AES-256-CTR under ``encryption_key``; the IV of the chunk at ``offset`` is
``encryption_iv`` with its last 4 bytes replaced by ``offset // 16`` as a big-endian uint32
(:func:`chunk_iv`).  CTR is its own inverse, so :func:`crypt_chunk` both encrypts (the emulator)
and decrypts (the client).

Every decrypted 128 KiB part is checked against the ``fileHash`` entries (SHA-256 of the
*plaintext* ``[offset, offset + limit)``, cut at the end of the file) from the redirect and
from ``upload.getCdnFileHashes``.  :func:`open_chunk` decrypts and checks a chunk in one call
and raises :class:`~dcpool.errors.CdnHashMismatch` without returning anything when a part does
not match: bad bytes never reach the caller.  :func:`hashes_needed` says which hash offsets to
fetch first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ..errors import CdnHashMismatch, LocalProtocolError
from .aes import AesCtr

__all__ = [
    "HASH_PART",
    "CdnHash",
    "chunk_iv",
    "crypt_chunk",
    "hash_table",
    "hashes_needed",
    "check_chunk",
    "open_chunk",
]

#: every fileHash covers 128 KiB of plaintext
HASH_PART = 128 << 10


@attrs.frozen
class CdnHash:
    """One ``fileHash#f39b035c offset:long limit:int hash:bytes``: SHA-256 of the plaintext
    ``[offset, offset + limit)`` (shorter at the end of the file)."""

    offset: int
    limit: int
    digest: bytes = attrs.field(repr=False)

    @classmethod
    def from_tl(cls, obj: Any) -> CdnHash:
        return cls(int(obj.offset), int(obj.limit), bytes(obj.hash))


def hash_table(hashes: Iterable[Any]) -> dict[int, CdnHash]:
    """{offset: CdnHash} from ``fileHash`` TL objects or :class:`CdnHash` values (later
    entries for the same offset replace earlier ones)."""
    out: dict[int, CdnHash] = {}
    for h in hashes:
        entry = h if isinstance(h, CdnHash) else CdnHash.from_tl(h)
        out[entry.offset] = entry
    return out


def chunk_iv(iv: bytes, offset: int) -> bytes:
    """The IV of the chunk at ``offset``: ``iv[:12] + (offset // 16)`` as BE uint32 (§11.4)."""
    if len(iv) != 16:
        raise LocalProtocolError(f"CDN encryption_iv must be 16 bytes, got {len(iv)}")
    if offset < 0 or offset % 16:
        raise LocalProtocolError(f"CDN chunk offset {offset} is not a multiple of 16")
    block = offset // 16
    if block >= 1 << 32:
        raise LocalProtocolError(f"CDN chunk offset {offset} is too large")
    return bytes(iv[:12]) + block.to_bytes(4, "big")


def crypt_chunk(data: bytes | memoryview, key: bytes, iv: bytes, offset: int) -> bytes:
    """AES-256-CTR of a chunk at ``offset`` (encryption and decryption are the same)."""
    if len(key) != 32:
        raise LocalProtocolError(f"CDN encryption_key must be 32 bytes, got {len(key)}")
    return AesCtr(bytes(key), chunk_iv(iv, offset)).update(data)


def _parts(offset: int, length: int) -> range:
    """Offsets of the hash parts that overlap ``[offset, offset + length)``."""
    if length <= 0:
        return range(0)
    first = offset - offset % HASH_PART
    return range(first, offset + length, HASH_PART)


def hashes_needed(offset: int, length: int, known: Mapping[int, CdnHash]) -> list[int]:
    """Offsets of the hash parts overlapping ``[offset, offset + length)`` that ``known`` lacks
    (ask ``upload.getCdnFileHashes(file_token, offset)`` for each, on the master DC)."""
    return [p for p in _parts(offset, length) if p not in known]


def check_chunk(
    plain: bytes | memoryview, offset: int, known: Mapping[int, CdnHash], *, at_end: bool = False
) -> None:
    """Check decrypted ``plain`` (the chunk at ``offset``) against its hashes.

    Every hash part overlapping the chunk must be known and lie inside it, except that the
    last part may run past a chunk that ends the file (``at_end``: the CDN returned fewer bytes
    than asked).  Raises :class:`CdnHashMismatch` on a bad part, :class:`LocalProtocolError`
    for a missing hash or a chunk that cuts a part (fetch whole 128 KiB-aligned parts)."""
    view = memoryview(plain)
    end = offset + len(view)
    for part in _parts(offset, len(view)):
        entry = known.get(part)
        if entry is None:
            raise LocalProtocolError(f"no fileHash for CDN part at offset {part}")
        if entry.offset < offset:
            raise LocalProtocolError(
                f"CDN chunk at {offset} starts inside the hash part at {entry.offset}"
            )
        part_end = entry.offset + entry.limit
        if part_end > end and not at_end:
            raise LocalProtocolError(f"CDN chunk ending at {end} cuts the hash part at {entry.offset}")
        data = view[entry.offset - offset : min(part_end, end) - offset]
        if hashlib.sha256(data).digest() != entry.digest:
            raise CdnHashMismatch(entry.offset)


def open_chunk(
    encrypted: bytes | memoryview,
    offset: int,
    key: bytes,
    iv: bytes,
    known: Mapping[int, CdnHash],
    *,
    at_end: bool = False,
) -> bytes:
    """Decrypt the ``upload.cdnFile`` bytes of the chunk at ``offset`` and check every part
    (:func:`check_chunk`); return the plaintext only if all parts match."""
    plain = crypt_chunk(encrypted, key, iv, offset)
    check_chunk(plain, offset, known, at_end=at_end)
    return plain
