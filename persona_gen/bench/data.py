"""The bench's inputs: personas and questions read back from a generated dataset folder, and the pairs to score.

A ``generate`` run writes ``dataset/data/personas/train-*.parquet`` (``persona_id``, ``persona`` text and one
column per PERSONA key) and ``dataset/data/questions/train-*.parquet`` (``question_id``, ``text``, ``cluster``,
``split`` in {train, held_out}). The bench reads those files only, never another stage's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np
import pandas as pd

from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.records import PERSONA_KEYS, Persona, Question

__all__ = ["BenchData", "BenchPair", "load_bench_data", "select_pairs"]


@dataclass(frozen=True)
class BenchData:
    personas: list[Persona]
    questions: list[Question]
    dataset_dir: Path


@dataclass(frozen=True)
class BenchPair:
    """One persona asking one question: the unit every method answers and the critic scores."""

    persona: Persona
    question: Question


def _read_table(dataset_dir: Path, name: str, required: Sequence[str]) -> pd.DataFrame:
    files = sorted((dataset_dir / "data" / name).glob("*.parquet"))
    if not files:
        raise ConfigError(format_error(
            f"bench.dataset_dir/data/{name}", expected="a folder of parquet files",
            got=str(dataset_dir / "data" / name), where="bench.dataset_dir",
            fix="point bench.dataset_dir at the dataset/ folder of a generate run"))
    frame = pd.concat([_read_parquet(f) for f in files], ignore_index=True)
    absent = [c for c in required if c not in frame.columns]
    if absent:
        raise ConfigError(format_error(
            f"the {name} table", expected=f"columns {list(required)}", got=f"missing {absent}",
            where=str(files[0]), fix="regenerate the dataset with this version of persona_gen"))
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ConfigError(format_error(
            f"dataset file {path.name}", expected="a readable parquet file", got=f"{type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:160]} (truncated or not parquet)", where=str(path),
            fix="regenerate the dataset (persona-gen with the same overrides rewrites it from the cache), or copy "
                "it again")) from None


def _attributes(row: dict[str, object], keys: Sequence[str]) -> dict[str, str]:
    if keys:
        return {k: "" if row[k] is None else str(row[k]) for k in keys}
    # No per-key columns: fall back to the rendered 'key: value' text.
    pairs = (line.split(": ", 1) for line in str(row.get("persona") or "").splitlines() if ": " in line)
    return dict(pairs)


def load_bench_data(dataset_dir: str | Path) -> BenchData:
    """Personas and questions of a generated dataset folder, as records, in file order.

    Raises:
        ConfigError: When the folder, a table or a required column is missing.
    """
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise ConfigError(format_error(
            "bench.dataset_dir", expected="an existing dataset folder", got=str(dataset_dir), where=str(Path.cwd()),
            fix="run `persona-gen` first and pass its outputs/<date>/<time>/dataset folder"))
    people = _read_table(dataset_dir, "personas", ["persona_id"])
    keys = [k for k in PERSONA_KEYS if k in people.columns]
    if not keys and "persona" not in people.columns:
        raise ConfigError(format_error(
            "the personas table", expected="a 'persona' text column or one column per PERSONA key",
            got=f"columns {list(people.columns)}", where=str(dataset_dir / "data" / "personas"),
            fix="regenerate the dataset with this version of persona_gen"))
    personas = []
    for row in people.to_dict(orient="records"):
        personas.append(Persona(persona_id=str(row["persona_id"]), attributes=_attributes(row, keys),
                                source_record_id=str(row.get("source_record_id") or "")))
    frame = _read_table(dataset_dir, "questions", ["question_id", "text"])
    questions = []
    for r in frame.to_dict(orient="records"):
        split = str(r.get("split") or "train")
        if split not in ("train", "held_out"):
            raise ConfigError(format_error(
                f"split of question {r['question_id']}", expected="'train' or 'held_out'", got=split,
                where=str(dataset_dir / "data" / "questions"), fix="regenerate the dataset"))
        questions.append(Question(question_id=str(r["question_id"]), text=str(r["text"]),
                                  source=str(r.get("source") or ""), cluster=str(r.get("cluster") or ""),
                                  split=cast(Literal["train", "held_out"], split)))
    return BenchData(personas, questions, dataset_dir)


def select_pairs(personas: Sequence[Persona], questions: Sequence[Question], *, split: str = "held_out",
                 num_personas: int | None = None, questions_per_persona: int | None = None,
                 seed: int = 0) -> list[BenchPair]:
    """The (persona, question) pairs to score: the first ``num_personas`` personas, each with its own seeded
    draw of ``questions_per_persona`` questions of ``split`` (all of them when None).

    Raises:
        ConfigError: When there are no personas or no question of ``split``.
    """
    pool = sorted((q for q in questions if split == "all" or q.split == split), key=lambda q: q.question_id)
    if not pool:
        splits = sorted({q.split for q in questions})
        raise ConfigError(format_error(
            f"questions of split {split!r}", expected=">= 1", got=0, where=f"dataset questions (splits: {splits})",
            fix="use bench.question_split=all, or generate with more questions"))
    chosen = list(personas)[:num_personas] if num_personas else list(personas)
    if not chosen:
        raise ConfigError(format_error("personas", expected=">= 1", got=0, where="dataset personas table",
                                       fix="generate a dataset with scale.num_personas >= 1"))
    per = min(questions_per_persona or len(pool), len(pool))
    children = np.random.SeedSequence(seed).spawn(len(chosen))
    pairs: list[BenchPair] = []
    for persona, child in zip(chosen, children, strict=True):
        picks = np.random.default_rng(child).choice(len(pool), size=per, replace=False)
        pairs.extend(BenchPair(persona, pool[int(i)]) for i in sorted(picks))
    return pairs
