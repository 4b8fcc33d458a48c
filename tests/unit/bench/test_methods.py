from __future__ import annotations

import pytest

from persona_gen.bench.data import load_bench_data, select_pairs
from persona_gen.bench.evaluate import score_pairs
from persona_gen.bench.methods import BenchCritic, PluggedMethod, build_method, load_method
from persona_gen.bench.settings import PAPER_MODES
from persona_gen.core.cache import CallCache
from persona_gen.core.calls import Caller
from persona_gen.core.errors import ConfigError
from tests.unit.bench._data import write_dataset


@pytest.fixture
def pairs(tmp_path):
    data = load_bench_data(write_dataset(tmp_path / "dataset"))
    return select_pairs(data.personas, data.questions, questions_per_persona=2)


@pytest.mark.parametrize("mode", PAPER_MODES)
def test_build_method_every_paper_mode_answers_through_the_caller(tmp_path, fake_client, mode):
    caller = Caller(fake_client(), CallCache(tmp_path / "cache"), progress=False)
    method = build_method(mode)
    inputs = {"question": "Is it fair to tax the rich more heavily?"}
    if getattr(method, "uses_persona", True):
        inputs["persona"] = "age: 70\nsex: Female"
    [result] = caller.map(f"bench_answer_{mode}", method, [inputs])
    assert result.ok, result.failure
    assert isinstance(result.outputs["answer"], str) and result.outputs["answer"]


def test_demographic_summary_answers_from_a_model_written_summary(tmp_path, fake_client):
    client = fake_client()
    caller = Caller(client, CallCache(tmp_path / "cache"), progress=False)
    [result] = caller.map("s", build_method("demographic_summary"), [{"persona": "age: 70", "question": "Why?"}])
    assert isinstance(result.outputs["summary"], str) and result.outputs["summary"]
    assert client.engine.calls == 2


def test_chain_of_thought_mode_reasons_before_answering(tmp_path, fake_client):
    caller = Caller(fake_client(), CallCache(tmp_path / "cache"), progress=False)
    [result] = caller.map("c", build_method("chain_of_thought"), [{"persona": "age: 70", "question": "Why?"}])
    assert list(result.outputs)[:2] == ["reasoning", "answer"]


def test_score_pairs_baseline_answer_is_shared_by_every_persona(tmp_path, fake_client, pairs):
    gen, judge = fake_client(), fake_client()
    cache = CallCache(tmp_path / "cache")
    rows = score_pairs(pairs, build_method("baseline"), mode="baseline", generator=Caller(gen, cache, progress=False),
                       judge=Caller(judge, cache, progress=False), critic=BenchCritic(), stage="bench_answer_baseline")
    by_question: dict[str, set[str]] = {}
    for r in rows:
        by_question.setdefault(r.question_id, set()).add(r.answer)
    assert all(len(answers) == 1 for answers in by_question.values())
    assert gen.engine.calls == len(by_question)


def test_load_method_rejects_an_unimportable_path():
    with pytest.raises(ConfigError, match=r"^bench\.method must be an importable 'package\.module:Class', "
                                          r"but got 'no_such_pkg\.mod:Thing'"):
        load_method("no_such_pkg.mod:Thing")


def test_load_method_rejects_a_class_that_needs_arguments():
    with pytest.raises(ConfigError, match=r"must be a class instantiable with no arguments"):
        load_method("tests.unit.bench.plugins:NeedsArgument")


def test_load_method_accepts_a_dotted_path():
    assert type(load_method("tests.unit.bench.plugins.TerseAnswerer")).__name__ == "TerseAnswerer"


def test_plugged_method_wraps_a_plain_string_answer(tmp_path, fake_client):
    caller = Caller(fake_client(), CallCache(tmp_path / "cache"), progress=False)
    method = PluggedMethod(load_method("tests.unit.bench.plugins:FixedAnswerer"), "tests.unit.bench.plugins")
    [result] = caller.map("p", method, [{"persona": "age: 1", "question": "Why?"}])
    assert result.outputs == {"answer": "It depends on what matters most to you."}


def test_plugged_method_without_config_still_gets_distinct_sample_seeds(tmp_path, fake_client):
    caller = Caller(fake_client(temperature=0.7), CallCache(tmp_path / "cache"), progress=False)
    method = PluggedMethod(load_method("tests.unit.bench.plugins:TerseAnswerer"), "x")
    answers = {caller.map("p", method, [{"persona": "age: 1", "question": "Why?"}], sample_index=i)[0]
               .outputs["answer"] for i in range(4)}
    assert len(answers) > 1


def test_load_method_from_a_file_path_relative_to_the_root(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mine.py").write_text("class Mine:\n    def __call__(self, persona, question):\n"
                                              "        return 'ok'\n")
    assert type(load_method("pkg/mine.py:Mine", root=tmp_path)).__name__ == "Mine"


def test_load_method_imports_a_module_of_the_root_folder(tmp_path):
    (tmp_path / "rootmod_for_bench_test.py").write_text("class Here:\n    def __call__(self, persona, question):\n"
                                                        "        return 'ok'\n")
    assert type(load_method("rootmod_for_bench_test:Here", root=tmp_path)).__name__ == "Here"


def test_load_method_missing_file_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^bench\.method must be an importable .*no file"):
        load_method("nope/missing.py:Thing", root=tmp_path)


def test_plugged_method_is_labelled_by_class_and_causes_no_forward_warning(tmp_path, fake_client, caplog):
    import logging

    caller = Caller(fake_client(), CallCache(tmp_path / "cache"), progress=False)
    with caplog.at_level(logging.WARNING):
        method = PluggedMethod(load_method("tests.unit.bench.plugins:TerseAnswerer"), "x")
        caller.map("p", method, [{"persona": "age: 1", "question": "Why?"}])
    assert method.label == "TerseAnswerer"
    assert not [r for r in caplog.records if "directly is discouraged" in r.getMessage()]
