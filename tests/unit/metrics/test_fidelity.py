"""Which persona attributes a summary drops."""

from __future__ import annotations

import pytest

from persona_gen.metrics import MetricError, summary_key_drops


def test_summary_key_drops_counts_missing_values_per_key() -> None:
    personas = [{"sex": "Female", "state": "Ohio"}, {"sex": "Male", "state": "Texas"}]
    summaries = ["A woman from ohio.", "A male rancher."]
    result = summary_key_drops(personas, summaries).set_index("key")
    assert result.loc["sex", "dropped"] == 1 and result.loc["sex", "n"] == 2  # "Female" is not in the first
    assert result.loc["state", "dropped"] == 1  # "Texas" is not in the second


def test_summary_key_drops_token_rule_does_not_match_inside_words() -> None:
    result = summary_key_drops([{"sex": "Male"}], ["A female nurse."])
    assert result.loc[0, "dropped"] == 1


def test_summary_key_drops_substring_rule_matches_inside_words() -> None:
    result = summary_key_drops([{"sex": "Male"}], ["A female nurse."], match="substring")
    assert result.loc[0, "dropped"] == 0


def test_summary_key_drops_token_rule_ignores_case_and_punctuation() -> None:
    persona = {"education": "Bachelor's Degree", "age": "65"}
    result = summary_key_drops([persona], ["A 65-year-old with a bachelor's degree."])
    assert result["dropped"].tolist() == [0, 0]


def test_summary_key_drops_token_rule_needs_every_token() -> None:
    result = summary_key_drops([{"occupation": "registered nurse"}], ["She is a nurse."])
    assert result.loc[0, "dropped"] == 1


def test_summary_key_drops_skips_blank_and_missing_values() -> None:
    result = summary_key_drops([{"a": "", "b": None, "c": "x"}], ["x"])
    assert result["key"].tolist() == ["c"]


def test_summary_key_drops_compares_non_text_values_as_text() -> None:
    assert summary_key_drops([{"age": 42}], ["Aged 42."]).loc[0, "dropped"] == 0


def test_summary_key_drops_sorts_by_drop_rate_then_key() -> None:
    personas = [{"b": "one", "a": "two", "c": "three"}] * 2
    result = summary_key_drops(personas, ["three", "one three"])
    assert result["key"].tolist() == ["a", "b", "c"]
    assert result["drop_rate"].tolist() == [1.0, 0.5, 0.0]


def test_summary_key_drops_rejects_mismatched_lengths() -> None:
    with pytest.raises(MetricError, match=r"personas and summaries must be of the same length .* len\(summaries\)=0"):
        summary_key_drops([{"a": "x"}], [])


def test_summary_key_drops_rejects_empty_input() -> None:
    with pytest.raises(MetricError, match=r"personas must be non-empty"):
        summary_key_drops([], [])


def test_summary_key_drops_rejects_a_non_text_summary() -> None:
    with pytest.raises(MetricError, match=r"summaries\[0\] must be a string, but got NoneType"):
        summary_key_drops([{"a": "x"}], [None])  # type: ignore[list-item]


def test_summary_key_drops_rejects_an_unknown_rule() -> None:
    with pytest.raises(MetricError, match=r"match must be 'tokens' or 'substring', but got 'fuzzy'"):
        summary_key_drops([{"a": "x"}], ["x"], match="fuzzy")  # type: ignore[arg-type]
