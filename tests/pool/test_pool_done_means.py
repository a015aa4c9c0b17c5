"""Issue 12, "Done means": sign in through raw ``invoke`` (and through ``invoke_raw`` with
hand-serialised bytes), then 200 concurrent downloads from DCs 1, 3, 4 and 5: all succeed, with
exactly one authorization export per foreign DC; a second process on the same session file
makes none."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest
import trio

import dcpool
from dcpool import tl
from dcpool.testing import Cluster

from test_pool_login import raw_send_code, raw_sign_in

api = tl.api
PART = 64 * 1024
FOREIGN = (1, 3, 4, 5)

SECOND_PROCESS = r"""
import hashlib, json, sys, trio, dcpool
from dcpool import tl

async def main(args):
    async with dcpool.open_pool(api_id=1, api_hash="x", storage=args["path"], fetch_config=False,
                                dc_list={int(k): tuple(v) for k, v in args["dcs"].items()},
                                rsa_keys=args["pem"]) as pool:
        assert pool.user_id == args["user_id"], pool.user_id
        async def one(f):
            loc = tl.api.InputDocumentFileLocation(id=f["id"], access_hash=f["access_hash"],
                                                   file_reference=bytes.fromhex(f["ref"]),
                                                   thumb_size="")
            h = hashlib.sha256()
            async for chunk in pool.download(loc, dc_id=f["dc"], size=f["size"], part_size=65536):
                h.update(chunk)
            assert h.hexdigest() == f["sha256"]
        async with trio.open_nursery() as n:
            for f in args["files"]:
                n.start_soon(one, f)
        st = pool.statistics()
        print(json.dumps({"transfers_started": st.transfers_started}))

trio.run(main, json.loads(sys.stdin.read()))
"""


async def download(pool, f) -> None:
    h = hashlib.sha256()
    async for chunk in pool.download(f.input_location(), dc_id=f.dc_id, size=f.size, part_size=PART):
        h.update(chunk)
    assert h.hexdigest() == f.sha256


@pytest.mark.parametrize("how", ["invoke", "invoke_raw"])
async def test_raw_sign_in_then_200_downloads_from_four_dcs(cluster: Cluster, tmp_path, how) -> None:
    path = str(tmp_path / "s.session")
    phone = cluster.world.test_phone(2, 1111)
    files = {dc: [cluster.add_file(dc, size=PART + 17 * dc + i) for i in range(3)] for dc in FOREIGN}
    with trio.fail_after(120):
        async with dcpool.open_pool(api_id=1, api_hash="x", storage=path, home_dc=2, fetch_config=False,
                                    dc_list=cluster.dc_list(), rsa_keys=cluster.rsa_keys()) as pool:
            if how == "invoke":
                sent = await pool.invoke(api.auth.SendCode(phone_number=phone, api_id=1, api_hash="x",
                                                           settings=api.CodeSettings()))
                auth = await pool.invoke(api.auth.SignIn(phone_number=phone,
                                                         phone_code_hash=sent.phone_code_hash,
                                                         phone_code="22222"))
                user_id = auth.user.id
            else:
                sent = tl.loads(await pool.invoke_raw(raw_send_code(phone)))
                answer = await pool.invoke_raw(raw_sign_in(phone, sent.phone_code_hash, "22222"))
                user_id = tl.loads(answer).user.id
            assert pool.user_id == user_id
            async with trio.open_nursery() as nursery:
                for i in range(200):
                    dc = FOREIGN[i % 4]
                    nursery.start_soon(download, pool, files[dc][i % 3])
            s = cluster.statistics()
            assert s[2].exports == 4 and s[2].requests["auth.exportAuthorization"] == 4
            assert [s[dc].imports for dc in FOREIGN] == [1, 1, 1, 1]
            st = pool.statistics()
            assert (st.transfers, st.transfers_failed) == (4, 0)
            await pool.flush_storage()
        # a second process on the same session file: no export, no import, no new key
        handshakes = s.total("handshakes")
        args = {
            "path": path, "user_id": user_id, "pem": cluster.rsa_public_pem(),
            "dcs": {dc: list(cluster.endpoint(dc)) for dc in (1, 2, 3, 4, 5)},
            "files": [{"dc": f.dc_id, "size": f.size, "sha256": f.sha256, **_location(f)}
                      for fs in files.values() for f in fs],
        }
        result = await trio.run_process([sys.executable, "-c", SECOND_PROCESS],
                                        stdin=json.dumps(args).encode(), capture_stdout=True,
                                        capture_stderr=True, check=False)
        assert result.returncode == 0, result.stderr.decode()[-3000:]
        assert json.loads(result.stdout)["transfers_started"] == 0
        s2 = cluster.statistics()
        assert s2[2].exports == 4 and [s2[dc].imports for dc in FOREIGN] == [1, 1, 1, 1]
        assert s2.total("handshakes") == handshakes


def _location(f) -> dict:
    loc = f.input_location()
    return {"id": loc.id, "access_hash": loc.access_hash, "ref": bytes(loc.file_reference).hex()}
