"""The pool: one object through which a client talks to every DC.

Layout (dependencies point one way, down):

* :class:`Pool` (this module) -- the public facade: ``invoke``, ``invoke_raw``, downloads,
  sign-in helpers, ``events()``, ``updates()``, ``statistics()``, the config loop.
* :class:`~dcpool.transfers.Download` -- downloads, on the router's public interface.
* :class:`~dcpool.router.Router` -- home DC, migrations, authorization transfers, one
  deadline per call.
* :class:`~dcpool.pool.dc.DcState` -- per-DC key, salt, lanes, authorization mark, counters:
  synchronous decisions, then the caller awaits.
* :class:`~dcpool.net.connection.MtprotoConnection` -- one connection slot (and
  :func:`~dcpool.net.handshake.drive_handshake`, the one handshake driver).

Everything shared by the DCs of one pool (settings, DC table, endpoint health, storage writer,
event and updates streams, the nursery) is in :class:`~dcpool.pool.runtime.PoolRuntime`.
Every task lives in the nursery of ``async with open_pool()``.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import trio

from .. import tl
from .. import login as login_flows
from ..crypto import Rng
from ..crypto.rsa import TELEGRAM_PRODUCTION_KEYS, TELEGRAM_TEST_KEYS, RsaKeysSpec, RsaPublicKey, rsa_keys_from_user
from ..dcs import DcListSpec, DcOption, DcTable, Lane
from ..errors import DcPoolError, LocalProtocolError, Unauthorized
from ..methods import IDEMPOTENT
from ..router import Router
from ..storage import Storage, open_storage
from ..transfers import Download, PartWindows, send_uploaded, upload_file
from ..transfers.upload import Source
from ..transport import TransportKind
from .config import PoolConfig
from .dc import DcRegistry, DcState
from .events import EventBus, EventStream, ReceivedUpdate, UpdatesGap, UpdatesQueue
from .runtime import PoolRuntime
from .statistics import PoolStatistics
from .writer import StorageWriter

__all__ = ["Pool", "open_pool"]

log = logging.getLogger("dcpool.pool")


class _Default:
    """``timeout=`` not given: the pool's ``request_timeout``."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


def _init_prefix(config: PoolConfig, api_id: int) -> bytes:
    # invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X;
    # initConnection#c1cd5ea9 {X:Type} flags:# api_id:int device_model:string ... query:!X = X;
    # Both wrappers end with their query, so the serialized prefix + the body is the call.
    wrapped = tl.api.InvokeWithLayer(
        layer=tl.LAYER,
        query=tl.api.InitConnection(
            api_id=api_id,
            device_model=config.device_model,
            system_version=config.system_version,
            app_version=config.app_version,
            system_lang_code=config.lang_code,
            lang_pack="",
            lang_code=config.lang_code,
            query=tl.Raw(b""),
        ),
    )
    return bytes(wrapped.to_bytes())


