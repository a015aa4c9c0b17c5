"""The pytest plugin works in a fresh directory that holds only a test file: pytest finds it
through the ``pytest11`` entry point declared in pyproject.toml (no conftest, no ini file, no
``-p``).  The documented example is run as it is written in the plugin's docstring."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import dcpool.testing.pytest_plugin as plugin

ROOT = Path(__file__).resolve().parents[2]

MORE_TESTS = '''

import asyncio
import pytest


@pytest.mark.dcpool_cluster(test_mode=True)
@pytest.mark.dcpool_pool(phone="9996631234")
async def test_markers_pass_options(dcpool_cluster, dcpool_pool):
    assert dcpool_cluster.test_mode and sorted(dcpool_cluster.servers) == [1, 2, 3]
    assert dcpool_pool.statistics().home_dc == 3


async def test_cluster_alone_is_per_test(dcpool_cluster):
    assert dcpool_cluster.statistics()[2].handshakes == 0


def test_patch_points_are_undone_after_the_telethon_test():
    from telethon import TelegramClient
    from telethon.crypto import rsa
    from dcpool.testing import fixed_test_key

    assert TelegramClient._config is None  # restored (it is None until a client connects)
    assert all(k.n != fixed_test_key().n for k, _ in rsa._server_keys.values())


def test_pyrogram_is_pointed_at_the_cluster(dcpool_pyrogram, dcpool_cluster_thread):
    from pyrogram.session.internals import DataCenter  # dcpool_pyrogram skips without Pyrogram
    from pyrogram.crypto import rsa

    assert DataCenter(4, False, False, False) == dcpool_cluster_thread.cluster.endpoint(4)
    assert dcpool_cluster_thread.cluster.rsa_public_key().fingerprint in rsa.server_public_keys


def test_pyrogram_signs_in_on_the_cluster(dcpool_pyrogram, dcpool_cluster_thread):
    async def main():
        app = dcpool_pyrogram()  # inside the event loop, as Pyrogram wants
        await app.connect()
        try:
            sent = await app.send_code("9996621234")
            return await app.sign_in("9996621234", sent.phone_code_hash, "22222")
        finally:
            await app.disconnect()

    user = asyncio.run(asyncio.wait_for(main(), 30))
    stats = dcpool_cluster_thread.call(dcpool_cluster_thread.cluster.statistics)
    assert user.phone_number == "9996621234"
    assert stats[2].requests["auth.signIn"] == 1


def test_pyrogram_patch_points_are_undone():
    pytest.importorskip("pyrogram.session.internals")
    from pyrogram.session.internals import DataCenter

    assert DataCenter(4, False, False, False) == ("149.154.167.91", 443)
'''


def _example() -> str:
    doc = plugin.__doc__
    body = doc[doc.index("Example (copy it"):]
    body = body[body.index("::") + 2:]
    return textwrap.dedent(body).strip() + "\n"


def _fake_install(site: Path) -> None:
    """A dist-info declaring the same pytest11 entry point as pyproject.toml, so that
    importlib.metadata (and pytest) discover the plugin the way an installed dcpool does."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    entry = project["entry-points"]["pytest11"]
    dist = site / "dcpool_plugin_probe-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dcpool-plugin-probe\nVersion: 0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry.items())
    (dist / "entry_points.txt").write_text("[pytest11]\n" + lines)


def test_plugin_in_a_fresh_directory(tmp_path):
    pytest.importorskip("telethon")
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_example.py").write_text(_example() + MORE_TESTS)
    site = tmp_path / "site"
    _fake_install(site)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(site)]))
    env.pop("PYTEST_ADDOPTS", None)
    # pyrogram may be missing from a user's venv: its tests are then skipped, not failed
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-W", "ignore::DeprecationWarning", "test_example.py"],
        cwd=project, env=env, capture_output=True, text=True, timeout=240,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", out.stdout).group(1))
    skipped = re.search(r"(\d+) skipped", out.stdout)
    assert passed + int(skipped.group(1) if skipped else 0) == 8, out.stdout[-2000:]
    assert passed >= 5, out.stdout[-2000:]  # the example and the trio fixtures always run
