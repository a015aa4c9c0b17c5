"""EndpointPolicy and EndpointHealth: one test (or more) per rule of the dcpool.dcs docstring."""

from __future__ import annotations

import pytest

from dcpool.dcs import DcOption, DcTable, EndpointHealth, EndpointPolicy, Lane
from dcpool.errors import LocalProtocolError, UnknownDc


def opt(dc: int, ip: str, port: int = 443, **flags: object) -> DcOption:
    return DcOption(id=dc, ip_address=ip, port=port, ipv6=":" in ip, **flags)  # type: ignore[arg-type]


V4 = opt(2, "10.0.0.1")
V4B = opt(2, "10.0.0.2")
V6 = opt(2, "2001:db8::1")
MEDIA4 = opt(2, "10.0.1.1", media_only=True)
MEDIA6 = opt(2, "2001:db8::b", media_only=True)
TCPO = opt(2, "10.0.2.1", tcpo_only=True, secret=b"s" * 16)
CDN = opt(203, "10.2.3.1", cdn=True)
CDN_ON_2 = opt(2, "10.9.9.9", cdn=True)


def policy(*options: DcOption, **kwargs: object) -> EndpointPolicy:
    return EndpointPolicy(DcTable(options, test_mode=False), **kwargs)  # type: ignore[arg-type]


def ips(options: list[DcOption]) -> list[str]:
    return [o.ip_address for o in options]


# --------------------------------------------------------------------------- filter rules


def test_rule_cdn_never_on_normal_lanes() -> None:
    p = policy(V4, CDN_ON_2, CDN)
    assert p.candidates(2, lane="main") == [V4]
    assert p.candidates(2, lane="download") == [V4]
    with pytest.raises(UnknownDc) as info:
        p.candidates(203)  # a CDN-only DC is not reachable on the main lane
    assert info.value.dc_id == 203


def test_rule_cdn_lane_uses_only_cdn_endpoints() -> None:
    p = policy(V4, CDN_ON_2, CDN)
    assert p.candidates(203, lane=Lane.CDN) == [CDN]
    assert p.candidates(2, lane="cdn") == [CDN_ON_2]


def test_rule_media_only_never_on_the_main_lane() -> None:
    p = policy(MEDIA4, V4, MEDIA6, V6)
    assert MEDIA4 not in p.candidates(2) and MEDIA6 not in p.candidates(2)
    assert p.candidates(2, lane="main") == [V4, V6]


def test_rule_media_only_preferred_on_the_download_lane() -> None:
    p = policy(V4, V6, MEDIA4, MEDIA6)
    assert p.candidates(2, lane="download") == [MEDIA4, MEDIA6, V4, V6]
    assert p.candidates(2, lane="download", prefer_ipv6=True) == [MEDIA6, MEDIA4, V6, V4]


def test_rule_download_lane_falls_back_to_plain_endpoints() -> None:
    p = policy(V4, V6)
    assert p.candidates(2, lane="download") == [V4, V6]


def test_rule_media_only_dc_unknown_on_main_lane() -> None:
    p = policy(MEDIA4)
    with pytest.raises(UnknownDc):
        p.candidates(2)
    assert p.candidates(2, lane="download") == [MEDIA4]


def test_rule_ipv6_by_preference() -> None:
    p = policy(V6, V4, V4B)
    assert p.candidates(2, prefer_ipv6=False) == [V4, V4B, V6]
    assert p.candidates(2, prefer_ipv6=True) == [V6, V4, V4B]


def test_rule_ipv6_not_allowed_wins_over_preference() -> None:
    p = policy(V6, V4)
    assert p.candidates(2, allow_ipv6=False) == [V4]
    assert p.candidates(2, allow_ipv6=False, prefer_ipv6=True) == [V4]
    with pytest.raises(UnknownDc):
        policy(V6).candidates(2, allow_ipv6=False)


def test_rule_ipv6_default_follows_force_try_ipv6_of_the_config() -> None:
    table = DcTable([V4, V6], test_mode=False)
    p = EndpointPolicy(table)
    assert p.candidates(2) == [V4, V6]
    table.force_try_ipv6 = True
    assert p.candidates(2) == [V6, V4]
    assert p.candidates(2, prefer_ipv6=False) == [V4, V6]  # an explicit choice wins


def test_rule_tcpo_only_goes_after_plain_tcp() -> None:
    p = policy(TCPO, V4)
    cands = p.candidates(2)
    assert cands == [V4, TCPO]
    assert cands[1].requires_obfuscation and cands[1].secret == b"s" * 16


def test_rule_tcpo_only_dropped_without_obfuscation() -> None:
    p = policy(TCPO, V4, allow_obfuscated=False)
    assert p.candidates(2) == [V4]
    with pytest.raises(UnknownDc):
        policy(TCPO, allow_obfuscated=False).candidates(2)


def test_rule_static_never_preferred_on_a_direct_connection() -> None:
    # spec §11.1: static = "use this IP when connecting through a proxy".  Direct (the default):
    # a static endpoint is a fallback behind every non-static one, whatever its other merits.
    static = opt(2, "10.0.0.9", static=True)
    static6 = opt(2, "2001:db8::9", static=True)
    p = policy(static, static6, V4, V6)
    assert p.candidates(2) == [V4, V6, static, static6]
    assert p.candidates(2, prefer_ipv6=True) == [V6, V4, static6, static]
    # ... even when the static one is a media endpoint on the download lane
    media_static = opt(2, "10.0.1.9", media_only=True, static=True)
    assert policy(media_static, V4).candidates(2, lane="download") == [V4, media_static]


