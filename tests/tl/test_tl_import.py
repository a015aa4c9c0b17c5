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
bad = [m for m in ("trio", "socket", "asyncio", "dcpool.tl._runtime", "dcpool.tl.schema_parser") if m in sys.modules]
print(dt, ",".join(bad))
"""


def test_import_is_fast_and_lazy() -> None:
    best = 10.0
    for _ in range(3):  # best of three: a loaded CI box should not fail this
        out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
        dt, bad = out.stdout.split(" ", 1)
        assert bad.strip() == "", f"import dcpool.tl pulled in {bad.strip()}"
        best = min(best, float(dt))
    assert best < 0.150, f"import dcpool.tl took {best * 1000:.0f} ms"


def test_first_use_builds_only_what_is_needed() -> None:
    code = (
        "from dcpool.tl import api, _runtime\n"
        "api.help.GetConfig()\n"
        "print(len(_runtime._CLASSES))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) < 5
