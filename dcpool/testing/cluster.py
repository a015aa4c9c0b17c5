"""``open_cluster``: an emulated multi-DC Telegram cluster on loopback.

::

    async with dcpool.testing.open_cluster() as cluster:          # DCs 1-5 on 127.0.0.1
        f = cluster.add_file(4, size=1 << 20)                      # a document on DC 4
        async with dcpool.open_pool(..., dc_list=cluster.dc_list(),
                                    rsa_keys=cluster.rsa_keys()) as pool:
            ...
        cluster.statistics()[4].exports

All DCs share one :class:`~dcpool.testing.world.World` (accounts, files, authorizations,
faults, statistics) and one RSA key pair.  Each DC is a :class:`~dcpool.testing.server.DcServer`
with its own ServerCore (its own auth keys, as on Telegram: keys are never shared between DCs)
and its own TCP listener(s).  Every background task lives in the nursery of the
``async with`` block.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import trio

from ..crypto import Rng
from ..crypto.rsa import RsaPrivateKey, RsaPublicKey
from .files import StoredFile
from .server import DcServer, wall_clock
from .uploads import cdn_private_key, cdn_public_keys, enable_cdn_dc, serve_from_cdn
from .world import DEFAULT_DC_IDS, TEST_DC_IDS, World


def fixed_test_key() -> RsaPrivateKey:
    """The RSA-2048 key shipped with the package for reproducible emulators (never use it for
    anything but tests: its private half is public)."""
    pem = resources.files("dcpool.testing").joinpath("emulator_key.pem").read_bytes()
    return RsaPrivateKey.from_pem(pem)


class Cluster:
    """A running emulated cluster (see the module docstring)."""

    def __init__(self, world: World, private_key: RsaPrivateKey, servers: dict[int, DcServer]):
        self.world = world
        self.private_key = private_key
        self.servers = servers
        self.media_endpoints: dict[int, list[tuple[str, int]]] = {}

    def __repr__(self) -> str:
        return f"<Cluster dcs={sorted(self.servers)} test_mode={self.world.test_mode}>"

    # ------------------------------------------------------------------ what clients need

    @property
    def test_mode(self) -> bool:
        return self.world.test_mode

    def endpoint(self, dc_id: int) -> tuple[str, int]:
        """The plain (IPv4) endpoint of a DC: what Telethon's ``session.set_dc`` wants."""
        ep = self.world.dc(dc_id).ipv4
        assert ep is not None
        return ep.host, ep.port

    def dc_list(self) -> list:
        """The cluster's endpoints as :class:`dcpool.dcs.DcOption` (for ``open_pool(dc_list=)``)."""
        from ..dcs import DcOption

        return [DcOption.from_tl(opt) for opt in self.world.dc_options()]

    def rsa_public_key(self) -> RsaPublicKey:
        return self.private_key.public_key

    def rsa_keys(self) -> dict[int, RsaPublicKey]:
        """{fingerprint: key} (for ``open_pool(rsa_keys=)``)."""
        pub = self.private_key.public_key
        return {pub.fingerprint: pub}

    def cdn_rsa_keys(self) -> dict[int, RsaPublicKey]:
        """{CDN DC id: its public key}, as ``help.getCdnConfig`` publishes them."""
        return cdn_public_keys(self.world)

    def rsa_public_pem(self) -> str:
        """PKCS#1 PEM, as Telethon's ``rsa.add_key(pem, old=False)`` wants it."""
        return self.private_key.public_key.to_pkcs1_pem()

    # ------------------------------------------------------------------ world shortcuts

    def add_file(self, dc_id: int, data: bytes | None = None, *, size: int | None = None) -> StoredFile:
        return self.world.add_file(dc_id, data, size=size)

    def serve_from_cdn(self, file_id: int, cdn_dc: int | None = None) -> None:
        """Serve document ``file_id`` through a CDN DC (``open_cluster(cdn_dcs=...)``)."""
        serve_from_cdn(self.world, file_id, cdn_dc)

    def add_photo(self, dc_id: int, sizes: dict[str, bytes | int] | None = None):
        return self.world.add_photo(dc_id, sizes)

    def forget_key(self, dc_id: int, key_id: int) -> bool:
        """Make DC ``dc_id`` forget an auth key now (its next use gets −404); False if the DC
        did not know it.  ``faults(dc).forget_key()`` does the same for the next packet."""
        return self.servers[dc_id].forget_key(key_id)

    def knows_key(self, dc_id: int, key_id: int) -> bool:
        return self.servers[dc_id].core.has_key(key_id)

    def add_user(self, phone: str, dc_id: int, **kwargs: Any):
        return self.world.add_user(phone, dc_id, **kwargs)

    def move_user(self, user_id: int, dc_id: int) -> None:
        self.world.move_user(user_id, dc_id)

    # 2FA, QR login and bots live in .accounts (LOGIN.md); these are its shortcuts
    def set_password(self, phone: str, password: str | None, *, hint: str = "") -> Any:
        """Give ``phone``'s account (created if it is a test number) a cloud password."""
        from .accounts import login_state

        account = self.world.user_by_phone(phone) or self.world.add_user(phone)
        login_state(self.world).set_password(account.id, password, hint=hint)
        return account

    def add_bot(self, dc_id: int, **kwargs: Any) -> Any:
        """A bot homed on ``dc_id``; its ``.token`` is ``"<bot_id>:<secret>"``."""
        from .accounts import login_state

        return login_state(self.world).add_bot(dc_id, **kwargs)

    def accept_login_token(self, url_or_token: str | bytes, user: int | str) -> Any:
        """Accept a pending QR login as ``user`` (a user id, or a phone number such as a test
        number), as a signed-in phone would; raises RpcError like auth.acceptLoginToken."""
        from .accounts import login_state

        if isinstance(user, str):
            account = self.world.user_by_phone(user.lstrip("+"))
            if account is None:
                raise LookupError(f"no account with the number {user}")
            user = account.id
        return login_state(self.world).accept_login_token(url_or_token, user, wall_clock())

    def push_update(self, user_id: int, update: Any) -> int:
        return self.world.push_update(user_id, update, now=wall_clock())

    def faults(self, dc_id: int):
        return self.world.faults(dc_id)

    def statistics(self):
        """Frozen per-DC counters: ``cluster.statistics()[4].exports`` etc."""
        return self.world.stats_snapshot()

    def executions(self) -> dict[tuple[int, int, int, int], int]:
        """(dc, key_id, session_id, msg_id) -> times executed (duplicates show up as > 1)."""
        return {
            (dc,) + key: n
            for dc, stats in self.world.cluster_stats.by_dc.items()
            for key, n in stats.executions.items()
        }

    def drop_connections(self, dc_id: int | None = None) -> int:
        """Abruptly close live connections of one DC (or all)."""
        targets = [self.servers[dc_id]] if dc_id is not None else list(self.servers.values())
        return sum(s.drop_all_connections() for s in targets)

    def live_connections(self, dc_id: int) -> int:
        return len(self.servers[dc_id].connections)


