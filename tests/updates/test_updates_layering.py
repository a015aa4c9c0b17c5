"""The updates state machine is sans-IO: importing it pulls in no trio, sockets or asyncio."""

import subprocess
import sys


def test_message_box_imports_no_io():
    code = (
        "import sys\n"
        "import dcpool.updates.box, dcpool.updates.state, dcpool.updates.store\n"
        "print(','.join(m for m in ('trio', 'socket', 'asyncio', 'selectors') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_driver_is_reachable_from_the_package():
    import dcpool.updates

    assert callable(dcpool.updates.open_updates)
    assert "open_updates" in dcpool.updates.__all__
