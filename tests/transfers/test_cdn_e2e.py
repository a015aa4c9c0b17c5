"""pool.download through a CDN DC over loopback sockets (issue 15): the redirect is followed with
the CDN's own RSA key (help.getCdnConfig) and no authorization transfer; every chunk is
decrypted and hash-checked (a corrupted chunk is a typed error and never yielded); a reupload
is asked when the CDN lacks the file; a revoked token falls back to the master DC."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

import dcpool
from dcpool.errors import CdnHashMismatch
from dcpool.testing import Cluster, StoredFile, open_cluster
from dcpool.testing import uploads as U

pytestmark = pytest.mark.e2e

KiB = 1024
PHONE, CODE = "9996621234", "22222"
TIMEOUT = 60
CDN = 203


@pytest.fixture
async def cdn_cluster() -> AsyncIterator[Cluster]:
    async with open_cluster(cdn_dcs=[CDN]) as c:
        yield c


def pool_args(cluster: Cluster, **kw):
    return dict(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(), **kw)


async def collect(pool, f: StoredFile, out: list[bytes], **kw) -> bytes:
    async with pool.download(f.input_location(), dc_id=f.dc_id, size=f.size, **kw) as chunks:
        async for chunk in chunks:
            out.append(chunk)
    return b"".join(out)


@pytest.mark.parametrize("part_size", [64 * KiB, 512 * KiB])
async def test_cdn_download_round_trip(cdn_cluster: Cluster, part_size: int) -> None:
    cluster = cdn_cluster
    f = cluster.add_file(4, size=3 * 1024 * KiB + 12345)
    cluster.serve_from_cdn(f.id)
    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            assert await collect(pool, f, [], part_size=part_size, parallel=4) == f.data
            # a second download reuses the CDN key (no second getCdnConfig, no new handshake)
            assert await collect(pool, f, [], part_size=part_size) == f.data
    s = cluster.statistics()
    assert s[CDN].bytes_served >= 2 * f.size  # (whole 128 KiB windows for small parts)
    assert s[CDN].handshakes == 1
    assert s[CDN].imports == 0 and s[2].exports == 1  # the one transfer is to DC 4 (master)
    assert s[2].requests["help.getCdnConfig"] == 1
    assert s[4].bytes_served == 0  # the master only redirected and sent hashes
    assert s[4].requests["upload.getCdnFileHashes"] >= 1  # past the redirect's first 1 MiB
    assert U.transfers(cluster.world).reuploads == 0


async def test_corrupted_chunk_is_a_typed_error_and_never_yielded(cdn_cluster: Cluster) -> None:
    cluster = cdn_cluster
    f = cluster.add_file(4, size=2 * 1024 * KiB)
    cluster.serve_from_cdn(f.id)
    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            # warm up the CDN connection with one good download, then corrupt the next chunk
            assert await collect(pool, f, [], part_size=128 * KiB, parallel=1) == f.data
            U.corrupt_cdn_chunks(cluster.world, CDN, 1)
            got: list[bytes] = []
            with pytest.raises(CdnHashMismatch) as info:
                await collect(pool, f, got, part_size=128 * KiB, parallel=1)
            assert info.value.offset == 0  # the first chunk of the new download was bad
            assert got == []
            # from an offset, every chunk corrupted (a part of the failed download cancelled
            # in flight may still reach the DC, so the count must not matter): nothing handed out
            U.corrupt_cdn_chunks(cluster.world, CDN, 1000)
            got = []
            with pytest.raises(CdnHashMismatch) as info:
                async with pool.download(f.input_location(), dc_id=4, size=f.size,
                                         part_size=128 * KiB, parallel=1, offset=256 * KiB) as chunks:
                    async for chunk in chunks:
                        got.append(chunk)
            assert got == [] and info.value.offset == 256 * KiB


async def test_reupload_needed_then_served(cdn_cluster: Cluster) -> None:
    cluster = cdn_cluster
    f = cluster.add_file(4, size=700 * KiB)
    cluster.serve_from_cdn(f.id)
    U.require_reupload(cluster.world, f.id)
    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            assert await collect(pool, f, [], part_size=128 * KiB) == f.data
    s = cluster.statistics()
    assert U.transfers(cluster.world).reuploads >= 1
    assert s[4].requests["upload.reuploadCdnFile"] >= 1
    assert s[CDN].bytes_served == f.size


async def test_revoked_token_falls_back_to_master(cdn_cluster: Cluster) -> None:
    cluster = cdn_cluster
    f = cluster.add_file(4, size=900 * KiB)
    cluster.serve_from_cdn(f.id)
    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            assert await collect(pool, f, [], part_size=128 * KiB) == f.data
            assert U.revoke_cdn_tokens(cluster.world, f.id) >= 1
            before = cluster.statistics()[4].bytes_served
            assert await collect(pool, f, [], part_size=128 * KiB) == f.data
    s = cluster.statistics()
    assert s[4].bytes_served - before == f.size  # the master served the second download
    assert s[CDN].bytes_served == f.size


async def test_cdn_not_used_without_cdn_supported(cdn_cluster: Cluster) -> None:
    cluster = cdn_cluster
    f = cluster.add_file(4, size=300 * KiB)
    cluster.serve_from_cdn(f.id)
    with trio.fail_after(TIMEOUT):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            assert await collect(pool, f, [], part_size=128 * KiB, cdn_supported=False) == f.data
    s = cluster.statistics()
    assert s[CDN].bytes_served == 0 and s[4].bytes_served == f.size
