"""DcTable: builtin start, replaced (not merged) by a fetched config, never across networks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from dcpool.dcs import DcOption, DcTable, EndpointPolicy, builtin_dc_options
from dcpool.errors import ConfigError, UnknownDc


def tl_option(dc: int, ip: str, port: int = 443, **flags: Any) -> SimpleNamespace:
    fields: dict[str, Any] = dict(
        id=dc, ip_address=ip, port=port, ipv6=":" in ip, media_only=False, tcpo_only=False,
        cdn=False, static=False, this_port_only=False, secret=None,
    )
    fields.update(flags)
    return SimpleNamespace(**fields)


def config(options: list[SimpleNamespace], **fields: Any) -> SimpleNamespace:
    base: dict[str, Any] = dict(
        date=1_700_000_000, expires=1_700_003_600, test_mode=False, this_dc=2,
        force_try_ipv6=False, dc_options=options,
    )
    base.update(fields)
    return SimpleNamespace(**base)


def test_builtin_table() -> None:
    prod = DcTable.builtin(test_mode=False)
    assert prod.source == "builtin" and not prod.test_mode
    assert prod.dc_ids() == [1, 2, 3, 4, 5]
    assert list(prod.options) == builtin_dc_options(False)
    assert prod.knows(5) and not prod.knows(6)
    assert prod.is_expired(now=0.0)  # no config yet: fetch one
    test = DcTable.builtin(test_mode=True)
    assert test.dc_ids() == [1, 2, 3] and test.test_mode
    assert "production" in repr(prod) and "test" in repr(test)


def test_config_replaces_the_builtin_list_entirely() -> None:
    table = DcTable.builtin(test_mode=False)
    changed = table.apply_config(
        config([tl_option(1, "127.0.0.1", 20001), tl_option(2, "127.0.0.1", 20002)])
    )
    # DCs the config lacks are gone: Telegram's config is authoritative, and keeping the
    # builtin DC 3-5 would send an emulator's client to the real Telegram
    assert table.dc_ids() == [1, 2]
    assert changed == {1, 2, 3, 4, 5}
    assert table.options_for(3) == ()
    with pytest.raises(UnknownDc):
        EndpointPolicy(table).candidates(4)
    assert EndpointPolicy(table).candidates(2) == [
        DcOption(id=2, ip_address="127.0.0.1", port=20002)
    ]
    assert table.source == "config"
    assert (table.config_date, table.config_expires, table.this_dc) == (
        1_700_000_000, 1_700_003_600.0, 2,
    )
    assert not table.is_expired(now=1_700_003_599.0)
    assert table.is_expired(now=1_700_003_600.0)


def test_config_reports_only_changed_dcs_and_bumps_generation() -> None:
    table = DcTable.builtin(test_mode=True)
    base = [tl_option(1, "10.0.0.1"), tl_option(2, "10.0.0.2"), tl_option(3, "10.0.0.3")]
    table.apply_config(config(base, test_mode=True))
    gen = table.generation
    changed = table.apply_config(
        config(
            [tl_option(1, "10.0.0.1"), tl_option(2, "10.0.0.22"), tl_option(3, "10.0.0.3")],
            test_mode=True,
        )
    )
    assert changed == {2}
    assert table.generation == gen + 1
    assert table.apply_config(config(base[:2], test_mode=True)) == {2, 3}


def test_config_order_is_kept() -> None:
    table = DcTable.builtin(test_mode=False)
    table.apply_config(config([tl_option(2, "10.0.0.9"), tl_option(2, "10.0.0.1")]))
    assert [o.ip_address for o in table.options_for(2)] == ["10.0.0.9", "10.0.0.1"]


def test_force_try_ipv6_is_recorded() -> None:
    table = DcTable.builtin(test_mode=False)
    table.apply_config(
        config([tl_option(2, "10.0.0.1"), tl_option(2, "2001:db8::1")], force_try_ipv6=True)
    )
    assert table.force_try_ipv6
    assert EndpointPolicy(table).candidates(2)[0].ipv6


@pytest.mark.parametrize("ours", [False, True])
def test_config_from_the_other_network_is_refused(ours: bool) -> None:
    table = DcTable.builtin(test_mode=ours)
    before = table.options
    with pytest.raises(ConfigError, match="cannot update"):
        table.apply_config(config([tl_option(2, "10.0.0.1")], test_mode=not ours))
    assert table.options == before and table.source == "builtin" and table.generation == 0


def test_config_without_usable_endpoints_is_refused() -> None:
    table = DcTable.builtin(test_mode=False)
    with pytest.raises(ConfigError):
        table.apply_config(config([]))
    with pytest.raises(ConfigError):
        table.apply_config(config([tl_option(203, "10.2.0.3", cdn=True)]))
    with pytest.raises(ConfigError):  # every entry malformed: skipped, then nothing is left
        table.apply_config(config([tl_option(2, "10.0.0.1", port=0)]))
    assert table.source == "builtin" and table.dc_ids() == [1, 2, 3, 4, 5]


def test_cdn_dcs_are_listed_apart() -> None:
    table = DcTable(
        [DcOption(id=2, ip_address="10.0.0.2", port=443),
         DcOption(id=203, ip_address="10.2.0.3", port=443, cdn=True)],
        test_mode=False,
    )
    assert table.dc_ids() == [2]
    assert table.dc_ids(cdn=True) == [203]


def test_custom_table_and_replace_options() -> None:
    table = DcTable([DcOption(id=1, ip_address="127.0.0.1", port=1)], test_mode=True)
    assert table.source == "custom"
    changed = table.replace_options([DcOption(id=2, ip_address="127.0.0.1", port=2)])
    assert changed == {1, 2}
    assert table.dc_ids() == [2]
    with pytest.raises(ConfigError):
        table.replace_options([])
    assert table.dc_ids() == [2]
