"""Following ``upload.fileCdnRedirect`` (spec §11.4; issue 15), on the router's public interface.

A download asks its file's (master) DC with ``cdn_supported``; the master may answer::

    upload.fileCdnRedirect#f18cda44 dc_id:int file_token:bytes encryption_key:bytes
        encryption_iv:bytes file_hashes:Vector<FileHash> = upload.File;

:class:`CdnFile` then serves the download's parts from the CDN DC:

* the CDN DC's own RSA key comes from ``help.getCdnConfig`` (asked once on the home DC, no
  login needed); a CDN DC gets an auth key but never an authorization transfer (its only
  method, ``upload.getCdnFile``, is in ``methods.NO_AUTH_NEEDED``: the file_token is the
  permission) and never a temp-key binding;
* ``upload.getCdnFile`` answers ``upload.cdnFile`` (AES-256-CTR, :mod:`dcpool.crypto.cdn`):
  every chunk is decrypted and each 128 KiB of it checked against its SHA-256 (hashes from the
  redirect, then ``upload.getCdnFileHashes`` on the master as the download goes on).  A bad
  chunk raises :class:`~dcpool.errors.CdnHashMismatch` and is never returned;
* ``upload.cdnFileReuploadNeeded`` -> ``upload.reuploadCdnFile`` on the master (which returns
  fresh hashes), then the chunk is asked again;
* ``FILE_TOKEN_INVALID`` (from the CDN or the master) -> :meth:`CdnFile.fetch` returns None: the
  download falls back to the master DC (without ``cdn_supported``).

Chunks are fetched as whole 128 KiB-aligned windows (hash parts may not be cut), so a download
``part_size`` below 128 KiB reads the window and slices it.
"""

from __future__ import annotations

import functools
from typing import Any

import trio

from .. import tl
from ..crypto import cdn
from ..crypto.rsa import RsaPublicKey
from ..dcs import Lane
from ..errors import LocalProtocolError, RpcError
from ..router import Router

__all__ = ["CdnFile", "is_cdn_redirect"]

#: the RPC error that makes a download fall back to its master DC
TOKEN_INVALID = "FILE_TOKEN_INVALID"
#: reuploads asked for one chunk before giving up (the CDN keeps saying it lacks the file)
MAX_REUPLOADS = 3


def is_cdn_redirect(raw: bytes | memoryview) -> bool:
    return len(raw) >= 4 and int.from_bytes(raw[:4], "little") == tl.ids.UPLOAD_FILE_CDN_REDIRECT


async def ensure_cdn_key(router: Router, dc_id: int, *, timeout: float | None) -> None:
    """Install CDN DC ``dc_id``'s RSA key from help.getCdnConfig unless it is known."""
    if router.cdn_key_known(dc_id):
        return
    # help.getCdnConfig#52029342 = CdnConfig;
    # cdnConfig#5725e40a public_keys:Vector<CdnPublicKey> = CdnConfig;
    # cdnPublicKey#c982eaba dc_id:int public_key:string = CdnPublicKey;
    request = tl.api.help.GetCdnConfig()
    raw, _ = await router.call("help.getCdnConfig", request.to_bytes(), dc_id=None,
                               lane=Lane.MAIN, timeout=timeout)
    config = type(request).read_result(raw)
    router.add_cdn_keys({int(k.dc_id): RsaPublicKey.from_pem(k.public_key)
                         for k in config.public_keys})
    if not router.cdn_key_known(dc_id):
        raise LocalProtocolError(f"help.getCdnConfig has no key for CDN DC {dc_id}")


