"""The public API of persona_gen.metrics."""

from __future__ import annotations

import doctest
import importlib

import pytest

import persona_gen.metrics as metrics


def test_api_exports_every_name_in_all() -> None:
    assert all(hasattr(metrics, name) for name in metrics.__all__)


def test_api_exposes_the_headline_functions() -> None:
    assert {"cohen_kappa", "fleiss_kappa", "krippendorff_alpha", "pass_at_k"} <= set(metrics.__all__)


def test_api_all_is_sorted() -> None:
    assert metrics.__all__ == sorted(metrics.__all__)


@pytest.mark.parametrize("module", ["agreement", "alpha", "breakdown", "fidelity", "kappa", "pass_at_k", "rates"])
def test_api_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"persona_gen.metrics.{module}"))
    assert result.failed == 0
