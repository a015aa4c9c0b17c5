"""Packaging promises of issue 11 item 7: the package is typed (PEP 561) and CI type-checks it
after running the README's exact test command."""

from __future__ import annotations

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


def test_ci_runs_the_readme_test_command_first_then_mypy() -> None:
    readme_commands = [
        line for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("python3 -m venv")
    ]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line and not line.startswith(("#", "set ", "cd "))]
    assert ci[0] == readme_commands[1]
    assert ci[1:] == [".venv/bin/python -m mypy"]
