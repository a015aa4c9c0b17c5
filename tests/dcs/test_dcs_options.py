"""DcOption, reading options from TL-shaped objects, and the built-in lists (spec §11.1, §15, §16)."""

from __future__ import annotations

import ipaddress
import logging
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import attrs
import pytest

from dcpool.dcs import (
    PRODUCTION_DCS,
    TEST_DCS,
    DcOption,
    builtin_dc_options,
    dc_options_from_config,
)
from dcpool.errors import ConfigError


def tl_option(**fields: Any) -> SimpleNamespace:
    """A stand-in for a TL dcOption object: the same attribute names, flags default False."""
    base: dict[str, Any] = dict(
        id=2, ip_address="149.154.167.51", port=443, ipv6=False, media_only=False,
        tcpo_only=False, cdn=False, static=False, this_port_only=False, secret=None,
    )
    base.update(fields)
    return SimpleNamespace(**base)


# --------------------------------------------------------------------------- DcOption


def test_from_tl_copies_every_field() -> None:
    obj = tl_option(
        id=4, ip_address="2001:67c:4e8:f004::b", port=5222, ipv6=True, media_only=True,
        tcpo_only=True, cdn=False, static=True, this_port_only=True, secret=b"\x01" * 16,
    )
    opt = DcOption.from_tl(obj)
    assert opt == DcOption(
        id=4, ip_address="2001:67c:4e8:f004::b", port=5222, ipv6=True, media_only=True,
        tcpo_only=True, static=True, this_port_only=True, secret=b"\x01" * 16,
    )
    assert opt.endpoint == ("2001:67c:4e8:f004::b", 5222)


def test_from_tl_defaults_missing_flags_to_false() -> None:
    obj = SimpleNamespace(id=1, ip_address="127.0.0.1", port=10443)  # flags/secret absent
    opt = DcOption.from_tl(obj)
    assert not any(getattr(opt, f) for f in ("ipv6", "media_only", "tcpo_only", "cdn", "static"))
    assert opt.secret is None


def test_from_tl_rejects_non_options() -> None:
    with pytest.raises(ConfigError, match="lacks"):
        DcOption.from_tl(SimpleNamespace(id=1, port=443))
    with pytest.raises(ConfigError, match="secret"):
        DcOption.from_tl(tl_option(secret="not bytes"))


def test_from_real_tl_object_if_available() -> None:
    api = pytest.importorskip("dcpool.tl").api
    try:
        cls = api.DcOption
    except Exception:  # the TL package may not be built yet in this checkout
        pytest.skip("dcpool.tl.api.DcOption not available")
    obj = cls(id=3, ip_address="149.154.175.100", port=443, static=True)
    assert DcOption.from_tl(obj) == DcOption(
        id=3, ip_address="149.154.175.100", port=443, static=True
    )


@pytest.mark.parametrize("port", [0, -1, 65536, "443", True])
def test_bad_port_is_a_config_error(port: object) -> None:
    with pytest.raises(ConfigError):
        DcOption(id=1, ip_address="1.2.3.4", port=port)  # type: ignore[arg-type]


def test_ipv6_flag_must_match_the_address() -> None:
    with pytest.raises(ConfigError):
        DcOption(id=1, ip_address="2001:db8::1", port=443)
    with pytest.raises(ConfigError):
        DcOption(id=1, ip_address="1.2.3.4", port=443, ipv6=True)
    with pytest.raises(ConfigError):
        DcOption(id=1, ip_address="", port=443)
    with pytest.raises(ConfigError):
        DcOption(id="1", ip_address="1.2.3.4", port=443)  # type: ignore[arg-type]
    # host names are allowed (the dialer resolves them)
    assert DcOption(id=1, ip_address="localhost", port=443).ip_address == "localhost"


def test_option_is_frozen_hashable_and_hides_its_secret() -> None:
    secret = bytes(range(16))
    opt = DcOption(id=2, ip_address="::1", port=80, ipv6=True, tcpo_only=True, secret=secret)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        opt.port = 81  # type: ignore[misc]
    assert {opt, opt} == {opt}
    text = repr(opt)
    assert secret.hex() not in text and repr(secret) not in text
    assert "16 bytes hidden" in text and "tcpo_only" in text and "[::1]:80" in text
    assert opt.requires_obfuscation


