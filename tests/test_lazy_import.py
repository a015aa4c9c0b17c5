"""``import dcpool`` alone gives the README's ``dcpool.testing.open_cluster()``, lazily (issue 11
item 8).  In a subprocess: this test process has imported every subpackage already."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys
import dcpool
assert "dcpool.testing" not in sys.modules and "trio" not in sys.modules, "import is not lazy"
import trio

async def main():
    with trio.fail_after(20):
        async with dcpool.testing.open_cluster(dc_ids=[1, 2]) as cluster:
            dc_list = {dc: cluster.endpoint(dc) for dc in (1, 2)}
            async with dcpool.open_pool(api_id=1, api_hash="x", home_dc=2, dc_list=dc_list,
                                        rsa_keys=cluster.rsa_public_pem(),
                                        fetch_config=False) as pool:
                config = await pool.invoke(dcpool.tl.api.help.GetConfig())
                print("this_dc", config.this_dc)

trio.run(main)
try:
    dcpool.no_such_thing
except AttributeError as exc:
    print("missing:", exc)
try:
    dcpool._private
except AttributeError:
    print("private: AttributeError")
"""


def test_plain_import_dcpool_then_dcpool_testing_open_cluster() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "this_dc 2",
        "missing: module 'dcpool' has no attribute 'no_such_thing'",
        "private: AttributeError",
    ]
