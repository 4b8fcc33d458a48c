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
        section = sections[packages.get(package, "")]
        if f"| `{rel}` |" not in section and not any(p.fullmatch(rel) for p in _generic_rows(section)):
            missing.append(key)
    assert missing == []


def _generic_rows(section):
    """The section's generic rows as patterns: ``<name>`` is one key segment, a final ``.*`` any further keys
    (``models.<role>.*``, ``pipeline.steps.<name>.scope``: one row for keys any number of entries share)."""
    out = []
    for key in re.findall(r"^\| `([^`]*<[^`]*)` \|", section, re.MULTILINE):
        pattern = re.escape(key).replace(r"\.\*", r"(\.[^.]+)+")
        out.append(re.compile(re.sub(r"<[^>]+>", r"[^.]+", pattern)))
    return out


def test_generic_rows_cover_every_key_the_step_graph_reads():
    from persona_gen.core.steps import LMStep
    from persona_gen.pipeline.graph import BASE_KEYS, PIPELINE_KEYS, TABLE_KEYS

    section = _sections(render_config_docs())["pipeline"]
    step_keys = [*BASE_KEYS, *LMStep.extra_keys]
    table_keys = {k for keys in TABLE_KEYS.values() for k in keys}
    rows = [*(f"steps.<name>.{k}" for k in step_keys), *(f"tables.<name>.{k}" for k in table_keys), *PIPELINE_KEYS]
    documented = set(re.findall(r"^\| `([^`]+)` \|", section, re.MULTILINE))
    assert [r for r in rows if r not in documented and f"{r}.<input>" not in documented
            and not any(d.startswith(f"{r}.<") for d in documented)] == []


def test_every_step_and_table_of_the_default_pipeline_is_listed(tmp_path):
    import persona_gen

    cfg = persona_gen.compose_config([], output_dir=tmp_path / "out")
    section = _sections(render_config_docs())["pipeline"]
    assert [s for s in cfg.pipeline.steps if f"  - `{s}` (" not in section] == []
    assert [t for t in cfg.pipeline.tables if f"  - `{t}` (" not in section] == []


def test_meanings_name_only_keys_that_exist():
    from persona_gen.config_docs import MEANINGS

    sections = _sections(render_config_docs())
    stale = [(group, key) for group, keys in MEANINGS.items() for key in keys
             if f"| `{key}` |" not in sections.get(group, "")]
    assert stale == [], "these MEANINGS entries name keys that no longer exist: remove them"


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
