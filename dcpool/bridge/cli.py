"""``dcpool bridge``: configuration (TOML + flags) and the process around :func:`open_bridge`.

TOML (every key optional; flags override)::

    outbox = "bridge.db"              # or "postgresql://user@host/db" for a fleet
    host = "127.0.0.1"                # loopback by default
    port = 8080
    api_token = "..."                 # bearer for /pusher/auth and /events
    pusher_key = "dcpool"
    pusher_secret = "..."
    lease_ttl = 15
    [[webhooks]]
    url = "http://127.0.0.1:9000/hook"
    name = "default"
    secret_token = "abc"
    signing_secret = "..."
    allowed_updates = ["message", "messageStatus"]
    max_connections = 40
    ttl = 86400
    [[accounts]]
    name = "main"
    session = "main.session"          # a session file (needs the updates manager, dcpool.updates)
    api_id = 12345
    api_hash = "..."

``--emulator`` runs one account on an emulator of its own (a ``dcpool emulator`` child process;
with ``--emulator-info``, on an external ``dcpool emulator --json`` instead) with the real updates manager, and a contact (a second
client) that writes to it through MTProto: ``--simulate N`` messages (0 = no contact; default
forever), ``--interval`` s apart; so webhooks and the feed can be watched with one command.
``[[accounts]]`` entries may also name ``emulator_info`` (that file) and ``phone`` (a reserved
test number to sign in with when the session file is not signed in yet).  ``--ready-json`` prints one JSON line (port, token, pusher key/secret,
channels) once listening, for programs and tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["configure", "run", "load_config"]

log = logging.getLogger("dcpool.bridge.cli")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML configuration file")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default 8080, 0 = any)")
    p.add_argument("--outbox", help="SQLite path or postgresql:// DSN (default bridge.db)")
    p.add_argument("--api-token", help="bearer token for /pusher/auth and /events")
    p.add_argument("--pusher-key")
    p.add_argument("--pusher-secret")
    p.add_argument("--webhook", action="append", default=[], metavar="URL", help="deliver events to URL (repeatable)")
    p.add_argument("--webhook-secret-token")
    p.add_argument("--webhook-signing-secret")
    p.add_argument("--webhook-max-connections", type=int)
    p.add_argument("--webhook-retry-unit", type=float, help=argparse.SUPPRESS)
    p.add_argument("--emulator", action="store_true",
                   help="demo: an account on the embedded emulator, and a contact writing to it")
    p.add_argument("--emulator-info", metavar="INFO_JSON",
                   help="with --emulator: use the external emulator described by this file "
                        "(the first line of `dcpool emulator --json`) instead of an embedded one")
    p.add_argument("--session", help="with --emulator: the account's session file (default: memory)")
    p.add_argument("--phone", help="with --emulator: the reserved test number to sign in with")
    p.add_argument("--simulate", type=int, default=None, metavar="N",
                   help="with --emulator: the contact sends N messages (0 = no contact; default: forever); "
                        "with --fleet-simulated alone: N simulated updates per account")
    p.add_argument("--interval", type=float, default=1.0, help="with --emulator: seconds between messages")
    p.add_argument("--account", default="demo", help="with --emulator: the account name")
    p.add_argument("--fleet-simulated", type=int, default=0, metavar="N",
                   help="fleet: N accounts (sim000...) shared by every bridge on the same outbox, under "
                        "leases; alone, each is fed by a deterministic simulated source (no emulator)")
    p.add_argument("--fleet-emulator", metavar="INFO_JSON",
                   help="with --fleet-simulated: each account is a real pool (session in the PostgreSQL "
                        "outbox database) with the real updates manager, signed in on the emulator "
                        "described by this file (the first line of `dcpool emulator --json`)")
    p.add_argument("--lease-ttl", type=float, help="fleet lease TTL in seconds (default 15)")
    p.add_argument("--owner", help="this process's name in the fleet (default: random)")
    p.add_argument("--ready-json", action="store_true", help="print one JSON line once listening")


def load_config(args: argparse.Namespace) -> tuple[Any, list[dict[str, Any]]]:
    from .app import BridgeConfig  # noqa: PLC0415
    from .webhook import WebhookConfig  # noqa: PLC0415

    data: dict[str, Any] = {}
    if args.config:
        with open(args.config, "rb") as fh:
            data = tomllib.load(fh)
    hooks = []
    for h in data.get("webhooks", []):
        h = dict(h)
        if "allowed_updates" in h:
            h["allowed_updates"] = frozenset(h["allowed_updates"])
        hooks.append(WebhookConfig(**h))
    for i, url in enumerate(args.webhook):
        hooks.append(WebhookConfig(
            url=url, name=f"cli{i}" if i else "cli", secret_token=args.webhook_secret_token,
            signing_secret=args.webhook_signing_secret,
            max_connections=args.webhook_max_connections or 40,
            retry_unit=args.webhook_retry_unit or 1.0))
    accounts = [dict(a) for a in data.get("accounts", [])]
    if args.emulator:
        accounts.append({"name": args.account, "emulator": True})
    fields = {k: data[k] for k in ("outbox", "host", "port", "api_token", "pusher_key", "pusher_secret",
                                   "activity_timeout", "lease_ttl", "owner") if k in data}
    for flag in ("host", "port", "outbox", "api_token", "pusher_key", "pusher_secret", "lease_ttl", "owner"):
        value = getattr(args, flag)
        if value is not None:
            fields[flag] = value
    fleet = [f"sim{i:03d}" for i in range(getattr(args, "fleet_simulated", 0) or 0)]
    config = BridgeConfig(webhooks=tuple(hooks), accounts=tuple(a["name"] for a in accounts) + tuple(fleet),
                          **fields)
    return config, accounts


async def serve(args: argparse.Namespace) -> None:
    import trio  # noqa: PLC0415

    from .app import open_bridge  # noqa: PLC0415
    from .pusher import account_channel  # noqa: PLC0415

    config, accounts = load_config(args)
    async with open_bridge(config) as bridge:
        info = {"port": bridge.port, "host": config.host, "api_token": bridge.api_token,
                "pusher_key": config.pusher_key, "pusher_secret": bridge.pusher_secret,
                "channels": {a["name"]: account_channel(a["name"]) for a in accounts}}
        if args.ready_json:
            print(json.dumps(info), flush=True)
        else:
            print(f"dcpool bridge on http://{config.host}:{bridge.port}/", flush=True)
            if config.api_token is None:
                # shown once on the operator's terminal (never logged): needed for /events and
                # /pusher/auth; pass --api-token or api_token in the TOML file to choose it
                print(f"generated API token: {bridge.api_token}", flush=True)
        async with trio.open_nursery() as nursery:
            if args.fleet_simulated:
                names = [n for n in config.accounts if n.startswith("sim")]
                if args.fleet_emulator:
                    with open(args.fleet_emulator) as fh:
                        info = json.loads(fh.readline())
                    nursery.start_soon(bridge.run_fleet, names,
                                       lambda name, lease: run_emulator_fleet_account(bridge, name, lease, args, info))
                else:
                    nursery.start_soon(bridge.run_fleet, names,
                                       lambda name, lease: run_simulated_fleet_account(bridge, name, lease, args))
            for account in accounts:
                if account.get("emulator"):
                    nursery.start_soon(run_emulator_account, bridge, account["name"], args)
                else:
                    nursery.start_soon(run_session_account, bridge, account)


async def run_emulator_account(bridge: Any, name: str, args: argparse.Namespace) -> None:
    """``--emulator``: one account on the embedded (or ``--emulator-info``) emulator, with the
    real updates manager, and a contact writing to it (:mod:`dcpool.bridge.emulated`)."""
    from .emulated import load_emulator_info, read_emulator_info, run_emulator_account as run  # noqa: PLC0415

    options = dict(storage=args.session, phone=args.phone, contact_messages=args.simulate,
                   interval=args.interval)
    if args.emulator_info:
        await run(bridge, name, read_emulator_info(args.emulator_info), **options)
    else:
        async with spawn_emulator() as info:
            await run(bridge, name, load_emulator_info(info), **options)


@asynccontextmanager
async def spawn_emulator() -> AsyncIterator[dict[str, Any]]:
    """``dcpool emulator --json --control`` as a child process; yields its description.

    A child rather than a cluster in this process: the bridge's package does not import
    ``dcpool.testing``, and the emulator outlives nothing: it stops at the end of its stdin,
    which closes with this block or with this process, even on kill -9."""
    import subprocess  # noqa: PLC0415

    import trio  # noqa: PLC0415

    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "dcpool.cli", "emulator", "--json", "--control"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        line = b""
        while not line.endswith(b"\n"):
            chunk = await proc.stdout.receive_some(65536)
            if not chunk:
                raise OSError("the embedded emulator exited before it was ready")
            line += chunk
        yield json.loads(line.split(b"\n")[0])
    finally:
        with trio.CancelScope(shield=True):
            await proc.stdin.aclose()  # end of stdin: the emulator stops
            with trio.move_on_after(5):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def run_simulated_fleet_account(bridge: Any, name: str, lease: Any, args: argparse.Namespace) -> None:
    """One fleet account fed by a deterministic simulated source (no emulator: the fleet
    machinery alone), resuming from the outbox's state row and writing under the lease epoch
    (a stale writer is fenced off)."""
    from ..updates import UpdatesState  # noqa: PLC0415
    from .memsource import SimulatedContactSource  # noqa: PLC0415

    saved = await bridge.outbox.load_state(name)
    start = UpdatesState.from_json(saved) if saved else None
    source = SimulatedContactSource(start, count=args.simulate, interval=args.interval)
    await bridge.run_account(name, source, epoch=lease.epoch)


def fleet_phone(name: str, dc_ids: list[int]) -> tuple[str, str]:
    """The emulator's reserved test number of fleet account ``simNNN`` and its login code:
    ``99966XYYYY`` lives on DC X and its code is ``XXXXX`` (spec §12.3)."""
    from .emulated import reserved_phone  # noqa: PLC0415

    index = int(name[3:])
    return reserved_phone(dc_ids[index % len(dc_ids)], index)


async def run_emulator_fleet_account(bridge: Any, name: str, lease: Any, args: argparse.Namespace,
                                     info: dict[str, Any]) -> None:
    """One fleet account as a real pool on an external emulator, with the real updates
    manager.  Its session (auth keys, salts, authorization) lives in the fleet's PostgreSQL
    database, written under the lease epoch, so whichever process holds the lease continues
    the same session: the account signs in once per fleet, not once per process (a
    ``pool.signed_in`` event records each sign-in).  Its update state is the outbox's row, so
    the new holder resumes by getDifference where the old one's last durable event was."""
    import functools  # noqa: PLC0415

    import trio  # noqa: PLC0415

    from ..storage.postgres import PostgresStorage  # noqa: PLC0415
    from .emulated import load_emulator_info, run_emulator_account as run  # noqa: PLC0415
    from .events import NewEvent  # noqa: PLC0415

    target = load_emulator_info(info)
    phone, _code = fleet_phone(name, list(target.dc_ids))

    def open_store() -> PostgresStorage:
        store = PostgresStorage(bridge.config.outbox, name, "prod", epoch=lease.epoch)
        if store.get_home_dc() is None:
            store.set_home_dc(2)  # here, on a worker thread: open_pool would write it on the loop
        return store

    async def signed_in(pool: Any, user: Any) -> None:
        await bridge.outbox.append(name, [NewEvent(
            "dcpool:event", "pool.signed_in", None, f"signed_in:{lease.epoch}",
            {"type": "signed_in", "userId": user.id, "homeDc": pool.home_dc,
             "owner": bridge.owner})], epoch=lease.epoch)

    store = await trio.to_thread.run_sync(open_store)
    try:
        await run(bridge, name, target, storage=store, phone=phone, epoch=lease.epoch,
                  on_signed_in=signed_in)
    finally:
        await trio.to_thread.run_sync(functools.partial(_close_quietly, store))