def test_rule_static_is_still_used_when_nothing_else_is_left() -> None:
    static = opt(2, "10.0.0.9", static=True)
    assert policy(static).candidates(2) == [static]
    # and a static endpoint that is not cooling goes before a non-static one in cool-down
    health = EndpointHealth(cooldown=30.0)
    health.record_error(V4, now=100.0)
    assert policy(V4, static).candidates(2, health=health, now=110.0) == [static, V4]


def test_rule_static_first_through_a_proxy() -> None:
    static = opt(2, "10.0.0.9", static=True)
    static6 = opt(2, "2001:db8::9", static=True)
    p = policy(V4, V6, static, static6)
    assert p.candidates(2, via_proxy=True) == [static, static6, V4, V6]
    assert p.candidates(2, via_proxy=True, prefer_ipv6=True) == [static6, static, V6, V4]


def test_rule_this_port_only_keeps_exactly_the_listed_ports() -> None:
    pinned = opt(2, "10.0.0.1", port=5222, this_port_only=True)
    p = policy(pinned, opt(2, "10.0.0.3", port=80))
    cands = p.candidates(2)
    assert [(o.ip_address, o.port) for o in cands] == [("10.0.0.1", 5222), ("10.0.0.3", 80)]
    assert cands[0].this_port_only  # the flag travels with the option
    # no other port is ever made up for it
    assert all(o.port in (5222, 80) for o in cands)


def test_rule_telegram_order_breaks_remaining_ties() -> None:
    a, b, c = opt(2, "10.0.0.3"), opt(2, "10.0.0.1"), opt(2, "10.0.0.2")
    assert policy(a, b, c).candidates(2) == [a, b, c]


def test_duplicates_are_kept_once() -> None:
    assert policy(V4, V4, V6, V4).candidates(2) == [V4, V6]


def test_unknown_dc() -> None:
    with pytest.raises(UnknownDc) as info:
        policy(V4).candidates(7)
    assert info.value.dc_id == 7
    assert isinstance(info.value, LookupError)


def test_bad_lane_and_missing_now() -> None:
    with pytest.raises(LocalProtocolError):
        policy(V4).candidates(2, lane="photos")
    with pytest.raises(LocalProtocolError):
        policy(V4).candidates(2, health=EndpointHealth())


# --------------------------------------------------------------------------- health


def test_rule_health_recent_failure_goes_last_for_a_cool_down() -> None:
    h = EndpointHealth(cooldown=30.0)
    p = policy(V4, V4B, V6)
    h.record_error(V4, now=1000.0)
    assert p.candidates(2, health=h, now=1010.0) == [V4B, V6, V4]
    # the cool-down beats the family preference and the media preference alike
    assert p.candidates(2, health=h, now=1029.9) == [V4B, V6, V4]
    # after it, V4 is back ahead of IPv6, but behind the untried V4B
    assert p.candidates(2, health=h, now=1030.0) == [V4B, V4, V6]


def test_rule_health_beats_media_preference() -> None:
    h = EndpointHealth()
    p = policy(V4, MEDIA4)
    h.record_error(MEDIA4, now=5.0)
    assert p.candidates(2, lane="download", health=h, now=6.0) == [V4, MEDIA4]


def test_rule_health_success_clears_the_cool_down() -> None:
    h = EndpointHealth(cooldown=30.0)
    p = policy(V4B, V4)
    h.record_error(V4B, now=0.0)
    h.record_ok(V4B, now=1.0)
    assert not h.is_cooling(V4B, now=2.0)
    assert h.state(V4B).consecutive_errors == 0
    # known good goes before never tried, on otherwise equal terms
    h2 = EndpointHealth()
    h2.record_ok(V4, now=1.0)
    assert p.candidates(2, health=h2, now=2.0) == [V4, V4B]


def test_rule_health_cool_down_grows_and_is_capped() -> None:
    h = EndpointHealth(cooldown=10.0, max_cooldown=35.0)
    ends = []
    for i in range(5):
        h.record_error(V4, now=100.0 * i)
        until = h.cooling_until(V4)
        assert until is not None
        ends.append(until - 100.0 * i)
    assert ends == [10.0, 20.0, 35.0, 35.0, 35.0]
    for _ in range(2000):  # a long outage does not overflow
        h.record_error(V4, now=1e6)
    assert h.cooling_until(V4) == 1e6 + 35.0


def test_rule_health_cooling_endpoints_ordered_by_end_of_cool_down() -> None:
    h = EndpointHealth(cooldown=30.0)
    p = policy(V4, V4B, V6)
    h.record_error(V4, now=10.0)  # cools until 40
    h.record_error(V4B, now=0.0)
    h.record_error(V4B, now=5.0)  # second error: cools until 65
    h.record_error(V6, now=20.0)  # cools until 50
    assert p.candidates(2, health=h, now=21.0) == [V4, V6, V4B]


def test_health_is_keyed_by_ip_and_port() -> None:
    h = EndpointHealth()
    other_port = opt(2, "10.0.0.1", port=80)
    h.record_error(("10.0.0.1", 443), now=0.0)
    assert h.is_cooling(V4, now=1.0)
    assert not h.is_cooling(other_port, now=1.0)
    h.forget()
    assert not h.is_cooling(V4, now=1.0)
    assert h.cooling_until(V4) is None


def test_policy_sees_table_updates() -> None:
    table = DcTable([V4], test_mode=False)
    p = EndpointPolicy(table)
    assert p.candidates(2) == [V4]
    table.replace_options([V4B])
    assert p.candidates(2) == [V4B]