class Pool:
    """Talk to every DC through one object.  Create it with :func:`open_pool`."""

    def __init__(self, *, api_id: int, api_hash: str, storage: Storage, test_mode: bool,
                 dc_list: DcListSpec | None, rsa_keys: RsaKeysSpec | None,
                 home_dc: int, config: PoolConfig) -> None:
        self.api_id = api_id
        self.api_hash = api_hash
        self.storage = storage
        self.test_mode = test_mode
        self.config = config
        # one-line forms (PEM text, key lists, {fp: key}; {dc_id: (host, port)}) become the
        # canonical ones here, once, raising ConfigError before anything connects
        keys = (dict(TELEGRAM_TEST_KEYS if test_mode else TELEGRAM_PRODUCTION_KEYS)
                if rsa_keys is None else rsa_keys_from_user(rsa_keys))
        table = DcTable.for_user(dc_list, test_mode=test_mode)
        self._rt = PoolRuntime(
            config=config, test_mode=test_mode, rsa_keys=keys, table=table,
            storage=storage, writer=StorageWriter(storage), events=EventBus(),
            updates=UpdatesQueue(config.updates_buffer), init_prefix=_init_prefix(config, api_id),
        )
        stored_home = storage.get_home_dc()
        home = stored_home if stored_home is not None else home_dc
        if stored_home is None:
            storage.set_home_dc(home)  # (before any task runs: nothing to overlap)
        self._dcs = DcRegistry(self._rt)
        self.router = Router(self._rt, self._dcs, home_dc=home, user_id=storage.get_user_id())
        #: the adaptive parts-in-flight window of each DC (downloads with parallel="auto")
        self.part_windows = PartWindows(minimum=config.download_parts_min,
                                        maximum=max(config.download_parts_min, config.download_parts_max))
        self._config_expires: float | None = None
        #: seconds of validity left when the stored config was restored (converted to a
        #: deadline on trio's clock by the config loop)
        self._config_ttl_left: float | None = None
        #: when the config expires, on trio's clock (timers use trio's clock, which tests may
        #: fake, and never compare Telegram's unix times with a possibly skewed local clock)
        self._config_deadline: float | None = None
        self._restore_config()

    def __repr__(self) -> str:
        return f"<Pool home={self.home_dc} dcs={self._dcs.ids()} test_mode={self.test_mode}>"

    # ------------------------------------------------------------------ views

    @property
    def home_dc(self) -> int:
        return self.router.home_dc

    @property
    def user_id(self) -> int | None:
        """The signed-in user (None: not signed in, or logged out)."""
        return self.router.user_id

    @property
    def login_dc(self) -> int | None:
        return self.router.login_dc

    @property
    def table(self) -> DcTable:
        return self._rt.table

    @property
    def rsa_keys(self) -> dict[int, RsaPublicKey]:
        return self._rt.rsa_keys

    def dc(self, dc_id: int) -> DcState:
        """The state of DC ``dc_id`` (created on first use; UnknownDc for an unknown id)."""
        return self._dcs.get(dc_id)

    def dc_states(self) -> list[DcState]:
        """The DCs used so far (or with a stored key), by id."""
        return self._dcs.all()

    def known_dcs(self) -> list[int]:
        return self._rt.table.dc_ids()

    # ------------------------------------------------------------------ config

    def _restore_config(self) -> None:
        snap = self.storage.get_config()
        if snap is None:
            return
        try:
            config = tl.loads(snap.blob)
            self._rt.table.apply_config(config)
        except (DcPoolError, ValueError) as exc:
            log.warning("ignoring the stored config: %s", exc)
            return
        self._config_expires = snap.expires
        # Time to live left: the TTL the DC gave (its own clock: expires - date) minus the time
        # elapsed here since the fetch (our clock); both differences ignore clock skew.
        ttl = float(snap.expires) - float(getattr(config, "date", snap.fetched_at))
        self._config_ttl_left = ttl - (time.time() - snap.fetched_at)

    async def refresh_config(self) -> Any:
        """Fetch ``help.getConfig`` through the home DC, apply and persist it."""
        config = await self.invoke(tl.api.help.GetConfig())
        changed = self._rt.table.apply_config(config)
        blob, expires, fetched = config.to_bytes(), float(config.expires), time.time()
        self._rt.writer.submit(lambda s: s.set_config(blob, expires, fetched))
        self._config_expires = expires
        # config#cc1a241e ... date:int expires:int ...: the TTL is expires - date (server clock).
        self._config_deadline = trio.current_time() + max(1.0, float(config.expires - config.date))
        self._rt.events.emit("config_refreshed", self.home_dc, expires=config.expires,
                             changed=sorted(changed))
        return config

    async def _config_loop(self) -> None:
        """Keep the config fresh: at start if missing or expired, then when ``expires`` passes
        (with jitter, so a fleet of clients does not stampede), and on updateConfig."""
        if self._config_deadline is None and self._config_ttl_left is not None:
            self._config_deadline = trio.current_time() + self._config_ttl_left
        while True:
            deadline = self._config_deadline
            now = trio.current_time()
            if deadline is None or deadline <= now:
                try:
                    await self.refresh_config()
                    continue
                except (DcPoolError, OSError) as exc:
                    log.warning("config refresh failed: %s", exc)
                    wait = 30.0
            else:
                left = deadline - now
                wait = left + random.uniform(0, min(60.0, left * 0.1 + 1))
            with trio.move_on_after(wait):
                await self._rt.config_refresh.wait()
                self._rt.config_refresh = trio.Event()
                self._config_deadline = None

    # ------------------------------------------------------------------ invoke

    def _timeout(self, timeout: float | None) -> float | None:
        return self.config.request_timeout if timeout is DEFAULT else timeout

    async def invoke(self, request: Any, *, dc_id: int | None = None,
                     timeout: float | None = DEFAULT, lane: Lane | str = Lane.MAIN) -> Any:
        """Send a TL function to the home DC (or ``dc_id``) and return its parsed result.

        Migrations (``*_MIGRATE_X``) are followed; RPC errors raise :class:`RpcError`
        subclasses.  ``timeout`` (seconds, default ``request_timeout``; None: no limit) is the
        deadline of the *whole* call: migration hops, authorization transfers, reconnects and
        retries included; RequestTimeout says which stage was running.
        """
        if not getattr(type(request), "IS_FUNCTION", False):
            raise LocalProtocolError(f"invoke wants a TL function, got {type(request).__name__}")
        name = type(request).QUALNAME
        body, _ = await self.router.call(name, request.to_bytes(), dc_id=dc_id, lane=Lane(lane),
                                         timeout=self._timeout(timeout))
        return type(request).read_result(body)

    async def invoke_raw(self, body: bytes, *, dc_id: int | None = None,
                         timeout: float | None = DEFAULT, name: str | None = None,
                         idempotent: bool = False, lane: Lane | str = Lane.MAIN) -> bytes:
        """Like :meth:`invoke` for a pre-serialized request; returns the raw result bytes."""
        if name is None:
            try:
                name = tl.loads(body).QUALNAME
            except DcPoolError:
                name = f"0x{int.from_bytes(body[:4], 'little'):08x}"
        assert name is not None
        result, _ = await self.router.call(name, bytes(body), dc_id=dc_id, lane=Lane(lane),
                                           timeout=self._timeout(timeout),
                                           idempotent=idempotent or name in IDEMPOTENT)
        return bytes(result)

    # ------------------------------------------------------------------ updates & events

    def updates(self) -> AsyncIterator[ReceivedUpdate | UpdatesGap]:
        """Server-pushed updates in arrival order; an :class:`UpdatesGap` marks lost ones."""
        return self._rt.updates.iterate()

    def events(self, buffer: int = 1000) -> EventStream:
        """Lifecycle events, two ways::

            async with pool.events() as events:     # subscribed for the block
                async for event in events: ...
            async for event in pool.events(): ...   # subscribed from the first iteration

        A subscriber that falls ``buffer`` events behind loses the newest ones rather than
        stalling the pool.  The stream ends when the pool closes.
        """
        return EventStream(self._rt.events, buffer)

    # ------------------------------------------------------------------ state

    def set_home_dc(self, dc_id: int) -> None:
        self.router.set_home_dc(dc_id)

    def set_user(self, user_id: int | None) -> None:
        """Signed in as ``user_id`` on the home DC (None: logged out).  A different user
        invalidates every authorization mark."""
        self.router.set_user(user_id)

    async def flush_storage(self) -> None:
        """Return once every storage write queued so far is on disk (writes happen off the
        event loop, see :mod:`dcpool.pool.writer`)."""
        await self._rt.writer.flush()

    def statistics(self) -> PoolStatistics:
        router = self.router
        dcs = {s.dc_id: s.statistics(signed_in_here=router.signed_in_here(s.dc_id))
               for s in self._dcs.all()}
        return PoolStatistics(
            home_dc=router.home_dc,
            dcs=dcs,
            in_flight=sum(d.in_flight for d in dcs.values()),
            tasks=self._rt.tasks,
            migrations=router.migrations,
            transfers=router.transfers,
            transfers_started=router.transfers_started,
            transfers_failed=router.transfers_failed,
            transfer_flood_waits=router.transfer_flood_waits,
            flood_waits=router.flood_waits,
            flood_wait_seconds=router.flood_wait_seconds,
            server_retries=router.server_retries,
            reinits=router.reinits,
            logouts=router.logouts,
            updates_dropped=self._rt.updates_dropped,
            event_subscribers=self._rt.events.subscribers,
            storage_backlog=self._rt.writer.backlog,
        )

    def drop_connections(self, dc_id: int | None = None) -> None:
        """Break the TCP connections of one DC (or all): they reconnect (for tests)."""
        for state in self._dcs.all():
            if dc_id is None or state.dc_id == dc_id:
                state.kill_connections()

    # ------------------------------------------------------------------ downloads

    def download(self, location: Any, *, dc_id: int | None = None, size: int | None = None,
                 part_size: int = 512 * 1024, parallel: int | Literal["auto"] = 4, offset: int = 0,
                 timeout: float | None = DEFAULT, cdn_supported: bool = True) -> Download:
        """A file's chunks, in order: ``async with pool.download(...) as chunks: async for
        chunk in chunks`` (reads ahead; leaving the block cancels every part) or a bare
        ``async for`` (see :mod:`dcpool.transfers.download`).  ``timeout`` bounds each part.
        ``parallel="auto"``: the DC's adaptive window sets the parts in flight.
        ``cdn_supported``: follow ``upload.fileCdnRedirect`` (decrypted, every chunk checked
        against its SHA-256; see :mod:`dcpool.transfers.cdn`)."""
        return Download(self.router, location, dc_id=dc_id, size=size, part_size=part_size,
                        parallel=parallel, offset=offset, timeout=self._timeout(timeout),
                        windows=self.part_windows, cdn_supported=cdn_supported)

    async def download_to(self, location: Any, path: str | os.PathLike[str], *,
                          dc_id: int | None = None, size: int | None = None,
                          progress: Callable[[int, int | None], None] | None = None,
                          part_size: int = 512 * 1024, parallel: int | Literal["auto"] = 4) -> int:
        """Download to a file (written on a worker thread, never on the event loop);
        ``progress(done_bytes, total)`` after each chunk.  Returns the bytes written."""
        done = 0
        async with await trio.open_file(path, "wb") as f:
            async with self.download(location, dc_id=dc_id, size=size, part_size=part_size,
                                     parallel=parallel) as chunks:
                async for chunk in chunks:
                    await f.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, size)
        return done

    # ------------------------------------------------------------------ uploads

    async def upload(self, source: Source, *, size: int | None = None, parallel: int = 4,
                     part_size: int = 512 * 1024,
                     progress: Callable[[int, int], None] | None = None,
                     file_name: str | None = None, timeout: float | None = DEFAULT) -> Any:
        """Upload ``source`` (bytes, a path, or an async iterable of chunks with ``size``) to
        the home DC and return the ``inputFile`` (with its MD5; up to 10 MiB) or
        ``inputFileBig`` to use in ``messages.uploadMedia`` / ``sendMedia`` (best through
        :meth:`send_uploaded`).  At most ``parallel`` parts in memory and in flight;
        ``progress(sent_bytes, total_bytes)`` per saved part; ``timeout`` bounds each part.
        A 0-byte source raises :class:`~dcpool.errors.EmptyUpload` before anything is sent
        (see :mod:`dcpool.transfers.upload`)."""
        return await upload_file(self.router, source, size=size, parallel=parallel,
                                 part_size=part_size, progress=progress, file_name=file_name,
                                 timeout=self._timeout(timeout), rng=self.config.rng)

    async def send_uploaded(self, request: Any, source: Source, *, part_size: int = 512 * 1024,
                            timeout: float | None = DEFAULT) -> Any:
        """Invoke ``request`` (which uses a file from :meth:`upload`) on the home DC; when the
        DC answers ``FILE_PART_X_MISSING``, re-send part X from ``source`` (bytes or a path,
        with the ``part_size`` of the upload) and try again."""
        return await send_uploaded(self.router, request, source, part_size=part_size,
                                   timeout=self._timeout(timeout))

    # ------------------------------------------------------------------ sign-in helpers

    async def send_code(self, phone: str) -> Any:
        """auth.sendCode, following PHONE/NETWORK_MIGRATE (the home DC moves)."""
        return await self.invoke(
            tl.api.auth.SendCode(
                phone_number=phone, api_id=self.api_id, api_hash=self.api_hash,
                settings=tl.api.CodeSettings(),
            )
        )

    async def sign_in(self, phone: str, code: str | Callable[[Any], Any],
                      phone_code_hash: str | None = None, *, password: Any = None,
                      first_name: str = "dcpool", last_name: str = "") -> Any:
        """Sign in with a login code (a string, or a callback given the ``auth.sentCode``),
        then the cloud password if the account has one (a string or a callback given its hint;
        SRP off the event loop); signs a new number up.  Returns the user.

        A thin helper over :mod:`dcpool.login`: the pool notices the login from the answer
        itself, whoever sends ``auth.signIn``, ``auth.checkPassword``, ... through ``invoke`` or
        ``invoke_raw``.  With ``phone_code_hash`` (the caller sent the code already) only
        ``auth.signIn`` (and ``auth.signUp``) are sent."""
        if phone_code_hash is None:
            return await login_flows.sign_in(self, phone, code, password,
                                             first_name=first_name, last_name=last_name)
        if not isinstance(code, str):
            raise TypeError("with phone_code_hash, code must be the code itself")
        auth = await self.invoke(
            tl.api.auth.SignIn(phone_number=phone, phone_code_hash=phone_code_hash, phone_code=code)
        )
        if type(auth).QUALNAME == "auth.authorizationSignUpRequired":
            auth = await self.invoke(
                tl.api.auth.SignUp(phone_number=phone, phone_code_hash=phone_code_hash,
                                   first_name=first_name, last_name=last_name)
            )
        return auth.user

    async def check_password(self, password: Any) -> Any:
        """Finish a login that answered 401 ``SESSION_PASSWORD_NEEDED`` (see
        :func:`dcpool.login.check_password`); returns the user."""
        return await login_flows.check_password(self, password)

    def qr_login(self, *, except_ids: Sequence[int] = (), password: Any = None) -> Any:
        """``async for url in pool.qr_login():`` show each ``tg://login?token=...`` URL as a QR
        code; it is refreshed on expiry, follows ``loginTokenMigrateTo``, and the loop ends with
        the pool signed in (:class:`dcpool.login.QrLogin`)."""
        return login_flows.qr_login(self, except_ids=except_ids, password=password)

    async def sign_in_bot(self, token: str) -> Any:
        """Sign in as a bot with its ``"<bot_id>:<secret>"`` token (follows USER_MIGRATE)."""
        return await login_flows.sign_in_bot(self, token)

    @property
    def logged_out(self) -> str | None:
        """Why the login was lost or logged out, until the next login (else None)."""
        return self.router.logged_out

    async def log_out(self) -> None:
        """``auth.logOut``; the pool is logged out whatever the answer (a 401 means the login
        was gone already, as tdlib treats it)."""
        try:
            await self.invoke(tl.api.auth.LogOut())
        except Unauthorized:
            pass
        finally:
            if self.router.logged_out is None:
                self.router.log_out("auth.logOut")

    # ------------------------------------------------------------------ life (open_pool)

    @asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        """The pool's life (used by :func:`open_pool` only): every task in one nursery; at the
        end, the streams end, the connections close, and queued storage writes are written."""
        rt = self._rt
        try:
            async with trio.open_nursery() as nursery:
                rt.nursery = nursery
                nursery.start_soon(rt.writer.run)
                if self.config.fetch_config:
                    nursery.start_soon(self._config_loop)
                try:
                    yield
                finally:
                    rt.closing = True
                    rt.updates.close()
                    rt.events.close()  # event streams end with the pool
                    for state in self._dcs.all():
                        state.close_connections()
                    nursery.cancel_scope.cancel()
        finally:
            rt.nursery = None
            await rt.writer.close()


