"""Fixtures of the updates tests."""

from __future__ import annotations

import pytest
import trio.testing


@pytest.fixture
def clock():
    """trio's fake clock (pytest-trio runs a test on it when the test asks for it)."""
    return trio.testing.MockClock(autojump_threshold=0)
