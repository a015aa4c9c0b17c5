"""The pure migration policy (dcpool.migrate.policy): error -> action, hop budget, loop check."""

from __future__ import annotations

import pytest

from dcpool.errors import (
    FileMigrate,
    MigrateError,
    MigrationError,
    NetworkMigrate,
    PhoneMigrate,
    StatsMigrate,
    UserMigrate,
    rpc_error_from,
)
from dcpool.migrate import HopTracker, MoveHome, RetryOn, decide


def migrate(message: str) -> MigrateError:
    error = rpc_error_from(303, message, "test.method")
    assert isinstance(error, MigrateError)
    return error


@pytest.mark.parametrize(
    ("message", "cls"),
    [
        ("PHONE_MIGRATE_2", PhoneMigrate),
        ("NETWORK_MIGRATE_3", NetworkMigrate),
        ("USER_MIGRATE_4", UserMigrate),
    ],
)
def test_home_moving_errors(message: str, cls: type) -> None:
    error = migrate(message)
    assert type(error) is cls
    assert decide(error) == MoveHome(int(message[-1]))


@pytest.mark.parametrize(
    ("message", "cls"),
    [("FILE_MIGRATE_4", FileMigrate), ("STATS_MIGRATE_5", StatsMigrate)],
)
def test_retry_elsewhere_errors(message: str, cls: type) -> None:
    error = migrate(message)
    assert type(error) is cls
    assert decide(error) == RetryOn(int(message[-1]))


def test_multi_digit_dc_ids_are_parsed() -> None:
    assert decide(migrate("FILE_MIGRATE_10004")) == RetryOn(10004)
    assert decide(migrate("USER_MIGRATE_12")) == MoveHome(12)


def test_hops_within_budget_follow_the_chain() -> None:
    hops = HopTracker(max_hops=4)
    assert hops.hop(1, migrate("USER_MIGRATE_2")) == MoveHome(2)
    assert hops.hop(2, migrate("FILE_MIGRATE_3")) == RetryOn(3)
    assert hops.hop(3, migrate("STATS_MIGRATE_4")) == RetryOn(4)
    assert hops.hop(4, migrate("FILE_MIGRATE_5")) == RetryOn(5)
    assert hops.visited == [1, 2, 3, 4]


def test_hop_budget_is_bounded() -> None:
    hops = HopTracker(max_hops=2)
    hops.hop(1, migrate("FILE_MIGRATE_2"))
    hops.hop(2, migrate("FILE_MIGRATE_3"))
    with pytest.raises(MigrationError) as info:
        hops.hop(3, migrate("FILE_MIGRATE_4"))
    # the chain is in the message and the cause is kept
    assert "1 -> 2 -> 3" in str(info.value)
    assert isinstance(info.value.__cause__, FileMigrate)


@pytest.mark.parametrize("message", ["USER_MIGRATE_1", "FILE_MIGRATE_1", "PHONE_MIGRATE_1"])
def test_loop_a_b_a_is_refused(message: str) -> None:
    hops = HopTracker(max_hops=10)
    hops.hop(1, migrate("USER_MIGRATE_2"))
    with pytest.raises(MigrationError, match="loop"):
        hops.hop(2, migrate(message))


def test_migrating_to_the_dc_itself_is_a_loop() -> None:
    with pytest.raises(MigrationError, match="loop"):
        HopTracker().hop(3, migrate("FILE_MIGRATE_3"))


def test_zero_hops_allowed() -> None:
    with pytest.raises(MigrationError):
        HopTracker(max_hops=0).hop(1, migrate("FILE_MIGRATE_2"))


def test_policy_is_sans_io() -> None:
    from pathlib import Path

    import dcpool.migrate.policy as policy

    source = Path(policy.__file__).read_text(encoding="utf-8")
    for banned in ("import trio", "import socket", "import asyncio", "import time", "import random"):
        assert banned not in source
