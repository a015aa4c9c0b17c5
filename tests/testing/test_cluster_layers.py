"""The layer sweep: clients of layers 133..228 sign in and read a user, the config and a file,
each written and read with *its own layer's* definitions (issue 13 item 7).

The raw test client (``_raw_client``) speaks plain MTProto over loopback; here every request is
built from the definitions the layer history (:mod:`dcpool.tl.history`) gives for the announced
layer (``auth.signIn`` as layer L has it, ``inputDocumentFileLocation`` as layer L has it...),
and every object of every answer must be a constructor that exists in layer L — checked id by
id against the history, so a layer-228 ``user#b1b8cc83`` sent to a layer-198 client fails the
test even though dcpool's own TL runtime could read it.
"""

from __future__ import annotations

import hashlib

import pytest
import trio
from _layer_check import assert_in_layer, cls_at, make, wrap
from _raw_client import TransportKind, open_session

from dcpool.errors import RpcError

pytestmark = pytest.mark.e2e

TIMEOUT = 30
SWEEP = [133, 158, 185, 198, 220, 228]
FILE_SIZE = 200_000


@pytest.mark.parametrize("layer", SWEEP)
@pytest.mark.parametrize("kind", [TransportKind.ABRIDGED, TransportKind.FULL], ids=["abridged", "full"])
async def test_layer_sweep_sign_in_user_config_file(cluster, layer, kind):
    stored = cluster.add_file(1, size=FILE_SIZE)
    phone = cluster.world.test_phone(1, layer)
    code = cluster.world.login_code(phone, 1)
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 1, kind=kind) as raw:
            # help.getConfig#c4f9186b = Config;  (first call: wrapped as every client does)
            config = await raw.call(wrap(layer, make("help.getConfig", layer)))
            assert type(config) is cls_at("config", layer)
            assert assert_in_layer(config, layer) >= 1 + len(config.dc_options)
            assert {o.id for o in config.dc_options} >= {1, 2, 3, 4, 5}

            sent = await raw.call(make(
                "auth.sendCode", layer, phone_number=phone, api_id=1, api_hash="0" * 32,
                settings=make("codeSettings", layer),
            ))
            assert type(sent) is cls_at("auth.sentCode", layer)
            assert_in_layer(sent, layer)
            auth = await raw.call(make(
                "auth.signIn", layer, phone_number=phone, phone_code_hash=sent.phone_code_hash,
                phone_code=code,
            ))
            assert type(auth) is cls_at("auth.authorization", layer)
            assert type(auth.user) is cls_at("user", layer)
            assert_in_layer(auth, layer)
            user_id = cluster.world.phones[phone]
            assert auth.user.id == user_id and auth.user.self_

            users = await raw.call(make("users.getUsers", layer, id=[make("inputUserSelf", layer)]))
            assert len(users) == 1 and type(users[0]) is cls_at("user", layer)
            assert users[0].phone == phone
            assert_in_layer(users, layer)

            full = await raw.call(make("users.getFullUser", layer, id=make("inputUserSelf", layer)))
            assert type(full.full_user) is cls_at("userFull", layer)
            assert_in_layer(full, layer)

            location = make(
                "inputDocumentFileLocation", layer, id=stored.id, access_hash=stored.access_hash,
                file_reference=stored.file_reference, thumb_size="",
            )
            got = b""
            while len(got) < FILE_SIZE:
                part = await raw.call(make(
                    "upload.getFile", layer, location=location, offset=len(got), limit=1 << 17,
                ))
                assert type(part) is cls_at("upload.file", layer)
                assert_in_layer(part, layer)
                assert part.bytes
                got += part.bytes

    assert len(got) == FILE_SIZE
    assert hashlib.sha256(got).hexdigest() == stored.sha256
    stats = cluster.statistics()[1]
    assert stats.requests["auth.signIn"] == 1 and stats.bytes_served == FILE_SIZE


async def test_unknown_layer_ids_in_requests_are_read(cluster):
    """A request written with an id that only an old layer has (``auth.signUp#80eee427`` of
    layer 158, ``inputDocumentFileLocation`` is the same everywhere) reaches its handler."""
    phone = cluster.world.test_phone(1, 4242)
    with trio.fail_after(TIMEOUT):
        async with open_session(cluster, 1) as raw:
            await raw.call(wrap(158, make("help.getConfig", 158)))
            with pytest.raises(RpcError) as err:
                await raw.call(make(
                    "auth.signUp", 158, phone_number=phone, phone_code_hash="nope",
                    first_name="A", last_name="B",
                ))
            # parsed and dispatched (not INPUT_METHOD_INVALID / INPUT_FETCH_ERROR)
            assert err.value.message.startswith("PHONE_")
