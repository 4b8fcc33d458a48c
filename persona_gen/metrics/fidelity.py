"""Summary fidelity: which persona attributes a model's summary of the persona leaves out."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd

from persona_gen.metrics._validate import Text, is_missing, metric_error, require_nonempty, require_same_length

__all__ = ["summary_key_drops"]

MatchRule = Literal["tokens", "substring"]
# Unicode letters and digits; "_" is a word character for \w but a separator here.
_TOKEN = re.compile(r"[^\W_]+")


def summary_key_drops(personas: Sequence[Mapping[str, Any]], summaries: Sequence[str], *,
                      match: MatchRule = "tokens") -> pd.DataFrame:
    """Count, per persona key, how often a summary drops that key's value.

    Persona ``i`` is paired with ``summaries[i]``. A value counts as kept when:

    * ``match="tokens"`` (default): every word token of the value (runs of Unicode letters and
      digits, case-folded) is a word token of the summary. Whole tokens, so ``"Male"`` is not
      kept by ``"female"``, and ``"Bachelor's degree"`` is kept by ``"a bachelor's degree"``. A
      value with no word token (e.g. ``"-"``) falls back to the substring rule.
    * ``match="substring"``: the case-folded, whitespace-collapsed value is a substring of the
      case-folded, whitespace-collapsed summary.

    Keys whose value is missing or blank are not counted for that persona; other values are
    compared as ``str(value)``.

    Args:
        personas: One mapping key -> value per persona.
        summaries: One summary text per persona, aligned with ``personas``.
        match: ``"tokens"`` or ``"substring"``, see above.

    Returns:
        Columns ``key``, ``n`` (personas with a value for it), ``dropped`` and ``drop_rate``
        (``dropped / n``), sorted by descending drop rate, then key.

    Raises:
        MetricError: On empty or mismatched input, an unknown rule, or a summary that is not text.

    Example:
        >>> drops = summary_key_drops([{"sex": "Male", "state": "Ohio"}], ["A female nurse from Ohio."])
        >>> drops[["key", "dropped"]].values.tolist()
        [['sex', 1], ['state', 0]]
    """
    where = "summary_key_drops"
    if match not in ("tokens", "substring"):
        raise metric_error("match", expected="'tokens' or 'substring'", got=match, where=where,
                           fix="pick one of the two")
    require_same_length({"personas": len(personas), "summaries": len(summaries)}, where=where)
    require_nonempty(len(personas), "personas", where=where, fix="pass at least one persona and its summary")
    counts: dict[str, list[int]] = {}
    for i, (persona, summary) in enumerate(zip(personas, summaries, strict=True)):
        if not isinstance(summary, str):
            raise metric_error(f"summaries[{i}]", expected="a string", got=Text(type(summary).__name__), where=where,
                               fix="pass the summary text ('' if the model gave none)")
        if not isinstance(persona, Mapping):
            raise metric_error(f"personas[{i}]", expected="a mapping key -> value", got=Text(type(persona).__name__),
                               where=where, fix="pass each persona as a dict of attributes")
        folded = _collapse(summary)
        tokens = set(_TOKEN.findall(folded))
        for key, value in persona.items():
            if is_missing(value) or not str(value).strip():
                continue
            tally = counts.setdefault(str(key), [0, 0])
            tally[0] += 1
            tally[1] += not _kept(_collapse(str(value)), folded, tokens, match)
    rows = [{"key": key, "n": n, "dropped": dropped, "drop_rate": dropped / n} for key, (n, dropped) in counts.items()]
    frame = pd.DataFrame(rows, columns=["key", "n", "dropped", "drop_rate"])
    return frame.sort_values(["drop_rate", "key"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _collapse(text: str) -> str:
    return " ".join(text.casefold().split())


def _kept(value: str, summary: str, summary_tokens: set[str], match: MatchRule) -> bool:
    if match == "tokens":
        value_tokens = _TOKEN.findall(value)
        if value_tokens:
            return all(token in summary_tokens for token in value_tokens)
    return value in summary
