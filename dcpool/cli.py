"""The ``dcpool`` command line.

Theory of operation
-------------------
One :mod:`argparse` parser with one sub-command per task.  Each sub-command is a plain
function ``run(args) -> exit code`` plus a function that declares its arguments, registered
in :data:`COMMANDS` with :func:`command`; :func:`main` builds the parser from that table and
dispatches.  Adding a command is adding one decorated function: nothing else changes.

Heavy imports (trio, the emulator) happen inside the command that needs them, so
``dcpool --help`` stays instant.

``dcpool emulator``
    Serve an emulated multi-DC cluster (:mod:`dcpool.testing`) on loopback until SIGINT or
    SIGTERM, then exit 0.  With ``--json`` the *first line* of stdout is one JSON object
    describing the cluster (endpoints, the PKCS#1 public key and its fingerprint, the stored
    documents), flushed at once, so a parent process can read it and connect: see
    :func:`emulator_info` for the exact shape.  Without it a readable summary is printed.
    The line is written only once every listener is bound.  With ``--control`` (and
    ``--json``) it then reads JSON-lines commands on stdin and answers each with one JSON line
    (:mod:`dcpool.testing.control`; ``{"cmd": "help"}`` lists them); end of stdin stops it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import attrs

__all__ = ["COMMANDS", "Command", "command", "build_parser", "main", "emulator_info"]

log = logging.getLogger("dcpool.cli")


# --------------------------------------------------------------------------- the command table


@attrs.frozen
class Command:
    """One sub-command: ``configure(parser)`` declares its arguments, ``run(args)`` does it."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


#: name -> Command, in registration order (the order of ``dcpool --help``)
COMMANDS: dict[str, Command] = {}


