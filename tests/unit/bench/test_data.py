from __future__ import annotations

import pytest

from persona_gen.bench.data import load_bench_data, select_pairs
from persona_gen.core.errors import ConfigError
from persona_gen.core.records import PERSONA_KEYS
from tests.unit.bench._data import PEOPLE, QUESTIONS, write_dataset


def test_load_bench_data_reads_personas_and_questions_as_records(tmp_path):
    data = load_bench_data(write_dataset(tmp_path / "dataset"))
    assert [p.persona_id for p in data.personas] == ["p-0", "p-1", "p-2"]
    assert list(data.personas[0].attributes) == list(PERSONA_KEYS)
    assert data.personas[1].attributes["sex"] == "Male"
    assert {q.split for q in data.questions} == {"train", "held_out"}


def test_load_bench_data_rejects_missing_folder_in_house_format(tmp_path):
    with pytest.raises(ConfigError, match=r"^bench\.dataset_dir must be an existing dataset folder, but got '.*nope'"):
        load_bench_data(tmp_path / "nope")


def test_load_bench_data_rejects_folder_without_personas(tmp_path):
    (tmp_path / "dataset" / "data").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"bench\.dataset_dir/data/personas must be a folder of parquet files"):
        load_bench_data(tmp_path / "dataset")


def test_load_bench_data_reads_a_generated_dataset(tmp_path_factory):
    from persona_gen.pipeline import run
    from tests.helpers import compose_run

    root = tmp_path_factory.mktemp("generated")
    result = run(compose_run(root / "run", root / "cache", ["model@models.generator=fake", "model@models.judge=fake",
                                                           "scale=tiny", "sampler.fidelity_sample_size=2000"]))
    data = load_bench_data(result.dataset_dir)
    assert len(data.personas) == result.manifest["rows"]["personas"]["train"]
    assert all(list(p.attributes) == list(PERSONA_KEYS) for p in data.personas)
    assert any(q.split == "held_out" for q in data.questions)


def test_select_pairs_asks_held_out_questions_only(tmp_path):
    data = load_bench_data(write_dataset(tmp_path / "dataset"))
    pairs = select_pairs(data.personas, data.questions, split="held_out")
    assert len(pairs) == len(PEOPLE) * sum(1 for q in QUESTIONS if q[2] == "held_out")
    assert all(p.question.split == "held_out" for p in pairs)


def test_select_pairs_draws_per_persona_deterministically(tmp_path):
    data = load_bench_data(write_dataset(tmp_path / "dataset"))

    def ids(seed):
        return [(p.persona.persona_id, p.question.question_id)
                for p in select_pairs(data.personas, data.questions, questions_per_persona=2, seed=seed)]

    assert ids(7) == ids(7)
    assert len(ids(7)) == 2 * len(PEOPLE)
    assert len({ids(s)[0] for s in range(8)} | {ids(s)[1] for s in range(8)}) > 1


def test_select_pairs_limits_personas(tmp_path):
    data = load_bench_data(write_dataset(tmp_path / "dataset"))
    pairs = select_pairs(data.personas, data.questions, num_personas=1, questions_per_persona=1)
    assert [(p.persona.persona_id, len(pairs)) for p in pairs] == [("p-0", 1)]


def test_select_pairs_rejects_a_split_without_questions(tmp_path):
    data = load_bench_data(write_dataset(tmp_path / "dataset", questions=[("q-1", "Why?", "train")]))
    with pytest.raises(ConfigError, match=r"questions of split 'held_out' must be >= 1, but got 0 .*split=all"):
        select_pairs(data.personas, data.questions, split="held_out")


def test_load_bench_data_names_a_truncated_parquet_file(tmp_path):
    dataset = write_dataset(tmp_path / "dataset")
    part = sorted((dataset / "data" / "personas").glob("*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:200])
    with pytest.raises(ConfigError, match=rf"dataset file {part.name} must be a readable parquet file, but got ['\"].*"
                                          rf"\(truncated or not parquet\)['\"] \(.*{part.name}\); regenerate"):
        load_bench_data(dataset)
