"""Extending a persona without editing persona_gen: a census attribute is one line of the source config, an
LM-written attribute is one field of the signature's output."""

from __future__ import annotations

import textwrap

import pandas as pd

from persona_gen.census.spec import package_data
from persona_gen.pipeline import run
from tests.helpers import compose_run

FAKE = ["experiment=fake_smoke", "sampler.fidelity_sample_size=0"]


def _personas(result) -> pd.DataFrame:
    return pd.read_parquet(result.dataset_dir / "data" / "personas" / "train-00000-of-00001.parquet")


def test_extend_a_census_attribute_is_one_line_of_the_source_config(tmp_path):
    shipped = package_data("source.yaml").read_text()
    # The shipped source, with `package:` paths still resolving, plus one line under columns:.
    text = shipped.replace("columns:\n", "columns:\n  commute time: JWMNP\n", 1)
    assert text != shipped
    source = tmp_path / "source.yaml"
    source.write_text(text)
    result = run(compose_run(tmp_path / "run", tmp_path / "cache", [*FAKE, f"sampler.source={source}"]))
    personas = _personas(result)
    assert "commute time" in personas.columns
    # Decoded with the Bureau's dictionary like every census key: minutes, or its "not applicable" wording.
    assert personas["commute time"].str.fullmatch(r"\d+|Not applicable.*").all()
    for text in personas["persona"]:
        keys = [line.split(": ", 1)[0] for line in text.splitlines()]
        assert keys[-1] == "commute time" and len(keys) == 34


def test_extend_an_lm_attribute_is_one_field_of_the_signature(tmp_path, monkeypatch):
    (tmp_path / "my_details.py").write_text(textwrap.dedent('''
        from pydantic import Field

        from persona_gen.signatures import Idiosyncrasies, WritePersonaDetails


        class MoreDetails(Idiosyncrasies):
            favorite_food: str = Field(description="The dish this person would cook for guests.")


        WriteMoreDetails = WritePersonaDetails.with_updated_fields("details", type_=MoreDetails)
    '''))
    monkeypatch.chdir(tmp_path)  # a user module importable from the current folder
    result = run(compose_run(tmp_path / "run", tmp_path / "cache",
                             [*FAKE, "+pipeline.steps.enrich.signature=my_details.WriteMoreDetails"]))
    personas = _personas(result)
    assert "favorite food" in personas.columns
    assert (personas["favorite food"].str.len() > 0).all()
    assert all("\nfavorite food: " in text for text in personas["persona"])