class CdnFile:
    """One redirect's state: the CDN DC, token, key, iv and the hashes known so far."""

    def __init__(self, router: Router, redirect: Any, *, master_dc: int,
                 timeout: float | None) -> None:
        self._router = router
        self.cdn_dc = int(redirect.dc_id)
        self.master_dc = master_dc
        self._token = bytes(redirect.file_token)
        self._key = bytes(redirect.encryption_key)
        self._iv = bytes(redirect.encryption_iv)
        self._hashes = cdn.hash_table(redirect.file_hashes)
        self._timeout = timeout
        self._hash_lock = trio.Lock()
        #: reuploads this redirect needed (statistics for tests and benchmarks)
        self.reuploads = 0

    @classmethod
    def from_answer(cls, router: Router, raw: bytes | memoryview, *, master_dc: int,
                    timeout: float | None) -> CdnFile:
        return cls(router, tl.loads(raw), master_dc=master_dc, timeout=timeout)

    async def _master(self, request: Any) -> Any:
        raw, _ = await self._router.call(type(request).QUALNAME, request.to_bytes(),
                                         dc_id=self.master_dc, lane=Lane.DOWNLOAD,
                                         timeout=self._timeout, idempotent=True)
        return type(request).read_result(raw)

    async def _learn_hashes(self, offset: int, length: int, *, strict: bool = True) -> None:
        """Ask the master DC for the hashes of ``[offset, offset + length)`` it has not sent
        yet.  ``strict=False`` (ahead of the chunk, whose length is not known yet): a range past
        the end of the file is not an error (the chunk's own check is strict)."""
        # one getCdnFileHashes at a time: parallel parts usually need the same ones
        async with self._hash_lock:
            for part in cdn.hashes_needed(offset, length, self._hashes):
                if part in self._hashes:
                    continue  # (a previous answer covered it)
                # upload.getCdnFileHashes#91dc3f31 file_token:bytes offset:long = Vector<FileHash>;
                got = await self._master(tl.api.upload.GetCdnFileHashes(
                    file_token=self._token, offset=part))
                self._hashes.update(cdn.hash_table(got))
                if part not in self._hashes:
                    if not strict:
                        return  # past the end of the file
                    raise LocalProtocolError(f"the master DC sent no hash for offset {part}")

    async def fetch(self, offset: int, limit: int) -> bytes | None:
        """The plaintext of ``[offset, offset + limit)`` (shorter at the end of the file),
        checked; None when the token is no longer valid (fall back to the master DC)."""
        try:
            return await self._fetch(offset, limit)
        except RpcError as exc:
            if exc.name == TOKEN_INVALID:
                return None
            raise

    async def _chunk_and_hashes(self, request: Any, start: int, window: int) -> Any:
        """The CDN's answer to ``request``, while the hashes of the window (if missing) are
        asked of the master DC at the same time: one round trip, not two."""
        answer: Any = None

        async def chunk() -> None:
            nonlocal answer
            raw, _ = await self._router.call("upload.getCdnFile", request.to_bytes(),
                                             dc_id=self.cdn_dc, lane=Lane.CDN,
                                             timeout=self._timeout, idempotent=True)
            answer = type(request).read_result(raw)

        if not cdn.hashes_needed(start, window, self._hashes):
            await chunk()
            return answer
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(functools.partial(self._learn_hashes, start, window,
                                                     strict=False))
                await chunk()
        except BaseExceptionGroup as group:
            raise _first_error(group) from None
        return answer

    async def _fetch(self, offset: int, limit: int) -> bytes:
        window = max(limit, cdn.HASH_PART)
        start = offset - offset % window
        await ensure_cdn_key(self._router, self.cdn_dc, timeout=self._timeout)
        reuploads = 0
        while True:
            # upload.getCdnFile#395f69da file_token:bytes offset:long limit:int = upload.CdnFile;
            request = tl.api.upload.GetCdnFile(file_token=self._token, offset=start, limit=window)
            answer = await self._chunk_and_hashes(request, start, window)
            if isinstance(answer, tl.api.upload.CdnFileReuploadNeeded):
                # upload.cdnFileReuploadNeeded#eea8e46e request_token:bytes = upload.CdnFile;
                reuploads += 1
                if reuploads > MAX_REUPLOADS:
                    raise LocalProtocolError("the CDN still lacks the file after reuploads")
                # upload.reuploadCdnFile#9b2754a8 file_token:bytes request_token:bytes
                #   = Vector<FileHash>;
                hashes = await self._master(tl.api.upload.ReuploadCdnFile(
                    file_token=self._token, request_token=answer.request_token))
                self._hashes.update(cdn.hash_table(hashes))
                self.reuploads += 1
                continue
            encrypted = bytes(answer.bytes)
            await self._learn_hashes(start, len(encrypted))
            plain = cdn.open_chunk(encrypted, start, self._key, self._iv, self._hashes,
                                   at_end=len(encrypted) < window)
            return plain[offset - start : offset - start + limit]


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """One exception for the caller out of a nursery's group (a cancellation only if that is
    all there is)."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for sub in exc.exceptions:
                walk(sub)
        else:
            leaves.append(exc)

    walk(group)
    return next((e for e in leaves if not isinstance(e, trio.Cancelled)), leaves[0])
