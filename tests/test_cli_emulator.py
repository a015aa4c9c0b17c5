"""``dcpool emulator``: argument parsing in-process, and the real thing in a subprocess (read
the JSON line, run a key exchange against a listed DC, stop it with a signal, exit code 0)."""

from __future__ import annotations

import argparse
import io
import json
import signal
import socket
import subprocess
import sys

import pytest
import trio

from dcpool import cli, tl
from dcpool.crypto.rsa import RsaPublicKey
from dcpool.testing import open_cluster
from testing._raw_client import open_raw

api = tl.api
TIMEOUT = 20


# --------------------------------------------------------------------------- in-process


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4:100000", (4, 100000)),
        ("2:1K", (2, 1024)),
        ("1:3M", (1, 3 << 20)),
        ("5:2MiB", (5, 2 << 20)),
        ("3:0", (3, 0)),
    ],
)
def test_parse_file_spec(text, expected):
    assert cli.parse_file_spec(text) == expected


@pytest.mark.parametrize("text", ["4", "4:", ":100", "0:10", "x:10", "4:-1", "4:1T", "4:ten"])
def test_parse_file_spec_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_file_spec(text)


def test_parse_dc_ids():
    assert cli.parse_dc_ids("1,2,3,4,5") == (1, 2, 3, 4, 5)
    assert cli.parse_dc_ids("4") == (4,)
    for bad in ("", "1,1", "0,1", "a,b", "-2"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.parse_dc_ids(bad)


def test_parser_defaults_and_the_command_table():
    args = cli.build_parser().parse_args(["emulator"])
    got = (args.dcs, args.test_mode, args.host, args.port_base, args.file, args.latency_ms)
    assert got == (None, False, "127.0.0.1", None, [], 0.0)
    assert args.json is False
    assert args._run is cli.COMMANDS["emulator"].run
    args = cli.build_parser().parse_args(
        ["emulator", "--dcs", "1,2", "--test-mode", "--port-base", "20000", "--file", "2:10",
         "--file", "1:1K", "--latency-ms", "25", "--json"]
    )
    assert (args.dcs, args.test_mode, args.port_base, args.file, args.latency_ms, args.json) == (
        (1, 2), True, 20000, [(2, 10), (1, 1024)], 25.0, True,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["emulator", "--file", "4:10", "--dcs", "1,2"],  # no such DC
        ["emulator", "--test-mode", "--file", "4:10"],  # test mode has DCs 1-3
        ["emulator", "--latency-ms", "-1"],
        ["emulator", "--port-base", "70000"],
        ["emulator", "--dcs", "1,x"],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_no_command_prints_help_and_returns_2(capsys):
    assert cli.main([]) == 2
    assert "emulator" in capsys.readouterr().err


async def test_emulator_info_and_summary_describe_the_cluster():
    async with open_cluster((1, 4), test_mode=True) as cluster:
        stored = cluster.add_file(4, size=5000)
        info = cli.emulator_info(cluster, [stored])
        out = io.StringIO()
        cli.print_emulator_summary(info, out)
    assert json.loads(json.dumps(info)) == info  # plain JSON types only
    assert info["dcs"] == {
        str(dc): {"host": cluster.endpoint(dc)[0], "port": cluster.endpoint(dc)[1]} for dc in (1, 4)
    }
    assert info["test_mode"] is True
    key = RsaPublicKey.from_pem(info["rsa_public_key"])
    assert info["rsa_public_key"].startswith("-----BEGIN RSA PUBLIC KEY-----")
    assert info["rsa_fingerprint"] == key.fingerprint == cluster.rsa_public_key().fingerprint
    assert info["files"] == [
        {
            "dc_id": 4,
            "id": stored.id,
            "access_hash": stored.access_hash,
            "file_reference": stored.file_reference.hex(),
            "size": 5000,
            "sha256": stored.sha256,
        }
    ]
    text = out.getvalue()
    for needle in (str(cluster.endpoint(4)[1]), str(stored.id), stored.sha256, "test mode"):
        assert needle in text
    assert info["rsa_public_key"].strip() in text


# --------------------------------------------------------------------------- subprocess


async def _start(*argv: str) -> trio.Process:
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "dcpool.cli", "emulator", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def _first_line(proc: trio.Process) -> dict:
    buf = b""
    while b"\n" not in buf:
        chunk = await proc.stdout.receive_some(65536)
        if not chunk:
            raise AssertionError(f"the emulator exited before printing its JSON line: {buf!r}")
        buf += chunk
    return json.loads(buf.split(b"\n", 1)[0])


@pytest.mark.e2e
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_emulator_subprocess_serves_a_key_exchange_and_stops_cleanly(stop):
    with trio.fail_after(TIMEOUT):
        proc = await _start("--json", "--file", "4:100000")
        try:
            info = await _first_line(proc)
            assert sorted(info["dcs"]) == ["1", "2", "3", "4", "5"]
            assert info["test_mode"] is False
            [stored] = info["files"]
            assert (stored["dc_id"], stored["size"]) == (4, 100000)
            key = RsaPublicKey.from_pem(info["rsa_public_key"])
            assert key.fingerprint == info["rsa_fingerprint"]

            ep = info["dcs"]["4"]
            async with open_raw(ep["host"], ep["port"]) as raw:
                await raw.handshake({key.fingerprint: key}, 4)
                config = await raw.call(api.help.GetConfig())
            assert config.this_dc == 4
            listed = {str(o.id): {"host": o.ip_address, "port": o.port} for o in config.dc_options}
            assert listed == info["dcs"]
        finally:
            if proc.returncode is None:
                proc.send_signal(stop)
            returncode = await proc.wait()
    stderr = await proc.stderr.receive_some(65536) if proc.stderr else b""
    assert returncode == 0, stderr


@pytest.mark.e2e
async def test_emulator_subprocess_reports_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with trio.fail_after(TIMEOUT):
            proc = await _start("--dcs", "1", "--port-base", str(port - 1), "--json")
            returncode = await proc.wait()
            stderr = await proc.stderr.receive_some(65536)
    assert returncode == 1
    assert b"dcpool emulator:" in stderr
