"""PERSONA Bench on data persona_gen did not write: the released PERSONA layout, as files or a Hub id."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from persona_gen.bench.data import load_bench_data, parse_persona, read_released, resolve_source
from persona_gen.bench.task import run_bench
from persona_gen.core.errors import ConfigError
from persona_gen.core.records import PERSONA_KEYS
from tests.unit.bench._data import compose_bench, persona_attributes

PEOPLE = [("Female", "70", "Liberal", "Catholic", "Master's degree"),
          ("Male", "24", "Conservative", "None", "Regular high school diploma")]
# (question, question type): the first is asked in train rows, the other two only in test rows.
ASKED = [("Should children be taught about religion at school?", "train"),
         ("Is it fair to tax the rich more heavily?", "test"),
         ("Should I move closer to my aging parents?", "test")]


def released_rows() -> pd.DataFrame:
    """Rows as the released dataset has them: no ids, the persona only as `key: value` text."""
    rows = []
    for i, person in enumerate(PEOPLE):
        attrs = persona_attributes(*person)
        attrs["defining quirks"] = f"Hums while cooking: always the same tune.\nKeeps receipts number {i}."
        text = "\n".join(f"{k}: {v}" for k, v in attrs.items())
        for question, qtype in ASKED:
            rows.append({"persona": text, "instruction": question, "original": f"A generic answer to {question}",
                         "critique": "EVALUATION: too generic", "data": f"An answer for person {i}",
                         "question type": qtype})
    return pd.DataFrame(rows)


def write_released(folder: Path, fmt: str = "parquet") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame = released_rows()
    halves = [frame.iloc[: len(frame) // 2], frame.iloc[len(frame) // 2:]]
    for i, part in enumerate(halves):
        path = folder / f"train-{i}.{fmt}"
        if fmt == "parquet":
            part.to_parquet(path, index=False)
        elif fmt == "jsonl":
            part.to_json(path, orient="records", lines=True)
        else:
            part.to_csv(path, index=False)
    return folder


def test_parse_persona_reads_back_the_rendered_text_with_multiline_values():
    attrs = persona_attributes(*PEOPLE[0])
    attrs["mannerisms"] = "Says 'well: let me think' a lot.\nTaps the table."
    text = "\n".join(f"{k}: {v}" for k, v in attrs.items())
    assert parse_persona(text) == attrs


def test_parse_persona_without_known_keys_takes_every_key_line():
    assert parse_persona("favourite colour: blue\npet: a dog: Rex") == {"favourite colour": "blue", "pet": "a dog: Rex"}


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_load_bench_data_reads_the_released_layout(tmp_path, fmt):
    data = load_bench_data(write_released(tmp_path / "released", fmt))
    assert len(data.personas) == len(PEOPLE)
    assert all(list(p.attributes) == list(PERSONA_KEYS) for p in data.personas)
    assert data.personas[1].attributes["sex"] == "Male"
    assert data.personas[0].attributes["defining quirks"].endswith("Keeps receipts number 0.")
    split = {q.text: q.split for q in data.questions}
    assert split == {ASKED[0][0]: "train", ASKED[1][0]: "held_out", ASKED[2][0]: "held_out"}
    assert data.origin.layout == "released" and data.origin.source == str((tmp_path / "released").resolve())


def test_released_ids_are_derived_from_content_and_stable(tmp_path):
    first, _ = read_released(write_released(tmp_path / "a"))
    second, _ = read_released(write_released(tmp_path / "b", "jsonl"))
    assert first["feedback_id"].tolist() == second["feedback_id"].tolist()
    assert first["persona_id"].nunique() == len(PEOPLE) and first["question_id"].nunique() == len(ASKED)


def test_released_content_hash_changes_with_the_data(tmp_path):
    folder = write_released(tmp_path / "released")
    before = load_bench_data(folder).origin.content_hash
    frame = pd.read_parquet(folder / "train-0.parquet")
    frame.loc[0, "instruction"] = "Is it ever right to lie?"
    frame.to_parquet(folder / "train-0.parquet", index=False)
    assert load_bench_data(folder).origin.content_hash != before


def test_released_layout_missing_a_column_is_one_error(tmp_path):
    (tmp_path / "bad").mkdir()
    pd.DataFrame({"prompt": ["Why?"]}).to_parquet(tmp_path / "bad" / "x.parquet")
    with pytest.raises(ConfigError, match=r"columns of .*bad must be the released PERSONA layout.*missing \['persona'"):
        load_bench_data(tmp_path / "bad")


def test_resolve_source_takes_an_unknown_owner_name_as_a_hub_id(tmp_path):
    assert resolve_source("SynthLabsAI/PERSONA", root=tmp_path) == "SynthLabsAI/PERSONA"
    (tmp_path / "SynthLabsAI" / "PERSONA").mkdir(parents=True)
    assert resolve_source("SynthLabsAI/PERSONA", root=tmp_path) == tmp_path / "SynthLabsAI" / "PERSONA"


def test_hub_id_is_read_with_datasets_load_dataset(monkeypatch):
    import datasets

    seen = {}

    def fake_load_dataset(path, revision=None, **kwargs):
        seen.update(path=path, revision=revision)
        return datasets.DatasetDict({"train": datasets.Dataset.from_pandas(released_rows())})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    data = load_bench_data("hf://datasets/SynthLabsAI/PERSONA@v1")
    assert seen == {"path": "SynthLabsAI/PERSONA", "revision": "v1"}
    assert len(data.personas) == len(PEOPLE) and data.origin.source == "hub:SynthLabsAI/PERSONA@v1"
    assert len(data.origin.content_hash) == 64


def test_hub_id_offline_and_uncached_is_one_error_that_names_hf_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match=r"Hub dataset nobody-here/no-such-data must be loadable .*hf download"):
        load_bench_data("nobody-here/no-such-data")


def test_task_bench_runs_on_a_released_folder(tmp_path):
    folder = write_released(tmp_path / "released")
    cfg = compose_bench(tmp_path, ["bench.analyses=[eval]", "bench.bootstrap_samples=50"], dataset=folder)
    result = run_bench(cfg)
    scores = json.loads(result.scores_path.read_text())
    assert scores["dataset_layout"] == "released"
    assert scores["dataset_content_hash"] == load_bench_data(folder).origin.content_hash
    assert scores["inputs"] == {"personas": 2, "questions": 2, "pairs": 4, "question_split": "held_out"}
    assert all(s["n_items"] == 4 for s in scores["modes"].values())
