"""The emulator's temp keys and auth.bindTempAuthKey (dcpool.testing.pfs, spec §5.11)."""

from __future__ import annotations

import os

import pytest

from dcpool import tl
from dcpool.errors import RpcError
from dcpool.mtproto import tempkeys
from dcpool.mtproto.authkey import AuthKey
from dcpool.testing import World
from dcpool.testing import pfs
from dcpool.testing.world import ConnectionContext

api = tl.api
NOW = 1_700_000_000.0
SESSION = 4242
MSG_ID = (int(NOW) << 32) | 4


@pytest.fixture
def world():
    w = World.test_cluster()
    w.strict = True
    return w


def keys(world, dc=2, expires_in=3600):
    perm = AuthKey.from_bytes(os.urandom(256))
    temp = AuthKey.from_bytes(os.urandom(256))
    pfs.key_created(world, dc, perm, None, NOW)
    pfs.key_created(world, dc, temp, expires_in, NOW)
    return perm, temp


def call(world, key_id, query, *, dc=2, session_id=SESSION, msg_id=MSG_ID, init=True):
    if init:
        query = api.InvokeWithLayer(layer=tl.LAYER, query=api.InitConnection(
            api_id=1, device_model="d", system_version="s", app_version="a", system_lang_code="en",
            lang_pack="", lang_code="en", query=query))
    data = world.handle(dc, ConnectionContext(), key_id, query.to_bytes(), NOW, session_id=session_id, msg_id=msg_id)
    inner = query
    while hasattr(inner, "query"):
        inner = inner.query
    return type(inner).read_result(data)


def bind(perm, temp, **over):
    kw = dict(temp_key_id=temp.key_id, temp_session_id=SESSION, msg_id=MSG_ID, expires_at=int(NOW) + 600)
    kw.update(over)
    return tempkeys.bind_temp_auth_key_request(perm, **kw)


def rpc_error(fn, *a, **kw) -> str:
    with pytest.raises(RpcError) as info:
        fn(*a, **kw)
    return info.value.message


def test_unbound_temp_key_may_only_bind_and_read_config(world):
    perm, temp = keys(world)
    assert call(world, temp.key_id, api.help.GetConfig()).this_dc == 2
    assert call(world, temp.key_id, api.help.GetNearestDc()).this_dc == 2
    assert rpc_error(call, world, temp.key_id, api.auth.SendCode(
        phone_number="9996621234", api_id=1, api_hash="x", settings=api.CodeSettings())) == "AUTH_KEY_PERM_EMPTY"
    # the bind itself needs no initConnection on the fresh temp key
    assert call(world, temp.key_id, bind(perm, temp), init=False) is True
    assert pfs.key_registry(world).bound_perm(2, temp.key_id) == perm.key_id


def test_bound_temp_key_acts_for_the_permanent_key(world):
    perm, temp = keys(world)
    user = world.user_by_phone(world.test_phone(2, 1))
    world.authorize(2, perm.key_id, user.id)
    call(world, temp.key_id, bind(perm, temp), init=False)
    (me,) = call(world, temp.key_id, api.users.GetUsers(id=[api.InputUserSelf()]))
    assert me.id == user.id


def test_bind_is_checked_exactly(world):
    perm, temp = keys(world)
    bad = [
        bind(perm, temp, msg_id=MSG_ID + 4),  # not the outer msg_id
        bind(perm, temp, temp_session_id=SESSION + 1),  # not the request's session
        bind(perm, temp, temp_key_id=temp.key_id ^ 1),  # not the key it arrived on
    ]
    for req in bad:
        assert rpc_error(call, world, temp.key_id, req, init=False) == "ENCRYPTED_MESSAGE_INVALID"
    good = bind(perm, temp)
    for field, value in (("nonce", good.nonce + 1), ("expires_at", good.expires_at + 1)):
        forged = api.auth.BindTempAuthKey(**{**{"perm_auth_key_id": good.perm_auth_key_id, "nonce": good.nonce,
                                                "expires_at": good.expires_at,
                                                "encrypted_message": good.encrypted_message}, field: value})
        assert rpc_error(call, world, temp.key_id, forged, init=False) == "ENCRYPTED_MESSAGE_INVALID"
    # a perm key unknown to this DC
    stranger = AuthKey.from_bytes(os.urandom(256))
    assert rpc_error(call, world, temp.key_id, bind(stranger, temp), init=False) == "ENCRYPTED_MESSAGE_INVALID"
    # expires_at in the past
    assert rpc_error(call, world, temp.key_id, bind(perm, temp, expires_at=int(NOW) - 1), init=False) == "EXPIRES_AT_INVALID"
    # a bind sent on the permanent key
    assert rpc_error(call, world, perm.key_id, bind(perm, temp), init=False) == "TEMP_AUTH_KEY_EMPTY"
    assert call(world, temp.key_id, good, init=False) is True
    # bound to another permanent key
    perm2 = AuthKey.from_bytes(os.urandom(256))
    pfs.key_created(world, 2, perm2, None, NOW)
    assert rpc_error(call, world, temp.key_id, bind(perm2, temp), init=False) == "TEMP_AUTH_KEY_ALREADY_BOUND"


def test_one_bound_temp_key_per_permanent_key_and_expiry(world):
    perm, temp = keys(world)
    temp2 = AuthKey.from_bytes(os.urandom(256))
    pfs.key_created(world, 2, temp2, 3600, NOW)
    user = world.user_by_phone(world.test_phone(2, 1))
    world.authorize(2, perm.key_id, user.id)
    call(world, temp.key_id, bind(perm, temp), init=False)
    call(world, temp2.key_id, bind(perm, temp2), init=False)
    # the first temp key is no longer bound
    assert rpc_error(call, world, temp.key_id, api.users.GetUsers(id=[api.InputUserSelf()])) == "AUTH_KEY_PERM_EMPTY"
    assert call(world, temp2.key_id, api.users.GetUsers(id=[api.InputUserSelf()]))[0].id == user.id
    # expiry: min(created + expires_in, bind expires_at)
    assert not pfs.key_expired(world, 2, temp2.key_id, NOW + 599)
    assert pfs.key_expired(world, 2, temp2.key_id, NOW + 600)
    assert not pfs.key_expired(world, 2, perm.key_id, NOW + 10**9)
    pfs.forget_key(world, 2, temp2.key_id)
    assert pfs.key_registry(world).bound_perm(2, temp2.key_id) is None
    assert (2, perm.key_id) not in pfs.key_registry(world).bound


def test_uploads_through_a_bound_temp_key_belong_to_the_permanent_key(world):
    perm, temp = keys(world)
    user = world.user_by_phone(world.test_phone(2, 1))
    world.authorize(2, perm.key_id, user.id)
    call(world, temp.key_id, bind(perm, temp), init=False)
    assert call(world, temp.key_id, api.upload.SaveFilePart(file_id=9, file_part=0, bytes=b"pfs")) is True
    media = api.InputMediaUploadedDocument(
        file=api.InputFile(id=9, parts=1, name="p", md5_checksum=""), mime_type="a/b", attributes=[])
    got = call(world, perm.key_id, api.messages.UploadMedia(peer=api.InputPeerSelf(), media=media))
    assert world.files[got.document.id].data == b"pfs"
