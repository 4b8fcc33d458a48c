from __future__ import annotations

import json

import pytest
from omegaconf import open_dict

from persona_gen.annotate.config import AnnotateConfig, checked_group
from persona_gen.annotate.records import LabeledItem
from persona_gen.annotate.tasks import run_export, run_import
from persona_gen.core.errors import ConfigError
from persona_gen.tasks import resolve_task
from tests.unit.annotate.synthetic import compose, rule_choice, write_dataset


@pytest.fixture
def exported(tmp_path):
    dataset = write_dataset(tmp_path, num_personas=4, questions=3)
    cfg = compose(tmp_path / "export", tmp_path / "cache", [f"annotate.dataset_dir={dataset}"])
    return run_export(cfg)


def _labels_csv(path, tasks, raters=("r1", "r2", "r3")):
    lines = ["rater_id,task_id,choice,justification"]
    lines += [f"{r},{t.task_id},{rule_choice(t.persona, t.answer_a, t.answer_b)},it fits my views"
              for r in raters for t in tasks]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_annotate_tasks_are_registered():
    for name in ("annotate_export", "annotate_import", "annotate_serve", "optimize"):
        assert callable(resolve_task(name))


def test_annotate_default_config_matches_its_schema(tmp_path):
    cfg = compose(tmp_path / "out", tmp_path / "cache")
    assert checked_group(cfg, "annotate", AnnotateConfig).judge_source == "run"


def test_checked_group_rejects_a_misspelt_key(tmp_path):
    from omegaconf import OmegaConf

    cfg = compose(tmp_path / "out", tmp_path / "cache")
    # The composed group is typed now (the schema refuses the key as it is set); a plain copy reaches checked_group.
    plain = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(plain):
        plain.annotate.num_persona = 3
    with pytest.raises(ConfigError, match=r"annotate.num_persona must be valid for AnnotateConfig"):
        checked_group(plain, "annotate", AnnotateConfig)


def test_run_export_requires_a_dataset_dir(tmp_path):
    cfg = compose(tmp_path / "out", tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"annotate.dataset_dir must be set.*pass annotate.dataset_dir="):
        run_export(cfg)


def test_run_import_writes_items_and_agreement_with_each_judge_variant(exported, tmp_path):
    labels = _labels_csv(tmp_path / "labels.csv", exported.tasks)
    cfg = compose(tmp_path / "import", tmp_path / "cache",
                  [f"annotate.tasks_dir={exported.folder}", f"annotate.labels=[{labels}]"])
    result = run_import(cfg)
    report = json.loads(result.report_path.read_text())
    assert report["human_vs_human"]["mean_kappa"] == 1.0
    assert sorted(report["human_vs_judge"]) == ["chain_of_thought", "direct"]
    assert report["human_vs_judge"]["direct"]["n_pairs"] == 2 * len(exported.tasks)
    items = [LabeledItem.model_validate_json(line) for line in result.items_path.read_text().splitlines()]
    assert len(items) == len(exported.tasks) and all(len(i.ratings) == 3 for i in items)


def test_run_import_rejects_an_unknown_judge_source(exported, tmp_path):
    labels = _labels_csv(tmp_path / "labels.csv", exported.tasks)
    cfg = compose(tmp_path / "import", tmp_path / "cache", [f"annotate.tasks_dir={exported.folder}",
                                                            f"annotate.labels=[{labels}]", "annotate.judge_source=gpt"])
    with pytest.raises(ConfigError, match=r"annotate.judge_source must be one of \['run', 'dataset', 'skip'\]"):
        run_import(cfg)


def test_checked_group_resolves_interpolations_outside_the_group():
    from omegaconf import OmegaConf

    from persona_gen.optimize.config import OptimizeConfig

    cfg = OmegaConf.create({"stage": {"judge": {"variants": ["direct"]}},
                            "optimize": {"variants": "${stage.judge.variants}"}})
    assert list(checked_group(cfg, "optimize", OptimizeConfig).variants) == ["direct"]


def test_run_import_reads_judgments_from_the_dataset(exported, tmp_path):
    import pandas as pd

    keys = [json.loads(line) for line in (exported.folder / "key.jsonl").read_text().splitlines()]
    rows = [{"judgment_id": f"j{n}", "feedback_id": k["feedback_id"], "persona_id": k["persona_id"],
             "question_id": k["question_id"], "variant": "direct", "order": order, "choice": "first",
             "preferred": "original" if order == "original_first" else "revision", "reasoning": "",
             "judge_model": "m", "signature_hash": "s", "program_hash": "", "failure": "null"}
            for n, k in enumerate(keys) for order in ("original_first", "revision_first")]
    folder = tmp_path / "dataset" / "data" / "judgments"
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "train-00000-of-00001.parquet")
    labels = _labels_csv(tmp_path / "labels.csv", exported.tasks)
    cfg = compose(tmp_path / "import", tmp_path / "cache", [
        f"annotate.tasks_dir={exported.folder}", f"annotate.labels=[{labels}]", "annotate.judge_source=dataset",
        f"annotate.dataset_dir={tmp_path / 'dataset'}"])
    report = run_import(cfg).report
    assert list(report["human_vs_judge"]) == ["direct"]
    assert report["human_vs_judge"]["direct"]["n_pairs"] == 2 * len(keys)


def test_run_import_summary_says_why_human_kappa_is_none(exported, tmp_path):
    labels = _labels_csv(tmp_path / "labels.csv", exported.tasks, raters=("solo",))
    cfg = compose(tmp_path / "import", tmp_path / "cache",
                  [f"annotate.tasks_dir={exported.folder}", f"annotate.labels=[{labels}]",
                   "annotate.judge_source=skip"])
    [line] = [ln for ln in run_import(cfg).summary_lines() if ln.startswith("human vs human")]
    assert line.endswith("mean kappa None  (not computed: 1 rater(s); it needs at least two raters on shared items; "
                         "serve the page with annotate.raters_per_item=2 (or more) and have at least that many "
                         "raters per persona, so that items are labeled by several people)")


@pytest.mark.parametrize(("content", "match"), [
    ("rater_id,task_id,choice,justification\nr1,t1,a,caf\xe9 au lait\n".encode("cp1252"),
     r"label file labels\.csv must be UTF-8 text \(CSV\), but got \"byte 0xe9 .*labels\.csv:2\); "
     r"save it as 'CSV UTF-8'"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\xff\xfe",
     r"label file labels\.csv must be (UTF-8 text|a CSV text file)"),
])
def test_labels_in_another_encoding_or_binary_are_one_line_with_file_and_line(content, match, tmp_path):
    from persona_gen.annotate.labels import read_labels

    path = tmp_path / "labels.csv"
    path.write_bytes(content)
    from persona_gen.annotate.errors import AnnotationError

    with pytest.raises(AnnotationError, match=match) as info:
        read_labels([path], {"t1"})
    assert "\n" not in str(info.value)
