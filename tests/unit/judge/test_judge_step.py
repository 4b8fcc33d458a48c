"""The pairwise judge step: both orders for every pair and variant, and the position flip every rate depends on."""

from __future__ import annotations

import pandas as pd


def _judgments(result) -> pd.DataFrame:
    return pd.read_parquet(result.dataset_dir / "data" / "judgments" / "train-00000-of-00001.parquet")


def _answer(choice_of):
    def rule(prompt, schema):
        if "preferred" not in schema.get("properties", {}):
            return None
        first = prompt.rsplit("[[ ## first_answer ## ]]", 1)[-1].split("[[ ##", 1)[0]
        return {"preferred": choice_of(first), "reasoning": "because"}
    return rule


def _revise(prompt, schema):
    if "revision" in schema.get("properties", {}):
        return {"revision": "REVISED short."}
    return None


def test_judge_every_pair_in_both_orders_and_variants(ruled_pipeline):
    result = ruled_pipeline({"generator": [_revise], "judge": [_answer(lambda first: "first")]})
    df = _judgments(result)
    pairs = df.groupby(["feedback_id", "variant"])["order"].apply(sorted)
    assert all(orders == ["original_first", "revision_first"] for orders in pairs)
    assert set(df["variant"]) == {"direct", "chain_of_thought"}
    assert list(df["variant"]) == sorted(df["variant"], key=["chain_of_thought", "direct"].index)


def test_judge_position_flip_maps_choices_to_answers(ruled_pipeline):
    # A judge that always picks the first answer prefers the original in one order and the revision in the other:
    # order consistency 0, first-position rate 1.
    result = ruled_pipeline({"generator": [_revise], "judge": [_answer(lambda first: "first")]}, name="first")
    df = _judgments(result)
    expect = df["order"].map({"original_first": "original", "revision_first": "revision"})
    assert (df["preferred"] == expect).all()
    card = {c["variant"]: c for c in result.manifest["judge_scorecard"]}
    assert card["direct"]["order_consistency"] == 0.0 and card["direct"]["first_position_rate"] == 1.0


def test_judge_that_sees_the_revision_prefers_it_in_both_orders(ruled_pipeline):
    result = ruled_pipeline({"generator": [_revise],
                             "judge": [_answer(lambda first: "first" if "REVISED" in first else "second")]},
                            name="sees")
    df = _judgments(result)
    assert (df["preferred"] == "revision").all()
    card = {c["variant"]: c for c in result.manifest["judge_scorecard"]}
    assert card["direct"]["order_consistency"] == 1.0 and card["direct"]["verification_rate"] == 1.0
    assert card["direct"]["first_position_rate"] == 0.5


def test_judge_rows_per_persona_limit_takes_each_personas_first_pairs(ruled_pipeline):
    result = ruled_pipeline({"generator": [_revise]}, ["scale.judge_rows_per_persona=1"], name="one")
    judged = _judgments(result)
    feedback = pd.concat([pd.read_parquet(f) for f in sorted((result.dataset_dir / "data" / "feedback").glob("*"))])
    personas = feedback["persona_id"].nunique()
    assert len(judged) == personas * 1 * 2 * 2  # one pair each, two variants, two orders
    first_pairs = result.manifest["rows"]["feedback"]
    assert sum(first_pairs.values()) == len(feedback) > personas
    assert judged.groupby("persona_id")["feedback_id"].nunique().eq(1).all()
