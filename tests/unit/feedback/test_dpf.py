"""Direct Principle Feedback through the declared steps: answer -> critique -> revision, the length check."""

from __future__ import annotations

import pandas as pd


def _feedback(result) -> pd.DataFrame:
    files = sorted((result.dataset_dir / "data" / "feedback").glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _echo_inputs_rule(prompt: str, schema: dict) -> dict | None:
    """Revision and critique answers that quote their inputs, so the test can see what each step was fed."""
    props = schema.get("properties", {})
    user = prompt.rsplit("[[ ## persona ## ]]", 1)[-1]
    if "revision" in props:
        critique = user.split("[[ ## critique ## ]]", 1)[-1].split("[[ ##", 1)[0].strip()
        return {"revision": f"short. critique seen: {critique[:40]}"}
    if "critique" in props:
        answer = user.split("[[ ## answer ## ]]", 1)[-1].split("[[ ##", 1)[0].strip()
        return {"critique": {"evaluation": f"about: {answer[:30]}", "suggestions": "be kinder"}}
    return None


def test_dpf_critique_reads_the_answer_and_revision_reads_the_critique(ruled_pipeline):
    df = _feedback(ruled_pipeline({"generator": [_echo_inputs_rule]}))
    assert len(df) == 4 and (df["failure_count"] == 0).all()
    for _, row in df.iterrows():
        assert row["critique"] == f"EVALUATION: about: {row['original'][:30]}\nSUGGESTIONS: be kinder"
        assert row["data"].startswith("short. critique seen: EVALUATION: about:")
        assert row["persona"].startswith("age: ") and row["instruction"].endswith("?")


def test_dpf_failed_answer_skips_critique_and_revision_and_is_recorded_once(ruled_pipeline):
    # Every no-persona answer fails to parse: the rows stay, empty, with one recorded failure each.
    result = ruled_pipeline(fail_when={"generator": lambda p: "[[ ## question ## ]]" in p and "persona" not in p},
                            overrides=["max_failure_rate=1.0"])
    df = _feedback(result)
    assert len(df) == 4
    assert (df[["original", "critique", "data"]] == "").all().all()
    failures = [list(f) for f in df["failures"]]
    assert all(len(f) == 1 and f[0]["stage"] == "answer" and f[0]["kind"] == "parse" for f in failures)
    assert result.manifest["stages"].get("critique") is None  # nothing sent to the skipped steps
    assert result.manifest["stages"]["answer"]["failures"] == result.manifest["stages"]["answer"]["lm_calls"]


def test_dpf_length_check_keeps_a_long_revision_and_records_it(ruled_pipeline):
    def long_revision(prompt, schema):
        if "revision" in schema.get("properties", {}):
            return {"revision": " ".join(["word"] * 500)}
        return None

    df = _feedback(ruled_pipeline({"generator": [long_revision]}))
    assert (df["data"].str.split().str.len() == 500).all()
    failures = [list(f) for f in df["failures"]]
    assert all([x["kind"] for x in f] == ["length"] and f[0]["stage"] == "revision" for f in failures)
    assert all("limit is 1.0x" in f[0]["message"] for f in failures)


def test_dpf_length_ratio_is_the_configured_one(ruled_pipeline):
    def double(prompt, schema):
        if "revision" in schema.get("properties", {}):
            answer = prompt.rsplit("[[ ## answer ## ]]", 1)[-1].split("[[ ##", 1)[0].split()
            return {"revision": " ".join(answer * 2)}
        return None

    strict = _feedback(ruled_pipeline({"generator": [double]}, name="strict"))
    loose = _feedback(ruled_pipeline({"generator": [double]}, ["stage.feedback.max_revision_ratio=3"], name="loose"))
    assert (strict["failure_count"] == 1).all()
    assert (loose["failure_count"] == 0).all()
