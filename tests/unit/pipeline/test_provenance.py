"""Card and manifest provenance come from the declared steps, so they follow the config."""

from __future__ import annotations

import json

import pytest

from persona_gen.pipeline import run
from tests.helpers import compose_run

FAKE = ["experiment=fake_smoke", "sampler.fidelity_sample_size=0"]


@pytest.mark.parametrize(("questions", "credited", "not_credited", "signature"), [
    ("anthropic_values", "Anthropic model-written evaluations", "PRISM", "JudgeControversy"),
    ("generated", "LM-drafted questions", "PRISM opening prompts (Kirk", "DraftQuestions"),
])
def test_provenance_card_and_manifest_name_the_question_source(tmp_path, questions, credited, not_credited,
                                                               signature):
    result = run(compose_run(tmp_path / "run", tmp_path / "cache", [*FAKE, f"stage/questions={questions}"]))
    card = result.card_path.read_text()
    assert credited in card
    assert not_credited not in card
    manifest = json.loads(result.manifest_path.read_text())
    assert signature in manifest["signature_hashes"]
    assert f"`{signature}`=" in card
    steps = [s["step"] for s in manifest["steps"]]
    assert steps[:5] == ["census", "enrich", "fidelity", "questions", "assign"]
    # Every stats key of the run is a declared step (or one of its named calls).
    assert set(manifest["stages"]) <= {"enrich", "consistency", "questions", "answer", "critique", "revision",
                                       "judge_direct", "judge_chain_of_thought"}
