"""The sans-IO layers must not pull in trio, sockets or asyncio (design: sans-IO core, thin shell)."""

import subprocess
import sys

SANS_IO = ["dcpool", "dcpool.errors", "dcpool.tl", "dcpool.crypto", "dcpool.transport", "dcpool.mtproto"]
FORBIDDEN = ["trio", "socket", "asyncio", "selectors"]


def test_sans_io_layers_import_no_io():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in SANS_IO)
        + f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"sans-IO import pulled in: {out.stdout.strip()}"


def test_lazy_public_api_is_reachable():
    import dcpool

    assert "open_pool" in dcpool.__all__
    assert issubclass(dcpool.FileMigrate, dcpool.MigrateError)
