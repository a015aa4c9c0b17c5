"""Documents stored on emulated DCs, and the download rules of ``upload.getFile`` (spec §13.2).

Theory of operation
-------------------
A :class:`StoredFile` lives on exactly one DC (spec §11.3: files stay where they were uploaded;
other DCs answer ``FILE_MIGRATE_X``).  Its content is either given by the test, or — when only
a size is given — a deterministic pseudo-random stream: the AES-256-CTR keystream of a 32-byte
seed drawn from the world's ``rng`` (≈ 1–2 GB/s with AES-NI, so a 64 MiB file costs tens of
milliseconds).  Content and SHA-256 are computed lazily on first use, so ``add_file`` of a big
file is instant and files that are never downloaded cost nothing.

Serving is the hot path of download benchmarks: :func:`serialize_file_part` slices a
``memoryview`` of the content and builds the boxed ``upload.file`` with a single join (one copy
of the chunk), without creating TL objects.

Offset/limit rules (:func:`check_offset_limit`), spec §13.2:

* without ``precise``: ``offset % 4096 == 0``, ``limit % 4096 == 0`` and ``1048576 % limit == 0``;
* with ``precise``: ``offset % 1024 == 0``, ``limit % 1024 == 0`` and ``limit <= 1048576``;
* always: the request stays inside one 1 MiB block:
  ``offset // 2**20 == (offset + limit - 1) // 2**20``.

A bad offset answers 400 ``OFFSET_INVALID`` and a bad limit (including crossing a 1 MiB boundary
and ``limit <= 0``) 400 ``LIMIT_INVALID``; the offset is checked first.  An offset at or beyond
the end of the file returns empty bytes, a chunk that runs past the end is cut short — which is
how clients detect the end of a file of unknown size.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import attrs

from .. import tl
from ..crypto.aes import AesCtr

__all__ = [
    "StoredFile",
    "StoredPhoto",
    "check_offset_limit",
    "serialize_file_part",
    "file_hashes",
    "MAX_LIMIT",
    "HASH_PART",
    "PHOTO_SIZES",
]

#: 1 MiB: the largest limit and the block a request may not cross
MAX_LIMIT = 1 << 20
#: upload.getFileHashes: one SHA-256 per 128 KiB part
HASH_PART = 128 << 10
#: parts hashed per upload.getFileHashes answer (1 MiB)
HASH_PARTS_PER_ANSWER = 8
#: photo size types (API "photoSize.type") and the box each fits in; "a"/"c" are the small and
#: big profile/chat photo sizes (inputPeerPhotoFileLocation, big=false/true)
PHOTO_SIZES: dict[str, int] = {"s": 100, "m": 320, "x": 800, "y": 1280, "w": 2560, "a": 160, "c": 640}


def _keystream(seed: bytes, size: int) -> bytes:
    # AES-CTR over zeros is the fastest deterministic PRNG at hand (AES-NI via OpenSSL).
    return AesCtr(seed, bytes(16)).update(bytes(size))


@attrs.define(eq=False)
class StoredFile:
    """One document stored on DC ``dc_id``."""

    id: int
    access_hash: int
    file_reference: bytes
    dc_id: int
    size: int
    mtime: int = 0
    _content: bytes | None = attrs.field(default=None, repr=False, alias="content")
    _seed: bytes | None = attrs.field(default=None, repr=False, alias="seed")
    _sha256: str | None = attrs.field(default=None, repr=False, init=False)
    _view: memoryview | None = attrs.field(default=None, repr=False, init=False)

    @property
    def data(self) -> bytes:
        """The whole content (generated on first access for size-only files)."""
        if self._content is None:
            assert self._seed is not None
            self._content = _keystream(self._seed, self.size)
        return self._content

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the content."""
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(self.data).hexdigest()
        return self._sha256

    def view(self) -> memoryview:
        """A memoryview of the content (cached, no copy)."""
        if self._view is None:
            self._view = memoryview(self.data)
        return self._view

    def chunk(self, offset: int, limit: int) -> memoryview:
        """``data[offset:offset+limit]`` without copying (empty past the end)."""
        return self.view()[offset : offset + limit]

    #: document thumbnails: photo size type -> its content (same DC)
    thumbs: dict[str, StoredFile] = attrs.field(factory=dict, repr=False)
    mime_type: str = "application/octet-stream"
    file_name: str = ""

    def to_tl(self, date: int = 0) -> Any:
        """The ``document`` object a message or a search would carry."""
        # document#8fd4c4d8 flags:# id:long access_hash:long file_reference:bytes date:int
        #   mime_type:string size:long thumbs:flags.0?Vector<PhotoSize> ... dc_id:int
        #   attributes:Vector<DocumentAttribute> = Document;
        api = tl.api
        attributes = [api.DocumentAttributeFilename(file_name=self.file_name)] if self.file_name else []
        return api.Document(
            id=self.id,
            access_hash=self.access_hash,
            file_reference=self.file_reference,
            date=date,
            mime_type=self.mime_type,
            size=self.size,
            thumbs=[_photo_size(t, f) for t, f in self.thumbs.items()] or None,
            dc_id=self.dc_id,
            attributes=attributes,
        )

    def input_location(self, thumb_size: str = "") -> Any:
        """The ``inputDocumentFileLocation`` a client passes to ``upload.getFile`` (a
        ``thumb_size`` of :attr:`thumbs` downloads that thumbnail)."""
        # inputDocumentFileLocation#bad07584 id:long access_hash:long file_reference:bytes
        #   thumb_size:string = InputFileLocation;
        return tl.api.InputDocumentFileLocation(
            id=self.id,
            access_hash=self.access_hash,
            file_reference=self.file_reference,
            thumb_size=thumb_size,
        )


