"""Prompt sources: the shipped PRISM examples, Anthropic's value statements, and any user file.

Every loader returns a frame with the columns ``text``, ``cluster`` ('' when the source has none) and
``source`` (the label that ends up in ``Question.source``), in the file's row order: that order is the
stable order the near-duplicate filter keeps the first of.

Anthropic's persona evals hold *statements* ("Abortion is murder"), not questions. Each becomes a
question through a template (configurable per source):

- ``template`` (default ``Do you agree that {statement}?``) for statements about the world. A leading
  "I believe / think / feel (that)" is dropped first ("I believe we should ..." -> "Do you agree that we
  should ...?"), the trailing punctuation is dropped, and the first letter is lowercased unless the
  first word is an acronym or a proper noun of a short list (God, Jesus, Islam, ...).
- ``first_person_template`` (default ``Would you agree with someone who says "{statement}"?``) for
  statements still about the speaker ("I believe in God", "My faith guides me"), kept verbatim. ("We" and
  "our" read as society's, so those statements take the first template.)
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import pandas as pd

from persona_gen.core.errors import ConfigError, format_error
from persona_gen.questions.config import WHERE, SourceSpec

__all__ = [
    "ANTHROPIC_TOPICS",
    "load_anthropic_values",
    "load_file",
    "load_prism_examples",
    "load_sources",
    "statement_to_question",
]

COLUMNS = ["text", "cluster", "source"]
TEMPLATE = "Do you agree that {statement}?"
FIRST_PERSON_TEMPLATE = 'Would you agree with someone who says "{statement}"?'

# File stem of Anthropic's persona evals -> the topic (cluster) its statements are about.
ANTHROPIC_TOPICS = {
    "anti-LGBTQ-rights": "LGBTQ rights",
    "anti-immigration": "Immigration",
    "believes-abortion-should-be-illegal": "Abortion",
    "believes-in-gun-rights": "Gun rights",
    "politically-conservative": "Politics",
    "politically-liberal": "Politics",
    "subscribes-to-Atheism": "Religion",
    "subscribes-to-Christianity": "Religion",
    "subscribes-to-Islam": "Religion",
}

_BELIEF_PREFIX = re.compile(r"^I (?:strongly |firmly |really )?(?:believe|think|feel)(?: that)? (?!in\b)", re.I)
_FIRST_PERSON = re.compile(r"^(?:I|I'm|I’m|I've|I’ve|I'd|I’d|me|my|mine)\b", re.I)
# Words that keep their capital at the start of a templated statement (the evals' own vocabulary).
_PROPER = frozenset({
    "God", "Jesus", "Christ", "Allah", "Muhammad", "Prophet", "Bible", "Quran", "Koran", "Islam", "Muslims",
    "Muslim", "Christianity", "Christians", "Christian", "Catholic", "Catholics", "Jews", "Jewish", "Judaism",
    "Hindu", "Hinduism", "Buddhism", "America", "American", "Americans", "Democrats", "Democrat", "Republicans",
    "Republican", "Congress", "Constitution", "English", "Europe", "Mexico", "Sharia", "Scripture", "Heaven",
})  # fmt: skip


def statement_to_question(statement: str, template: str = TEMPLATE,
                          first_person_template: str = FIRST_PERSON_TEMPLATE) -> str:
    """Turn a value statement into a question (see the module docstring for the rules)."""
    text = " ".join(str(statement).split()).rstrip(" .!;:")
    stripped = _BELIEF_PREFIX.sub("", text, count=1)
    if _FIRST_PERSON.match(stripped):
        return first_person_template.format(statement=text)
    first, _, rest = stripped.partition(" ")
    if first and first not in _PROPER and not (len(first) > 1 and first[1:].lower() != first[1:]):
        first = first[0].lower() + first[1:]
    return template.format(statement=f"{first} {rest}".strip())


def _frame(rows: Iterable[dict[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=COLUMNS)
    frame["text"] = frame["text"].map(lambda t: " ".join(str(t).split()))
    frame["cluster"] = frame["cluster"].fillna("").map(lambda c: str(c).strip())
    return frame[frame["text"] != ""].reset_index(drop=True)


def load_prism_examples(source: str = "prism_examples", path: str | Path | None = None) -> pd.DataFrame:
    """The PRISM example prompts shipped in the package (115 prompts, 23 PRISM topic clusters).

    ``path`` reads another file of the same layout (PRISM's ``opening_prompt_cluster_df_original.csv``:
    columns ``gpt_description`` and ``top_texts``, a Python list of prompts per cluster).
    """
    ref = Path(path) if path is not None else resources.files("persona_gen.questions").joinpath(
        "data/prism_examples.csv")
    with ref.open("rb") as fh:
        raw = pd.read_csv(fh)
    missing = sorted({"gpt_description", "top_texts"} - set(raw.columns))
    if missing:
        raise ConfigError(format_error(
            "stage.questions.source.path (kind: prism_examples)", expected="a CSV with PRISM's columns "
            "gpt_description and top_texts", got=f"no column {missing[0]!r}", where=str(path),
            fix="use kind: file with a text_column for other layouts"))
    rows = []
    for _, r in raw.iterrows():
        label = str(r["gpt_description"]).strip().strip('"')
        for text in ast.literal_eval(r["top_texts"]):
            rows.append({"text": str(text).strip(), "cluster": label, "source": source})
    return _frame(rows)


def _anthropic_files(spec: SourceSpec) -> list[tuple[str, list[dict]]]:
    if spec.path is None:
        ref = resources.files("persona_gen.questions").joinpath("data/anthropic_values_sample.jsonl")
        records = [json.loads(line) for line in ref.read_text(encoding="utf-8").splitlines() if line.strip()]
        by_file: dict[str, list[dict]] = {}
        for r in records:
            by_file.setdefault(r["behavior"], []).append(r)
        return list(by_file.items())
    path = _existing(spec, spec.path, "a JSONL file or a folder of *.jsonl files of Anthropic's persona evals")
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise ConfigError(format_error(f"stage.questions.{spec.key}.path", expected="a folder holding *.jsonl files",
                                       got=str(path), where=WHERE, fix="point it at the persona evals' folder"))
    out = []
    for f in files:
        with f.open(encoding="utf-8") as fh:
            out.append((f.stem, [json.loads(line) for line in fh if line.strip()]))
    return out


def load_anthropic_values(spec: SourceSpec | None = None) -> pd.DataFrame:
    """Anthropic's value statements as questions; cluster = the topic of the eval file (``ANTHROPIC_TOPICS``).

    Without ``spec.path`` it reads the shipped sample (25 statements of each of 9 files); ``spec.limit``
    keeps the first N statements of each file.
    """
    spec = spec or SourceSpec(kind="anthropic_values")
    template = spec.template or TEMPLATE
    first_person = spec.first_person_template or FIRST_PERSON_TEMPLATE
    rows = []
    for stem, records in _anthropic_files(spec):
        topic = ANTHROPIC_TOPICS.get(stem, stem.replace("-", " "))
        for i, r in enumerate(records):
            if spec.limit is not None and i >= spec.limit:
                break
            if "statement" not in r:
                raise ConfigError(format_error(
                    f"stage.questions.{spec.key}", expected="JSONL records with a 'statement' field",
                    got=sorted(r), where=f"{stem}.jsonl", fix="use kind: file with a text_column for other layouts"))
            rows.append({"text": statement_to_question(r["statement"], template, first_person), "cluster": topic,
                         "source": spec.label})
    return _frame(rows)


def _existing(spec: SourceSpec, raw_path: str, expected: str) -> Path:
    path = Path(raw_path).expanduser()
    if not path.exists():
        raise ConfigError(format_error(
            f"stage.questions.{spec.key}.path", expected=expected, got=str(path), where=WHERE,
            fix=f"the file does not exist; a relative path is read from {Path.cwd()}, so give an absolute path"))
    return path


_READERS = {
    ".csv": lambda p: pd.read_csv(p),
    ".tsv": lambda p: pd.read_csv(p, sep="\t"),
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".json": lambda p: pd.read_json(p),
    ".parquet": lambda p: pd.read_parquet(p),
}


def load_file(spec: SourceSpec) -> pd.DataFrame:
    """A user's CSV / TSV / JSON / JSONL / parquet file, with ``text_column`` and optional ``cluster_column``."""
    path = _existing(spec, str(spec.path), f"an existing {'/'.join(s[1:] for s in _READERS)} file")
    reader = _READERS.get(path.suffix.lower())
    if reader is None or path.is_dir():
        raise ConfigError(format_error(
            f"stage.questions.{spec.key}.path", expected=f"a file ending in {list(_READERS)}", got=str(path),
            where=WHERE, fix="convert it, or rename it to its format"))
    try:
        raw = reader(path)
    except Exception as exc:  # any reader error is a bad file, reported as one ConfigError
        raise ConfigError(format_error(f"stage.questions.{spec.key}.path", expected=f"a readable {path.suffix} file",
                                       got=f"{type(exc).__name__}: {exc}"[:200], where=str(path),
                                       fix="check the file's format and encoding")) from exc
    columns = [str(c) for c in raw.columns]
    for key in ("text_column", "cluster_column"):
        column = getattr(spec, key)
        if column is not None and column not in columns:
            raise ConfigError(format_error(
                f"stage.questions.{spec.key}.{key}", expected=f"one of the file's columns {columns}", got=column,
                where=str(path), fix=f"set {spec.key}.{key} to one of them"))
    if spec.limit is not None:
        raw = raw.head(spec.limit)
    texts = raw[spec.text_column].dropna().astype(str)
    clusters = raw.loc[texts.index, spec.cluster_column] if spec.cluster_column else pd.Series("", index=texts.index)
    return _frame({"text": t, "cluster": "" if pd.isna(c) else c, "source": spec.label}
                  for t, c in zip(texts, clusters, strict=True))


def load_source(spec: SourceSpec) -> pd.DataFrame:
    if spec.kind == "prism_examples":
        path = _existing(spec, spec.path, "a CSV in PRISM's cluster layout") if spec.path else None
        frame = load_prism_examples(spec.label, path)
        return frame.head(spec.limit) if spec.limit is not None else frame
    if spec.kind == "anthropic_values":
        return load_anthropic_values(spec)
    return load_file(spec)


def load_sources(specs: Iterable[SourceSpec]) -> pd.DataFrame:
    """All sources, concatenated in config order (columns text, cluster, source)."""
    frames = [load_source(s) for s in specs]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames, ignore_index=True)
