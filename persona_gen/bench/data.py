"""The bench's inputs: personas and questions read back from a dataset, and the pairs to score.

Two layouts are read, from three kinds of source:

- **persona_gen's folder**: a ``generate`` run writes ``dataset/data/personas/train-*.parquet`` (``persona_id``,
  ``persona`` text and one column per PERSONA key) and ``dataset/data/questions/train-*.parquet``
  (``question_id``, ``text``, ``cluster``, ``split`` in {train, held_out}).
- **the released PERSONA layout** (the paper's dataset, e.g. ``SynthLabsAI/PERSONA``): rows with ``persona``
  (``key: value`` lines), ``instruction``, ``original``, ``critique``, ``data`` and ``question type``, as a local
  folder (or file) of parquet / JSONL / CSV, or a Hub dataset id read with ``datasets.load_dataset`` (from its
  cache when offline). Personas are parsed back from their text, questions are the distinct instructions, and a
  question is held out when no ``train`` row asks it.

Either way the data's content hash and source are recorded (:attr:`BenchData.origin`): for a persona_gen folder
the hash is the one its dataset card shows (the ``bench`` config's rows, when a bench is attached, left out), so
bench scores can be tied to the dataset they scored.
The bench reads these files only, never another stage's code.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.records import PERSONA_KEYS, Persona, Question, stable_id

__all__ = ["RELEASED_COLUMNS", "BenchData", "BenchPair", "DatasetSource", "load_bench_data", "local_data_files",
           "parse_persona", "read_released", "resolve_source", "select_pairs"]

# The columns of the released PERSONA dataset (Castricato et al. 2024), as persona_gen's feedback config writes them.
RELEASED_COLUMNS: tuple[str, ...] = ("persona", "instruction", "original", "critique", "data", "question type")
_HUB_ID = re.compile(r"^(?:hf:/+datasets/|hub:)?([A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)"
                     r"(?:@([\w./-]+))?$")
_KEY_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9 _/()'-]{0,60}?):[ \t]?(.*)$")
_READERS = {".parquet": pd.read_parquet, ".jsonl": lambda p: pd.read_json(p, lines=True),
            ".json": lambda p: pd.read_json(p, lines=True),
            ".csv": lambda p: pd.read_csv(p, dtype=str, keep_default_na=False)}
_WHERE = "bench.dataset_dir / annotate.dataset_dir"


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset came from: ``layout`` (``persona_gen`` or ``released``), ``source`` (a resolved folder or
    ``hub:<id>[@<revision>]``) and ``content_hash`` (sha256 of its data files, or of its rows for a Hub id)."""

    layout: str
    source: str
    content_hash: str

    def as_scores(self) -> dict[str, str]:
        """The keys ``scores.json`` records about its dataset."""
        return {"dataset_layout": self.layout, "dataset_source": self.source,
                "dataset_content_hash": self.content_hash}


@dataclass(frozen=True)
class BenchData:
    personas: list[Persona]
    questions: list[Question]
    dataset_dir: Path
    origin: DatasetSource | None = None


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
        # A typed column (integer age, income) keeps its census text in <key>_label: that is the attribute.
        return {k: _text(row.get(f"{k}_label", row[k])) for k in keys}
    # No per-key columns: fall back to the rendered 'key: value' text.
    return parse_persona(str(row.get("persona") or ""))


def parse_persona(text: str) -> dict[str, str]:
    """The attributes of a persona's ``key: value`` text (the released dataset's form), in their order.

    A line that starts with a PERSONA key (or, in a text with no PERSONA key at all, any ``word: ``) starts an
    attribute; any other line continues the value before it (values may span lines and contain ``:``).
    """
    lines = str(text or "").splitlines()
    known = set(PERSONA_KEYS)
    any_known = any((m := _KEY_LINE.match(line)) and m.group(1).strip() in known for line in lines)
    out: dict[str, str] = {}
    key = None
    for line in lines:
        m = _KEY_LINE.match(line)
        if m and (m.group(1).strip() in known or not any_known) and m.group(1).strip() not in out:
            key = m.group(1).strip()
            out[key] = m.group(2).strip()
        elif key is not None:
            out[key] = f"{out[key]}\n{line}".strip()
    return out


