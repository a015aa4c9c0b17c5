"""Start-up cost and layering of dcpool.tl."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys, time
t = time.perf_counter()
import dcpool.tl
from dcpool.tl import api, mtproto, api158, ids
dt = time.perf_counter() - t
bad = [m for m in ("trio", "socket", "asyncio", "gzip", "dcpool.tl._runtime", "dcpool.tl.schema_parser",
                   "dcpool.tl.history") if m in sys.modules]
print(dt, ",".join(bad))
"""


def test_import_is_lazy() -> None:
    # What keeps the import fast (about 35 ms here) is that it parses no schema and loads no
    # history: that is asserted. The time itself is a benchmark figure, not a test (a loaded
    # machine made a 150 ms limit fail).
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    dt, bad = out.stdout.split(" ", 1)
    assert bad.strip() == "", f"import dcpool.tl pulled in {bad.strip()}"
    assert float(dt) > 0


def test_first_use_builds_only_what_is_needed() -> None:
    code = (
        "from dcpool.tl import api, _runtime\n"
        "api.help.GetConfig()\n"
        "print(len(_runtime._CLASSES))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) < 5