def command(
    name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register the decorated ``run(args) -> int`` as ``dcpool <name>``."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        if name in COMMANDS:
            raise ValueError(f"command {name!r} registered twice")
        COMMANDS[name] = Command(name, help, configure, run)
        return run

    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcpool", description="Talk to every Telegram datacenter correctly and fast."
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        sub = subparsers.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(sub)
        sub.set_defaults(_run=cmd.run, _parser=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dcpool`` script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            stream=sys.stderr,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )
    return args._run(args)


# --------------------------------------------------------------------------- argument types


def parse_dc_ids(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` -> ``(1, 2, 3)``: distinct positive DC ids."""
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated DC ids, got {text!r}") from None
    if not ids or any(dc <= 0 for dc in ids) or len(set(ids)) != len(ids):
        raise argparse.ArgumentTypeError(f"expected distinct positive DC ids, got {text!r}")
    return tuple(ids)


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_file_spec(text: str) -> tuple[int, int]:
    """``"4:100000"`` -> ``(4, 100000)``; the size may end in K, M or G (powers of 1024)."""
    dc_text, sep, size_text = text.partition(":")
    size_text = size_text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = size_text[-1:] if size_text[-1:] in ("K", "M", "G") else ""
    try:
        dc_id = int(dc_text)
        size = int(size_text[: len(size_text) - len(unit)]) * _SIZE_UNITS[unit]
    except ValueError:
        dc_id = size = -1
    if not sep or dc_id <= 0 or size < 0:
        raise argparse.ArgumentTypeError(f"expected DC:SIZE (e.g. 4:100000 or 2:1M), got {text!r}")
    return dc_id, size


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _port_base(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    # DC n listens on base + n (and base + 50 + n, base + 100 + n for IPv6 / media).
    if not 0 < value <= 65535 - 200:
        raise argparse.ArgumentTypeError(f"expected a port base in 1..65335, got {text!r}")
    return value


# --------------------------------------------------------------------------- dcpool emulator


def _configure_emulator(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dcs",
        type=parse_dc_ids,
        default=None,
        metavar="1,2,3,4,5",
        help="DC ids to emulate (default: 1-5, or 1-3 with --test-mode)",
    )
    p.add_argument(
        "--cdn-dcs",
        type=parse_dc_ids,
        default=(),
        metavar="203",
        help="also run these CDN DCs (own RSA keys, published by help.getCdnConfig; mark "
        "documents CDN-served with the control command serve_from_cdn)",
    )
    p.add_argument(
        "--test-mode", action="store_true", help="emulate the test environment (config.test_mode)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument(
        "--port-base",
        type=_port_base,
        default=None,
        metavar="N",
        help="DC n listens on N+n (default: ports chosen by the OS)",
    )
    p.add_argument(
        "--file",
        type=parse_file_spec,
        action="append",
        default=[],
        metavar="DC:SIZE",
        help="store a document of SIZE pseudo-random bytes on DC "
        "(repeatable; SIZE may end in K/M/G)",
    )
    p.add_argument(
        "--latency-ms",
        type=_non_negative_float,
        default=0.0,
        metavar="N",
        help="added latency per packet and direction, in milliseconds",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line describing the cluster first (for programs)",
    )
    p.add_argument(
        "--control",
        action="store_true",
        help="read JSON-lines commands on stdin, answer each with one JSON line on stdout "
        "('{\"cmd\": \"help\"}' lists them); end of stdin stops the emulator. Needs --json",
    )
    p.add_argument(
        "--warm-up",
        action="store_true",
        help="before announcing, run one key exchange and one request per DC in-process "
        "(then reset the counters), so that no measured client pays first-use costs",
    )
    p.add_argument(
        "--no-track-executions",
        dest="track_executions",
        action="store_false",
        help="do not count executions per message (long benchmarks: memory and CPU)",
    )
    _configure_emulator_accounts(p)


def _configure_emulator_accounts(p: argparse.ArgumentParser) -> None:
    """Accounts for the login flows (testing/accounts.py), shared by ``emulator`` and ``login``."""
    p.add_argument(
        "--password",
        type=parse_password_spec,
        action="append",
        default=[],
        metavar="PHONE=PASSWORD",
        help="give PHONE's account (test numbers 99966XYYYY live on DC X) a cloud password "
        "(2FA; repeatable)",
    )
    p.add_argument(
        "--bot",
        type=int,
        action="append",
        default=[],
        metavar="DC",
        help="create a bot homed on DC (repeatable; its token is printed)",
    )


def parse_password_spec(text: str) -> tuple[str, str]:
    """``"PHONE=PASSWORD"`` -> ``(phone, password)``."""
    phone, sep, password = text.partition("=")
    phone = phone.strip().lstrip("+")
    if not sep or not phone.isdigit() or not password:
        raise argparse.ArgumentTypeError("expected PHONE=PASSWORD")
    return phone, password


def setup_emulator_accounts(cluster: Any, args: argparse.Namespace) -> list[Any]:
    """Apply ``--password`` and ``--bot``; returns the bots created."""
    for phone, password in getattr(args, "password", ()):
        cluster.set_password(phone, password)
    return [cluster.add_bot(dc_id) for dc_id in getattr(args, "bot", ())]


def _check_emulated(args: argparse.Namespace) -> None:
    for dc_id in args.bot:
        if dc_id not in args.dcs:
            emulated = ",".join(map(str, args.dcs))
            args._parser.error(f"--bot {dc_id}: DC {dc_id} is not emulated (--dcs {emulated})")


def emulator_info(cluster: Any, files: Sequence[Any], bots: Sequence[Any] = ()) -> dict[str, Any]:
    """What ``dcpool emulator --json`` prints: everything a client needs to connect.

    ``{"dcs": {"<id>": {"host", "port"}}, "rsa_public_key": PKCS#1 PEM, "rsa_fingerprint":
    signed int64, "test_mode": bool, "files": [{"dc_id", "id", "access_hash", "file_reference"
    (hex), "size", "sha256"}], "bots": [{"dc_id", "user_id", "token"}]}``, plus ``"cdn_dcs":
    {"<id>": {"rsa_public_key", "rsa_fingerprint"}}`` when CDN DCs run (``--cdn-dcs``; their
    endpoints are in ``"dcs"``).
    """
    dcs = {}
    for dc_id in cluster.world.dc_ids:
        host, port = cluster.endpoint(dc_id)
        dcs[str(dc_id)] = {"host": host, "port": port}
    from .testing.control import file_info

    info = {
        "dcs": dcs,
        "rsa_public_key": cluster.rsa_public_pem(),
        "rsa_fingerprint": cluster.rsa_public_key().fingerprint,
        "test_mode": cluster.test_mode,
        "files": [file_info(f) for f in files],
        "bots": [{"dc_id": b.dc_id, "user_id": b.user_id, "token": b.token} for b in bots],
    }
    cdn_keys = cluster.cdn_rsa_keys()
    if cdn_keys:
        # CDN DCs (issue 15): each with its own key, as help.getCdnConfig publishes them
        info["cdn_dcs"] = {
            str(dc): {"rsa_public_key": key.to_pkcs1_pem(), "rsa_fingerprint": key.fingerprint}
            for dc, key in sorted(cdn_keys.items())
        }
    return info


def print_emulator_summary(info: dict[str, Any], file: Any = None) -> None:
    """The human-readable form of :func:`emulator_info`."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=file or sys.stdout, soft_wrap=True)
    mode = "test" if info["test_mode"] else "production"
    console.print(f"[bold]dcpool emulator[/bold]: {len(info['dcs'])} DCs, {mode} mode")
    dcs = Table("DC", "host", "port")
    for dc_id, ep in info["dcs"].items():
        dcs.add_row(dc_id, ep["host"], str(ep["port"]))
    console.print(dcs)
    fp = info["rsa_fingerprint"]
    console.print(f"RSA key fingerprint: {fp} ({fp & 0xFFFFFFFFFFFFFFFF:#018x})")
    console.print(info["rsa_public_key"].rstrip(), markup=False, highlight=False)
    # One line per document, never truncated: ids and hashes are meant to be copied.
    for f in info["files"]:
        console.print(
            f"document on DC {f['dc_id']}: size={f['size']} id={f['id']} "
            f"access_hash={f['access_hash']} file_reference={f['file_reference']} "
            f"sha256={f['sha256']}",
            highlight=False,
        )
    for b in info.get("bots", []):
        console.print(f"bot on DC {b['dc_id']}: id={b['user_id']} token={b['token']}", highlight=False)
    console.print("Serving; Ctrl+C (SIGINT) or SIGTERM stops.")
    console.file.flush()


async def serve_emulator(args: argparse.Namespace, out: Any = None, inp: Any = None) -> None:
    """Run the cluster described by ``args`` until SIGINT/SIGTERM."""
    import signal

    import trio

    from .testing import open_cluster

    out = out or sys.stdout
    # Open the signal receiver first: from here on SIGINT/SIGTERM mean "stop cleanly".
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_cluster(
            args.dcs,
            test_mode=args.test_mode,
            host=args.host,
            port_base=args.port_base,
            latency=args.latency_ms / 1000.0,
            cdn_dcs=getattr(args, "cdn_dcs", ()),
        ) as cluster:
            for dc_id in cluster.world.dc_ids:
                cluster.world.stats(dc_id).track_executions = getattr(args, "track_executions", True)
            if getattr(args, "warm_up", False):
                await warm_up(cluster)
            files = [cluster.add_file(dc_id, size=size) for dc_id, size in args.file]
            bots = setup_emulator_accounts(cluster, args)
            info = emulator_info(cluster, files, bots)
            if args.json:
                out.write(json.dumps(info) + "\n")
                out.flush()
            else:
                print_emulator_summary(info, out)
            async with trio.open_nursery() as nursery:
                if getattr(args, "control", False):

                    async def control() -> None:
                        await serve_control(cluster, info, inp or sys.stdin, out)
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(control)
                async for signum in signals:
                    log.info("received signal %s: stopping", signum)
                    break
                nursery.cancel_scope.cancel()


async def serve_control(cluster: Any, info: dict[str, Any], inp: Any, out: Any) -> None:
    """Answer JSON-lines commands from ``inp`` on ``out`` until end of input or ``quit``
    (:mod:`dcpool.testing.control`)."""
    import trio

    from .testing.control import Controller

    controller = Controller(cluster, info=info)
    while not controller.stopping:
        line = await trio.to_thread.run_sync(inp.readline, abandon_on_cancel=True)
        if not line:
            return  # the parent closed our stdin (or died): stop
        if not line.strip():
            continue
        out.write(controller.handle_line(line) + "\n")
        out.flush()


async def warm_up(cluster: Any) -> None:
    """One key exchange and one request per DC from an in-process client, then reset the
    counters.  The first handshake a fresh emulator serves costs ~100 ms more (lazy TL classes,
    first big-int paths): without this, whichever client a benchmark measures first pays."""
    import functools

    import trio

    from . import open_pool, tl

    latency = {dc: cluster.faults(dc).latency for dc in cluster.world.dc_ids}
    for dc in cluster.world.dc_ids:
        cluster.faults(dc).latency = 0.0
    try:
        with trio.fail_after(30):
            async with open_pool(api_id=1, api_hash="warm-up", dc_list=cluster.dc_list(),
                                 rsa_keys=cluster.rsa_keys(), home_dc=cluster.world.dc_ids[0],
                                 fetch_config=False) as pool:
                async with trio.open_nursery() as nursery:
                    for dc in cluster.world.dc_ids:
                        if cluster.world.dc(dc).cdn:
                            continue  # a CDN DC has its own key and serves getCdnFile only
                        nursery.start_soon(
                            functools.partial(pool.invoke, tl.api.help.GetNearestDc(), dc_id=dc)
                        )
    finally:
        for dc, value in latency.items():
            cluster.faults(dc).latency = value
        cluster.world.cluster_stats.reset()


@command("emulator", "serve an emulated Telegram DC cluster on loopback", _configure_emulator)
def run_emulator(args: argparse.Namespace) -> int:
    import trio

    from .testing.world import DEFAULT_DC_IDS, TEST_DC_IDS

    if args.dcs is None:
        args.dcs = TEST_DC_IDS if args.test_mode else DEFAULT_DC_IDS
    if args.control and not args.json:
        args._parser.error("--control needs --json (answers are JSON lines on stdout)")
    if set(args.cdn_dcs) & set(args.dcs):
        args._parser.error("--cdn-dcs must not repeat an id of --dcs")
    for dc_id, _ in args.file:
        if dc_id not in args.dcs:
            emulated = ",".join(map(str, args.dcs))
            args._parser.error(f"--file {dc_id}:...: DC {dc_id} is not emulated (--dcs {emulated})")
    _check_emulated(args)
    failed = False
    try:
        try:
            trio.run(serve_emulator, args)
        except* OSError as group:  # e.g. --port-base with a port already in use
            failed = True
            for exc in group.exceptions:
                print(f"dcpool emulator: {exc}", file=sys.stderr)
    except KeyboardInterrupt:  # a SIGINT before the signal receiver was installed
        return 0
    return 1 if failed else 0


# --------------------------------------------------------------------------- demo


def _configure_demo(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Start a 5-DC emulated cluster in-process, sign in with a reserved test number from the "
        "wrong DC (PHONE_MIGRATE), download files stored on DCs 1, 3, 4, 5 in parallel, print a "
        "routing table, then run again on the same session file (no key exchange, no export). "
        "Exit 0 on success, non-zero with a one-line reason otherwise."
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable summary instead of tables")
    p.add_argument("--session", help="session file to use (default: a fresh temporary file)")
    p.add_argument("--parallel", type=int, default=4, help="parts in flight per download (default 4)")
    p.add_argument("--telegram-test", action="store_true",
                   help="run against Telegram's real test DCs (needs internet, --api-id, --api-hash)")
    p.add_argument("--api-id", type=int, help="your api_id (for --telegram-test)")
    p.add_argument("--api-hash", help="your api_hash (for --telegram-test)")
    p.add_argument("--phone", default="9996621234", help="test number 99966XYYYY (for --telegram-test)")


@command("demo", "run the pool against the embedded emulator and show what it did", _configure_demo)
def _cmd_demo(args) -> int:
    import trio

    from .demo import run_demo, run_telegram_test

    if args.telegram_test:
        if args.api_id is None or not args.api_hash:
            print("dcpool demo: --telegram-test needs --api-id and --api-hash", file=sys.stderr)
            return 2
        return trio.run(lambda: run_telegram_test(api_id=args.api_id, api_hash=args.api_hash,
                                                  phone=args.phone, session=args.session,
                                                  json_mode=args.json))
    try:
        return trio.run(lambda: run_demo(json_mode=args.json, session=args.session, parallel=args.parallel))
    except Exception as exc:  # one line, as promised by --help
        print(f"dcpool demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


# --------------------------------------------------------------------------- config


def _configure_config(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Fetch help.getConfig from an emulated cluster started for the occasion (default), or "
        "from Telegram (--telegram / --telegram-test, needs internet and --api-id/--api-hash), "
        "and print every dc_option with its flags."
    )
    p.add_argument("--telegram", action="store_true", help="ask Telegram's production DCs")
    p.add_argument("--telegram-test", action="store_true", help="ask Telegram's test DCs")
    p.add_argument("--api-id", type=int, default=0)
    p.add_argument("--api-hash", default="")
    p.add_argument("--json", action="store_true")


def _option_row(opt) -> dict:
    flags = [name for name in ("ipv6", "media_only", "tcpo_only", "cdn", "static", "this_port_only")
             if getattr(opt, name, False)]
    return {"id": opt.id, "ip_address": opt.ip_address, "port": opt.port, "flags": flags,
            "secret": bool(getattr(opt, "secret", None))}


@command("config", "fetch help.getConfig and print the DC option table", _configure_config)
def _cmd_config(args) -> int:
    import json

    import trio

    from . import tl
    from .errors import DcPoolError
    from .pool import open_pool

    async def fetch():
        if args.telegram or args.telegram_test:
            async with open_pool(api_id=args.api_id, api_hash=args.api_hash, test_mode=args.telegram_test,
                                 connect_timeout=10, request_timeout=15, fetch_config=False) as pool:
                return await pool.invoke(tl.api.help.GetConfig())
        from .testing import open_cluster

        async with open_cluster() as cluster:
            async with open_pool(api_id=1, api_hash="x", dc_list=cluster.dc_list(),
                                 rsa_keys=cluster.rsa_keys(), fetch_config=False) as pool:
                return await pool.invoke(tl.api.help.GetConfig())

    try:
        config = trio.run(fetch)
    except (DcPoolError, OSError) as exc:
        print(f"dcpool config: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    rows = [_option_row(o) for o in config.dc_options]
    if args.json:
        print(json.dumps({"this_dc": config.this_dc, "date": config.date, "expires": config.expires,
                          "test_mode": config.test_mode, "dc_options": rows}))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"dc_options (this_dc={config.this_dc}, test_mode={config.test_mode}, "
                        f"expires={config.expires})")
    for col in ("id", "address", "port", "flags", "secret"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["id"]), r["ip_address"], str(r["port"]), ", ".join(r["flags"]) or "-",
                      "yes" if r["secret"] else "")
    Console().print(table)
    return 0


# --------------------------------------------------------------------------- session


def _configure_session(p: argparse.ArgumentParser) -> None:
    p.description = "Inspect a dcpool session file (never prints key material)."
    ssub = p.add_subparsers(dest="session_command", required=True, metavar="ACTION")
    show = ssub.add_parser("show", help="what a session file holds (keys are never printed)")
    show.add_argument("path")
    show.add_argument("--json", action="store_true", help="print JSON")
    configure_session_transfer(ssub)  # import / export: see the block below


@command("session", "inspect, import or export a session (never prints keys)", _configure_session)
def _cmd_session_show(args) -> int:
    import json

    from .errors import StorageError
    from .storage import session_summary

    try:
        summary = session_summary(args.path)
    except StorageError as exc:
        print(f"dcpool session show: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    kind = summary.get("login_kind") or ("none" if summary.get("user_id") is None else "unknown")
    console.print(f"[bold]{summary.get('path')}[/]: mode={summary.get('mode')} "
                  f"home_dc={summary.get('home_dc')} user_id={summary.get('user_id')} "
                  f"login={kind} schema v{summary.get('schema_version')}", highlight=False)
    table = Table(title="auth keys per DC (key material never shown)")
    for col in ("DC", "key id", "created", "authorized user", "salt"):
        table.add_column(col)
    for dc in summary.get("dcs", []):
        table.add_row(str(dc["dc_id"]), str(dc["key_id"]), str(dc.get("created_at")),
                      str(dc.get("authorized_user_id")), "yes" if dc.get("has_salt") else "no")
    console.print(table)
    cfg = summary.get("config")
    console.print(f"config: {cfg if cfg else 'none stored'}")
    return 0


# --------------------------------------------------------------------------- login


def _configure_login(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Sign in and write a session file: interactively with a phone number, its login code "
        "and the cloud password (typed without echo) if the account has one; or --qr, which "
        "shows a QR code to scan from a signed-in app; or --bot-token.  Against Telegram "
        "(--api-id/--api-hash) or an emulator started in-process (--emulator)."
    )
    p.add_argument("session", help="session file to write (SQLite, created 0600)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--emulator", action="store_true",
                        help="sign in to an emulated cluster started in this process")
    target.add_argument("--api-id", type=int, help="your api_id (Telegram)")
    p.add_argument("--api-hash", help="your api_hash (Telegram)")
    p.add_argument("--test-mode", action="store_true", help="Telegram's test DCs")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--qr", action="store_true", help="log in by QR code")
    how.add_argument("--bot-token", metavar="TOKEN", help="log in as a bot")
    p.add_argument("--phone", help="phone number (asked if missing)")
    emu = p.add_argument_group("with --emulator")
    _configure_emulator_accounts(emu)  # type: ignore[arg-type]
    emu.add_argument("--accept-qr-as", metavar="PHONE",
                     help="let PHONE's account (signed in elsewhere) accept the QR code shown")


@command("login", "sign in (phone + code + 2FA, QR code, or bot token); writes a session file",
         _configure_login)
def _cmd_login(args) -> int:
    import trio

    from .errors import DcPoolError, RpcError

    if args.emulator:
        if args.bot and args.bot_token:
            args._parser.error("--bot creates the bot to log in as: do not give --bot-token too")
        args.dcs = (1, 2, 3, 4, 5)
        _check_emulated(args)
    elif not args.api_hash:
        args._parser.error("--api-id needs --api-hash")
    elif args.password or args.bot or args.accept_qr_as:
        args._parser.error("--password, --bot and --accept-qr-as need --emulator")
    try:
        trio.run(_login_main, args)
    except RpcError as exc:
        print(f"dcpool login: {exc.code} {exc.message}", file=sys.stderr)
        return 1
    except DcPoolError as exc:
        print(f"dcpool login: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("\ndcpool login: cancelled", file=sys.stderr)
        return 130
    return 0


def _show_qr(url: str, out: Any) -> None:
    import segno

    out.write("Scan this with a Telegram app that is signed in (Settings > Devices > Link "
              "Desktop Device):\n")
    segno.make(url, error="l").terminal(out=out, compact=True)
    out.write(f"{url}\n")
    out.flush()


async def _login_main(args: argparse.Namespace, out: Any = None) -> None:
    import functools
    import getpass
    from contextlib import AsyncExitStack

    import trio

    from . import login
    from .errors import LocalProtocolError
    from .pool import open_pool

    out = out or sys.stdout

    def ask(prompt: str) -> Any:
        return trio.to_thread.run_sync(input, prompt)

    async def ask_password(hint: str) -> str:
        prompt = f"Password (hint: {hint}): " if hint else "Password: "
        return await trio.to_thread.run_sync(getpass.getpass, prompt)

    async with AsyncExitStack() as stack:
        cluster = None
        if args.emulator:
            from .testing import open_cluster

            cluster = await stack.enter_async_context(open_cluster())
            bots = setup_emulator_accounts(cluster, args)
            if bots:
                args.bot_token = bots[0].token
                out.write(f"emulator: bot {bots[0].user_id} on DC {bots[0].dc_id}\n")
            pool_kwargs: dict[str, Any] = dict(api_id=1, api_hash="dcpool", dc_list=cluster.dc_list(),
                                               rsa_keys=cluster.rsa_keys())
        else:
            pool_kwargs = dict(api_id=args.api_id, api_hash=args.api_hash, test_mode=args.test_mode)
        pool = await stack.enter_async_context(open_pool(storage=args.session, **pool_kwargs))
        if pool.user_id is not None:
            await login.log_out(pool)
        if args.bot_token:
            user = await login.sign_in_bot(pool, args.bot_token)
        elif args.qr:
            accept = None
            if cluster is not None and args.accept_qr_as:
                accepter = cluster.world.user_by_phone(args.accept_qr_as.lstrip("+"))
                if accepter is None:
                    raise LocalProtocolError(f"no account with the number {args.accept_qr_as}")
                accept = functools.partial(cluster.accept_login_token, user=accepter.id)
            qr = login.qr_login(pool, password=ask_password)
            async for url in qr:
                _show_qr(url, out)
                if accept is not None:
                    accept(url)
            user = qr.user
        else:
            phone = args.phone or (await ask("Phone number: ")).strip()

            async def ask_code(sent: Any) -> str:
                if cluster is not None:
                    digits = phone.lstrip("+")
                    home = cluster.world.user_by_phone(digits)
                    dc = home.home_dc if home is not None else cluster.world.nearest_dc
                    out.write(f"emulator: the code is {cluster.world.login_code(digits, dc)}\n")
                    out.flush()
                return (await ask("Code: ")).strip()

            user = await login.sign_in(pool, phone, code=ask_code, password=ask_password)
        kind = "bot" if getattr(user, "bot", False) else "user"
        name = " ".join(filter(None, [user.first_name, user.last_name])) or str(user.id)
        out.write(f"Signed in as {name} ({kind} {user.id}) on DC {pool.home_dc}; "
                  f"session written to {args.session}\n")
        out.flush()


# --------------------------------------------------------------------------- session import/export
# (issue 19: `dcpool session import` / `dcpool session export`; the logic is dcpool.sessions)


def configure_session_transfer(ssub: Any) -> None:
    imp = ssub.add_parser(
        "import",
        help="import a Telethon / Pyrogram / kurigram / pyrofork login into a NEW dcpool session",
        description="Import the home DC, its auth key and the user (and test mode where known) "
                    "from a Telethon .session file or StringSession, or a Pyrogram-family .session "
                    "file or session string, into a new dcpool session file (never overwritten).",
    )
    src = imp.add_mutually_exclusive_group(required=True)
    src.add_argument("path", nargs="?", help="the other library's .session file")
    src.add_argument("--string", help="a Telethon StringSession or a Pyrogram session string")
    imp.add_argument("--session", required=True, help="the dcpool session file to create")
    imp.add_argument("--test-mode", action="store_true", help="the login is on Telegram's test DCs")
    imp.add_argument("--user-id", type=int, help="the user id, for formats that do not record it (Telethon)")
    imp.add_argument("--api-id", type=int, help="with --api-hash: ask Telegram who the login is")
    imp.add_argument("--api-hash")
    imp.set_defaults(_run=_cmd_session_import)
    exp = ssub.add_parser(
        "export",
        help="print the home login of a dcpool session as a Telethon or Pyrogram session string",
    )
    exp.add_argument("path", help="the dcpool session file")
    exp.add_argument("--format", required=True, choices=["telethon", "pyrogram"])
    exp.add_argument("--address", help="HOST:PORT of the home DC (Telethon; default: built-in)")
    exp.add_argument("--api-id", type=int, help="the api_id to record (Pyrogram)")
    exp.set_defaults(_run=_cmd_session_export)


def _cmd_session_import(args: argparse.Namespace) -> int:
    import os

    from . import sessions
    from .errors import DcPoolError
    from .storage import SqliteStorage

    name = "dcpool session import"
    if os.path.lexists(args.session):
        print(f"{name}: {args.session} exists: refusing to overwrite it", file=sys.stderr)
        return 2
    try:
        foreign = sessions.load_session(args.path, string=args.string)
    except DcPoolError as exc:
        print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    can_identify = args.api_id is not None and args.api_hash is not None
    if foreign.user_id is None and args.user_id is None and not can_identify:
        print(f"{name}: a {foreign.source} session does not record its user: pass --user-id N, "
              "or --api-id and --api-hash to ask Telegram", file=sys.stderr)
        return 2
    mode = "test" if (foreign.test_mode if foreign.test_mode is not None else args.test_mode) else "prod"
    if foreign.test_mode is not None and args.test_mode and not foreign.test_mode:
        print(f"{name}: --test-mode given, but the session is a production session", file=sys.stderr)
        return 2
    storage = SqliteStorage(args.session, mode)
    try:
        sessions.import_session(foreign, storage, user_id=args.user_id)
        if storage.get_user_id() is None:
            import trio

            trio.run(lambda: sessions.identify_user(storage, api_id=args.api_id, api_hash=args.api_hash))
    except (DcPoolError, OSError) as exc:
        storage.close()
        for suffix in ("", "-wal", "-shm"):  # ours: created above, never someone else's
            try:
                os.unlink(f"{args.session}{suffix}")
            except FileNotFoundError:
                pass
        print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(f"imported {foreign.source} session: home DC {storage.get_home_dc()}, "
          f"user {storage.get_user_id()}, {mode} mode -> {args.session}")
    storage.close()
    return 0


def _cmd_session_export(args: argparse.Namespace) -> int:
    from . import sessions
    from .errors import DcPoolError

    address = None
    if args.address:
        host, _, port = args.address.rpartition(":")
        if not host or not port.isdigit():
            print(f"dcpool session export: --address wants HOST:PORT, got {args.address!r}", file=sys.stderr)
            return 2
        address = (host.strip("[]"), int(port))
    try:
        text = sessions.export_session(args.path, args.format, address=address, api_id=args.api_id)
    except DcPoolError as exc:
        print(f"dcpool session export: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


# --------------------------------------------------------------------------- bench


def _configure_bench(p: argparse.ArgumentParser) -> None:
    p.description = ("Run the benchmarks of tools/bench.py (dcpool vs Telethon on the emulator); "
                     "arguments after 'bench' are passed through (try: dcpool bench -- --help).")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for tools/bench.py")


@command("bench", "run tools/bench.py: dcpool vs Telethon on the emulator", _configure_bench)
def _cmd_bench(args) -> int:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "tools" / "bench.py"
    if not path.exists():
        print("dcpool bench: tools/bench.py is only in a source checkout", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location("dcpool_tools_bench", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the path exists (checked above)
        print(f"dcpool bench: cannot load {path}", file=sys.stderr)
        return 2
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bench_args = [a for a in args.bench_args if a != "--"] if args.bench_args[:1] == ["--"] else args.bench_args
    return module.main(bench_args)


# --------------------------------------------------------------------------- bridge (dcpool/bridge/cli.py)


def _configure_bridge(p: argparse.ArgumentParser) -> None:
    from .bridge.cli import configure

    configure(p)


@command("bridge", "serve accounts' updates to webhooks, Pusher WebSockets and SSE", _configure_bridge)
def _cmd_bridge(args) -> int:
    from .bridge.cli import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
