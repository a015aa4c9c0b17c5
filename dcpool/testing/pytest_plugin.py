"""The dcpool pytest plugin (registered through the ``pytest11`` entry point: installing
``dcpool[test]`` is enough, no conftest needed).

Fixtures
--------
``dcpool_cluster`` (trio)
    An emulated multi-DC cluster for the test (:func:`dcpool.testing.open_cluster`), on
    loopback ports chosen by the OS, closed after the test.  Options come from the marker
    ``@pytest.mark.dcpool_cluster(test_mode=True, dc_ids=(1, 2, 3), ...)``.
``dcpool_pool`` (trio)
    A :func:`dcpool.open_pool` on that cluster, signed in as a test user (the reserved number
    ``9996621234`` of DC 2 unless ``@pytest.mark.dcpool_pool(phone="9996641234", ...)``; other
    keyword arguments go to ``open_pool``).
``dcpool_cluster_thread`` (any test: sync or asyncio)
    A cluster served by its own trio thread (:class:`~dcpool.testing.threaded.ThreadedCluster`):
    ``.cluster`` for read-only values (endpoints, keys), ``.call(fn, *args)`` to act on it.
    Same marker as ``dcpool_cluster``.
``dcpool_telethon`` / ``dcpool_pyrogram``
    Point Telethon / Pyrogram at ``dcpool_cluster_thread`` (their patch points: the emulator's
    RSA key, the DC addresses, Telethon's config cache), undone after the test; each yields a
    factory of clients.

Async tests that use ``dcpool_cluster`` or ``dcpool_pool`` are run by pytest-trio (the plugin
marks them ``@pytest.mark.trio`` if they are not already).

Example (copy it into ``test_example.py``; it needs nothing else)::

    from dcpool import tl

    async def test_download_from_another_dc(dcpool_cluster, dcpool_pool):
        stored = dcpool_cluster.add_file(4, size=300_000)
        location = tl.api.InputDocumentFileLocation(
            id=stored.id, access_hash=stored.access_hash,
            file_reference=stored.file_reference, thumb_size="")
        data = b"".join([c async for c in dcpool_pool.download(location, dc_id=4, size=stored.size)])
        assert len(data) == stored.size
        assert dcpool_cluster.statistics()[2].exports == 1

    def test_telethon_signs_in(dcpool_telethon):
        import asyncio

        async def main():
            client = dcpool_telethon(dc_id=2)
            await client.connect()
            await client.send_code_request("9996621234")
            me = await client.sign_in("9996621234", code="22222")
            await client.disconnect()
            return me

        assert asyncio.run(main()).phone == "9996621234"
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

API_ID = 12345
API_HASH = "0123456789abcdef0123456789abcdef"
DEFAULT_PHONE = "9996621234"

_TRIO_FIXTURES = frozenset({"dcpool_cluster", "dcpool_pool"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dcpool_cluster(**options): options of the emulated cluster "
                   "(dcpool.testing.open_cluster) for dcpool_cluster / dcpool_cluster_thread")
    config.addinivalue_line(
        "markers", "dcpool_pool(phone=..., **options): the test user's phone and open_pool "
                   "options for dcpool_pool")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fn = getattr(item, "obj", None)
        if (inspect.iscoroutinefunction(fn) and _TRIO_FIXTURES & set(getattr(item, "fixturenames", ()))
                and item.get_closest_marker("trio") is None):
            item.add_marker(pytest.mark.trio)


def _options(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(name))):  # closest wins
        options.update(marker.kwargs)
    return options


@pytest.fixture
async def dcpool_cluster(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    from . import open_cluster

    async with open_cluster(**_options(request, "dcpool_cluster")) as cluster:
        yield cluster


@pytest.fixture
async def dcpool_pool(dcpool_cluster: Any, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    from .. import open_pool

    options = _options(request, "dcpool_pool")
    phone = str(options.pop("phone", DEFAULT_PHONE))
    code = options.pop("code", phone[5] * 5)  # 99966XYYYY: the code is X five times
    options.setdefault("api_id", API_ID)
    options.setdefault("api_hash", API_HASH)
    async with open_pool(dc_list=dcpool_cluster.dc_list(), rsa_keys=dcpool_cluster.rsa_keys(),
                         test_mode=dcpool_cluster.test_mode, **options) as pool:
        await pool.sign_in(phone, code)
        yield pool


@pytest.fixture
def dcpool_cluster_thread(request: pytest.FixtureRequest) -> Iterator[Any]:
    from .threaded import ThreadedCluster

    with ThreadedCluster(**_options(request, "dcpool_cluster")) as served:
        yield served


@pytest.fixture
def dcpool_telethon(dcpool_cluster_thread: Any) -> Iterator[Any]:
    """``client = dcpool_telethon(session=None, dc_id=1, **TelegramClient_kwargs)``."""
    pytest.importorskip("telethon")
    from .threaded import telethon_patched

    with telethon_patched(dcpool_cluster_thread.cluster) as make_client:
        yield make_client


@pytest.fixture
def dcpool_pyrogram(dcpool_cluster_thread: Any) -> Iterator[Any]:
    """``app = dcpool_pyrogram(name="test", **Client_kwargs)``: an in-memory Pyrogram client
    whose DCs are the cluster's (the first one used is the session's, DC 2 by default)."""
    import asyncio

    async def load() -> Any:  # Pyrogram needs an event loop while it is imported
        return pytest.importorskip("pyrogram")

    try:
        asyncio.get_running_loop()
        pyrogram = pytest.importorskip("pyrogram")
    except RuntimeError:
        pyrogram = asyncio.run(load())
    from .threaded import pyrogram_patched

    def make_client(name: str = "dcpool-test", **kwargs: Any) -> Any:
        kwargs.setdefault("api_id", API_ID)
        kwargs.setdefault("api_hash", API_HASH)
        kwargs.setdefault("in_memory", True)
        kwargs.setdefault("test_mode", dcpool_cluster_thread.cluster.test_mode)
        return pyrogram.Client(name, **kwargs)

    with pyrogram_patched(dcpool_cluster_thread.cluster):
        yield make_client
