"""Uploads and CDN DCs of the emulated cluster (spec §13.1, §11.4; issue 15).

Theory of operation
-------------------
State lives in one :class:`Transfers` object per world (:func:`transfers`), like
:mod:`.messaging`, so :class:`~.world.World` only gained the ``DcState.cdn`` flag.

**Uploads.**  ``upload.saveFilePart`` / ``upload.saveBigFilePart`` store parts per *(DC, auth
key, file_id)*: a part saved on DC 2 with key K is invisible to any other DC or key, as on
Telegram (the key is the permanent key when a bound temp key sent it, :mod:`.pfs`).  A file is
assembled when an ``InputFile`` is used (``messages.uploadMedia`` / ``messages.sendMedia``) on
the DC and key that stored its parts; the result is a document (or photo) stored on *that* DC,
with that ``dc_id``, downloadable there with ``upload.getFile`` and ``FILE_MIGRATE_X``
elsewhere (the existing :mod:`.files` store).  Parts stay after use, so a client may re-send
the same ``InputFile``.

Part rules (spec §13.1): at most :attr:`Transfers.max_parts` parts (``appConfig
upload_max_fileparts_default``, 4000); every part but the last has the same size ``S`` with
``S % 1024 == 0`` and ``524288 % S == 0``; the last is ``1..S`` bytes.

=============================  ======  ===================================================
method                         access  answer / errors
=============================  ======  ===================================================
upload.saveFilePart            KEY     boolTrue; FILE_PART_INVALID (number < 0 or >=
                                       max_parts), FILE_PART_EMPTY, FILE_PART_TOO_BIG
                                       (> 512 KiB), FILE_PART_SIZE_INVALID (a part below the
                                       highest stored one whose size is not a valid part
                                       size), FILE_PART_SIZE_CHANGED (parts below the highest
                                       of different sizes, or a highest part longer than
                                       them), FILE_PARTS_INVALID (the file_id was started
                                       with saveBigFilePart)
upload.saveBigFilePart         KEY     boolTrue; as above, plus FILE_PARTS_INVALID
                                       (file_total_parts <= 0, > max_parts, or not the same
                                       for every part) and FILE_PART_INVALID (number >=
                                       file_total_parts)
messages.uploadMedia           HOME    messageMediaDocument / messageMediaPhoto of a new
                                       document/photo on this DC
messages.sendMedia             HOME    updates(updateMessageID, updateNewMessage /
                                       updateNewChannelMessage) — a real message with pts
                                       (:mod:`.messaging`); MESSAGE_EMPTY never (a caption
                                       may be empty), PEER_ID_INVALID, CHANNEL_INVALID,
                                       CHANNEL_PRIVATE, CHAT_WRITE_FORBIDDEN
(using an InputFile)                   FILE_PARTS_INVALID (parts <= 0 or > max_parts, small/
                                       big mismatch, total differs, bad part sizes),
                                       FILE_PART_X_MISSING (lowest missing part X),
                                       MD5_CHECKSUM_INVALID (inputFile with a non-empty md5
                                       that is not the hex MD5 of the content),
                                       MEDIA_INVALID (another kind of InputMedia)
upload.getFile                 KEY     as before (:mod:`.handlers`); with ``cdn_supported``
                                       on a CDN-served document (:func:`serve_from_cdn`):
                                       upload.fileCdnRedirect(dc_id, file_token, key, iv,
                                       hashes of the 1 MiB from ``offset``)
upload.getCdnFile              ANY     (CDN DC only) upload.cdnFile(AES-256-CTR of the
                                       chunk, iv per offset, spec §11.4), or
                                       upload.cdnFileReuploadNeeded(request_token) when the
                                       CDN lacks the file (:func:`require_reupload`);
                                       FILE_TOKEN_INVALID (unknown/revoked token, or another
                                       DC), OFFSET_INVALID, LIMIT_INVALID
upload.reuploadCdnFile         KEY     (master DC) Vector<FileHash> from offset 0; the CDN
                                       serves the file again.  FILE_TOKEN_INVALID,
                                       RSA_DECRYPT_FAILED (a request_token the CDN did not
                                       issue for that file), FILE_MIGRATE_X
upload.getCdnFileHashes        KEY     (master DC) Vector<FileHash> from ``offset``;
                                       FILE_TOKEN_INVALID, OFFSET_INVALID, FILE_MIGRATE_X
help.getCdnConfig              ANY     cdnConfig with one cdnPublicKey (PKCS#1 PEM) per CDN DC
=============================  ======  ===================================================

**CDN DCs** (:func:`enable_cdn_dc`, or ``open_cluster(cdn_dcs=[203])``) are DCs of the world
flagged ``cdn``: listed in ``config.dc_options`` with ``cdn`` set, each with its *own* RSA key
(published by ``help.getCdnConfig``, not by the cluster's ``rsa_keys()``).  A CDN DC accepts
no authorization: every method except ``upload.getCdnFile`` answers 400
``CDN_METHOD_INVALID`` (a request gate, :data:`.handlers.REQUEST_GATES`).  ``fileHash`` values
are SHA-256 of the *plaintext* 128 KiB parts (what clients check after decrypting).

Faults: :func:`lose_upload_parts` makes a DC forget stored parts (``FILE_PART_X_MISSING``
at the next use); :func:`corrupt_cdn_chunks` flips one byte of the next N ``cdnFile`` answers of a CDN
DC; :func:`require_reupload` makes a file's tokens answer ``cdnFileReuploadNeeded`` until
``upload.reuploadCdnFile``; :func:`revoke_cdn_tokens` makes them ``FILE_TOKEN_INVALID`` (the
client must fall back to the master DC).  All are control-channel commands too.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

import attrs

from .. import tl
from ..crypto import cdn
from ..crypto.rsa import RsaPrivateKey
from ..errors import ConfigError, LocalProtocolError, rpc_error_from
from .control import Controller, Param, control_command, file_info
from .faults import DcFaults
from .files import StoredFile, StoredPhoto, check_offset_limit, file_hashes
from .handlers import REQUEST_GATES, Access, Call, get_file, get_file_hashes, method
from .stats import DcStats

if TYPE_CHECKING:
    from .world import Account, DcState, World

__all__ = [
    "MAX_PART_SIZE",
    "BIG_FILE_SIZE",
    "Transfers",
    "PartialUpload",
    "CdnToken",
    "transfers",
    "enable_cdn_dc",
    "cdn_private_key",
    "cdn_public_keys",
    "serve_from_cdn",
    "lose_upload_parts",
    "corrupt_cdn_chunks",
    "require_reupload",
    "revoke_cdn_tokens",
    "valid_part_size",
]

#: the largest part (spec §13.1)
MAX_PART_SIZE = 512 << 10
#: files above this size must use saveBigFilePart / inputFileBig (spec §13.1)
BIG_FILE_SIZE = 10 << 20


def valid_part_size(size: int) -> bool:
    """``size % 1024 == 0 and 524288 % size == 0`` (every part but the last)."""
    return 0 < size <= MAX_PART_SIZE and size % 1024 == 0 and MAX_PART_SIZE % size == 0


@attrs.define
class PartialUpload:
    """The parts of one file_id stored on one DC for one auth key."""

    big: bool
    total_parts: int | None = None
    parts: dict[int, bytes] = attrs.field(factory=dict, repr=False)


@attrs.define
class CdnToken:
    """A ``file_token`` of a redirect: which file, which CDN DC, and the AES key/iv."""

    token: bytes = attrs.field(repr=False)
    file_id: int
    cdn_dc: int
    key: bytes = attrs.field(repr=False)
    iv: bytes = attrs.field(repr=False)
    revoked: bool = False


class Transfers:
    """Upload and CDN state of one world (see the module docstring)."""

    def __init__(self, world: World) -> None:
        self._world = weakref.ref(world)
        #: (dc_id, key_id, file_id) -> parts
        self.partial: dict[tuple[int, int, int], PartialUpload] = {}
        #: upload_max_fileparts_default of Telegram's appConfig
        self.max_parts = 4000
        #: CDN DC id -> its private RSA key
        self.cdn_keys: dict[int, RsaPrivateKey] = {}
        #: document id -> the CDN DC serving it
        self.cdn_files: dict[int, int] = {}
        self.tokens: dict[bytes, CdnToken] = {}
        self._token_of: dict[tuple[int, int], bytes] = {}
        #: files the CDN has lost: getCdnFile answers cdnFileReuploadNeeded
        self.reupload_needed: set[int] = set()
        #: request_token -> file_token, issued by cdnFileReuploadNeeded
        self.reupload_requests: dict[bytes, bytes] = {}
        #: CDN DC -> cdnFile answers still to corrupt
        self.corrupt: dict[int, int] = {}
        #: ids of the documents made from uploads, oldest first
        self.uploaded: list[int] = []
        #: counters for tests
        self.redirects = 0
        self.reuploads = 0

    @property
    def world(self) -> World:
        world = self._world()
        assert world is not None
        return world

    def token_for(self, file_id: int, cdn_dc: int) -> CdnToken:
        """The live token of (file, CDN DC), created on first use (a revoked one is replaced
        only by :func:`serve_from_cdn`)."""
        raw = self._token_of.get((file_id, cdn_dc))
        if raw is not None:
            return self.tokens[raw]
        rng = self.world.rng
        token = CdnToken(token=rng(32), file_id=file_id, cdn_dc=cdn_dc, key=rng(32), iv=rng(16))
        self.tokens[token.token] = token
        self._token_of[(file_id, cdn_dc)] = token.token
        return token

    def forget_token(self, file_id: int, cdn_dc: int) -> None:
        self._token_of.pop((file_id, cdn_dc), None)


_REGISTRY: weakref.WeakKeyDictionary[Any, Transfers] = weakref.WeakKeyDictionary()


def transfers(world: World) -> Transfers:
    """The :class:`Transfers` state of ``world`` (created on first use)."""
    state = _REGISTRY.get(world)
    if state is None:
        state = _REGISTRY[world] = Transfers(world)
    return state


# --------------------------------------------------------------------------- CDN DCs (setup)


def _shipped_cdn_key() -> RsaPrivateKey:
    pem = resources.files("dcpool.testing").joinpath("emulator_cdn_key.pem").read_bytes()
    return RsaPrivateKey.from_pem(pem)


def enable_cdn_dc(world: World, dc_id: int, private_key: RsaPrivateKey | None = None) -> None:
    """Add CDN DC ``dc_id`` (Telegram's are 201..2xx) to ``world``, before the cluster starts
    serving it.  ``private_key`` defaults to the CDN test key shipped with the package for the
    first CDN DC and a freshly generated one for the others (never the cluster's key)."""
    if dc_id in world.dcs:
        raise ConfigError(f"DC {dc_id} already exists")
    if not isinstance(dc_id, int) or dc_id <= 0:
        raise ConfigError(f"CDN DC ids must be positive ints, got {dc_id!r}")
    state = transfers(world)
    if private_key is None:
        private_key = _shipped_cdn_key() if not state.cdn_keys else RsaPrivateKey.generate()
    from .world import DcState

    stats = DcStats(dc_id)
    world.cluster_stats.by_dc[dc_id] = stats
    world.dcs[dc_id] = DcState(id=dc_id, faults=DcFaults(dc_id), stats=stats, cdn=True)
    state.cdn_keys[dc_id] = private_key


def cdn_private_key(world: World, dc_id: int) -> RsaPrivateKey | None:
    """The RSA key CDN DC ``dc_id`` serves handshakes with (None: not a CDN DC)."""
    return transfers(world).cdn_keys.get(dc_id)


def cdn_public_keys(world: World) -> dict[int, Any]:
    """{CDN DC id: RsaPublicKey}: what ``help.getCdnConfig`` publishes."""
    return {dc: key.public_key for dc, key in transfers(world).cdn_keys.items()}


def serve_from_cdn(world: World, file_id: int, cdn_dc: int | None = None) -> None:
    """Mark document ``file_id`` as served by CDN DC ``cdn_dc`` (default: the first one):
    ``upload.getFile`` with ``cdn_supported`` then redirects to it.  Re-marking after
    :func:`revoke_cdn_tokens` issues a fresh token."""
    state = transfers(world)
    if not state.cdn_keys:
        raise ConfigError("the world has no CDN DC (enable_cdn_dc / open_cluster(cdn_dcs=))")
    if cdn_dc is None:
        cdn_dc = min(state.cdn_keys)
    if cdn_dc not in state.cdn_keys:
        raise ConfigError(f"DC {cdn_dc} is not a CDN DC")
    if file_id not in world.files:
        raise LocalProtocolError(f"no document {file_id}")
    state.cdn_files[file_id] = cdn_dc
    token = state._token_of.get((file_id, cdn_dc))
    if token is not None and state.tokens[token].revoked:
        state.forget_token(file_id, cdn_dc)


def lose_upload_parts(
    world: World, dc_id: int, parts: Iterable[int] | None = None, *, file_id: int | None = None
) -> int:
    """Fault: DC ``dc_id`` forgets stored upload parts (Telegram keeps them only "minutes to
    hours"): the numbers in ``parts`` (None: all) of file ``file_id`` (None: every file).  The
    next use of the file answers ``FILE_PART_X_MISSING``.  Returns how many parts were lost."""
    wanted = None if parts is None else set(parts)
    lost = 0
    for (dc, _key, fid), upload in transfers(world).partial.items():
        if dc != dc_id or (file_id is not None and fid != file_id):
            continue
        for number in [n for n in upload.parts if wanted is None or n in wanted]:
            del upload.parts[number]
            lost += 1
    return lost


def corrupt_cdn_chunks(world: World, cdn_dc: int, count: int = 1) -> None:
    """Fault: flip one byte in each of the next ``count`` cdnFile answers of ``cdn_dc``."""
    if cdn_dc not in transfers(world).cdn_keys:
        raise ConfigError(f"DC {cdn_dc} is not a CDN DC")
    state = transfers(world)
    state.corrupt[cdn_dc] = state.corrupt.get(cdn_dc, 0) + count


def require_reupload(world: World, file_id: int) -> None:
    """Fault: the CDN lost ``file_id``; getCdnFile answers cdnFileReuploadNeeded until the
    client calls upload.reuploadCdnFile on the master DC."""
    transfers(world).reupload_needed.add(file_id)


def revoke_cdn_tokens(world: World, file_id: int) -> int:
    """Fault: every token of ``file_id`` becomes FILE_TOKEN_INVALID.  Returns how many."""
    n = 0
    for token in transfers(world).tokens.values():
        if token.file_id == file_id and not token.revoked:
            token.revoked = True
            n += 1
    return n


def _cdn_gate(world: World, dc: DcState, key_id: int, qualname: str, now: float) -> int:
    # spec §11.4: a CDN DC serves upload.getCdnFile only (and the wrappers around it)
    if dc.cdn and qualname != "upload.getCdnFile":
        raise rpc_error_from(400, "CDN_METHOD_INVALID", qualname)
    return key_id


REQUEST_GATES.append(_cdn_gate)


# --------------------------------------------------------------------------- uploads


@method("upload.saveFilePart", Access.KEY)
def save_file_part(call: Call, q: Any) -> bool:
    # upload.saveFilePart#b304a621 file_id:long file_part:int bytes:bytes = Bool;
    _save_part(call, q.file_id, q.file_part, bytes(q.bytes), big=False, total=None)
    return True


@method("upload.saveBigFilePart", Access.KEY)
def save_big_file_part(call: Call, q: Any) -> bool:
    # upload.saveBigFilePart#de7b673d file_id:long file_part:int file_total_parts:int
    #   bytes:bytes = Bool;
    _save_part(call, q.file_id, q.file_part, bytes(q.bytes), big=True, total=q.file_total_parts)
    return True


def _save_part(call: Call, file_id: int, part: int, data: bytes, *, big: bool, total: int | None) -> None:
    state = transfers(call.world)
    if big and (total is None or total <= 0 or total > state.max_parts):
        raise call.error(400, "FILE_PARTS_INVALID")
    if part < 0 or part >= state.max_parts or (total is not None and part >= total):
        raise call.error(400, "FILE_PART_INVALID")
    if not data:
        raise call.error(400, "FILE_PART_EMPTY")
    if len(data) > MAX_PART_SIZE:
        raise call.error(400, "FILE_PART_TOO_BIG")
    slot = (call.dc.id, call.key_id, file_id)
    upload = state.partial.get(slot)
    if upload is not None and (upload.big != big or upload.total_parts != total):
        raise call.error(400, "FILE_PARTS_INVALID")
    sizes = {} if upload is None else {i: len(p) for i, p in upload.parts.items()}
    sizes[part] = len(data)
    problem = _size_problem(sizes, None if total is None else total - 1)
    if problem is not None:
        raise call.error(400, problem)
    if upload is None:
        upload = state.partial[slot] = PartialUpload(big=big, total_parts=total)
    upload.parts[part] = data


def _size_problem(sizes: dict[int, int], last: int | None) -> str | None:
    """Check part sizes: all below the last (known, or the highest stored) share one valid
    size, and the last is not longer.  Returns the error message or None."""
    if last is None:
        last = max(sizes)
    full = {i: n for i, n in sizes.items() if i != last}
    if any(not valid_part_size(n) for n in full.values()):
        return "FILE_PART_SIZE_INVALID"
    if len(set(full.values())) > 1:
        return "FILE_PART_SIZE_CHANGED"
    if full and last in sizes and sizes[last] > next(iter(full.values())):
        return "FILE_PART_SIZE_CHANGED"
    return None


def assemble(call: Call, input_file: Any) -> tuple[bytes, str]:
    """The content and name of an uploaded ``InputFile``, from the parts this DC stored for
    this key, or the RpcError Telegram gives (see the module docstring)."""
    # inputFile#f52ff27f id:long parts:int name:string md5_checksum:string = InputFile;
    # inputFileBig#fa4f0bb5 id:long parts:int name:string = InputFile;
    kind = type(input_file).QUALNAME
    if kind not in ("inputFile", "inputFileBig"):
        raise call.error(400, "FILE_PARTS_INVALID")
    big = kind == "inputFileBig"
    state = transfers(call.world)
    n = input_file.parts
    if n <= 0 or n > state.max_parts:
        raise call.error(400, "FILE_PARTS_INVALID")
    upload = state.partial.get((call.dc.id, call.key_id, input_file.id))
    if upload is None:
        raise call.error(400, "FILE_PART_0_MISSING")
    if upload.big != big or (big and upload.total_parts != n):
        raise call.error(400, "FILE_PARTS_INVALID")
    for i in range(n):
        if i not in upload.parts:
            raise call.error(400, f"FILE_PART_{i}_MISSING")
    if _size_problem({i: len(upload.parts[i]) for i in range(n)}, n - 1) is not None:
        raise call.error(400, "FILE_PARTS_INVALID")
    data = b"".join(upload.parts[i] for i in range(n))
    if not big and input_file.md5_checksum:
        if input_file.md5_checksum.lower() != hashlib.md5(data).hexdigest():
            raise call.error(400, "MD5_CHECKSUM_INVALID")
    return data, input_file.name


def _media_from_input(call: Call, media: Any) -> tuple[Any, StoredFile | StoredPhoto]:
    """Turn an ``InputMedia`` of uploaded content into (messageMedia*, what was stored)."""
    world = call.world
    kind = type(media).QUALNAME
    if kind == "inputMediaUploadedDocument":
        # inputMediaUploadedDocument#037c9330 flags:# nosound_video:flags.3?true
        #   force_file:flags.4?true spoiler:flags.5?true file:InputFile thumb:flags.2?InputFile
        #   mime_type:string attributes:Vector<DocumentAttribute> ... = InputMedia;
        data, name = assemble(call, media.file)
        for attribute in media.attributes or ():
            if type(attribute).QUALNAME == "documentAttributeFilename":
                name = attribute.file_name
        thumbs: dict[str, bytes | int] = {}
        if getattr(media, "thumb", None) is not None:
            thumbs["m"] = assemble(call, media.thumb)[0]
        doc = world.add_file(
            call.dc.id,
            data,
            mtime=call.date,
            thumbs=thumbs,
            mime_type=media.mime_type or "application/octet-stream",
            file_name=name,
        )
        transfers(world).uploaded.append(doc.id)
        # messageMediaDocument#52d8ccd9 flags:# ... document:flags.0?Document ... = MessageMedia;
        return tl.api.MessageMediaDocument(document=doc.to_tl(call.date)), doc
    if kind == "inputMediaUploadedPhoto":
        # inputMediaUploadedPhoto#1e287d04 flags:# spoiler:flags.2?true file:InputFile
        #   stickers:flags.0?Vector<InputDocument> ttl_seconds:flags.1?int = InputMedia;
        data, _ = assemble(call, media.file)
        # the emulator does not decode images: the upload is the photo's only (largest) size
        photo = world.add_photo(call.dc.id, {"x": data}, date=call.date)
        # messageMediaPhoto#695150d7 flags:# spoiler:flags.3?true photo:flags.0?Photo
        #   ttl_seconds:flags.2?int = MessageMedia;
        return tl.api.MessageMediaPhoto(photo=photo.to_tl()), photo
    raise call.error(400, "MEDIA_INVALID")


def _me(call: Call) -> Account:
    assert call.account is not None
    return call.account


@method("messages.uploadMedia", Access.HOME)
def upload_media(call: Call, q: Any) -> Any:
    # messages.uploadMedia#14967978 flags:# business_connection_id:flags.0?string
    #   peer:InputPeer media:InputMedia = MessageMedia;
    _peer(call, q.peer)
    return _media_from_input(call, q.media)[0]


def _peer(call: Call, peer: Any) -> tuple[str, Any]:
    """("user", user id) or ("channel", ChannelBox) for an InputPeer, or the RpcError."""
    from .messaging import messaging

    name = type(peer).QUALNAME
    if name == "inputPeerSelf":
        return "user", _me(call).id
    if name == "inputPeerUser":
        # inputPeerUser#dde8a54c user_id:long access_hash:long = InputPeer;
        account = call.world.accounts.get(peer.user_id)
        if account is None or account.access_hash != peer.access_hash:
            raise call.error(400, "PEER_ID_INVALID")
        return "user", account.id
    if name == "inputPeerChannel":
        # inputPeerChannel#27bcbbfc channel_id:long access_hash:long = InputPeer;
        channel = messaging(call.world).channels.get(peer.channel_id)
        if channel is None or channel.access_hash != peer.access_hash:
            raise call.error(400, "CHANNEL_INVALID")
        if _me(call).id not in channel.members:
            raise call.error(406, "CHANNEL_PRIVATE")
        return "channel", channel
    raise call.error(400, "PEER_ID_INVALID")


@method("messages.sendMedia", Access.HOME)
def send_media(call: Call, q: Any) -> Any:
    # messages.sendMedia#ac55d9c1 flags:# ... peer:InputPeer ... media:InputMedia
    #   message:string random_id:long ... = Updates;
    from .messaging import messaging, post, send_message

    me = _me(call)
    kind, target = _peer(call, q.peer)
    if kind == "channel" and target.creator != me.id:
        raise call.error(403, "CHAT_WRITE_FORBIDDEN")
    media, _ = _media_from_input(call, q.media)
    m = messaging(call.world)
    text = q.message or ""
    if kind == "channel":
        event = post(call.world, target.id, text, from_id=me.id, now=call.now, media=media)
        chats = [target.to_tl()]
        users = m.users_tl([me.id], me.id)
    else:
        event, _ = send_message(call.world, me.id, target, text, now=call.now, media=media)
        chats = []
        users = m.users_tl([me.id, target], me.id)
    # updateMessageID#4e90bfd6 id:int random_id:long = Update;
    # updates#74ae4240 updates:Vector<Update> users:Vector<User> chats:Vector<Chat> date:int
    #   seq:int = Updates;   (seq 0: ordered by pts, like messaging's channel answers)
    return tl.api.Updates(
        updates=[tl.api.UpdateMessageID(id=event.update.message.id, random_id=q.random_id), event.update],
        users=users,
        chats=chats,
        date=call.date,
        seq=0,
    )


# --------------------------------------------------------------------------- CDN


@method("help.getCdnConfig")
def get_cdn_config(call: Call, q: Any) -> Any:
    # help.getCdnConfig#52029342 = CdnConfig;
    # cdnConfig#5725e40a public_keys:Vector<CdnPublicKey> = CdnConfig;
    # cdnPublicKey#c982eaba dc_id:int public_key:string = CdnPublicKey;
    return tl.api.CdnConfig(
        public_keys=[
            tl.api.CdnPublicKey(dc_id=dc, public_key=key.to_pkcs1_pem())
            for dc, key in sorted(cdn_public_keys(call.world).items())
        ]
    )


@method("upload.getFile", Access.KEY)
def get_file_or_redirect(call: Call, q: Any) -> Any:
    # upload.getFile#be5335be flags:# precise:flags.0?true cdn_supported:flags.1?true
    #   location:InputFileLocation offset:long limit:int = upload.File;
    state = transfers(call.world)
    location = q.location
    cdn_dc = None
    if (
        q.cdn_supported
        and type(location).QUALNAME == "inputDocumentFileLocation"
        and not location.thumb_size
    ):
        cdn_dc = state.cdn_files.get(location.id)
    if cdn_dc is None:
        return get_file(call, q)
    problem = check_offset_limit(q.offset, q.limit, q.precise)
    if problem is not None:
        raise call.error(400, problem)
    # same location checks (and FILE_MIGRATE_X) as upload.getFile; the hashes of the 1 MiB
    # from offset come with the redirect (spec §11.4)
    hashes = get_file_hashes(call, q)
    token = state.token_for(location.id, cdn_dc)
    state.redirects += 1
    # upload.fileCdnRedirect#f18cda44 dc_id:int file_token:bytes encryption_key:bytes
    #   encryption_iv:bytes file_hashes:Vector<FileHash> = upload.File;
    return tl.api.upload.FileCdnRedirect(
        dc_id=cdn_dc,
        file_token=token.token,
        encryption_key=token.key,
        encryption_iv=token.iv,
        file_hashes=hashes,
    )


def _token(call: Call, raw: Any) -> tuple[CdnToken, StoredFile]:
    state = transfers(call.world)
    token = state.tokens.get(bytes(raw))
    blob = None if token is None else call.world.files.get(token.file_id)
    if token is None or token.revoked or blob is None:
        raise call.error(400, "FILE_TOKEN_INVALID")
    return token, blob


@method("upload.getCdnFile")
def get_cdn_file(call: Call, q: Any) -> Any:
    # upload.getCdnFile#395f69da file_token:bytes offset:long limit:int = upload.CdnFile;
    state = transfers(call.world)
    token, blob = _token(call, q.file_token)
    if token.cdn_dc != call.dc.id:
        raise call.error(400, "FILE_TOKEN_INVALID")
    problem = check_offset_limit(q.offset, q.limit, False)
    if problem is not None:
        raise call.error(400, problem)
    if token.file_id in state.reupload_needed:
        request_token = call.world.rng(32)
        state.reupload_requests[request_token] = token.token
        # upload.cdnFileReuploadNeeded#eea8e46e request_token:bytes = upload.CdnFile;
        return tl.api.upload.CdnFileReuploadNeeded(request_token=request_token)
    chunk = blob.chunk(q.offset, q.limit)
    encrypted = cdn.crypt_chunk(chunk, token.key, token.iv, q.offset)
    if encrypted and state.corrupt.get(call.dc.id, 0) > 0:
        state.corrupt[call.dc.id] -= 1
        flipped = bytearray(encrypted)
        flipped[len(flipped) // 2] ^= 0x55
        encrypted = bytes(flipped)
    call.dc.stats.record_bytes_served(len(chunk))
    # upload.cdnFile#a99fca4f bytes:bytes = upload.CdnFile;
    return tl.api.upload.CdnFile(bytes=encrypted)


def _master_blob(call: Call, raw: Any) -> tuple[CdnToken, StoredFile]:
    token, blob = _token(call, raw)
    if blob.dc_id != call.dc.id:
        raise call.error(303, f"FILE_MIGRATE_{blob.dc_id}")
    return token, blob


@method("upload.reuploadCdnFile", Access.KEY)
def reupload_cdn_file(call: Call, q: Any) -> Any:
    # upload.reuploadCdnFile#9b2754a8 file_token:bytes request_token:bytes = Vector<FileHash>;
    state = transfers(call.world)
    token, blob = _master_blob(call, q.file_token)
    if state.reupload_requests.get(bytes(q.request_token)) != token.token:
        raise call.error(400, "RSA_DECRYPT_FAILED")
    del state.reupload_requests[bytes(q.request_token)]
    state.reupload_needed.discard(token.file_id)
    state.reuploads += 1
    return file_hashes(blob, 0)


@method("upload.getCdnFileHashes", Access.KEY)
def get_cdn_file_hashes(call: Call, q: Any) -> Any:
    # upload.getCdnFileHashes#91dc3f31 file_token:bytes offset:long = Vector<FileHash>;
    _, blob = _master_blob(call, q.file_token)
    if q.offset < 0:
        raise call.error(400, "OFFSET_INVALID")
    return file_hashes(blob, q.offset)


# --------------------------------------------------------------------------- control channel


@control_command(
    "serve_from_cdn",
    "serve a document through a CDN DC: upload.getFile with cdn_supported then redirects",
    Param("file_id", "int", "the document id", required=True),
    Param("cdn_dc", "int", "the CDN DC (default: the lowest one)"),
)
def _cmd_serve_from_cdn(ctl: Controller, file_id: int, cdn_dc: int | None = None) -> dict[str, Any]:
    serve_from_cdn(ctl.world, file_id, cdn_dc)
    return {"file_id": file_id, "cdn_dc": transfers(ctl.world).cdn_files[file_id]}


@control_command(
    "cdn_config",
    "the CDN DCs and their public keys (PKCS#1 PEM), as help.getCdnConfig publishes them",
)
def _cmd_cdn_config(ctl: Controller) -> list[dict[str, Any]]:
    return [
        {"dc_id": dc, "public_key": key.to_pkcs1_pem(), "fingerprint": key.fingerprint}
        for dc, key in sorted(cdn_public_keys(ctl.world).items())
    ]


@control_command(
    "corrupt_cdn_chunks",
    "fault: flip a byte in each of the next 'count' upload.cdnFile answers of a CDN DC",
    Param("dc_id", "int", "the CDN DC", required=True),
    Param("count", "int", "how many answers (default 1)"),
)
def _cmd_corrupt(ctl: Controller, dc_id: int, count: int = 1) -> None:
    corrupt_cdn_chunks(ctl.world, dc_id, count)


@control_command(
    "require_cdn_reupload",
    "fault: the CDN lost a file; getCdnFile answers cdnFileReuploadNeeded until reuploadCdnFile",
    Param("file_id", "int", "the document id", required=True),
)
def _cmd_require_reupload(ctl: Controller, file_id: int) -> None:
    require_reupload(ctl.world, file_id)


@control_command(
    "revoke_cdn_tokens",
    "fault: every CDN file_token of a document answers FILE_TOKEN_INVALID",
    Param("file_id", "int", "the document id", required=True),
)
def _cmd_revoke(ctl: Controller, file_id: int) -> dict[str, Any]:
    return {"revoked": revoke_cdn_tokens(ctl.world, file_id)}


@control_command(
    "lose_upload_parts",
    "fault: a DC forgets stored upload parts; the file's next use answers FILE_PART_X_MISSING",
    Param("dc_id", "int", "the DC", required=True),
    Param("parts", "list", "part numbers (default: all)"),
    Param("file_id", "int", "only this file_id (default: every file)"),
)
def _cmd_lose_parts(
    ctl: Controller, dc_id: int, parts: list[int] | None = None, file_id: int | None = None
) -> dict[str, Any]:
    return {"lost": lose_upload_parts(ctl.world, dc_id, parts, file_id=file_id)}


@control_command(
    "uploaded_files",
    "documents created from uploads (messages.uploadMedia / sendMedia), newest last",
    Param("dc_id", "int", "only those stored on this DC"),
)
def _cmd_uploaded(ctl: Controller, dc_id: int | None = None) -> list[dict[str, Any]]:
    files = [ctl.world.files[i] for i in transfers(ctl.world).uploaded if i in ctl.world.files]
    return [file_info(f) for f in files if dc_id is None or f.dc_id == dc_id]
