"""Typed, self-describing columns for the published configs, and the card's ``dataset_info`` from them.

The pipeline's tables carry some values as text: census numbers (``age: 34``, ``income: 52000``) and nested
records as JSON in a string (``failures``, ``failure``, ``provenance``). A reader of the Hub folder should get
them typed: :func:`typed_table` turns

- ``age`` and ``income`` into integers (null where the census says "Not applicable ..."), keeping the census
  label in ``age_label`` / ``income_label``;
- ``failures`` (JSON list) into a list of ``{stage, kind, message, raw}`` structs, ``failure`` (JSON object or
  ``null``) into one such struct or null;
- ``provenance`` (JSON object field -> source) into a list of ``{field, source}`` structs (a list, not a struct:
  the fields differ between tables and versions, and ``datasets`` needs one schema per config).

Every converted column has a fixed Arrow type, so a batch whose rows have no failure at all has the same schema
as one that has some (a streamed split would otherwise infer ``list<null>`` from its first batch).
:func:`dataset_info` then describes the written shards with ``datasets``' own features, which
``datasets.load_dataset`` and the Hub viewer read from the card's YAML.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from persona_gen.core.errors import PublishError, format_error

__all__ = [
    "FAILURE_TYPE",
    "INTEGER_COLUMNS",
    "MESSAGES_TYPE",
    "dataset_info",
    "parse_int",
    "source_datasets",
    "typed_personas",
    "typed_table",
]

FAILURE_TYPE = pa.struct([("stage", pa.string()), ("kind", pa.string()), ("message", pa.string()),
                          ("raw", pa.string())])
PROVENANCE_TYPE = pa.list_(pa.struct([("field", pa.string()), ("source", pa.string())]))
MESSAGES_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
# Census keys whose value is a number unless the census says it does not apply (then the label stays as text).
INTEGER_COLUMNS = ("age", "income")
_INT = re.compile(r"[-+]?\d+")
# Hub ids of the inputs a run may draw its questions from, by the ``source`` label the loaders give them.
_SOURCE_DATASETS = {"prism": "HannahRoseKirk/prism-alignment", "anthropic": "Anthropic/model-written-evals"}


def parse_int(value: Any) -> int | None:
    """``"52000"``, ``"$52,000"``, ``"-400"`` -> the integer; a label (``"Not applicable ..."``), blank -> None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip().replace(",", "").replace("$", "")
    if text.endswith(".0"):
        text = text[:-2]
    return int(text) if _INT.fullmatch(text) else None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _json(value: Any, column: str) -> Any:
    if _is_missing(value):
        return None
    if not isinstance(value, str):
        return value  # already parsed (a list or dict from pyarrow or a hand-made table)
    try:
        return json.loads(value) if value.strip() else None
    except json.JSONDecodeError as exc:
        raise PublishError(format_error(
            f"column {column!r}", expected="JSON text (as the pipeline writes it)", got=value[:80],
            where="typed_table", fix="write the column with json.dumps, or leave it out")) from exc


def _failure(obj: Any) -> dict[str, str | None] | None:
    if not isinstance(obj, Mapping):
        return None
    return {k: None if _is_missing(obj.get(k)) else str(obj.get(k)) for k in FAILURE_TYPE.names}


def _failures_array(series: pd.Series, column: str) -> pa.Array:
    rows = []
    for value in series:
        parsed = _json(value, column)
        items = parsed if isinstance(parsed, list | tuple) else ([] if parsed is None else [parsed])
        rows.append([f for f in map(_failure, items) if f is not None])
    return pa.array(rows, type=pa.list_(FAILURE_TYPE))


def _failure_array(series: pd.Series, column: str) -> pa.Array:
    return pa.array([_failure(_json(v, column)) for v in series], type=FAILURE_TYPE)


def _provenance_array(series: pd.Series, column: str) -> pa.Array:
    rows = []
    for value in series:
        parsed = _json(value, column) or {}
        items = parsed.items() if isinstance(parsed, Mapping) else \
            ((d.get("field"), d.get("source")) for d in parsed)
        rows.append([{"field": str(k), "source": None if _is_missing(v) else str(v)} for k, v in items])
    return pa.array(rows, type=PROVENANCE_TYPE)


def _messages_array(series: pd.Series) -> pa.Array:
    return pa.array([list(v) for v in series], type=MESSAGES_TYPE)


_CONVERTERS = {"failures": _failures_array, "failure": _failure_array, "provenance": _provenance_array}


