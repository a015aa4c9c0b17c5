"""``open_pool(dc_list=...)`` forms: a list of DcOption, or ``{dc_id: (host, port)}``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from dcpool.dcs import DcOption, DcTable, EndpointPolicy, dc_options_from_user
from dcpool.errors import ConfigError


def test_mapping_of_pairs_gives_one_plain_endpoint_per_dc() -> None:
    opts = dc_options_from_user({2: ("127.0.0.1", 4432), 4: ("::1", 4434), 5: ("[::1]", 4435)})
    assert opts == [
        DcOption(id=2, ip_address="127.0.0.1", port=4432),
        DcOption(id=4, ip_address="::1", port=4434, ipv6=True),
        DcOption(id=5, ip_address="::1", port=4435, ipv6=True),
    ]
    # the policy finds them as it finds any other endpoint
    policy = EndpointPolicy(DcTable(opts, test_mode=False))
    assert [o.endpoint for o in policy.candidates(4)] == [("::1", 4434)]


def test_mapping_values_may_list_several_endpoints_or_options() -> None:
    media = DcOption(id=4, ip_address="127.0.0.2", port=5000, media_only=True)
    opts = dc_options_from_user({4: [("localhost", 4434), media]})
    assert opts == [DcOption(id=4, ip_address="localhost", port=4434), media]


def test_list_of_options_and_tl_objects_is_kept_in_order() -> None:
    a = DcOption(id=1, ip_address="10.0.0.1", port=443)
    tl_like = SimpleNamespace(id=3, ip_address="10.0.0.3", port=80, static=True)
    opts = dc_options_from_user([a, tl_like])
    assert opts == [a, DcOption(id=3, ip_address="10.0.0.3", port=80, static=True)]
    assert dc_options_from_user(iter([a])) == [a]  # any iterable


@pytest.mark.parametrize(
    "bad, words",
    [
        ({}, "empty"),
        ([], "empty"),
        ("127.0.0.1:443", "mapping"),
        (42, "not int"),
        ({"2": ("127.0.0.1", 443)}, "not a DC id"),
        ({True: ("127.0.0.1", 443)}, "not a DC id"),
        ({2: ("127.0.0.1", 0)}, "not a TCP port"),
        ({2: ("127.0.0.1", "443")}, "not a TCP port"),
        ({2: ("127.0.0.1",)}, "not a (host, port) pair"),
        ({2: "127.0.0.1"}, "not a (host, port) pair"),
        ({2: []}, "no endpoint"),
        ({2: [DcOption(id=3, ip_address="10.0.0.3", port=443)]}, "option of DC 3"),
        ({2: ("", 443)}, "empty"),
        ([object()], "not a dcOption"),
    ],
)
def test_bad_forms_are_a_config_error_naming_the_problem(bad: Any, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        dc_options_from_user(bad)


def test_table_for_user_uses_the_builtin_list_only_without_a_dc_list() -> None:
    assert DcTable.for_user(None, test_mode=True).source == "builtin"
    table = DcTable.for_user({1: ("127.0.0.1", 1111)}, test_mode=True)
    assert table.source == "custom" and table.test_mode
    assert table.options == (DcOption(id=1, ip_address="127.0.0.1", port=1111),)
