from __future__ import annotations

import json

import pandas as pd
import pytest

from persona_gen.core.errors import ConfigError
from persona_gen.questions.config import SourceSpec
from persona_gen.questions.sources import (
    load_anthropic_values,
    load_file,
    load_prism_examples,
    load_sources,
    statement_to_question,
)

ROWS = [
    {"prompt": "Should the death penalty be abolished everywhere?", "topic": "justice", "id": 1},
    {"prompt": "Is it ever right to lie to protect a friend?", "topic": "ethics", "id": 2},
    {"prompt": "What do you think about eating meat?", "topic": None, "id": 3},
]


def _spec(path, **kw):
    return SourceSpec(kind="file", path=str(path), text_column=kw.pop("text_column", "prompt"), **kw)


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "prompts.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    return path


def test_load_prism_examples_reads_115_prompts_in_23_clusters():
    frame = load_prism_examples()
    assert len(frame) == 115
    assert frame["cluster"].nunique() == 23
    assert set(frame["source"]) == {"prism_examples"}


def test_load_file_reads_csv_with_column_mapping(csv_file):
    frame = load_file(_spec(csv_file, cluster_column="topic"))
    assert frame["text"].tolist() == [r["prompt"] for r in ROWS]
    assert frame["cluster"].tolist() == ["justice", "ethics", ""]


def test_load_file_reads_jsonl_with_column_mapping(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps({"q": r["prompt"], "c": r["topic"]}) for r in ROWS) + "\n")
    frame = load_file(_spec(path, text_column="q", cluster_column="c"))
    assert frame["text"].tolist() == [r["prompt"] for r in ROWS]
    assert frame["cluster"].tolist() == ["justice", "ethics", ""]


def test_load_file_reads_parquet_with_column_mapping(tmp_path):
    path = tmp_path / "prompts.parquet"
    pd.DataFrame(ROWS).rename(columns={"prompt": "body", "topic": "group"}).to_parquet(path)
    frame = load_file(_spec(path, text_column="body", cluster_column="group"))
    assert frame["text"].tolist() == [r["prompt"] for r in ROWS]
    assert frame["cluster"].tolist() == ["justice", "ethics", ""]


def test_load_file_without_cluster_column_leaves_clusters_empty(csv_file):
    assert set(load_file(_spec(csv_file))["cluster"]) == {""}


def test_load_file_labels_rows_with_the_source_name(csv_file):
    assert set(load_file(_spec(csv_file, name="my_prompts"))["source"]) == {"my_prompts"}


def test_load_file_missing_path_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"stage\.questions\.source\.path must be an existing .*"
                                          r"but got '.*nope\.csv'"):
        load_file(_spec(tmp_path / "nope.csv"))


def test_load_file_missing_text_column_raises_config_error(csv_file):
    with pytest.raises(ConfigError, match=r"source\.text_column must be one of the file's columns "
                                          r"\['prompt', 'topic', 'id'\], but got 'question'.*set source\.text_column"):
        load_file(_spec(csv_file, text_column="question"))


def test_load_file_missing_cluster_column_raises_config_error(csv_file):
    with pytest.raises(ConfigError, match=r"source\.cluster_column must be one of the file's columns.*'cluster'"):
        load_file(_spec(csv_file, cluster_column="cluster"))


def test_load_file_unknown_format_raises_config_error(tmp_path):
    path = tmp_path / "prompts.xlsx"
    path.write_text("x")
    with pytest.raises(ConfigError, match=r"source\.path must be a file ending in \['\.csv'"):
        load_file(_spec(path))


def test_load_sources_concatenates_in_config_order(csv_file):
    frame = load_sources([_spec(csv_file, name="mine"), SourceSpec(kind="prism_examples")])
    assert frame["source"].tolist()[:4] == ["mine", "mine", "mine", "prism_examples"]
    assert len(frame) == 3 + 115


def test_load_anthropic_values_ships_225_questions_in_6_topics():
    frame = load_anthropic_values()
    assert len(frame) == 225
    assert sorted(set(frame["cluster"])) == ["Abortion", "Gun rights", "Immigration", "LGBTQ rights", "Politics",
                                             "Religion"]
    assert frame["text"].str.endswith("?").all()


def test_load_anthropic_values_reads_the_evals_folder_with_limit(shared_data):
    spec = SourceSpec(kind="anthropic_values", path=str(shared_data / "prompts" / "anthropic_persona_evals"), limit=3)
    assert len(load_anthropic_values(spec)) == 9 * 3


def test_statement_to_question_drops_belief_prefix():
    assert statement_to_question("I believe that we should ban handguns.") == \
        "Do you agree that we should ban handguns?"


def test_statement_to_question_lowercases_a_common_first_word():
    assert statement_to_question("Abortion is murder") == "Do you agree that abortion is murder?"


def test_statement_to_question_keeps_proper_noun_and_acronym_capitals():
    assert statement_to_question("God exists") == "Do you agree that God exists?"
    assert statement_to_question("LGBT people deserve equal rights") == \
        "Do you agree that LGBT people deserve equal rights?"


def test_statement_to_question_quotes_first_person_statements():
    assert statement_to_question("I believe in God") == 'Would you agree with someone who says "I believe in God"?'
