from __future__ import annotations

from collections import Counter

from persona_gen.core.records import Question
from persona_gen.questions.stage import split_by_cluster, stratified_cap


def _questions():
    sizes = {"religion": 9, "politics": 4, "family": 2, "weather": 1}
    return [Question(question_id=f"q-{c}-{i}", text=f"{c} {i}?", source="t", cluster=c)
            for c, n in sizes.items() for i in range(n)]


def test_split_by_cluster_is_deterministic_for_a_seed():
    a = split_by_cluster(_questions(), held_out_share=0.225, seed=3)
    b = split_by_cluster(_questions(), held_out_share=0.225, seed=3)
    assert [q.split for q in a] == [q.split for q in b]


def test_split_by_cluster_depends_on_the_seed():
    splits = {tuple(q.split for q in split_by_cluster(_questions(), held_out_share=0.5, seed=s)) for s in range(5)}
    assert len(splits) > 1


def test_split_by_cluster_puts_every_cluster_of_two_or_more_in_both_splits():
    for seed in range(20):
        out = split_by_cluster(_questions(), held_out_share=0.225, seed=seed)
        by_split = {s: {q.cluster for q in out if q.split == s} for s in ("train", "held_out")}
        assert by_split["train"] >= {"religion", "politics", "family"}
        assert by_split["held_out"] >= {"religion", "politics", "family"}


def test_split_by_cluster_holds_out_about_the_configured_share():
    out = split_by_cluster(_questions(), held_out_share=0.225, seed=0)
    assert Counter(q.split for q in out if q.cluster == "religion")["held_out"] == 2


def test_split_by_cluster_keeps_input_order():
    qs = _questions()
    assert [q.question_id for q in split_by_cluster(qs, held_out_share=0.3, seed=1)] == [q.question_id for q in qs]


def test_stratified_cap_takes_two_per_cluster_per_round():
    clusters = ["a"] * 6 + ["b"] * 6 + ["c"] * 1
    keep = stratified_cap(clusters, 4, seed=0)
    picked = Counter(c for c, k in zip(clusters, keep, strict=True) if k)
    assert sum(picked.values()) == 4
    assert all(n == 2 for c, n in picked.items() if c != "c")


def test_stratified_cap_is_deterministic_for_a_seed():
    clusters = ["a"] * 6 + ["b"] * 6 + ["c"] * 3
    assert (stratified_cap(clusters, 7, seed=2) == stratified_cap(clusters, 7, seed=2)).all()
