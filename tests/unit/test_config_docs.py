"""docs/config.md is generated from the schemas and conf/: it must be current and cover every composed key."""

from __future__ import annotations

import re

from omegaconf import OmegaConf

from persona_gen.config_docs import main, render_config_docs
from tests.conftest import REPO

DOC = REPO / "docs" / "config.md"


def test_docs_config_md_is_current():
    assert DOC.read_text(encoding="utf-8") == render_config_docs(), \
        "docs/config.md is stale: run `python -m persona_gen.config_docs` from the repository root"


def _sections(text: str) -> dict[str, str]:
    parts = text.split("\n### `")
    return {"": parts[0], **{p.split("`", 1)[0]: p for p in parts[1:]}}


def test_docs_cover_every_key_of_the_composed_default_config(tmp_path):
    import persona_gen
    from persona_gen.config_docs import _defaults

    cfg = OmegaConf.to_container(persona_gen.compose_config([], output_dir=tmp_path / "out"), resolve=False)
    sections = _sections(render_config_docs())
    packages = {package: group for group, package, option in _defaults() if option}

    def leaves(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict) and value and not key.endswith("filters"):
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    missing = []
    for key in leaves(cfg):
        package = next((p for p in sorted(packages, key=len, reverse=True) if key.startswith(p + ".")), "")
        rel = key[len(package) + 1:] if package else key
        if f"| `{rel}` |" not in sections[packages.get(package, "")]:
            missing.append(key)
    assert missing == []


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "config.md"
    stale.write_text("old\n")
    assert main(["--check", "--path", str(stale)]) == 1
    assert "is stale" in capsys.readouterr().err
    assert main(["--path", str(stale)]) == 0 and main(["--check", "--path", str(stale)]) == 0


def test_every_documented_key_has_a_meaning():
    rows = [re.split(r"(?<!\\)\|", line) for line in render_config_docs().splitlines() if line.startswith("| `")]
    assert rows and all(len(cells) >= 6 for cells in rows)
    undocumented = [cells[1].strip() for cells in rows if not cells[-2].strip()]
    assert undocumented == [], "comment these keys in their conf/ YAML (or schema), or add them to MEANINGS"
