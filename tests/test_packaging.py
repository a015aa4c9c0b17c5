"""Packaging promises of issue 11 item 7: the package is typed (PEP 561), type-checks, and CI
runs the README's exact test command."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_py_typed_is_shipped_as_package_data() -> None:
    assert (ROOT / "dcpool" / "py.typed").is_file()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["dcpool"]


def test_mypy_config_covers_the_package_and_the_strict_list() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mypy = project["tool"]["mypy"]
    assert mypy["packages"] == ["dcpool"]
    strict = next(o for o in mypy["overrides"] if "dcpool.dcs" in o["module"])
    assert {"dcpool.dcs.*", "dcpool.storage", "dcpool.storage.*"} <= set(strict["module"])
    assert strict["disallow_untyped_defs"] and strict["disallow_any_generics"]
    assert any(dep.startswith("mypy") for dep in project["project"]["optional-dependencies"]["test"])


def test_ci_runs_exactly_the_readme_test_command() -> None:
    # .ci/run may first install the servers the tests start (PostgreSQL, Chromium); its one
    # test step is the README's second command, character for character.
    readme_commands = [
        line for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("python3 -m venv")
    ]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.startswith((".venv/", "python3 -m venv"))]
    assert ci == [readme_commands[1]]


def test_the_package_type_checks() -> None:
    # mypy on the whole package (pyproject.toml: the strict list stricter), so that the README's
    # test command is the whole check.
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
