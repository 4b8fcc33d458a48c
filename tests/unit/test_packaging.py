"""The install is quiet: every shipped folder is declared in pyproject.toml, so setuptools has nothing to warn about."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {"persona_gen": "persona_gen", "conf": "persona_gen.conf", "signatures": "persona_gen.signatures",
           "cards": "persona_gen.cards"}


def _declared() -> set[str]:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_packaging_declares_every_shipped_folder():
    declared = _declared()
    found = set()
    for folder, package in SHIPPED.items():
        base = ROOT / folder
        for path in [base, *(p for p in base.rglob("*") if p.is_dir())]:
            rel = path.relative_to(base)
            if "__pycache__" in rel.parts or any(part.startswith(".") for part in rel.parts):
                continue
            if not any(c.is_file() for c in path.iterdir()) and not any(c.is_dir() for c in path.iterdir()):
                continue
            found.add(".".join([package, *rel.parts]))
    assert found - declared == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert declared - found == set(), "these are declared but do not exist"


def test_packaging_license_is_an_spdx_string():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"  # a TOML table is deprecated by setuptools (a warning per build)
