"""The default preset's bytes are pinned: a refactor that moves them fails here.

Change ``GOLDEN`` only on purpose, in a commit that says why the data changed (and bump the cache key version
when the prompts or keys changed).
"""

from __future__ import annotations

from persona_gen.pipeline import run
from tests.helpers import compose_run

# experiment=fake_smoke scale=demo on the fake LM (both roles), seed 0.
GOLDEN = "29fba90ccc3aef2d730df6bdae7a11871535078e18ee459e5be051f586b03022"


def test_golden_default_preset_content_hash(tmp_path):
    result = run(compose_run(tmp_path / "run", tmp_path / "cache", ["experiment=fake_smoke", "scale=demo"]))
    assert result.content_hash == GOLDEN
