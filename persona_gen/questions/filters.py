"""The rule-based filters of the chain (the LM filter lives in stage.py) and near-duplicate removal.

Each function takes texts in their stable order and returns, per text, whether it is kept, so the stage
can count in / kept / dropped at each named step.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

__all__ = ["has_question_mark", "min_words", "near_duplicates", "normalize_text"]

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def normalize_text(text: str) -> str:
    """Case-, accent-form-, punctuation- and whitespace-insensitive form of a text, for duplicate checks."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def has_question_mark(texts: Sequence[str]) -> list[bool]:
    return ["?" in t for t in texts]


def min_words(texts: Sequence[str], minimum: int) -> list[bool]:
    return [len(str(t).split()) >= minimum for t in texts]


def near_duplicates(texts: Sequence[str], *, threshold: float = 0.9, analyzer: str = "char_wb",
                    ngram_range: tuple[int, int] = (3, 5), chunk_size: int = 512) -> list[int | None]:
    """For each text, the index of the earlier kept text it nearly duplicates, or None if it is kept.

    Texts are normalized (``normalize_text``), embedded with TF-IDF (character n-grams by default, so
    typos and reordered punctuation still match) and compared by cosine similarity; a text whose
    similarity to an already kept text is >= ``threshold`` is dropped. Greedy in input order, so the
    first of a group is kept and no two kept texts are near-duplicates. Exact duplicates after
    normalization always match. Similarities are computed in row chunks: memory stays O(chunk x n).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    norm = [normalize_text(t) for t in texts]
    out: list[int | None] = [None] * n
    first_of: dict[str, int] = {}
    for i, t in enumerate(norm):
        if t in first_of:
            out[i] = first_of[t]
        else:
            first_of[t] = i
    uniques = sorted(first_of.values())
    if len(uniques) < 2:
        return out
    try:
        matrix = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, lowercase=False,
                                 dtype=np.float64).fit_transform([norm[i] for i in uniques])
    except ValueError:  # empty vocabulary: nothing left to compare beyond exact matches
        return out
    kept_mask = np.zeros(len(uniques), dtype=bool)
    for start in range(0, len(uniques), chunk_size):
        stop = min(start + chunk_size, len(uniques))
        sims = (matrix[start:stop] @ matrix.T).toarray()
        for row, pos in enumerate(range(start, stop)):
            # Earlier kept texts only: a later text never removes an earlier one.
            candidates = np.flatnonzero(kept_mask[:pos] & (sims[row, :pos] >= threshold - 1e-12))
            if candidates.size:
                best = candidates[np.argmax(sims[row, candidates])]
                out[uniques[pos]] = uniques[int(best)]
            else:
                kept_mask[pos] = True
    # A text that matched an exact twin of a dropped text points at what that twin matched.
    for i in range(n):
        j = out[i]
        while j is not None and out[j] is not None:
            j = out[j]
        out[i] = j
    return out
