"""The census stage's entry point: ``sample_personas``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from persona_gen.census.source import Quotas, SourceLike, load_source

__all__ = ["sample_personas"]


def sample_personas(
    n: int,
    *,
    seed: int | np.random.SeedSequence,
    source: SourceLike = None,
    where: str | None = None,
    quotas: Quotas | None = None,
) -> pd.DataFrame:
    """Sample ``n`` census personas: whole person records drawn with replacement, weighted by PWGTP, decoded.

    Args:
        n: Number of personas, >= 1.
        seed: The run's seed (or a SeedSequence spawned from it); the same seed gives the same frame.
        source: None for the ACS 2018 copy shipped in the package, or anything :func:`load_source` takes
            (``conf/sampler/census_six_states.yaml``, a mapping, a :class:`CensusSource`).
        where: Optional condition on decoded keys or raw variables, e.g. ``"age >= 18"``,
            ``"state in ['Hawaii']"``, ``"`employment status` == 'Unemployed'"``, ``"PINCP > 50000"``.
        quotas: Optional exact shares, e.g. ``{"sex": {"Male": 0.5, "Female": 0.5}}``.

    Returns:
        A frame with one row per persona: the 24 :data:`CENSUS_KEYS` (labels as categoricals, ``age`` as int),
        ``state``, ``source_record_id`` and the raw ``code.<VARIABLE>`` columns.

    Raises:
        CensusError: For bad input data, ``n < 1``, a ``where`` that matches nobody or impossible quotas.

    Example:
        >>> personas = sample_personas(3, seed=0, where="age >= 18")
        >>> personas["age"].min() >= 18
        True
    """
    return load_source(source).sample(n, seed=seed, where=where, quotas=quotas)