def resolve_source(value: str | Path, root: str | Path | None = None) -> Path | str:
    """A local path (as given, or relative to ``root``) when it exists, else a Hub dataset id, else an error."""
    text = str(value)
    candidates = [Path(text).expanduser()]
    if root is not None and not candidates[0].is_absolute():
        candidates.insert(0, Path(root) / candidates[0])
    for path in candidates:
        if path.exists():
            return path
    if _HUB_ID.match(text) and not text.startswith((".", "/", "~")):
        return text
    raise ConfigError(format_error(
        "bench.dataset_dir", expected="an existing dataset folder", got=str(candidates[0]), where=str(Path.cwd()),
        fix="run `persona-gen` first and pass its outputs/<date>/<time>/dataset folder, a folder of parquet/JSONL/CSV "
            "files in the released PERSONA layout, or a Hub id such as SynthLabsAI/PERSONA"))


def _files_hash(files: Sequence[Path], root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(files):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def local_data_files(path: Path) -> list[Path]:
    """The parquet/JSONL/CSV files of a local folder (or the file itself); hidden files, ``reproduce/`` and
    ``plots/`` left out."""
    if path.is_file():
        return [path] if path.suffix in _READERS else []
    files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix in _READERS
             and not any(part.startswith(".") for part in p.relative_to(path).parts)
             and p.relative_to(path).parts[0] not in ("reproduce", "plots")]
    return files


def _read_local(files: Sequence[Path]) -> pd.DataFrame:
    frames = []
    for f in files:
        try:
            frames.append(_READERS[f.suffix](f))
        except Exception as exc:  # pandas and pyarrow raise many types for one cause: an unreadable file
            raise ConfigError(format_error(
                f"data file {f}", expected=f"readable {f.suffix[1:]}", got=f"{type(exc).__name__}: {exc}"[:200],
                where=_WHERE, fix="fix or remove the file")) from None
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read_hub(repo_id: str, revision: str | None) -> pd.DataFrame:
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError(format_error(
            f"Hub dataset {repo_id}", expected="read with the `datasets` package", got="datasets not installed",
            where=_WHERE, fix="pip install datasets, or download it (hf download) and pass the folder")) from exc
    try:
        loaded = datasets.load_dataset(repo_id, revision=revision)
    except Exception as exc:  # network, offline mode, missing repo, gated access: one line, with the way out
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(format_error(
            f"Hub dataset {repo_id}", expected="loadable with datasets.load_dataset", got=first, where=_WHERE,
            fix=f"check the id and your access (hf auth login), or `hf download {repo_id} --repo-type dataset "
                "--local-dir <folder>` and pass the folder")) from None
    frames = [loaded[split].to_pandas() for split in loaded] if hasattr(loaded, "keys") else [loaded.to_pandas()]
    return pd.concat(frames, ignore_index=True)


