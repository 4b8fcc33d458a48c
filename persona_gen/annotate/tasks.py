"""The annotation tasks: ``annotate_export``, ``annotate_serve`` and ``annotate_import``.

    persona-gen task=annotate_export annotate.dataset_dir=outputs/.../dataset
    persona-gen task=annotate_serve  annotate.tasks_dir=outputs/.../annotation [annotate.port=8765]
    persona-gen task=annotate_import annotate.tasks_dir=outputs/.../annotation \\
        'annotate.labels=[outputs/.../annotation/web_labels.jsonl,crowd.csv]'

Import writes ``<run dir>/annotation/``: ``labels.jsonl`` (validated labels), ``items.jsonl`` (one item per
labeled task with its ratings and majority: the input of ``task=optimize``), ``judgments.jsonl`` and
``agreement.json`` (human vs human, human vs each judge variant).
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from persona_gen.annotate._io import atomic_write_text, jsonl_text, to_json
from persona_gen.annotate.agreement import agreement_report, feedback_rows
from persona_gen.annotate.config import JUDGE_SOURCES, AnnotateConfig, checked_group, required
from persona_gen.annotate.errors import AnnotationError
from persona_gen.annotate.export import ExportResult, export_tasks, read_tasks
from persona_gen.annotate.labels import build_items, read_labels
from persona_gen.annotate.records import LabeledItem
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.records import Judgment

__all__ = ["ImportResult", "ServeResult", "judge_items", "run_export", "run_import", "run_serve"]

log = logging.getLogger(__name__)


def _annotate(cfg: DictConfig) -> Any:
    return checked_group(cfg, "annotate", AnnotateConfig)


def run_export(cfg: DictConfig) -> ExportResult:
    """Write annotation tasks from ``annotate.dataset_dir`` to ``<run dir>/annotation``."""
    ann = _annotate(cfg)
    dataset = required(ann, "dataset_dir", "annotate", "pass annotate.dataset_dir=<run dir of task=generate>/dataset")
    return export_tasks(dataset, Path(cfg.paths.output_dir) / "annotation", num_personas=int(ann.num_personas),
                        questions_per_persona=int(ann.questions_per_persona), seed=int(cfg.seed))


@dataclass
class ServeResult:
    url: str
    labels_file: Path
    labels: int

    def summary_lines(self) -> list[str]:
        return [f"served {self.url} ; {self.labels} labels in {self.labels_file}"]


def labels_file(ann: Any) -> Path:
    """Where the page saves labels: ``annotate.labels_file``, else ``<tasks_dir>/web_labels.jsonl``."""
    return Path(ann.labels_file) if ann.labels_file else Path(ann.tasks_dir) / "web_labels.jsonl"


def run_serve(cfg: DictConfig) -> ServeResult:
    """Serve the annotation page on 127.0.0.1 until interrupted (Ctrl-C)."""
    from persona_gen.annotate.server import HOST, AnnotationApp, make_server

    ann = _annotate(cfg)
    tasks_dir = required(ann, "tasks_dir", "annotate", "pass annotate.tasks_dir=<run dir of task=annotate_export>"
                                                       "/annotation")
    app = AnnotationApp(read_tasks(tasks_dir), labels_file(ann), require_justification=bool(ann.require_justification),
                        raters_per_item=int(ann.raters_per_item))
    server = make_server(app, int(ann.port))
    url = f"http://{HOST}:{server.server_address[1]}/"
    print(f"annotation page: {url}  (labels go to {app.labels_file}; Ctrl-C to stop)", flush=True)
    # SIGTERM (a supervisor, `kill`) stops it like Ctrl-C: every label is already on disk either way.
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    return ServeResult(url, app.labels_file, len(app.labels))


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def judge_items(items: list[LabeledItem], cfg: DictConfig) -> list[Judgment]:
    """Judge the labeled items with ``models.judge`` and every ``stage.judge.variants`` (cached, both orders).

    A compiled program given as ``stage.judge.program_path`` replaces the plain judge of its variants.
    """
    from persona_gen.judge.stage import run_judge

    judges = None
    program = cfg.stage.judge.get("program_path")
    if program:
        from persona_gen.judge.programs import load_judges

        judges = load_judges(program)
    from persona_gen.core.runtime import Runtime

    runtime = Runtime(cfg)
    try:
        return run_judge(feedback_rows(items), cfg=cfg.stage.judge, caller=runtime.caller("judge"), judges=judges)
    finally:
        runtime.close()


def _dataset_judgments(dataset_dir: str, items: list[LabeledItem]) -> list[Judgment]:
    files = sorted((Path(dataset_dir) / "data" / "judgments").glob("*.parquet"))
    if not files:
        raise AnnotationError(format_error(
            "judgment parquet files", expected="present", got=f"none in {dataset_dir}/data/judgments",
            where="annotate.judge_source=dataset", fix="use annotate.judge_source=run to judge the items now"))
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    wanted = {i.feedback_id for i in items}
    fields = set(Judgment.model_fields) - {"failure"}
    out = []
    for row in frame[frame["feedback_id"].isin(wanted)].to_dict(orient="records"):
        out.append(Judgment.model_validate({k: ("" if isinstance(v, float) and np.isnan(v) else v)
                                            for k, v in row.items() if k in fields}))
    return out


@dataclass
class ImportResult:
    output_dir: Path
    items_path: Path
    report_path: Path
    report: dict[str, Any]

    def summary_lines(self) -> list[str]:
        r = self.report
        hvh = r["human_vs_human"]
        lines = [f"imported {r['labels']} labels from {r['raters']} raters on {r['items']} items",
                 f"human vs human (leave-one-rater-out majority): mean kappa {hvh['mean_kappa']}"
                 + _why(hvh)]
        for variant, k in r["human_vs_judge"].items():
            lines.append(f"human majority vs judge {variant}: kappa {k['kappa']} [{k['ci_low']}, {k['ci_high']}] "
                         f"on {k['n_pairs']} answers" + _why(k))
        lines += [f"items:  {self.items_path}  (optimize.labeled_items)", f"report: {self.report_path}"]
        return lines


def _why(result: dict[str, Any]) -> str:
    """Why a kappa is None, or the warning a small one carries, for the summary line."""
    text = result.get("note") or result.get("warning")
    return f"  ({text})" if text else ""


def run_import(cfg: DictConfig) -> ImportResult:
    """Validate label files against their tasks, join them, judge the items, and write the agreement report."""
    ann = _annotate(cfg)
    tasks_dir = required(ann, "tasks_dir", "annotate", "pass annotate.tasks_dir=<run dir of task=annotate_export>"
                                                       "/annotation")
    if ann.judge_source not in JUDGE_SOURCES:
        raise ConfigError(format_error("annotate.judge_source", expected=f"one of {list(JUDGE_SOURCES)}",
                                       got=ann.judge_source, where="conf/annotate/default.yaml",
                                       fix="run judges the items now; dataset reads the dataset's judgments"))
    tasks = read_tasks(tasks_dir)
    labels = read_labels(list(ann.labels), tasks.by_id(), require_justification=bool(ann.require_justification))
    items = build_items(tasks, labels)
    if ann.judge_source == "run":
        judgments = judge_items(items, cfg)
    elif ann.judge_source == "dataset":
        judgments = _dataset_judgments(required(ann, "dataset_dir", "annotate", "pass annotate.dataset_dir"), items)
    else:
        judgments = []
    report = agreement_report(items, judgments, ci=float(ann.ci), n_boot=int(ann.n_boot), seed=int(cfg.seed))
    report["tasks_dir"] = str(tasks_dir)
    report["label_files"] = [str(p) for p in ann.labels]
    report["judge_source"] = ann.judge_source
    out = Path(cfg.paths.output_dir) / "annotation"
    atomic_write_text(out / "labels.jsonl", jsonl_text(lab.model_dump() for lab in labels))
    items_path = atomic_write_text(out / "items.jsonl", jsonl_text(i.model_dump() for i in items))
    atomic_write_text(out / "judgments.jsonl", jsonl_text(j.model_dump(mode="json") for j in judgments))
    report_path = atomic_write_text(out / "agreement.json", to_json(report))
    return ImportResult(out, items_path, report_path, report)