def _close_quietly(store: Any) -> None:
    try:
        store.close()
    except Exception:  # noqa: BLE001  (a broken connection: nothing left to close)
        log.debug("closing a fleet session storage failed", exc_info=True)


async def run_session_account(bridge: Any, account: dict[str, Any]) -> None:
    """A real account from a session file, with the real updates manager.  With
    ``emulator_info`` (the first line of ``dcpool emulator --json``) it runs on that emulator
    and signs in with ``phone`` (a reserved test number) if the session is not signed in."""
    from ..pool import open_pool  # noqa: PLC0415
    from .source import open_account_updates  # noqa: PLC0415

    if account.get("emulator_info"):
        from .emulated import read_emulator_info, run_emulator_account as run  # noqa: PLC0415

        await run(bridge, account["name"], read_emulator_info(str(account["emulator_info"])),
                  storage=account.get("session"), phone=account.get("phone"))
        return
    async with open_pool(api_id=int(account["api_id"]), api_hash=str(account["api_hash"]),
                         storage=account.get("session")) as pool:
        import trio  # noqa: PLC0415

        async with trio.open_nursery() as nursery:
            nursery.start_soon(bridge.watch_pool, account["name"], pool)
            async with open_account_updates(pool, bridge.outbox, account["name"]) as stream:
                await bridge.run_account(account["name"], stream)
            nursery.cancel_scope.cancel()


def run(args: argparse.Namespace) -> int:
    import signal  # noqa: PLC0415

    import trio  # noqa: PLC0415

    async def main() -> None:
        # The receiver stays open until everything is closed: SIGINT/SIGTERM mean "stop
        # cleanly" for the whole shutdown, not only for its first instant.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                async def on_signals() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(on_signals)
                await serve(args)
                nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except KeyboardInterrupt:  # a SIGINT before the receiver was installed
        return 0
    except (ValueError, OSError, tomllib.TOMLDecodeError) as exc:
        print(f"dcpool bridge: {exc}", file=sys.stderr)
        return 2
    return 0
