"""The status page in a real browser: headless Chromium (Debian's ``chromium``) loads ``/`` and
the page's own JavaScript renders each account's row (home DC, pts, routing)."""

import re
import shutil

import pytest
import trio

from dcpool.bridge.app import BridgeConfig, open_bridge
from dcpool.bridge.memsource import MemoryUpdateSource

from .bridge_helpers import push_simulated

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
async def test_chromium_renders_the_status_page(tmp_path):
    source = MemoryUpdateSource()
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery, open_bridge(BridgeConfig(
                outbox=str(tmp_path / "o.db"), port=0, api_token="t", accounts=("acc",))) as bridge:
            nursery.start_soon(bridge.run_account, "acc", source)
            push_simulated(source, 1, 7)
            while (await bridge.outbox.last_id()) < 7:
                await trio.sleep(0.01)
            result = await trio.run_process(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--timeout=3000", "--dump-dom",
                 f"http://127.0.0.1:{bridge.port}/"],
                capture_stdout=True, capture_stderr=True, check=False)
            nursery.cancel_scope.cancel()
    dom = result.stdout.decode()
    assert 'id="last-event-id">7<' in dom, dom[-2000:]
    row = re.search(r'<tr data-account="acc">(.*?)</tr>', dom)
    assert row is not None
    cells = re.findall(r"<td>(.*?)</td>", row.group(1))
    assert cells[0] == "acc" and cells[2] == "yes" and cells[3] == "7" and cells[4] == "7"


def test_embedded_snapshot_cannot_end_the_script():
    from dcpool.bridge.status_page import STATUS_HTML, status_html

    page = status_html({"accounts": [{"name": "</script><script>alert(1)//"}]})
    assert page.count("</script>") == STATUS_HTML.count("</script>")
