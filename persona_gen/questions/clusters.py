"""Topic clusters of questions, with readable labels, and the bar chart of the largest clusters.

Clusters come from the source where it has them (PRISM's 23 topic clusters, the topic of an Anthropic
eval file, a generated question's topic) and from TF-IDF + KMeans (or agglomerative clustering) for the
rest. A computed cluster is labelled with its top TF-IDF terms ("abortion, women, right").
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from persona_gen.core.io import atomic_write_bytes, figure_png
from persona_gen.core.records import Question

__all__ = ["cluster_texts", "default_num_clusters", "plot_clusters"]

UNCLUSTERED = "unclustered"


def default_num_clusters(n: int) -> int:
    """The rule of thumb k = sqrt(n / 2), at least 1 and at most n (and at most 50 topics)."""
    if n <= 1:
        return max(n, 1)
    return int(min(n, 50, max(2, round(math.sqrt(n / 2)))))


def cluster_texts(texts: Sequence[str], *, num_clusters: int | None = None, method: str = "kmeans",
                  label_terms: int = 3, seed: int = 0) -> list[str]:
    """A topic label for each text.

    TF-IDF on words (English stop words and words in over half the texts removed) and KMeans with a fixed
    ``random_state`` (or Ward agglomerative clustering, which has no randomness). Each cluster's label is
    its ``label_terms`` terms of highest mean TF-IDF (ties by term), made unique with a suffix. Texts with
    no usable words, or fewer than two texts, get the label ``unclustered``.
    """
    from sklearn.cluster import AgglomerativeClustering, KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    if n < 2:
        return [UNCLUSTERED] * n
    # Words in over half the texts (a source's template: "Do you agree that ...") say nothing of the topic.
    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, max_df=0.5 if n >= 10 else 1.0,
                                 token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b")
    try:
        matrix = vectorizer.fit_transform(list(texts))
    except ValueError:  # empty vocabulary
        return [UNCLUSTERED] * n
    has_words = np.asarray(matrix.sum(axis=1)).ravel() > 0
    rows = np.flatnonzero(has_words)
    labels = [UNCLUSTERED] * n
    if rows.size < 2:
        return labels
    k = min(num_clusters or default_num_clusters(rows.size), rows.size)
    sub = matrix[rows]
    if k == 1:
        assign = np.zeros(rows.size, dtype=int)
    elif method == "agglomerative":
        assign = AgglomerativeClustering(n_clusters=k).fit_predict(sub.toarray())
    else:
        assign = KMeans(n_clusters=k, random_state=seed % (2**32), n_init=4).fit_predict(sub)
    terms = vectorizer.get_feature_names_out()
    names: dict[int, str] = {}
    seen: Counter[str] = Counter()
    # Clusters in order of their first member, so labels (and their suffixes) follow the stable order.
    for c in dict.fromkeys(int(a) for a in assign):
        mean = np.asarray(sub[assign == c].mean(axis=0)).ravel()
        order = sorted(np.flatnonzero(mean > 0), key=lambda j: (-mean[j], terms[j]))
        name = ", ".join(str(terms[j]) for j in order[:label_terms]) or UNCLUSTERED
        seen[name] += 1
        names[c] = name if seen[name] == 1 else f"{name} ({seen[name]})"
    for r, a in zip(rows, assign, strict=True):
        labels[int(r)] = names[int(a)]
    return labels


def plot_clusters(questions: Sequence[Question], path: str | Path, *, top: int = 20,
                  title: str = "Questions per topic cluster") -> Path:
    """A horizontal bar chart of the ``top`` largest clusters, train and held-out stacked; written atomically.

    Like the paper's top-clusters figure. Returns ``path``. Byte-stable for the same questions (no
    timestamp in the PNG).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    path = Path(path)
    counts: Counter[str] = Counter(q.cluster or UNCLUSTERED for q in questions)
    held: Counter[str] = Counter(q.cluster or UNCLUSTERED for q in questions if q.split == "held_out")
    shown = sorted(counts, key=lambda c: (-counts[c], c))[:top]
    labels = [c if len(c) <= 45 else c[:44] + "…" for c in shown]
    train = [counts[c] - held[c] for c in shown]
    held_out = [held[c] for c in shown]
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * max(len(shown), 3) + 1.2))
    y = np.arange(len(shown))[::-1]
    ax.barh(y, train, color="#4C72B0", label="train")
    ax.barh(y, held_out, left=train, color="#DD8452", label="held out")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("questions")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    more = f" (top {len(shown)} of {len(counts)})" if len(counts) > len(shown) else ""
    ax.set_title(f"{title}{more}", fontsize=10)
    if shown:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    atomic_write_bytes(path, figure_png(fig))
    return path


