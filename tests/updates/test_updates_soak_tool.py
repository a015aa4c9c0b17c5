"""A short run of tools/updates_soak.py: the client is a child process, SIGKILLed once mid-run
and started again on its session file (the 10,000-message figures are in the README)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import trio

pytestmark = pytest.mark.e2e

TOOL = Path(__file__).resolve().parents[2] / "tools" / "updates_soak.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("updates_soak", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("updates_soak", module)
    spec.loader.exec_module(module)
    return module


async def test_short_soak_with_a_sigkilled_client_loses_nothing_and_keeps_pts_order(tmp_path):
    tool = load_tool()
    args = argparse.Namespace(
        messages=300, seed=3, senders=3, channels=2, private_share=0.6, drop=0.05, dup=0.02,
        reorder=0.02, rate=300.0, reconnects=2, restarts=1, persist_every=10, settle=60.0,
        workdir=str(tmp_path), session=str(tmp_path / "soak.session"), json=True,
    )
    with trio.fail_after(240):
        report = await tool.soak(args)
    assert report["lost"] == 0, report["lost_examples"]
    assert report["duplicates_after_dedupe"] == 0
    assert report["out_of_order"] == 0
    assert tool.ok(report)
    assert report["push_faults"]["dropped"] > 0 and report["push_faults"]["duplicated"] > 0
    assert report["restarts"] == 1 and report["reconnects"] == 2
    assert report["server_getDifference"] >= 1
    # Two client processes wrote the consumer's file: the second resumed after the SIGKILL, and
    # everything it delivered again was an exact repeat (same dedupe key), never a new copy.
    lines = [json.loads(line) for line in (tmp_path / "delivered.jsonl").read_text().splitlines() if line.strip()]
    assert {rec["g"] for rec in lines} <= {1, 2}
    assert sum(1 for rec in lines if rec["g"] == 2) > 0
    assert report["client_exit_status"] == 0
    assert report["delivered"] == report["sent"]
    # Dropped duplicates are explained: a repeated push is counted at most once per repeat the
    # emulator made; the rest came in a push and a difference both (test_updates_duplicates.py).
    manager = report["manager"]
    assert manager["duplicates_dropped"] == manager["duplicate_pushes"] + manager["already_applied"]
    assert manager["duplicate_pushes"] <= report["push_faults"]["duplicated"]


async def test_short_soak_without_push_faults_has_no_duplicate_pushes(tmp_path):
    """Over real sockets, with reconnects, a lost session and a SIGKILLed client but no push
    faults: no push reaches the manager twice (the emulator sends each once, in one form, and the
    pool hands each over once); what is dropped was returned by a difference as well."""
    tool = load_tool()
    args = argparse.Namespace(
        messages=300, seed=4, senders=3, channels=2, private_share=0.6, drop=0.0, dup=0.0,
        reorder=0.0, rate=300.0, reconnects=2, restarts=1, persist_every=10, settle=60.0,
        workdir=str(tmp_path), session=str(tmp_path / "soak.session"), json=True,
    )
    with trio.fail_after(240):
        report = await tool.soak(args)
    assert tool.ok(report), report
    assert report["push_faults"] == {"dropped": 0, "duplicated": 0, "reordered": 0}
    manager = report["manager"]
    assert manager["duplicate_pushes"] == 0, manager
    assert manager["duplicates_dropped"] == manager["already_applied"]
