"""The dpo config: TRL's conversational preference format, failed rows left out and counted."""

from __future__ import annotations

import json

import datasets
import pandas as pd
import pytest

from persona_gen.core.errors import PublishError
from persona_gen.publish import publish_folder
from persona_gen.publish.dpo import DPO_COLUMNS, dpo_batches, dpo_frame, failed_rows, personalization_instruction


def _feedback(tables) -> pd.DataFrame:
    return pd.concat(tables["feedback"].values(), ignore_index=True)


def test_dpo_frame_has_trl_conversational_columns(tables):
    out = dpo_frame(_feedback(tables))
    assert tuple(out.columns) == DPO_COLUMNS
    row = out.iloc[0]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert [m["role"] for m in row["chosen"]] == [m["role"] for m in row["rejected"]] == ["assistant"]


def test_dpo_frame_chosen_is_the_revision_and_rejected_the_original(tables):
    feedback = _feedback(tables)
    out = dpo_frame(feedback)
    kept = feedback[~failed_rows(feedback)].reset_index(drop=True)
    assert [r[0]["content"] for r in out["chosen"]] == kept["data"].tolist()
    assert [r[0]["content"] for r in out["rejected"]] == kept["original"].tolist()
    assert [p[1]["content"] for p in out["prompt"]] == kept["instruction"].tolist()
    assert all(persona in p[0]["content"] for p, persona in zip(out["prompt"], kept["persona"], strict=True))


def test_dpo_frame_leaves_out_rows_whose_feedback_failed(tables):
    feedback = _feedback(tables)
    out = dpo_frame(feedback)
    failed = feedback["failures"].map(lambda s: bool(json.loads(s)))
    assert len(out) == len(feedback) - int(failed.sum()) == len(feedback) - 1


def test_failed_rows_uses_failure_count_and_empty_answers():
    frame = pd.DataFrame({"original": ["a", "", "c"], "data": ["x", "y", "z"], "failure_count": [0, 0, 2]})
    assert failed_rows(frame).tolist() == [False, True, True]


def test_personalization_instruction_holds_the_persona_and_forbids_naming_it():
    text = personalization_instruction("age: 34\nsex: Female")
    assert text.endswith("age: 34\nsex: Female") and "never name or mention" in text


def test_dpo_frame_takes_another_system_message(tables):
    out = dpo_frame(_feedback(tables), personalization=lambda persona: f"You serve: {persona}")
    assert out["prompt"][0][0]["content"].startswith("You serve: age:")


def test_dpo_frame_without_the_answers_is_one_error():
    with pytest.raises(PublishError, match=r"feedback columns for the dpo config must be .*\['original', 'data'\]"):
        dpo_frame(pd.DataFrame({"persona": ["x"], "instruction": ["y"]}))


def test_dpo_batches_streams_each_batch(tables):
    batches = list(dpo_batches(iter(tables["feedback"].values())))
    assert sum(len(b) for b in batches) == len(dpo_frame(_feedback(tables)))


def test_published_dpo_config_loads_and_the_card_counts_left_out_rows(tmp_path, tables, context):
    tables = {**tables, "dpo": {split: dpo_frame(frame) for split, frame in tables["feedback"].items()}}
    published = publish_folder(tables, tmp_path / "ds", context=context, publish_cfg={"mode": "dry_run"})
    dpo = datasets.load_dataset(str(published.folder), "dpo", cache_dir=str(tmp_path / "hf"))
    assert dpo["train"][0]["chosen"][0]["role"] == "assistant"
    assert sum(dpo[s].num_rows for s in dpo) == 4
    card = published.card_path.read_text()
    assert "4 rows; 1 feedback rows with a recorded failure are left out" in card
    assert 'load_dataset("me/persona-data", "dpo")' in card or 'load_dataset("<user or org>/<dataset name>", "dpo")' \
        in card