def _rows_hash(frame: pd.DataFrame) -> str:
    columns = [c for c in RELEASED_COLUMNS if c in frame.columns]
    values = pd.util.hash_pandas_object(frame[columns].astype(str), index=False).to_numpy()
    return hashlib.sha256(values.tobytes()).hexdigest()


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def read_released(source: str | Path, *, root: str | Path | None = None,
                  required: Sequence[str] = ("persona", "instruction")) -> tuple[pd.DataFrame, DatasetSource]:
    """Rows in the released PERSONA layout, with ``persona_id``, ``question_id`` and ``feedback_id`` added.

    Ids already in the data are kept; missing ones are derived from content (``stable_id`` of the persona text,
    of the instruction, of the row), so the same data always gets the same ids.

    Args:
        source: a local folder or file (parquet, JSONL, CSV), or a Hub dataset id (``owner/name[@revision]``).
        root: what a relative path resolves against.
        required: columns that must be present.

    Raises:
        ConfigError: no such folder or id, no data file, an unreadable file, or a required column missing.
    """
    resolved = resolve_source(source, root)
    if isinstance(resolved, Path):
        files = local_data_files(resolved)
        if not files:
            raise ConfigError(format_error(
                f"data files under {resolved}", expected="parquet, JSONL or CSV files in the released PERSONA layout",
                got="none", where=_WHERE, fix="point it at the folder that holds the files"))
        frame = _read_local(files)
        base = resolved if resolved.is_dir() else resolved.parent
        origin = DatasetSource("released", str(resolved.resolve()), _files_hash(files, base))
    else:
        match = _HUB_ID.match(resolved)
        assert match is not None
        frame = _read_hub(match.group(1), match.group(2))
        origin = DatasetSource("released", f"hub:{match.group(1)}" + (f"@{match.group(2)}" if match.group(2) else ""),
                               "")
        origin = DatasetSource(origin.layout, origin.source, _rows_hash(frame))
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ConfigError(format_error(
            f"columns of {origin.source}", expected=f"the released PERSONA layout ({list(RELEASED_COLUMNS)})",
            got=f"missing {missing}; has {list(frame.columns)[:12]}", where=_WHERE,
            fix="pass a dataset with those columns (e.g. a persona_gen dataset folder, or SynthLabsAI/PERSONA)"))
    frame = frame.reset_index(drop=True)
    personas = frame["persona"].map(_text)
    if "persona_id" not in frame.columns:
        frame["persona_id"] = [stable_id("p", p) for p in personas]
    if "question_id" not in frame.columns:
        frame["question_id"] = [stable_id("q", _text(q)) for q in frame["instruction"]]
    if "feedback_id" not in frame.columns:
        frame["feedback_id"] = [stable_id("fb", r.get("persona_id"), r.get("question_id"), _text(r.get("original")),
                                          _text(r.get("data")))
                                for r in frame[["persona_id", "question_id", *[c for c in ("original", "data")
                                                                             if c in frame.columns]]]
                                .to_dict(orient="records")]
    return frame, origin


def _released_bench_data(source: str | Path, root: str | Path | None) -> BenchData:
    frame, origin = read_released(source, root=root)
    personas: dict[str, Persona] = {}
    for pid, text in zip(frame["persona_id"].map(str), frame["persona"].map(_text), strict=True):
        if pid not in personas:
            personas[pid] = Persona(persona_id=pid, attributes=parse_persona(text), source_record_id="")
    qtype = frame["question type"].map(_text).str.lower() if "question type" in frame.columns else \
        pd.Series("train", index=frame.index)
    trained = set(frame.loc[qtype == "train", "question_id"].map(str))
    questions: dict[str, Question] = {}
    for qid, text in zip(frame["question_id"].map(str), frame["instruction"].map(_text), strict=True):
        if qid not in questions:
            questions[qid] = Question(question_id=qid, text=text, source=origin.source,
                                      split="train" if qid in trained else "held_out")
    folder = Path(origin.source) if not origin.source.startswith("hub:") else Path(origin.source[len("hub:"):])
    return BenchData(list(personas.values()), list(questions.values()), folder, origin)


def load_bench_data(dataset_dir: str | Path, *, root: str | Path | None = None) -> BenchData:
    """Personas and questions of a dataset (persona_gen's folder or the released layout), as records, in file order.

    Args:
        dataset_dir: a persona_gen dataset folder, a local folder or file in the released PERSONA layout, or a Hub
            dataset id (see the module docstring).
        root: what a relative path resolves against (``paths.root``).

    Raises:
        ConfigError: When the folder, a table or a required column is missing.
    """
    resolved = resolve_source(dataset_dir, root)
    if isinstance(resolved, str) or not (resolved / "data" / "personas").is_dir():
        if isinstance(resolved, Path) and resolved.is_dir() and not local_data_files(resolved):
            raise ConfigError(format_error(
                "bench.dataset_dir/data/personas", expected="a folder of parquet files (a persona_gen dataset), or "
                f"parquet/JSONL/CSV files with the released PERSONA columns {list(RELEASED_COLUMNS)}",
                got=str(resolved / "data" / "personas"), where="bench.dataset_dir",
                fix="point bench.dataset_dir at the dataset/ folder of a generate run or at the released data"))
        return _released_bench_data(resolved, root)
    dataset_dir = resolved
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
    # The hash publish checks before attaching these scores: every data config but an attached bench's own rows.
    files = [f for f in sorted((dataset_dir / "data").rglob("*.parquet"))
             if f.relative_to(dataset_dir / "data").parts[0] != "bench"]
    origin = DatasetSource("persona_gen", str(dataset_dir.resolve()), _files_hash(files, dataset_dir))
    return BenchData(personas, questions, dataset_dir, origin)


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
