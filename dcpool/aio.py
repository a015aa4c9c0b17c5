"""dcpool for asyncio programs: the pool runs on a trio event loop in a dedicated thread.

::

    import asyncio, dcpool.aio
    from dcpool import tl

    async def main():
        async with dcpool.aio.open_pool(api_id=..., api_hash="...", storage="me.session") as pool:
            config = await pool.invoke(tl.api.help.GetConfig())
            async for chunk in pool.download(location, dc_id=4, size=size):
                ...
            async for event in pool.events(): ...

    asyncio.run(main())

Theory of operation
-------------------
``open_pool`` starts one thread running ``trio.run``; inside it, :func:`dcpool.open_pool` and a
nursery for the calls.  Every call from asyncio becomes one trio task in that nursery, started
with :meth:`trio.lowlevel.TrioToken.run_sync_soon` (never blocking the asyncio loop), in its own
cancel scope; its outcome comes back with ``loop.call_soon_threadsafe`` into an asyncio future.

* **asyncio -> trio cancellation**: when the awaiting asyncio task is cancelled, the trio
  task's scope is cancelled and the asyncio side waits (shielded) until the trio side has
  finished its cleanup, then raises ``CancelledError``.  Nothing keeps running behind it.
* **trio -> asyncio cancellation**: a trio task cancelled from the trio side (the pool shutting
  down) ends the asyncio await with ``CancelledError``; calls made after the pool closed raise
  :class:`~dcpool.errors.PoolClosed`.
* **async iterators** (``download``, ``updates``, ``events``) are owned by one trio task each,
  which pulls one item per ``__anext__`` from asyncio (no unbounded buffering: the memory bound
  of ``download`` holds); closing the asyncio iterator (``aclose``, ``break`` inside
  ``async with``, cancellation) cancels that task and closes the trio iterator in its own task.
* **shutdown**: leaving the ``async with`` closes every open iterator, cancels every call,
  closes the pool (its own clean shutdown), ends ``trio.run`` and joins the thread; an error
  of the trio side (e.g. the pool could not open) is raised in asyncio.

Synchronous :meth:`AioPool.statistics` waits for the trio thread for one synchronous call
(microseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

from .errors import LocalProtocolError, PoolClosed

__all__ = ["open_pool", "AioPool", "AioIterator"]


class _Handle:
    """The trio side of one call: its cancel scope, and whether asyncio cancelled it first."""

    def __init__(self) -> None:
        self.scope: trio.CancelScope | None = None
        self.cancelled = False

    def cancel(self) -> None:  # runs in the trio thread
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()


def _settle(fut: asyncio.Future, ok: bool, value: Any) -> None:  # runs in the asyncio thread
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    elif isinstance(value, asyncio.CancelledError):
        fut.cancel()
    else:
        fut.set_exception(value)


class _Runner:
    """The trio thread: owns the pool and a nursery for the calls asyncio makes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool_factory: Callable[[], Any]) -> None:
        self.loop = loop
        self._pool_factory = pool_factory
        self.pool: Any = None
        self.token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self.closed = False
        self.started: asyncio.Future = loop.create_future()
        self.finished: asyncio.Future = loop.create_future()
        self.thread = threading.Thread(target=self._thread_main, name="dcpool-trio", daemon=True)

    # ---------------------------------------------------------------- trio thread

    def _post(self, fut: asyncio.Future, ok: bool, value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(_settle, fut, ok, value)
        except RuntimeError:  # the asyncio loop is gone: nobody is waiting any more
            pass

    def _thread_main(self) -> None:
        error: BaseException | None = None
        try:
            trio.run(self._trio_main)
        except BaseException as exc:
            error = exc
        self.closed = True
        self._post(self.started, False, error or PoolClosed("the pool closed before it opened"))
        self._post(self.finished, error is None, error)

    async def _trio_main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with self._pool_factory() as pool:
            self.pool = pool
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._post(self.started, True, None)
                await self._stop.wait()
                self.closed = True
                nursery.cancel_scope.cancel()  # every call and iterator still running
            self._nursery = None

    def _start_call(self, fn: Callable[[], Awaitable[Any]], fut: asyncio.Future, handle: _Handle) -> None:
        # A callback of run_sync_soon must never raise (it would crash trio.run): every
        # failure goes to the asyncio future instead.
        if self._nursery is None or self.closed:
            self._post(fut, False, PoolClosed("the pool is closed"))
            return
        try:
            self._nursery.start_soon(self._run_call, fn, fut, handle)
        except RuntimeError:  # the nursery is closing
            self._post(fut, False, PoolClosed("the pool is closed"))

    async def _run_call(self, fn: Callable[[], Awaitable[Any]], fut: asyncio.Future, handle: _Handle) -> None:
        with trio.CancelScope() as scope:
            handle.scope = scope
            if handle.cancelled:
                scope.cancel()
            try:
                result = await fn()
            except trio.Cancelled:
                self._post(fut, False, asyncio.CancelledError())
                raise
            except BaseException as exc:  # handed to asyncio, where it is raised
                self._post(fut, False, exc)
            else:
                self._post(fut, True, result)
        if scope.cancelled_caught:
            self._post(fut, False, asyncio.CancelledError())

    def request_stop(self) -> None:  # runs in the trio thread
        self.closed = True
        if self._stop is not None:
            self._stop.set()

    # ---------------------------------------------------------------- asyncio thread

    async def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``await fn()`` in the trio thread; see the module docstring for cancellation."""
        if self.closed or self.token is None:
            raise PoolClosed("the pool is closed")
        fut = self.loop.create_future()
        handle = _Handle()
        try:
            self.token.run_sync_soon(self._start_call, fn, fut, handle)
        except trio.RunFinishedError:
            raise PoolClosed("the pool is closed") from None
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            if fut.done():
                raise
            with contextlib.suppress(trio.RunFinishedError):
                self.token.run_sync_soon(handle.cancel)
            await _wait_uncancellable(fut)
            raise

    def call_sync(self, fn: Callable[[], Any]) -> Any:
        if self.closed or self.token is None:
            raise PoolClosed("the pool is closed")
        try:
            return trio.from_thread.run_sync(fn, trio_token=self.token)
        except trio.RunFinishedError:
            raise PoolClosed("the pool is closed") from None


async def _wait_uncancellable(fut: asyncio.Future) -> None:
    """Wait for ``fut`` to be settled even if we are cancelled again meanwhile (the trio side
    is already cancelled: it settles promptly); its outcome is not ours to report."""
    while not fut.done():
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            continue
        except BaseException:
            return
    if not fut.cancelled():
        fut.exception()  # looked at: the caller reports it, or it was reported elsewhere


_END = object()


class AioIterator:
    """An async iterator of the trio pool, for asyncio (``download``, ``updates``, ``events``).

    ``async for x in it`` or ``async with it: async for x in it``; :meth:`aclose` stops it.
    Entering it with ``async with`` starts the trio side at once (so ``events()`` is
    subscribed for the whole block).
    """

    def __init__(self, runner: _Runner, open_source: Callable[[], Any], *, enter: bool,
                 on_close: Callable[[AioIterator], None] = lambda it: None) -> None:
        self._runner = runner
        self._on_close = on_close
        self._open_source = open_source
        self._enter = enter  # the source is an async context manager (events())
        self._requests: trio.MemorySendChannel | None = None
        self._task: asyncio.Future | None = None
        self._done = False

    async def _ensure_started(self) -> None:
        if self._task is not None or self._done:
            return
        # unbounded: requests come one per __anext__, and run_sync_soon must not block or fail
        send, receive = trio.open_memory_channel[Any](math.inf)
        self._requests = send
        ready = self._runner.loop.create_future()
        self._task = asyncio.ensure_future(self._runner.call(lambda: self._serve(receive, ready)))
        self._task.add_done_callback(lambda t: t.cancelled() or t.exception())  # no "never retrieved"
        await asyncio.wait([ready, self._task], return_when=asyncio.FIRST_COMPLETED)
        if self._task.done() and not ready.done():
            self._done = True
            self._task.result()  # raises the trio side's error

    async def _serve(self, requests: trio.MemoryReceiveChannel, ready: asyncio.Future) -> None:
        """The trio task that owns the iteration: one item per request from asyncio."""
        runner = self._runner
        source = self._open_source()
        async with contextlib.AsyncExitStack() as stack:
            if self._enter:
                iterator = await stack.enter_async_context(source)
            else:
                iterator = source.__aiter__()
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    stack.push_async_callback(aclose)
            runner._post(ready, True, None)
            async for fut in requests:
                try:
                    item = await iterator.__anext__()
                except StopAsyncIteration:
                    runner._post(fut, True, _END)
                    return
                except trio.Cancelled:
                    runner._post(fut, False, asyncio.CancelledError())
                    raise
                except BaseException as exc:
                    runner._post(fut, False, exc)
                    return
                runner._post(fut, True, item)

    def _submit(self, fut: asyncio.Future) -> None:  # runs in the trio thread; never raises
        try:
            self._requests.send_nowait(fut)  # type: ignore[union-attr]
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._runner._post(fut, True, _END)

    def __aiter__(self) -> AioIterator:
        return self

    async def __anext__(self) -> Any:
        await self._ensure_started()
        if self._done or self._requests is None or self._task is None:
            raise StopAsyncIteration
        fut = self._runner.loop.create_future()
        runner = self._runner
        try:
            runner.token.run_sync_soon(self._submit, fut)  # type: ignore[union-attr]
        except trio.RunFinishedError:
            self._done = True
            raise PoolClosed("the pool is closed") from None
        try:
            await asyncio.wait([fut, self._task], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self.aclose()
            raise
        if not fut.done() or fut.cancelled():  # the trio task ended without an item
            closed = self._done  # by aclose (or the pool closing): the iteration simply ends
            self._done = True
            if closed:
                raise StopAsyncIteration
            if fut.cancelled() or self._task.cancelled():  # cancelled by the trio side
                raise asyncio.CancelledError()
            if self._task.done():
                self._task.result()
            raise StopAsyncIteration
        try:
            item = fut.result()
        except BaseException:
            await self.aclose()
            raise
        if item is _END:
            await self.aclose()
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        """Stop the iteration and wait for the trio side to close its iterator."""
        self._done = True
        self._on_close(self)
        task = self._task
        if task is None or task.done():
            return
        task.cancel()  # cancels the trio task (AioPool.call), which waits for its cleanup
        await _wait_uncancellable(task)

    async def __aenter__(self) -> AioIterator:
        await self._ensure_started()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class AioPool:
    """The asyncio face of a :class:`dcpool.Pool` (same method names, awaited from asyncio)."""

    def __init__(self, runner: _Runner) -> None:
        self._runner = runner
        self._iterators: set[AioIterator] = set()

    @property
    def pool(self) -> Any:
        """The trio pool itself: only for code running in its thread."""
        return self._runner.pool

    async def invoke(self, request: Any, **kwargs: Any) -> Any:
        return await self._runner.call(lambda: self._runner.pool.invoke(request, **kwargs))

    async def invoke_raw(self, body: bytes, **kwargs: Any) -> bytes:
        return await self._runner.call(lambda: self._runner.pool.invoke_raw(body, **kwargs))

    async def download_to(self, location: Any, path: Any, **kwargs: Any) -> int:
        progress = kwargs.pop("progress", None)
        if progress is not None:
            loop = self._runner.loop

            def relay(done: int, total: int | None) -> None:  # progress runs in asyncio's thread
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(progress, done, total)

            kwargs["progress"] = relay
        return await self._runner.call(lambda: self._runner.pool.download_to(location, path, **kwargs))

    async def upload(self, *args: Any, **kwargs: Any) -> Any:
        upload = getattr(self._runner.pool, "upload", None)
        if upload is None:
            raise LocalProtocolError("this dcpool version has no upload")
        return await self._runner.call(lambda: upload(*args, **kwargs))

    async def send_code(self, phone: str) -> Any:
        return await self._runner.call(lambda: self._runner.pool.send_code(phone))

    async def sign_in(self, phone: str, code: str, phone_code_hash: str | None = None, **kwargs: Any) -> Any:
        return await self._runner.call(lambda: self._runner.pool.sign_in(phone, code, phone_code_hash, **kwargs))

    async def log_out(self) -> None:
        await self._runner.call(lambda: self._runner.pool.log_out())

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``await fn(pool, *args)`` in the trio thread (for what this facade does not wrap)."""
        return await self._runner.call(lambda: fn(self._runner.pool, *args))

    def _iterator(self, open_source: Callable[[], Any], *, enter: bool = False) -> AioIterator:
        if self._runner.closed:
            raise PoolClosed("the pool is closed")
        it = AioIterator(self._runner, open_source, enter=enter, on_close=self._iterators.discard)
        self._iterators.add(it)
        return it

    def download(self, location: Any, **kwargs: Any) -> AioIterator:
        return self._iterator(lambda: self._runner.pool.download(location, **kwargs))

    def updates(self) -> AioIterator:
        return self._iterator(lambda: self._runner.pool.updates())

    def events(self, buffer: int = 1000) -> AioIterator:
        return self._iterator(lambda: self._runner.pool.events(buffer), enter=True)

    def statistics(self) -> Any:
        return self._runner.call_sync(lambda: self._runner.pool.statistics())

    async def _close_iterators(self) -> None:
        for it in list(self._iterators):
            await it.aclose()
        self._iterators.clear()


@contextlib.asynccontextmanager
async def open_pool(**kwargs: Any) -> AsyncIterator[AioPool]:
    """:func:`dcpool.open_pool` for asyncio (same arguments); see the module docstring."""
    from . import open_pool as trio_open_pool

    loop = asyncio.get_running_loop()
    runner = _Runner(loop, lambda: trio_open_pool(**kwargs))
    runner.thread.start()
    try:
        await _wait_uncancellable_result(runner.started)
    except BaseException:
        await _wait_uncancellable(runner.finished)
        runner.thread.join()
        raise
    aio = AioPool(runner)
    try:
        yield aio
    finally:
        try:
            await _shielded(aio._close_iterators())
        finally:
            with contextlib.suppress(trio.RunFinishedError):
                runner.token.run_sync_soon(runner.request_stop)  # type: ignore[union-attr]
            await _wait_uncancellable(runner.finished)
            runner.thread.join()
    if runner.finished.done() and not runner.finished.cancelled() and runner.finished.exception():
        raise runner.finished.exception()  # type: ignore[misc]


async def _wait_uncancellable_result(fut: asyncio.Future) -> Any:
    """Like awaiting ``fut``, but a cancellation meanwhile is re-raised only once it settled."""
    cancelled = False
    while not fut.done():
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            cancelled = True
        except BaseException:
            break
    if cancelled:
        raise asyncio.CancelledError()
    return fut.result()


async def _shielded(coro: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(coro)
    await _wait_uncancellable(task)
    if not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
