"""Fixtures shared by the whole test suite (keep this file small)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dcpool.testing import Cluster, open_cluster


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    """An emulated cluster (DCs 1-5, OS-chosen loopback ports, the fixed test RSA key) that
    lives for one trio test."""
    async with open_cluster() as c:
        yield c
