"""Control-channel commands and CLI knobs of issue 15 (CDN DCs, CDN faults, temp keys)."""

from __future__ import annotations

import pytest
import trio

from dcpool import cli, tl
from dcpool.testing import open_cluster, pfs
from dcpool.testing import uploads as U
from dcpool.testing.control import Controller

api = tl.api


async def test_cdn_and_pfs_control_commands():
    with trio.fail_after(20):
        async with open_cluster(cdn_dcs=[203]) as cluster:
            ctl = Controller(cluster)
            f = ctl.handle({"cmd": "add_file", "dc_id": 2, "size": 5000})["result"]
            ok = ctl.handle({"cmd": "serve_from_cdn", "file_id": f["id"]})
            assert ok == {"cmd": "serve_from_cdn", "ok": True, "result": {"file_id": f["id"], "cdn_dc": 203}}
            (entry,) = ctl.handle({"cmd": "cdn_config"})["result"]
            assert entry["dc_id"] == 203 and entry["fingerprint"] == U.cdn_private_key(cluster.world, 203).fingerprint
            assert ctl.handle({"cmd": "corrupt_cdn_chunks", "dc_id": 203, "count": 2})["ok"]
            assert U.transfers(cluster.world).corrupt[203] == 2
            assert ctl.handle({"cmd": "corrupt_cdn_chunks", "dc_id": 2})["ok"] is False  # not a CDN DC
            assert ctl.handle({"cmd": "require_cdn_reupload", "file_id": f["id"]})["ok"]
            assert f["id"] in U.transfers(cluster.world).reupload_needed
            assert ctl.handle({"cmd": "revoke_cdn_tokens", "file_id": f["id"]})["result"] == {"revoked": 0}
            assert ctl.handle({"cmd": "uploaded_files"})["result"] == []
            assert ctl.handle({"cmd": "lose_upload_parts", "dc_id": 2, "parts": [0]})["result"] == {"lost": 0}
            assert ctl.handle({"cmd": "expire_temp_keys", "dc_id": 2})["result"] == {"expired": 0}
            assert pfs.key_registry(cluster.world).temp == {}
            # the CLI's description lists the CDN DC with its own key
            info = cli.emulator_info(cluster, [])
            assert set(info["dcs"]) == {"1", "2", "3", "4", "5", "203"}
            assert info["cdn_dcs"]["203"]["rsa_fingerprint"] != info["rsa_fingerprint"]


def test_cli_cdn_dcs_option(capsys):
    args = cli.build_parser().parse_args(["emulator", "--cdn-dcs", "203,204"])
    assert args.cdn_dcs == (203, 204)
    assert cli.build_parser().parse_args(["emulator"]).cdn_dcs == ()
    with pytest.raises(SystemExit):
        cli.main(["emulator", "--dcs", "1,2", "--cdn-dcs", "2"])
    assert "--cdn-dcs must not repeat" in capsys.readouterr().err