def test_requires_obfuscation() -> None:
    assert not DcOption(id=1, ip_address="1.2.3.4", port=443).requires_obfuscation
    assert DcOption(id=1, ip_address="1.2.3.4", port=443, tcpo_only=True).requires_obfuscation
    assert DcOption(id=1, ip_address="1.2.3.4", port=443, secret=b"k" * 16).requires_obfuscation


def test_dc_options_from_config_keeps_order_and_skips_bad_entries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = SimpleNamespace(
        dc_options=[
            tl_option(id=1, ip_address="10.0.0.1"),
            tl_option(id=1, ip_address="10.0.0.2", port=0),  # bad port
            tl_option(id=2, ip_address="2001:db8::2", ipv6=True),
            tl_option(id=3, ip_address="2001:db8::3", ipv6=False),  # flag mismatch
            tl_option(id=4, ip_address="10.0.0.4", media_only=True),
        ]
    )
    caplog.set_level(logging.WARNING, logger="dcpool.dcs")
    options = dc_options_from_config(config)
    assert [(o.id, o.ip_address) for o in options] == [
        (1, "10.0.0.1"), (2, "2001:db8::2"), (4, "10.0.0.4"),
    ]
    assert len([r for r in caplog.records if "bad dcOption" in r.getMessage()]) == 2
    with pytest.raises(ConfigError):
        dc_options_from_config(SimpleNamespace(date=1))


# --------------------------------------------------------------------------- built-in lists


def by_dc(options: list[DcOption]) -> dict[int, list[DcOption]]:
    out: dict[int, list[DcOption]] = {}
    for o in options:
        out.setdefault(o.id, []).append(o)
    return out


def test_production_list_matches_spec_16() -> None:
    options = builtin_dc_options(test_mode=False)
    ipv4 = {dc: [o.ip_address for o in opts if not o.ipv6] for dc, opts in by_dc(options).items()}
    ipv6 = {dc: [o.ip_address for o in opts if o.ipv6] for dc, opts in by_dc(options).items()}
    # tdlib / tdesktop IPv4 (spec §16, decision of §18.7), DC 2's second address after its first
    assert ipv4 == {
        1: ["149.154.175.50"],
        2: ["149.154.167.51", "95.161.76.100"],
        3: ["149.154.175.100"],
        4: ["149.154.167.91"],
        5: ["149.154.171.5"],
    }
    assert ipv6 == {
        1: ["2001:b28:f23d:f001::a"],
        2: ["2001:67c:4e8:f002::a"],
        3: ["2001:b28:f23d:f003::a"],
        4: ["2001:67c:4e8:f004::a"],
        5: ["2001:b28:f23f:f005::a"],
    }
    assert {o.port for o in options} == {443}
    assert not any(o.media_only or o.cdn or o.tcpo_only or o.secret for o in options)


def test_test_list_matches_spec_15() -> None:
    options = builtin_dc_options(test_mode=True)
    groups = by_dc(options)
    assert sorted(groups) == [1, 2, 3]
    expected = {
        1: ("149.154.175.10", "2001:b28:f23d:f001::e"),
        2: ("149.154.167.40", "2001:67c:4e8:f002::e"),
        3: ("149.154.175.117", "2001:b28:f23d:f003::e"),
    }
    for dc, (v4, v6) in expected.items():
        assert {(o.ip_address, o.port, o.ipv6) for o in groups[dc]} == {
            (v4, 443, False), (v4, 80, False), (v6, 443, True), (v6, 80, True),
        }
        assert groups[dc][0].port == 443  # 443 first (tdlib, tdesktop)


def test_lists_are_never_mixed() -> None:
    prod = {o.ip_address for o in builtin_dc_options(False)}
    test = {o.ip_address for o in builtin_dc_options(True)}
    assert not prod & test
    assert builtin_dc_options(False) == list(PRODUCTION_DCS)
    assert builtin_dc_options(True) == list(TEST_DCS)
    # callers get their own list
    mine = builtin_dc_options(False)
    mine.clear()
    assert builtin_dc_options(False)


def test_builtin_addresses_are_valid_and_flagged_by_family() -> None:
    for opt in (*PRODUCTION_DCS, *TEST_DCS):
        assert ipaddress.ip_address(opt.ip_address).version == (6 if opt.ipv6 else 4)


def test_pure_parts_import_no_trio_or_sockets() -> None:
    code = (
        "import sys, dcpool.dcs, dcpool.storage;"
        "print(sorted(m for m in ('trio', 'asyncio', 'socket') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
