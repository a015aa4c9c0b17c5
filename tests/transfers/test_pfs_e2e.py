"""open_pool(pfs=True) over loopback sockets (issue 15, spec §5.11): every connection talks with
a temp key bound to the permanent key by auth.bindTempAuthKey (checked exactly by the
emulator); sign-in, cross-DC download, upload and CDN work; temp keys rotate under trio's fake
clock; a -404 on a temp key binds a new one without touching the permanent key."""

from __future__ import annotations

import os

import pytest
import trio

import dcpool
from dcpool import tl
from dcpool.testing import Cluster, open_cluster, pfs

pytestmark = pytest.mark.e2e

api = tl.api
KiB = 1024
PHONE, CODE = "9996621234", "22222"
CDN = 203


def pool_args(cluster: Cluster, **kw):
    return dict(api_id=1, api_hash="x", dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys(),
                pfs=True, **kw)


async def fetch(pool, f, **kw) -> bytes:
    return b"".join([c async for c in pool.download(f.input_location(), dc_id=f.dc_id, size=f.size, **kw)])


def bound_temp(cluster: Cluster, pool, dc: int) -> int | None:
    """The temp key the emulator has bound to the pool's permanent key on ``dc``."""
    perm = pool.dc(dc).permanent_key
    return pfs.key_registry(cluster.world).bound.get((dc, perm.key_id))


async def test_sign_in_cross_dc_download_upload_and_cdn_with_pfs() -> None:
    async with open_cluster(cdn_dcs=[CDN]) as cluster:
        stored = cluster.add_file(4, size=300 * KiB)
        on_cdn = cluster.add_file(4, size=200 * KiB)
        cluster.serve_from_cdn(on_cdn.id)
        with trio.fail_after(60):
            async with dcpool.open_pool(home_dc=1, **pool_args(cluster)) as pool:
                await pool.sign_in(PHONE, CODE)  # PHONE_MIGRATE_2: home moves to DC 2
                assert pool.home_dc == 2
                me = await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
                assert me[0].phone == PHONE
                assert await fetch(pool, stored) == stored.data  # transfer to DC 4, temp key there
                assert await fetch(pool, on_cdn) == on_cdn.data  # the CDN DC never binds
                data = os.urandom(300 * KiB)
                f = await pool.upload(data, part_size=128 * KiB)
                res = await pool.send_uploaded(api.messages.UploadMedia(
                    peer=api.InputPeerSelf(),
                    media=api.InputMediaUploadedDocument(file=f, mime_type="a/b", attributes=[])), data,
                    part_size=128 * KiB)
                assert res.document.dc_id == 2
                for dc in (2, 4):
                    state = pool.dc(dc)
                    assert state.temp_key is not None
                    assert state.auth_key.key_id == state.temp_key.key.key_id != state.permanent_key.key_id
                    assert bound_temp(cluster, pool, dc) == state.temp_key.key.key_id
                    # every live connection of the DC talks with the bound temp key
                    assert {c.session.auth_key.key_id for c in state.connections() if c.session} == {
                        state.temp_key.key.key_id}
                assert pool.dc(CDN).temp_key is None and pool.dc(CDN).auth_key is not None
        reg = pfs.key_registry(cluster.world)
        assert reg.binds == 3  # DC 1 (before PHONE_MIGRATE), DC 2 and DC 4: one each
        assert not any(dc == CDN for dc, _ in reg.temp)


async def test_temp_keys_rotate_under_the_fake_clock(autojump_clock) -> None:
    async with open_cluster() as cluster:
        stored = cluster.add_file(4, size=200 * KiB)
        with trio.fail_after(600_000):
            async with dcpool.open_pool(home_dc=2, temp_key_lifetime=3600, ping_interval=50,
                                        **pool_args(cluster)) as pool:
                await pool.sign_in(PHONE, CODE)
                perm2, perm4 = pool.dc(2).permanent_key, None
                seen2: set[int] = set()
                for _ in range(4):
                    assert await fetch(pool, stored) == stored.data
                    assert (await pool.invoke(api.help.GetNearestDc())).this_dc == 2
                    seen2.add(pool.dc(2).temp_key.key.key_id)
                    perm4 = perm4 or pool.dc(4).permanent_key
                    await trio.sleep(3000)  # past 75 % of the lifetime: rotated when quiet
                assert len(seen2) >= 3
                assert pool.dc(2).permanent_key is perm2 and pool.dc(4).permanent_key is perm4
                assert pool.dc(2).temp_keys_created >= 3
                s = cluster.statistics()
                assert s[2].exports == 1 and s[4].imports == 1  # authorization kept across keys


async def test_minus_404_on_the_temp_key_binds_a_new_one(cluster: Cluster) -> None:
    with trio.fail_after(60):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            state = pool.dc(2)
            perm, old = state.permanent_key, state.temp_key.key.key_id
            assert pfs.expire_temp_key(cluster.world, 2, old) == 1
            me = await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert me[0].phone == PHONE  # still signed in: same permanent key, new temp key
            assert state.permanent_key is perm
            assert state.temp_key.key.key_id != old
            assert bound_temp(cluster, pool, 2) == state.temp_key.key.key_id


async def test_temp_key_unbound_by_another_client_is_bound_again(cluster: Cluster) -> None:
    """Another client bound its own temp key to our permanent key (the DC keeps one binding per
    permanent key): our next call gets 401 AUTH_KEY_PERM_EMPTY, and the pool binds a new temp
    key and sends the call again, still signed in."""
    with trio.fail_after(60):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            await pool.sign_in(PHONE, CODE)
            state = pool.dc(2)
            old = state.temp_key.key.key_id
            reg = pfs.key_registry(cluster.world)
            assert reg.bound.pop((2, state.permanent_key.key_id)) == old
            me = await pool.invoke(api.users.GetUsers(id=[api.InputUserSelf()]))
            assert me[0].phone == PHONE
            assert state.temp_key.key.key_id != old
            assert bound_temp(cluster, pool, 2) == state.temp_key.key.key_id
            assert cluster.statistics()[2].errors.get("AUTH_KEY_PERM_EMPTY", 0) >= 1


async def test_forgotten_permanent_key_is_replaced(cluster: Cluster) -> None:
    """The DC forgot the permanent key (and so the binding): the re-bind is refused with
    ENCRYPTED_MESSAGE_INVALID, the pool makes a new permanent key and binds a temp key to it."""
    with trio.fail_after(60):
        async with dcpool.open_pool(home_dc=2, **pool_args(cluster)) as pool:
            assert (await pool.invoke(api.help.GetNearestDc())).this_dc == 2
            state = pool.dc(2)
            perm = state.permanent_key
            assert cluster.forget_key(2, perm.key_id)
            # (help.getNearestDc is allowed on an unbound temp key; help.getCdnConfig is not)
            await pool.invoke(api.help.GetCdnConfig())
            assert state.permanent_key.key_id != perm.key_id
            assert bound_temp(cluster, pool, 2) == state.temp_key.key.key_id
