import subprocess
import sys


def test_sans_io_parts_of_the_bridge_import_no_io():
    code = ("import sys\nimport dcpool.bridge.pusher, dcpool.bridge.events, dcpool.bridge.source\n"
            "print(' '.join(m for m in ('trio', 'socket', 'asyncio', 'httpx', 'h11') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
