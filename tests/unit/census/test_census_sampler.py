"""Weighted joint sampling: determinism, real records, where, quotas, vocabularies, configs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from persona_gen.census import (
    CENSUS_KEYS,
    NOT_APPLICABLE,
    NOT_AVAILABLE,
    RECORD_ID,
    STATE,
    CensusSource,
    load_source,
    parse_source_spec,
    sample_personas,
)
from persona_gen.census.spec import read_config_file
from persona_gen.core.errors import CensusError

CONF = Path(__file__).resolve().parents[3] / "conf" / "sampler"


def test_sample_personas_returns_census_keys_in_order(demo: CensusSource) -> None:
    personas = sample_personas(50, seed=1)
    assert tuple(personas.columns[: len(CENSUS_KEYS)]) == CENSUS_KEYS
    assert {STATE, RECORD_ID} <= set(personas.columns)
    assert len(personas) == 50


def test_sample_personas_never_leaves_a_key_empty(demo: CensusSource) -> None:
    personas = demo.sample(2000, seed=3)
    assert not personas[list(CENSUS_KEYS)].isna().any().any()
    assert not (personas[list(CENSUS_KEYS)].astype(str) == "").any().any()


def test_sample_personas_same_seed_same_frame(demo: CensusSource) -> None:
    pd.testing.assert_frame_equal(demo.sample(500, seed=42), demo.sample(500, seed=42))


def test_sample_personas_other_seed_other_frame(demo: CensusSource) -> None:
    assert not demo.sample(500, seed=1)[RECORD_ID].equals(demo.sample(500, seed=2)[RECORD_ID])


def test_sample_personas_accepts_seed_sequence(demo: CensusSource) -> None:
    first, again = (np.random.SeedSequence(7).spawn(2)[1] for _ in range(2))
    pd.testing.assert_frame_equal(demo.sample(20, seed=first), demo.sample(20, seed=again))


def test_sample_personas_rows_are_whole_source_records(demo: CensusSource) -> None:
    personas = demo.sample(3000, seed=5)
    source = demo.pool.set_index(RECORD_ID)
    assert source.index.is_unique
    expected = source.loc[personas[RECORD_ID]].reset_index()[personas.columns]
    pd.testing.assert_frame_equal(personas, expected)


def test_sample_personas_follows_person_weights(demo: CensusSource) -> None:
    # One heavy record against one light record: picks follow PWGTP, not a record count.
    rows = [int(np.argmax(demo.weights)), int(np.argmin(demo.weights))]
    pair = CensusSource(demo.spec, demo.pool.iloc[rows].reset_index(drop=True), demo.weights[rows])
    drawn = pair.sample(20_000, seed=0)[RECORD_ID].eq(pair.pool[RECORD_ID].iloc[0]).mean()
    share = pair.weights[0] / pair.weights.sum()
    assert abs(drawn - share) < 4 * np.sqrt(share * (1 - share) / 20_000)


def test_sample_personas_where_keeps_adults(demo: CensusSource) -> None:
    assert demo.sample(500, seed=0, where="age >= 18")["age"].min() >= 18


def test_sample_personas_where_selects_state(demo: CensusSource) -> None:
    assert set(demo.sample(300, seed=0, where="state in ['Vermont']")[STATE]) == {"Vermont"}


def test_sample_personas_where_on_label_with_spaces(demo: CensusSource) -> None:
    personas = demo.sample(200, seed=0, where="`employment status` == 'Unemployed' and sex == 'Female'")
    assert set(personas["employment status"]) == {"Unemployed"} and set(personas["sex"]) == {"Female"}


def test_sample_personas_where_on_raw_code(demo: CensusSource) -> None:
    personas = demo.sample(200, seed=0, where="PINCP > 50000 and employment_status != 'Unemployed'")
    assert personas["code.PINCP"].min() > 50000


def test_sample_personas_where_rejects_function_calls(demo: CensusSource) -> None:
    with pytest.raises(CensusError, match=r"where expression uses Call, which is not allowed"):
        demo.sample(5, seed=0, where="__import__('os').system('true') == 0")


def test_sample_personas_where_rejects_unknown_column(demo: CensusSource) -> None:
    with pytest.raises(CensusError, match=r"unknown column 'agee'.*use one of"):
        demo.sample(5, seed=0, where="agee > 3")


def test_sample_personas_quotas_give_exact_counts(demo: CensusSource) -> None:
    personas = demo.sample(1001, seed=9, quotas={"sex": {"Male": 0.3, "Female": 0.7}})
    assert personas["sex"].value_counts().to_dict() == {"Female": 701, "Male": 300}


def test_sample_personas_crossed_quotas_give_exact_counts(demo: CensusSource) -> None:
    quotas = {"sex": {"Male": 0.5, "Female": 0.5}, "state": {"Wyoming": 0.2, "Vermont": 0.8}}
    counts = demo.sample(1000, seed=9, quotas=quotas).groupby(["sex", "state"], observed=True).size()
    assert counts.to_dict() == {("Female", "Vermont"): 400, ("Female", "Wyoming"): 100,
                                ("Male", "Vermont"): 400, ("Male", "Wyoming"): 100}


def test_sample_personas_quotas_respect_where(demo: CensusSource) -> None:
    personas = demo.sample(400, seed=2, where="age >= 65", quotas={"sex": {"Male": 0.5, "Female": 0.5}})
    assert personas["age"].min() >= 65 and personas["sex"].value_counts().to_dict() == {"Male": 200, "Female": 200}


def test_sample_personas_quota_rows_are_shuffled(demo: CensusSource) -> None:
    personas = demo.sample(200, seed=2, quotas={"sex": {"Male": 0.5, "Female": 0.5}})
    assert personas["sex"].iloc[:100].nunique() == 2


def test_census_source_describes_its_provenance(demo: CensusSource) -> None:
    assert demo.describe().startswith("acs2018_pums_wy_vt_shipped: ACS 2018 census microdata, 12,176 person records")
    assert "derived from household members: household language, household type" in demo.describe()


def test_load_source_reuses_a_loaded_source() -> None:
    assert load_source() is load_source()


def _labels(source: CensusSource, key: str) -> list[str]:
    column = source.pool[key]
    return [str(v) for v in column.cat.categories] if isinstance(column.dtype, pd.CategoricalDtype) else []


def _vocabulary_clashes(source: CensusSource) -> list[tuple[str, str, str]]:
    clashes = []
    for key in (*CENSUS_KEYS, STATE):
        seen: dict[str, str] = {}
        for label in _labels(source, key):
            folded = re.sub(r"\s+alone$", "", label.strip().lower())
            if folded in seen and seen[folded] != label:
                clashes.append((key, seen[folded], label))
            seen.setdefault(folded, label)
    return clashes


def test_census_keys_use_one_vocabulary_per_field(demo: CensusSource) -> None:
    assert _vocabulary_clashes(demo) == []


def test_census_keys_spell_not_applicable_one_way(demo: CensusSource) -> None:
    labels = [label for key in CENSUS_KEYS for label in _labels(demo, key)]
    assert not [label for label in labels if label.startswith("N/A")]
    assert all(label.startswith(NOT_APPLICABLE) for label in labels if "applicable" in label.lower())


def test_nist_excerpt_uses_one_vocabulary_per_field(nist: CensusSource) -> None:
    assert _vocabulary_clashes(nist) == []


def test_nist_excerpt_decodes_its_own_layout(nist: CensusSource) -> None:
    personas = nist.sample(300, seed=0, where="age >= 30")
    assert set(personas["ancestry"]) == {NOT_AVAILABLE}
    assert "Bachelors degree" in set(nist.pool["education"])
    assert "Alabama" in set(nist.pool[STATE]) and not personas[STATE].str.contains("/").any()
    assert personas[RECORD_ID].str.startswith("national2019.csv#").all()


def test_six_state_source_has_every_state(six_states: CensusSource) -> None:
    assert set(six_states.pool[STATE]) == {"Wyoming", "Vermont", "North Dakota", "Delaware", "Hawaii", "New Mexico"}
    assert six_states.num_records == 62_822


def test_six_state_where_selects_hawaii(six_states: CensusSource) -> None:
    personas = six_states.sample(100, seed=0, where="age >= 18 and state in ['Hawaii']")
    assert set(personas[STATE]) == {"Hawaii"} and personas["age"].min() >= 18


@pytest.mark.parametrize("name", ["census_six_states.yaml", "census_pums.yaml", "census_demo.yaml",
                                  "nist_excerpt.yaml"])
def test_sampler_config_parses(name: str) -> None:
    config = read_config_file(CONF / name)
    assert {"where", "quotas", "source"} <= set(config)
    assert "num_personas" not in config  # read by nothing: scale.num_personas is the count
    spec = load_source(config).spec if isinstance(config["source"], str) else parse_source_spec(config)
    assert spec.files and spec.dictionaries and spec.columns


def test_sorted_draw_picks_the_same_rows_as_binary_search() -> None:
    from persona_gen.census import source as census_source

    weights = np.random.default_rng(0).integers(1, 300, size=400_000).astype(float)
    cdf = np.cumsum(weights)
    sorted_draw = census_source._draw(np.random.default_rng(7), 50_000, cdf)
    u = np.random.default_rng(7).random(50_000) * cdf[-1]
    assert np.array_equal(sorted_draw, np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1))


def test_suppressed_ancestry_reads_as_a_person_would(six_states: CensusSource) -> None:
    ancestry = six_states.pool["ancestry"].astype(str)
    suppressed = six_states.pool["code.ANC1P"].astype(str) == "000"
    assert suppressed.sum() > 1000  # Delaware and other PUMAs the Bureau withheld for 2018
    assert not ancestry.str.contains("Suppressed|PUMA").any()
    assert set(ancestry[suppressed]) == {"Not reported (withheld by the Census Bureau in this area)"}
