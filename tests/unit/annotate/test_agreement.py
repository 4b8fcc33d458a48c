from __future__ import annotations

import pytest

from persona_gen.annotate import agreement_report, human_vs_human, kappa_change, kappa_vs_majority
from persona_gen.core.records import Judgment
from tests.unit.annotate.synthetic import make_items


def _judgments(items, pick, variant="direct"):
    """Both orders of each item; ``pick(item, order)`` returns the judge's preferred label."""
    out = []
    for item in items:
        for order in ("original_first", "revision_first"):
            preferred = pick(item, order)
            choice = {"original": "first" if order == "original_first" else "second",
                      "revision": "second" if order == "original_first" else "first"}.get(preferred, preferred)
            out.append(Judgment(judgment_id=f"j-{item.feedback_id}-{variant}-{order}", feedback_id=item.feedback_id,
                                persona_id=item.persona_id, question_id=item.question_id, variant=variant,
                                order=order, choice=choice, preferred=preferred, judge_model="fake:fake-v1",
                                signature_hash="s", program_hash="p"))
    return out


def _truth(item, order):
    return item.majority


def _always_revision(item, order):
    return "revision"


def test_kappa_vs_majority_is_one_for_a_judge_that_agrees_with_people():
    items = make_items(20)
    result = kappa_vs_majority(_judgments(items, _truth), items, n_boot=200)
    assert (result["kappa"], result["ci_low"], result["ci_high"]) == (1.0, 1.0, 1.0)
    assert (result["n_pairs"], result["n_items"]) == (40, 20)


def test_kappa_vs_majority_counts_abstentions_as_disagreement():
    items = make_items(20)
    judged = _judgments(items, lambda i, o: "abstain" if i.feedback_id == "f-000" else i.majority)
    result = kappa_vs_majority(judged, items, n_boot=200)
    assert result["abstentions"] == 2
    assert result["kappa"] < 1.0


def test_kappa_vs_majority_interval_brackets_the_estimate():
    items = make_items(30)
    judged = _judgments(items, lambda i, o: i.majority if int(i.feedback_id[-1]) % 3 else "tie")
    result = kappa_vs_majority(judged, items, n_boot=500)
    assert result["ci_low"] <= result["kappa"] <= result["ci_high"]


def test_kappa_change_reports_after_minus_before():
    items = make_items(20)
    result = kappa_change(_judgments(items, _always_revision), _judgments(items, _truth), items, n_boot=200)
    assert result["delta"]["kappa"] == pytest.approx(result["after"]["kappa"] - result["before"]["kappa"], abs=1e-3)
    assert result["delta"]["ci_low"] > 0


def test_human_vs_human_scores_each_rater_against_the_others():
    items = make_items(20, raters=3, noisy_every=5)
    result = human_vs_human(items)
    assert result["per_rater"]["r1"]["kappa"] == 1.0
    assert result["per_rater"]["r0"]["kappa"] < 1.0


def test_agreement_report_has_one_entry_per_judge_variant():
    items = make_items(10)
    judged = _judgments(items, _truth, "direct") + _judgments(items, _always_revision, "chain_of_thought")
    report = agreement_report(items, judged, n_boot=100)
    assert sorted(report["human_vs_judge"]) == ["chain_of_thought", "direct"]
    assert report["human_vs_judge"]["direct"]["kappa"] == 1.0



def test_human_vs_human_explains_why_it_is_none_without_shared_items():
    # Every item labeled by a different single rater (each played another persona).
    items = [item.model_copy(update={"ratings": (item.ratings[0].model_copy(update={"rater_id": f"solo{n}"}),)})
             for n, item in enumerate(make_items(6, raters=1))]
    report = human_vs_human(items)
    assert report["mean_kappa"] is None and report["shared_items"] == 0
    assert report["note"].startswith("not computed: no item was labeled by two or more of the 6 raters")
    assert "annotate.raters_per_item=2" in report["note"]


def test_human_vs_human_one_rater_is_explained():
    report = human_vs_human(make_items(4, raters=1))
    assert report["mean_kappa"] is None and report["note"].startswith("not computed: 1 rater(s)")


def test_human_vs_human_small_sample_carries_a_warning():
    report = human_vs_human(make_items(20, raters=3, noisy_every=5))
    assert report["mean_kappa"] is not None and report["shared_items"] == 20
    assert report["warning"].startswith("small sample: 20 items (< 30)")
    assert human_vs_human(make_items(40, raters=3, noisy_every=5))["warning"] is None
