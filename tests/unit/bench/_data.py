"""Bench test inputs: a small dataset folder in the layout a generate run writes, and a config composer."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from persona_gen.core.records import PERSONA_KEYS
from tests.helpers import compose_run

FAKE_MODELS = ["model@models.generator=fake", "model@models.judge=fake"]

# (sex, age, ideology, religion, education) per persona; every other key gets a plain value.
PEOPLE = [
    ("Female", "70", "Liberal", "Catholic", "Master's degree"),
    ("Male", "24", "Conservative", "None", "Regular high school diploma"),
    ("Female", "41", "Moderate", "Protestant", "Bachelor's degree"),
]
QUESTIONS = [
    ("q-train-1", "Should children be taught about religion at school?", "train"),
    ("q-held-1", "Is it fair to tax the rich more heavily?", "held_out"),
    ("q-held-2", "Should I move closer to my aging parents?", "held_out"),
    ("q-held-3", "Is eating meat morally acceptable?", "held_out"),
]


def persona_attributes(sex: str, age: str, ideology: str, religion: str, education: str) -> dict[str, str]:
    attrs = {k: f"plain {k}" for k in PERSONA_KEYS}
    attrs.update({"sex": sex, "age": age, "ideology": ideology, "political views": ideology, "religion": religion,
                  "education": education})
    return attrs


def write_dataset(folder: Path, people: list[tuple[str, ...]] = PEOPLE,
                  questions: list[tuple[str, str, str]] = QUESTIONS) -> Path:
    """Write ``data/personas`` and ``data/questions`` parquet shards like ``persona_gen.pipeline.run`` does."""
    rows = []
    for i, person in enumerate(people):
        attrs = persona_attributes(*person)
        rows.append({"persona_id": f"p-{i}", "source_record_id": f"r-{i}",
                     "persona": "\n".join(f"{k}: {v}" for k, v in attrs.items()), **attrs})
    (folder / "data" / "personas").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / "data" / "personas" / "train-00000-of-00001.parquet", index=False)
    qs = pd.DataFrame([{"question_id": q, "text": t, "source": "test", "cluster": "c0", "split": s}
                       for q, t, s in questions])
    (folder / "data" / "questions").mkdir(parents=True, exist_ok=True)
    qs.to_parquet(folder / "data" / "questions" / "train-00000-of-00001.parquet", index=False)
    return folder


def _bench_in_defaults() -> bool:
    text = resources.files("persona_gen.conf").joinpath("config.yaml").read_text()
    return any(line.strip().replace(" ", "").startswith("-bench:") for line in text.splitlines())


def bench_group_override(option: str = "default") -> str:
    """``bench=<option>`` once the lead adds ``bench`` to conf/config.yaml's defaults, ``+bench=<option>`` before."""
    return f"bench={option}" if _bench_in_defaults() else f"+bench={option}"


def compose_bench(tmp: Path, overrides: list[str] = (), *, option: str = "default", dataset: Path | None = None,
                  models: list[str] = FAKE_MODELS) -> DictConfig:
    dataset = dataset or write_dataset(tmp / "dataset")
    return compose_run(tmp / "run", tmp / "cache", [bench_group_override(option), *models,
                                                    f"bench.dataset_dir='{dataset}'", *overrides])
