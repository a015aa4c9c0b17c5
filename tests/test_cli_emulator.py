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


# --------------------------------------------------------------------------- --control


def test_control_needs_json(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["emulator", "--control"])
    assert info.value.code == 2


async def test_control_commands_in_process():
    from dcpool.errors import FloodWait
    from dcpool.testing.control import COMMANDS, Controller, Param, control_command
    from testing._raw_client import open_session

    with trio.fail_after(TIMEOUT):
        async with open_cluster() as cluster:
            ctl = Controller(cluster, info={"hello": 1})
            listed = {c["cmd"]: c for c in ctl.handle({"cmd": "help"})["result"]}
            assert {"help", "add_user", "add_file", "arm_fault", "clear_faults", "stats",
                    "reset_stats", "quit", "options", "set_option"} <= set(listed)
            assert {"name": "phone", "type": "str", "required": True}.items() <= \
                listed["add_user"]["params"][0].items()
            assert ctl.handle({"cmd": "info", "id": "x"}) == {
                "cmd": "info", "id": "x", "ok": True, "result": {"hello": 1}}

            user = ctl.handle({"cmd": "add_user", "phone": "15550002", "dc_id": 3, "code": "12345"})
            assert user["ok"] and user["result"]["home_dc"] == 3 and user["result"]["code"] == "12345"
            assert cluster.world.user(user["result"]["user_id"]).phone == "15550002"
            f = ctl.handle({"cmd": "add_file", "dc_id": 4, "data_hex": "00ff" * 8})["result"]
            assert cluster.world.files[f["id"]].data == bytes.fromhex("00ff" * 8)

            photo = ctl.handle({"cmd": "add_photo", "dc_id": 5, "sizes": {"m": 100, "s": "abcd"}})["result"]
            assert cluster.world.photos[photo["id"]].sizes["s"].data == bytes.fromhex("abcd")
            assert photo["sizes"]["m"]["size"] == 100 and photo["dc_id"] == 5
            uid = user["result"]["user_id"]
            prof = ctl.handle({"cmd": "set_profile_photo", "user_id": uid})["result"]
            assert cluster.world.user(uid).photo.id == prof["id"] and prof["dc_id"] == 3
            assert ctl.handle({"cmd": "add_photo", "dc_id": 5, "sizes": {"m": -1}})["ok"] is False

            assert ctl.handle({"cmd": "arm_fault", "fault": "flood_wait", "dc_id": 1,
                               "method": "help.getNearestDc", "seconds": 7, "count": 1})["ok"]
            async with open_session(cluster, 1) as raw:
                with pytest.raises(FloodWait) as flood:
                    await raw.call(api.help.GetNearestDc())
                assert flood.value.seconds == 7
                assert (await raw.call(api.help.GetNearestDc())).this_dc == 1
            stats = ctl.handle({"cmd": "stats", "dc_id": 1})["result"]
            assert list(stats) == ["1"]
            assert stats["1"]["requests"]["help.getNearestDc"] == 2
            assert stats["1"]["errors"] == {"FLOOD_WAIT_7": 1}
            assert stats["1"]["handshakes"] == 1
            assert ctl.handle({"cmd": "reset_stats"})["ok"]
            assert ctl.handle({"cmd": "stats"})["result"]["1"]["handshakes"] == 0

            assert ctl.handle({"cmd": "arm_fault", "fault": "forget_key"})["result"]["dcs"] == [1, 2, 3, 4, 5]
            assert all(cluster.faults(dc).armed() for dc in range(1, 6))
            ctl.handle({"cmd": "latency", "ms": 20})
            assert cluster.faults(2).latency == 0.02
            assert ctl.handle({"cmd": "clear_faults"})["ok"]
            assert not any(cluster.faults(dc).armed() for dc in range(1, 6))

            assert ctl.handle({"cmd": "set_option", "name": "export_from_former_home",
                               "value": False})["result"] == {"export_from_former_home": False}
            assert cluster.world.export_from_former_home is False
            assert ctl.handle({"cmd": "options"})["result"]["min_layer"] == cluster.world.min_layer

            # errors never stop anything: each is one answer
            for bad, needle in [
                ({"cmd": "nope"}, "unknown command"),
                ({"cmd": "add_user"}, "missing parameter 'phone'"),
                ({"cmd": "add_user", "phone": 5}, "must be str"),
                ({"cmd": "add_user", "phone": "1", "colour": "red"}, "unknown parameter"),
                ({"cmd": "add_user", "phone": "1", "dc_id": 9}, "UnknownDc"),
                ({"cmd": "arm_fault", "fault": "meteor"}, "unknown fault"),
                ({"cmd": "arm_fault", "fault": "forget_key", "method": "x"}, "takes no method"),
                ({"cmd": "set_option", "name": "min_layer", "value": "x"}, "takes a int"),
                ([1, 2], "JSON object"),
            ]:
                answer = ctl.handle(bad)
                assert answer["ok"] is False and needle in answer["error"], (bad, answer)
            assert json.loads(ctl.handle_line("{not json"))["ok"] is False

            # the table is a registry other modules add to
            @control_command("twice", "double a number", Param("n", "int", "the number", required=True))
            def _twice(ctl, n):
                return 2 * n

            try:
                assert ctl.handle({"cmd": "twice", "n": 21})["result"] == 42
                assert "twice" in {c["cmd"] for c in ctl.handle({"cmd": "help"})["result"]}
            finally:
                del COMMANDS["twice"]
            assert ctl.handle({"cmd": "quit"})["ok"] and ctl.stopping


