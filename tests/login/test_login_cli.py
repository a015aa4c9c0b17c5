"""``dcpool login`` in a pseudo-terminal, with answers typed at its prompts (issue 14), and
``dcpool session show`` reporting the kind of login."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60
PASSWORD = "s3cret-pw"


def run_in_pty(args: list[str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run ``python -m dcpool.cli ARGS`` on a new pseudo-terminal (its controlling tty, so
    getpass turns echo off); type each answer once its prompt appeared.  Returns the exit
    status and everything the terminal showed."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="120", TERM="dumb")
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once
        os.execvpe(sys.executable, [sys.executable, "-m", "dcpool.cli", *args], env)
    output = b""
    pending = list(answers)
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"dcpool login hung; the terminal showed:\n{output.decode(errors='replace')}")
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if pending and pending[0][0].encode() in output.split(b"\x00")[-1]:
                prompt, answer = pending.pop(0)
                # consume the prompt so that the same text later is a new prompt
                output += b"\x00"
                os.write(fd, answer.encode() + b"\r")
        _, status = os.waitpid(pid, 0)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(fd)
    assert not pending, f"prompts never shown: {pending}\n{output.decode(errors='replace')}"
    return os.waitstatus_to_exitcode(status), output.replace(b"\x00", b"").decode(errors="replace")


def session_show(path: Path, *extra: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "dcpool.cli", "session", "show", str(path), *extra],
        env=dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200"),
        capture_output=True, text=True, timeout=TIMEOUT, check=True,
    )
    return out.stdout


def test_phone_code_and_password_typed_at_the_prompts(tmp_path):
    session = tmp_path / "me.session"
    rc, screen = run_in_pty(
        ["login", str(session), "--emulator", "--password", f"9996641234={PASSWORD}"],
        [("Phone number:", "9996641234"), ("Code:", "44444"), ("Password", "wrong-guess"),
         ("Password", PASSWORD)],
    )
    assert rc == 0, screen
    assert "the code is 44444" in screen and "on DC 4" in screen
    assert "9996641234" in screen  # echoed: not a secret
    assert PASSWORD not in screen and "wrong-guess" not in screen  # typed without echo
    summary = json.loads(session_show(session, "--json"))
    assert (summary["home_dc"], summary["login_kind"]) == (4, "phone+password")
    assert summary["user_id"] is not None
    assert oct(session.stat().st_mode & 0o777) == "0o600"
    assert "login=phone+password" in session_show(session)


def test_qr_login_shows_a_qr_code(tmp_path):
    session = tmp_path / "qr.session"
    rc, screen = run_in_pty(["login", str(session), "--emulator", "--qr", "--accept-qr-as", "9996641234"], [])
    assert rc == 0, screen
    assert "tg://login?token=" in screen and "█" in screen and "on DC 4" in screen
    summary = json.loads(session_show(session, "--json"))
    assert (summary["home_dc"], summary["login_kind"]) == (4, "qr")


def test_bot_login(tmp_path):
    session = tmp_path / "bot.session"
    rc, screen = run_in_pty(["login", str(session), "--emulator", "--bot", "3"], [])
    assert rc == 0, screen
    assert "(bot " in screen
    summary = json.loads(session_show(session, "--json"))
    assert (summary["home_dc"], summary["login_kind"]) == (3, "bot")
    assert "login=bot" in session_show(session)


def test_bad_bot_token_fails_with_the_servers_error(tmp_path):
    rc, screen = run_in_pty(["login", str(tmp_path / "x.session"), "--emulator", "--bot-token", "1:nope"], [])
    assert rc == 1 and "ACCESS_TOKEN_INVALID" in screen


@pytest.mark.parametrize("argv", [["--emulator", "--password", "nope"], ["--api-id", "1"],
                                  ["--api-id", "1", "--api-hash", "h", "--bot", "2"]])
def test_bad_arguments(tmp_path, argv):
    out = subprocess.run([sys.executable, "-m", "dcpool.cli", "login", str(tmp_path / "s"), *argv],
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 2 and "error" in out.stderr


# --------------------------------------------------------------------------- dcpool emulator


async def test_emulator_command_configures_passwords_and_bots():
    import trio

    from dcpool import login
    from dcpool.crypto.rsa import RsaPublicKey
    from dcpool.dcs import DcOption
    from dcpool.pool import open_pool

    with trio.fail_after(TIMEOUT):
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "dcpool.cli", "emulator", "--json", "--bot", "3", "--bot", "5",
             "--password", f"9996641234={PASSWORD}"],
            stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        try:
            buf = b""
            while b"\n" not in buf:
                chunk = await proc.stdout.receive_some(65536)
                assert chunk, "the emulator exited early"
                buf += chunk
            info = json.loads(buf.split(b"\n", 1)[0])
            assert [b["dc_id"] for b in info["bots"]] == [3, 5]
            assert PASSWORD not in buf.decode()
            key = RsaPublicKey.from_pem(info["rsa_public_key"])
            dc_list = [DcOption(id=int(dc), ip_address=ep["host"], port=ep["port"])
                       for dc, ep in info["dcs"].items()]

            def pool():
                return open_pool(api_id=1, api_hash="x", dc_list=dc_list, home_dc=1,
                                 rsa_keys={key.fingerprint: key})

            async with pool() as p:
                bot = await login.sign_in_bot(p, info["bots"][1]["token"])
                assert (bot.id, p.home_dc) == (info["bots"][1]["user_id"], 5)
            async with pool() as p:
                await login.sign_in(p, "9996641234", code="44444", password=PASSWORD)
                assert p.home_dc == 4
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0