@asynccontextmanager
async def open_pool(
    *,
    api_id: int,
    api_hash: str,
    storage: Storage | str | os.PathLike[str] | None = None,
    test_mode: bool = False,
    dc_list: DcListSpec | None = None,
    rsa_keys: RsaKeysSpec | None = None,
    home_dc: int = 2,
    config: PoolConfig | None = None,
    transport: TransportKind = TransportKind.ABRIDGED,
    obfuscated: bool = False,
    download_connections: int = 4,
    max_connections_per_dc: int | None = None,
    download_parts_min: int = 2,
    download_parts_max: int = 32,
    idle_timeout: float = 60.0,
    ping_interval: float = 60.0,
    connect_timeout: float = 10.0,
    connect_attempts: int = 3,
    handshake_timeout: float = 30.0,
    request_timeout: float | None = 60.0,
    prefer_ipv6: bool | None = None,
    allow_ipv6: bool = True,
    max_hops: int = 5,
    flood_sleep_threshold: float = 60.0,
    updates_buffer: int = 1000,
    device_model: str = "dcpool",
    system_version: str = "Python",
    app_version: str = "0.1.0",
    lang_code: str = "en",
    rng: Rng = os.urandom,
    fetch_config: bool = True,
    pfs: bool = False,
    temp_key_lifetime: int = 24 * 3600,
    decrypt_in_thread: int | None = None,
) -> AsyncIterator[Pool]:
    """Open a pool; every connection and background task ends with the block.

    ``storage``: a path (SQLite), a Storage object, or None (memory).  ``dc_list`` /
    ``rsa_keys`` replace the built-in production or test DC list and Telegram's keys (this is
    how the emulator plugs in: ``cluster.dc_list()``, ``cluster.rsa_keys()``).  The other
    keyword arguments are the fields of :class:`~dcpool.pool.config.PoolConfig` (documented
    there); ``config=`` gives them all at once (then none may be given separately).  An unknown
    keyword is a TypeError.
    """
    given = dict(
        transport=transport, obfuscated=obfuscated, download_connections=download_connections,
        max_connections_per_dc=max_connections_per_dc, download_parts_min=download_parts_min,
        download_parts_max=download_parts_max,
        idle_timeout=idle_timeout, ping_interval=ping_interval, connect_timeout=connect_timeout,
        connect_attempts=connect_attempts, handshake_timeout=handshake_timeout,
        request_timeout=request_timeout, prefer_ipv6=prefer_ipv6, allow_ipv6=allow_ipv6,
        max_hops=max_hops, flood_sleep_threshold=flood_sleep_threshold, updates_buffer=updates_buffer,
        device_model=device_model, system_version=system_version, app_version=app_version,
        lang_code=lang_code, rng=rng, fetch_config=fetch_config, pfs=pfs,
        temp_key_lifetime=temp_key_lifetime, decrypt_in_thread=decrypt_in_thread,
    )
    defaults = PoolConfig()
    if config is None:
        config = PoolConfig(**given)  # type: ignore[arg-type]
    else:
        changed = [k for k, v in given.items() if v != getattr(defaults, k)]
        if changed:
            raise TypeError(f"open_pool: give {', '.join(changed)} in config=, not separately")
    mode = "test" if test_mode else "prod"
    store = open_storage(storage, mode=mode)
    owns_storage = storage is None or isinstance(storage, (str, os.PathLike))
    try:
        pool = Pool(api_id=api_id, api_hash=api_hash, storage=store, test_mode=test_mode,
                    dc_list=dc_list, rsa_keys=rsa_keys, home_dc=home_dc, config=config)
        try:
            async with pool._running():
                yield pool
        except BaseExceptionGroup as group:
            # Users see one exception, not a group, from a public context manager.
            single = _single_exception(group)
            if single is None:
                raise
            raise single from None
    finally:
        if owns_storage:
            store.close()


def _single_exception(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one meaningful exception inside a nursery's group (Cancelled ones aside), or None."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for sub in exc.exceptions:
                walk(sub)
        elif not isinstance(exc, trio.Cancelled):
            leaves.append(exc)

    walk(group)
    return leaves[0] if len(leaves) == 1 else None
