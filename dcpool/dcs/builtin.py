"""The DC addresses we start from before any ``help.getConfig`` answer.

Production (spec §16): the tdlib / tdesktop IPv4 addresses (sources disagree on DC 1 and DC 5,
§18.7; we follow the official clients) plus the IPv6 address every client agrees on, port 443.
DC 2 also lists tdlib's second IPv4 address, after the main one.  No media-only entries: only
Pyrogram lists those, and the config brings the real ones.

Test (spec §15): DCs 1-3, IPv4 and IPv6, on port 443 (tdlib, tdesktop) and port 80 (Pyrogram;
Telethon's docs say 443 "might not work").  443 comes first.  The DC ids are the plain 1-3; the
``10000 + id`` used inside the handshake of test DCs is the handshake's business.

The two lists share no address and are never mixed: :func:`builtin_dc_options` returns one of
them, chosen by ``test_mode``.  ``help.getConfig`` is the authority; these only bootstrap.
"""

from __future__ import annotations

from .options import DcOption

__all__ = ["builtin_dc_options", "PRODUCTION_DCS", "TEST_DCS"]

# (dc_id, IPv4 addresses in order of preference, IPv6 address)
_PRODUCTION: tuple[tuple[int, tuple[str, ...], str], ...] = (
    (1, ("149.154.175.50",), "2001:b28:f23d:f001::a"),
    (2, ("149.154.167.51", "95.161.76.100"), "2001:67c:4e8:f002::a"),
    (3, ("149.154.175.100",), "2001:b28:f23d:f003::a"),
    (4, ("149.154.167.91",), "2001:67c:4e8:f004::a"),
    (5, ("149.154.171.5",), "2001:b28:f23f:f005::a"),
)
_PRODUCTION_PORTS = (443,)

_TEST: tuple[tuple[int, tuple[str, ...], str], ...] = (
    (1, ("149.154.175.10",), "2001:b28:f23d:f001::e"),
    (2, ("149.154.167.40",), "2001:67c:4e8:f002::e"),
    (3, ("149.154.175.117",), "2001:b28:f23d:f003::e"),
)
_TEST_PORTS = (443, 80)


def _build(
    table: tuple[tuple[int, tuple[str, ...], str], ...], ports: tuple[int, ...]
) -> tuple[DcOption, ...]:
    options: list[DcOption] = []
    for dc_id, ipv4s, ipv6 in table:
        for port in ports:
            options.extend(DcOption(id=dc_id, ip_address=ip, port=port) for ip in ipv4s)
            options.append(DcOption(id=dc_id, ip_address=ipv6, port=port, ipv6=True))
    return tuple(options)


PRODUCTION_DCS: tuple[DcOption, ...] = _build(_PRODUCTION, _PRODUCTION_PORTS)
TEST_DCS: tuple[DcOption, ...] = _build(_TEST, _TEST_PORTS)


def builtin_dc_options(test_mode: bool) -> list[DcOption]:
    """The built-in endpoints of the test network (``test_mode=True``) or production."""
    return list(TEST_DCS if test_mode else PRODUCTION_DCS)
