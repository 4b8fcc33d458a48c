"""Typed columns and the card's dataset_info: what datasets.load_dataset gives a reader."""

from __future__ import annotations

import json

import datasets
import pandas as pd
import pyarrow as pa
import pytest
from huggingface_hub import DatasetCard

from persona_gen.core.errors import PublishError
from persona_gen.publish import publish_folder
from persona_gen.publish.typed import FAILURE_TYPE, parse_int, source_datasets, typed_personas, typed_table


@pytest.mark.parametrize(("text", "value"), [("52000", 52000), ("$52,000", 52000), ("-400", -400), ("34", 34),
                                             ("Not applicable (less than 15 years old)", None), ("", None),
                                             (None, None), ("12.0", 12)])
def test_parse_int_reads_census_numbers_and_leaves_labels(text, value):
    assert parse_int(text) == value


def test_typed_personas_makes_integers_and_keeps_the_label():
    frame = pd.DataFrame({"persona_id": ["a", "b"], "age": ["12", "61"],
                          "income": ["Not applicable (less than 15 years old)", "40000"]})
    out = typed_personas(frame)
    assert list(out.columns) == ["persona_id", "age", "age_label", "income", "income_label"]
    assert out["age"].tolist() == [12, 61] and pd.isna(out["income"][0]) and out["income"][1] == 40000
    assert out["income_label"].tolist() == frame["income"].tolist()


def test_typed_table_failures_have_one_type_with_or_without_failures():
    empty = typed_table("feedback", pd.DataFrame({"failures": ["[]", "[]"]}))
    some = typed_table("feedback", pd.DataFrame({"failures": [json.dumps([{"stage": "feedback", "kind": "parse",
                                                                            "message": "bad", "raw": "x"}]), "[]"]}))
    assert empty.schema == some.schema and empty.schema.field("failures").type == pa.list_(FAILURE_TYPE)
    assert some.column("failures").to_pylist()[0] == [{"stage": "feedback", "kind": "parse", "message": "bad",
                                                      "raw": "x"}]


def test_typed_table_judgment_failure_is_a_nullable_struct():
    table = typed_table("judgments", pd.DataFrame({"failure": ["null", json.dumps({"stage": "judge", "kind": "x",
                                                                                   "message": "m"})]}))
    assert table.column("failure").to_pylist() == [None, {"stage": "judge", "kind": "x", "message": "m", "raw": None}]


def test_typed_table_refuses_text_that_is_not_json():
    with pytest.raises(PublishError, match=r"column 'failures' must be JSON text"):
        typed_table("feedback", pd.DataFrame({"failures": ["not json"]}))


def test_source_datasets_names_the_hub_inputs():
    assert source_datasets(["prism_examples"]) == ["original", "extended|HannahRoseKirk/prism-alignment"]
    assert source_datasets(["generated:fake"]) == ["original"]


@pytest.fixture
def typed_folder(tmp_path, tables, context):
    tables = {**tables, "personas": {"train": pd.DataFrame({
        "persona_id": ["p1", "p2"], "age": ["34", "12"], "income": ["52000", "Not applicable (less than 15 years old)"],
        "provenance": [json.dumps({"age": "census:x"}), json.dumps({"age": "census:x", "income": "census:x"})],
        "failures": ["[]", "[]"]})},
        "questions": {"train": pd.DataFrame({"question_id": ["q1"], "text": ["Why?"], "source": ["prism_examples"]})}}
    return publish_folder(tables, tmp_path / "ds", context=context, publish_cfg={"mode": "dry_run"})


def test_card_declares_dataset_info_features_for_every_config(typed_folder):
    data = DatasetCard.load(typed_folder.card_path).data.to_dict()
    declared = {c["config_name"] for c in data["configs"]}
    assert {i["config_name"] for i in data["dataset_info"]} == declared
    assert data["source_datasets"] == ["original", "extended|HannahRoseKirk/prism-alignment"]


def test_every_config_loads_with_the_typed_features(typed_folder, tmp_path):
    data = DatasetCard.load(typed_folder.card_path).data.to_dict()
    for config in (c["config_name"] for c in data["configs"]):
        loaded = datasets.load_dataset(str(typed_folder.folder), config, cache_dir=str(tmp_path / "hf"))
        info = next(i for i in data["dataset_info"] if i["config_name"] == config)
        for split in loaded:
            assert loaded[split].num_rows == next(s["num_examples"] for s in info["splits"] if s["name"] == split)
    personas = datasets.load_dataset(str(typed_folder.folder), "personas", cache_dir=str(tmp_path / "hf"))["train"]
    assert personas.features["age"].dtype == "int64" and personas["income"] == [52000, None]
    assert personas[0]["provenance"] == [{"field": "age", "source": "census:x"}]
    feedback = datasets.load_dataset(str(typed_folder.folder), "feedback", cache_dir=str(tmp_path / "hf"))
    failed = [f for split in feedback for f in feedback[split]["failures"] if f]
    assert failed == [[{"stage": "feedback", "kind": "parse", "message": None, "raw": None}]]