def _photo_size(kind: str, blob: StoredFile) -> Any:
    # photoSize#75c78e60 type:string w:int h:int size:int = PhotoSize;
    side = PHOTO_SIZES.get(kind, 320)
    return tl.api.PhotoSize(type=kind, w=side, h=side, size=blob.size)


@attrs.define(eq=False)
class StoredPhoto:
    """A photo stored on DC ``dc_id``: one content per size type (spec §11.3: on one DC).

    Message photos are downloaded with ``inputPhotoFileLocation(thumb_size=<type>)``; a user's
    profile photo or a channel's photo also with ``inputPeerPhotoFileLocation(peer, photo_id,
    big)``, which reads size ``"c"`` (big) or ``"a"`` (small)."""

    id: int
    access_hash: int
    file_reference: bytes
    dc_id: int
    sizes: dict[str, StoredFile]
    date: int = 0

    def input_location(self, thumb_size: str) -> Any:
        # inputPhotoFileLocation#40181ffe id:long access_hash:long file_reference:bytes
        #   thumb_size:string = InputFileLocation;
        return tl.api.InputPhotoFileLocation(
            id=self.id,
            access_hash=self.access_hash,
            file_reference=self.file_reference,
            thumb_size=thumb_size,
        )

    def to_tl(self) -> Any:
        # photo#fb197a65 flags:# has_stickers:flags.0?true id:long access_hash:long
        #   file_reference:bytes date:int sizes:Vector<PhotoSize> video_sizes:flags.1?... dc_id:int
        return tl.api.Photo(
            id=self.id,
            access_hash=self.access_hash,
            file_reference=self.file_reference,
            date=self.date,
            sizes=[_photo_size(t, f) for t, f in self.sizes.items()],
            dc_id=self.dc_id,
        )

    def profile_photo(self) -> Any:
        """``userProfilePhoto`` for ``user.photo``."""
        # userProfilePhoto#82d1f706 flags:# has_video:flags.0?true personal:flags.2?true
        #   photo_id:long stripped_thumb:flags.1?bytes dc_id:int = UserProfilePhoto;
        return tl.api.UserProfilePhoto(photo_id=self.id, dc_id=self.dc_id)

    def chat_photo(self) -> Any:
        """``chatPhoto`` for ``channel.photo``."""
        # chatPhoto#1c6e1c11 flags:# has_video:flags.0?true photo_id:long
        #   stripped_thumb:flags.1?bytes dc_id:int = ChatPhoto;
        return tl.api.ChatPhoto(photo_id=self.id, dc_id=self.dc_id)

    def peer_location(self, peer: Any, *, big: bool) -> Any:
        # inputPeerPhotoFileLocation#37257e99 flags:# big:flags.0?true peer:InputPeer
        #   photo_id:long = InputFileLocation;
        return tl.api.InputPeerPhotoFileLocation(big=big, peer=peer, photo_id=self.id)


def file_hashes(blob: StoredFile, offset: int) -> list[Any]:
    """``upload.getFileHashes``: SHA-256 of each 128 KiB part from the part holding
    ``offset``, up to 1 MiB of parts, none past the end."""
    # fileHash#f39b035c offset:long limit:int hash:bytes = FileHash;
    start = offset - offset % HASH_PART
    out = []
    for i in range(HASH_PARTS_PER_ANSWER):
        part_offset = start + i * HASH_PART
        if part_offset >= blob.size:
            break
        chunk = blob.chunk(part_offset, HASH_PART)
        out.append(
            tl.api.FileHash(
                offset=part_offset, limit=HASH_PART, hash=hashlib.sha256(chunk).digest()
            )
        )
    return out


def check_offset_limit(offset: int, limit: int, precise: bool) -> str | None:
    """Return the rpc error message for a bad (offset, limit) pair, or None if it is valid."""
    if precise:
        if offset < 0 or offset % 1024:
            return "OFFSET_INVALID"
        if limit <= 0 or limit % 1024 or limit > MAX_LIMIT:
            return "LIMIT_INVALID"
    else:
        if offset < 0 or offset % 4096:
            return "OFFSET_INVALID"
        if limit <= 0 or limit % 4096 or MAX_LIMIT % limit:
            return "LIMIT_INVALID"
    if offset // MAX_LIMIT != (offset + limit - 1) // MAX_LIMIT:
        return "LIMIT_INVALID"
    return None


_FILE_HEAD = struct.Struct("<III")


def serialize_file_part(chunk: bytes | memoryview, mtime: int) -> bytes:
    """Boxed ``upload.file(type=storage.filePartial, mtime, bytes=chunk)``, built by hand.

    upload.file#96a18d5 type:storage.FileType mtime:int bytes:bytes = upload.File;
    storage.filePartial#40bc6f52 = storage.FileType;
    """
    n = len(chunk)
    # bytes (§2.1): 1-byte length (<= 253) or 0xfe + 3-byte length, data, zero padding to 4
    if n <= 253:
        length = bytes((n,))
        pad = -(n + 1) & 3
    else:
        length = bytes((254, n & 0xFF, (n >> 8) & 0xFF, n >> 16))
        pad = -n & 3
    head = _FILE_HEAD.pack(tl.ids.UPLOAD_FILE, tl.ids.STORAGE_FILE_PARTIAL, mtime & 0xFFFFFFFF)
    return b"".join((head, length, chunk, bytes(pad)))
