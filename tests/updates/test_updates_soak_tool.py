"""A short run of tools/updates_soak.py (the 10,000-message figures are in the README)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

TOOL = Path(__file__).resolve().parents[2] / "tools" / "updates_soak.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("updates_soak", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("updates_soak", module)
    spec.loader.exec_module(module)
    return module


async def test_short_soak_loses_nothing_and_delivers_nothing_twice(tmp_path):
    tool = load_tool()
    args = tool.main.__globals__["argparse"].Namespace(
        messages=400, seed=3, senders=3, channels=2, private_share=0.6, drop=0.05, dup=0.02,
        reorder=0.02, rate=400.0, reconnects=2, restarts=1, persist_every=10, settle=30.0,
        session=str(tmp_path / "soak.session"), json=True,
    )
    report = await tool.soak(args)
    assert report["lost"] == 0, report["lost_examples"]
    assert report["duplicates_after_dedupe"] == 0
    assert report["out_of_order"] == 0
    assert report["push_faults"]["dropped"] > 0 and report["push_faults"]["duplicated"] > 0
    assert report["restarts"] == 1 and report["reconnects"] == 2
    assert report["server_getDifference"] >= 1