@pytest.mark.e2e
async def test_emulator_subprocess_control_over_stdin():
    with trio.fail_after(TIMEOUT):
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "dcpool.cli", "emulator", "--json", "--control", "--dcs", "1,2"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        buf = b""

        async def line() -> dict:
            nonlocal buf
            while b"\n" not in buf:
                chunk = await proc.stdout.receive_some(65536)
                assert chunk, f"the emulator exited: {buf!r}"
                buf += chunk
            first, buf = buf.split(b"\n", 1)
            return json.loads(first)

        try:
            info = await line()
            assert sorted(info["dcs"]) == ["1", "2"]
            requests = [
                {"cmd": "add_file", "dc_id": 2, "size": 4096, "id": 1},
                {"cmd": "add_user", "phone": "15550003", "dc_id": 1, "id": 2},
                {"cmd": "bogus", "id": 3},
                {"cmd": "arm_fault", "fault": "rotate_salt", "dc_id": 2, "id": 4},
                {"cmd": "stats", "id": 5},
            ]
            await proc.stdin.send_all(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
            answers = [await line() for _ in requests]
            assert [a["id"] for a in answers] == [1, 2, 3, 4, 5]
            assert [a["ok"] for a in answers] == [True, True, False, True, True]
            assert answers[0]["result"]["size"] == 4096 and answers[0]["result"]["dc_id"] == 2
            assert answers[1]["result"]["home_dc"] == 1
            assert sorted(answers[4]["result"]) == ["1", "2"]
            await proc.stdin.aclose()  # end of stdin stops the emulator
            returncode = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert returncode == 0


async def test_control_drives_messaging():
    """Other users' messages, channel posts, edits and lost sessions are scriptable over the control
    channel (issue 16: clients in any language can be tested)."""
    from dcpool.testing.control import Controller

    with trio.fail_after(TIMEOUT):
        async with open_cluster() as cluster:
            ctl = Controller(cluster)
            listed = {c["cmd"] for c in ctl.handle({"cmd": "help"})["result"]}
            assert {"send_message", "create_channel", "post", "edit", "delete", "read",
                    "push_faults", "updates_state", "lose_sessions"} <= listed
            before = ctl.handle({"cmd": "updates_state", "user": "9996621111"})["result"]
            sent = ctl.handle({"cmd": "send_message", "from_user": "9996631111",
                               "to_user": "9996621111", "text": "hi"})
            assert sent["ok"], sent
            after = ctl.handle({"cmd": "updates_state", "user": "9996621111"})["result"]
            assert after["pts"] == before["pts"] + sent["result"]["receiver"]["pts_count"] == sent["result"]["receiver"]["pts"]
            mid = sent["result"]["receiver"]["message_id"]
            edited = ctl.handle({"cmd": "edit", "user": "9996631111", "peer": "9996621111",
                                 "message_id": mid, "text": "hi!"})
            assert edited["ok"], edited
            assert ctl.handle({"cmd": "updates_state", "user": "9996621111"})["result"]["pts"] > after["pts"]

            channel = ctl.handle({"cmd": "create_channel", "creator": "9996631111",
                                  "members": ["9996621111"]})["result"]
            posted = ctl.handle({"cmd": "post", "channel_id": channel["channel_id"], "text": "news"})
            assert posted["ok"] and posted["result"]["pts"] == channel["pts"] + 1
            assert ctl.handle({"cmd": "send_message", "from_user": "9996631111", "to_user": "1",
                               "text": "x"})["ok"] is False
            assert ctl.handle({"cmd": "lose_sessions", "user": "9996621111"})["result"] == {"sessions_lost": 0}