@asynccontextmanager
async def open_cluster(
    dc_ids: Iterable[int] | None = None,
    *,
    test_mode: bool = False,
    host: str = "127.0.0.1",
    ipv6: bool = False,
    media_dcs: Sequence[int] = (),
    port_base: int | None = None,
    private_key: RsaPrivateKey | None = None,
    config_ttl: int = 3600,
    nearest_dc: int | None = None,
    latency: float = 0.0,
    rng: Rng = os.urandom,
    world: World | None = None,
    cdn_dcs: Sequence[int] = (),
) -> AsyncIterator[Cluster]:
    """Start an emulated cluster; it stops when the block exits.

    ``dc_ids`` defaults to 1–5 (1–3 with ``test_mode``).  Ports are chosen by the OS unless
    ``port_base`` is given (DC n then listens on ``port_base + n``; media endpoints on
    ``port_base + 100 + n``).  ``ipv6`` adds a ``::1`` listener per DC; ``media_dcs`` adds a
    media-only listener for those DCs.  ``private_key`` defaults to the fixed test key shipped
    with the package (key generation costs ~0.1-1 s; pass ``RsaPrivateKey.generate()`` for a
    fresh one).  ``cdn_dcs`` adds CDN DCs (e.g. ``[203]``), each with its own RSA key
    (:mod:`dcpool.testing.uploads`; clients learn the keys from ``help.getCdnConfig``).
    """
    if dc_ids is None:
        dc_ids = TEST_DC_IDS if test_mode else DEFAULT_DC_IDS
    if world is None:
        world = World(dc_ids, test_mode=test_mode, config_ttl=config_ttl, nearest_dc=nearest_dc, rng=rng)
    for dc in cdn_dcs:
        enable_cdn_dc(world, dc)
    key = private_key if private_key is not None else fixed_test_key()
    servers = {dc: DcServer(dc, world, cdn_private_key(world, dc) or key, rng=rng) for dc in world.dc_ids}
    cluster = Cluster(world, key, servers)
    for dc in world.dc_ids:
        world.faults(dc).latency = latency

    def sink(handle: Any, payload: bytes) -> None:
        handle.conn.dc.deliver_update(handle, payload)

    world.set_update_sink(sink)
    async with trio.open_nursery() as nursery:
        for dc, server in servers.items():
            port = 0 if port_base is None else port_base + dc
            h, p = await nursery.start(server.serve, host, port)
            v6 = None
            if ipv6:
                v6 = await nursery.start(server.serve, "::1", 0 if port_base is None else port_base + 50 + dc)
            media: list[tuple[str, int]] = []
            if dc in media_dcs:
                media.append(
                    await nursery.start(server.serve, host, 0 if port_base is None else port_base + 100 + dc)
                )
            cluster.media_endpoints[dc] = media
            world.set_endpoint(dc, h, p, ipv6=v6, media=media)
        try:
            yield cluster
        finally:
            world.set_update_sink(None)
            nursery.cancel_scope.cancel()