def typed_personas(frame: pd.DataFrame) -> pd.DataFrame:
    """``age`` and ``income`` as nullable integers, with the census text in ``age_label`` / ``income_label``.

    Other columns are left as they are; a frame without these columns is returned unchanged (a copy).
    """
    out = frame.copy()
    for column in INTEGER_COLUMNS:
        if column not in out.columns or f"{column}_label" in out.columns:
            continue
        labels = out[column].map(lambda v: None if _is_missing(v) else str(v))
        position = list(out.columns).index(column)
        out[column] = pd.array([parse_int(v) for v in labels], dtype="Int64")
        out.insert(position + 1, f"{column}_label", labels.astype(object))
    return out


def typed_table(config: str, frame: pd.DataFrame) -> pa.Table:
    """One batch of a config's rows as an Arrow table with typed columns (see the module docstring).

    Args:
        config: the config name (``personas``, ``feedback``, ``judgments``, ``dpo``...). Integer columns are
            typed only in ``personas``, where they are census attributes.
        frame: the rows, as the pipeline builds them.

    Raises:
        PublishError: a JSON column holds text that is not JSON.
    """
    frame = frame.reset_index(drop=True)
    if config == "personas":
        frame = typed_personas(frame)
    arrays: dict[str, pa.Array] = {}
    for column in frame.columns:
        name = str(column)
        values = frame[column]
        if name in _CONVERTERS:
            arrays[name] = _CONVERTERS[name](values, name)
        elif config == "dpo" and name in ("prompt", "chosen", "rejected"):
            arrays[name] = _messages_array(values)
        elif name in INTEGER_COLUMNS and config == "personas":
            arrays[name] = pa.array(values, type=pa.int64(), from_pandas=True)
        else:
            try:
                arrays[name] = pa.array(values, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise PublishError(format_error(
                    f"column {name!r} of config {config!r}", expected="one Arrow type", got=str(exc)[:200],
                    where="publish_folder", fix="make the column one type (e.g. json.dumps mixed values)")) from exc
    return pa.table(arrays)


def _features_of(schema: pa.Schema) -> Any:
    from datasets import Features

    return Features.from_arrow_schema(schema.remove_metadata())


def dataset_info(folder: str | Path, configs: Mapping[str, Mapping[str, Iterable[Path]]]) -> list[dict[str, Any]]:
    """The card's ``dataset_info``: per config its ``datasets`` features, splits (rows, bytes) and sizes.

    Args:
        folder: the dataset folder the shard paths are under.
        configs: config -> split -> its parquet shards (splits without rows left out).

    Returns:
        The YAML list ``datasets`` writes (``DatasetInfosDict.to_dataset_card_data``), one entry per config.
    """
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    infos = {}
    for name, splits in configs.items():
        paths = {split: sorted(Path(p) for p in shards) for split, shards in splits.items()}
        paths = {split: shards for split, shards in sorted(paths.items()) if shards}
        if not paths:
            continue
        first = next(iter(paths.values()))[0]
        features = _features_of(pq.read_schema(first))
        split_dict = SplitDict()
        download = dataset_size = 0
        for split, shards in paths.items():
            meta = [pq.ParquetFile(p).metadata for p in shards]
            rows = sum(m.num_rows for m in meta)
            size = sum(m.row_group(i).total_byte_size for m in meta for i in range(m.num_row_groups))
            split_dict.add(SplitInfo(name=split, num_bytes=size, num_examples=rows))
            download += sum(p.stat().st_size for p in shards)
            dataset_size += size
        infos[name] = DatasetInfo(features=features, splits=split_dict, config_name=name, download_size=download,
                                  dataset_size=dataset_size)
    data = DatasetCardData()
    DatasetInfosDict(infos).to_dataset_card_data(data)
    info = data.to_dict().get("dataset_info") or []
    return info if isinstance(info, list) else [info]


def source_datasets(question_sources: Iterable[str]) -> list[str]:
    """The card's ``source_datasets``: ``original`` (the generated text), plus the Hub datasets questions came from.

    Args:
        question_sources: the ``source`` labels of the questions (``prism_examples``, ``anthropic_values``...).
    """
    out = ["original"]
    labels = {str(s).lower() for s in question_sources}
    for key, repo in _SOURCE_DATASETS.items():
        if any(label.startswith(key) for label in labels):
            out.append(f"extended|{repo}")
    return out
