from __future__ import annotations

from persona_gen.core.records import Question
from persona_gen.questions.clusters import cluster_texts, default_num_clusters, plot_clusters

TEXTS = [
    "Should abortion be legal for every woman?", "Is abortion murder of an unborn child?",
    "When should abortion be illegal by law?", "Do women have a right to abortion?",
    "Should guns be banned in cities?", "Is owning guns a basic right?", "Do guns make a home safer?",
    "Should gun sales need background checks for guns?",
]


def _questions():
    return [Question(question_id=f"q{i}", text=f"Question {i}?", source="t", cluster=c,
                     split="held_out" if i % 3 == 0 else "train")
            for i, c in enumerate(["abortion"] * 5 + ["guns"] * 3 + ["a much longer cluster label " * 3])]


def test_default_num_clusters_follows_sqrt_half_n():
    assert [default_num_clusters(n) for n in (1, 2, 8, 200, 100_000)] == [1, 2, 2, 10, 50]


def test_cluster_texts_separates_distinct_topics():
    labels = cluster_texts(TEXTS, num_clusters=2, seed=0)
    assert len(set(labels[:4])) == 1 and len(set(labels[4:])) == 1 and labels[0] != labels[4]


def test_cluster_texts_labels_clusters_with_top_terms():
    labels = cluster_texts(TEXTS, num_clusters=2, seed=0)
    assert labels[0].split(", ")[0] == "abortion"
    assert labels[4].split(", ")[0] == "guns"


def test_cluster_texts_is_deterministic_for_a_seed():
    assert cluster_texts(TEXTS, num_clusters=3, seed=7) == cluster_texts(TEXTS, num_clusters=3, seed=7)


def test_cluster_texts_agglomerative_separates_distinct_topics():
    labels = cluster_texts(TEXTS, num_clusters=2, method="agglomerative")
    assert len(set(labels[:4])) == 1 and labels[0] != labels[4]


def test_cluster_texts_leaves_texts_without_words_unclustered():
    assert cluster_texts(["?", "Is abortion wrong?", "Are guns good?"], num_clusters=2)[0] == "unclustered"


def test_plot_clusters_writes_a_png_atomically(tmp_path):
    path = plot_clusters(_questions(), tmp_path / "plots" / "clusters.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["clusters.png"]


def test_plot_clusters_is_byte_stable(tmp_path):
    a = plot_clusters(_questions(), tmp_path / "a.png").read_bytes()
    b = plot_clusters(_questions(), tmp_path / "b.png").read_bytes()
    assert a == b
