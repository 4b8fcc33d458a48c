"""The default preset's bytes are pinned: a refactor that moves them fails here.

Change ``GOLDEN`` only on purpose, in a commit that says why the data changed (and bump the cache key version
when the prompts or keys changed).
"""

from __future__ import annotations

from persona_gen.pipeline import run
from tests.helpers import compose_run

# experiment=fake_smoke scale=demo on the fake LM (both roles), seed 0.
GOLDEN = "de522a5dc8a2ab7e9261e0e922c620730864d956761f39c28796147dbb918940"


def test_golden_default_preset_content_hash(tmp_path):
    result = run(compose_run(tmp_path / "run", tmp_path / "cache", ["experiment=fake_smoke", "scale=demo"]))
    assert result.content_hash == GOLDEN
