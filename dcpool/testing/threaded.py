"""The emulated cluster served from a helper thread, for asyncio clients (Telethon, Pyrogram)
and synchronous tests, plus the patch points that aim those clients at it.

The cluster is trio code; an asyncio client cannot share its loop.  :class:`ThreadedCluster`
runs ``open_cluster()`` under ``trio.run`` in a dedicated thread (test-only: the library itself
needs no threads) and exposes :meth:`call` to run a synchronous function in that thread, the
only safe way to touch the cluster while it serves.  Errors of the trio side are re-raised on
exit; the trio side is bounded by ``trio.fail_after(timeout)``.

:func:`telethon_patched` / :func:`pyrogram_patched` apply each library's documented patch
points (spec §17.3) and undo them on exit, so one test's emulator key or cached config never
leaks into the next.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import trio

from .cluster import Cluster, open_cluster

__all__ = ["ThreadedCluster", "telethon_patched", "pyrogram_patched"]


class ThreadedCluster:
    """``with ThreadedCluster(**open_cluster_options) as served: served.cluster ...``"""

    def __init__(self, setup: Callable[[Cluster], Any] = lambda c: None, *, timeout: float = 300.0,
                 **options: Any) -> None:
        self._setup = setup
        self._timeout = timeout
        self._options = options
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dcpool-emulated-cluster", daemon=True)
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self.error: BaseException | None = None
        self.cluster: Cluster | None = None
        self.setup_result: Any = None

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # handed to the owning thread on exit
            self.error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        with trio.fail_after(self._timeout):
            async with open_cluster(**self._options) as cluster:
                self.cluster = cluster
                self._token = trio.lowlevel.current_trio_token()
                self._stop = trio.Event()
                self.setup_result = self._setup(cluster)
                self._ready.set()
                await self._stop.wait()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in the cluster's thread and return its result."""
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def __enter__(self) -> ThreadedCluster:
        self._thread.start()
        if not self._ready.wait(self._timeout) or self.cluster is None:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the emulated cluster did not start: {self.error!r}")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._stop is not None and self._thread.is_alive():
            self.call(self._stop.set)
        self._thread.join(self._timeout)
        if self._thread.is_alive():
            raise RuntimeError("the emulated cluster thread did not stop")
        if self.error is not None and exc_info[0] is None:
            raise self.error


@contextlib.contextmanager
def telethon_patched(cluster: Cluster) -> Iterator[Callable[..., Any]]:
    """Telethon's patch points for ``cluster``; yields ``client(session=None, dc_id=1, **kw)``
    that builds a ``TelegramClient`` whose first DC is the cluster's ``dc_id``.

    Applied: the emulator's RSA key (``rsa.add_key(pem, old=False)``) and a reset of the
    class-level config cache (``TelegramClient._config``).  Undone on exit: the key is removed
    (or the one it replaced put back) and the cache restored.
    """
    from telethon import TelegramClient  # type: ignore[import-untyped, unused-ignore]
    from telethon.crypto import rsa as telethon_rsa  # type: ignore[import-untyped, unused-ignore]

    keys = telethon_rsa._server_keys  # the one registry add_key writes to
    before = dict(keys)
    config_before = TelegramClient._config
    telethon_rsa.add_key(cluster.rsa_public_pem(), old=False)
    TelegramClient._config = None

    def client(session: Any = None, dc_id: int = 1, *, api_id: int = 12345,
               api_hash: str = "0123456789abcdef0123456789abcdef", **kwargs: Any) -> Any:
        c = TelegramClient(session, api_id, api_hash, **kwargs)
        if not c.session.auth_key:  # a stored session already knows its DC
            c.session.set_dc(dc_id, *cluster.endpoint(dc_id))
        return c

    try:
        yield client
    finally:
        keys.clear()
        keys.update(before)
        TelegramClient._config = config_before


@contextlib.contextmanager
def pyrogram_patched(cluster: Cluster) -> Iterator[None]:
    """Pyrogram's patch points for ``cluster`` (Pyrogram 2.0, kurigram, pyrofork), undone on exit:

    * the emulator's key in ``pyrogram.crypto.rsa.server_public_keys`` ({signed fingerprint:
      PublicKey(m=n, e=e)}), the table its handshake looks fingerprints up in;
    * ``pyrogram.session.internals.DataCenter``, which maps ``(dc_id, test_mode, ipv6, media)``
      to ``(host, port)``: while patched it answers with the cluster's endpoints.
    """
    from pyrogram.crypto import rsa as pyrogram_rsa
    from pyrogram.session.internals import DataCenter

    key = cluster.rsa_public_key()
    keys = pyrogram_rsa.server_public_keys
    keys_before = dict(keys)
    original_new = DataCenter.__dict__["__new__"]
    keys[key.fingerprint] = pyrogram_rsa.PublicKey(key.n, key.e)

    def new(cls: type, dc_id: int, test_mode: bool, ipv6: bool, media: bool) -> tuple[str, int]:
        return cluster.endpoint(dc_id)

    DataCenter.__new__ = new  # type: ignore[method-assign,assignment]
    try:
        yield None
    finally:
        DataCenter.__new__ = original_new  # type: ignore[method-assign]
        keys.clear()
        keys.update(keys_before)
