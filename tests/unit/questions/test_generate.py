from __future__ import annotations

from dspy.adapters.json_adapter import _get_structured_outputs_response_format

from persona_gen.questions.generate import draft_questions
from persona_gen.signatures.questions import DRAFT_MAX_CHARS, DraftQuestions, draft_questions_signature

from .fakes import drafts_rule


def _list_schema(signature):
    schema = _get_structured_outputs_response_format(signature).model_json_schema()
    (model,) = schema["$defs"].values()
    return model["properties"]["questions"]


def test_draft_questions_signature_caps_the_list_in_the_json_schema():
    items = _list_schema(draft_questions_signature(3))
    assert (items["minItems"], items["maxItems"], items["items"]["maxLength"]) == (1, 3, DRAFT_MAX_CHARS)


def test_draft_questions_signature_keeps_name_and_instructions():
    sig = draft_questions_signature(2)
    assert (sig.__name__, sig.instructions) == ("DraftQuestions", DraftQuestions.instructions)


def test_draft_questions_writes_per_cluster_questions_for_each_topic(make_caller):
    drafts = draft_questions(["religion", "guns"], caller=make_caller(), per_cluster=3)
    assert drafts.frame.groupby("cluster").size().to_dict() == {"guns": 3, "religion": 3}
    assert drafts.frame["text"].str.endswith("?").all()
    assert set(drafts.frame["source"]) == {"generated:fake:fake-v1"}


def test_draft_questions_trims_answers_longer_than_per_cluster(make_caller):
    caller = make_caller([drafts_rule({"religion": [f"Is faith number {i} a good idea?" for i in range(9)]})])
    assert len(draft_questions(["religion"], caller=caller, per_cluster=2).frame) == 2


def test_draft_questions_keeps_junk_items_for_the_filters(make_caller):
    caller = make_caller([drafts_rule({"religion": ["QuestionDrafts", "  ", "Is prayer useful in hard times?"]})])
    assert draft_questions(["religion"], caller=caller, per_cluster=3).frame["text"].tolist() == [
        "QuestionDrafts", "Is prayer useful in hard times?"]


def test_draft_questions_records_a_failed_topic(make_caller):
    caller = make_caller(fail_when=lambda prompt: "[[ ## topic ## ]]\nguns" in prompt)
    drafts = draft_questions(["religion", "guns"], caller=caller, per_cluster=2)
    assert drafts.failed_topics == ["guns"]
    assert drafts.failures[0].kind == "parse" and "not json" in drafts.failures[0].raw
    assert set(drafts.frame["cluster"]) == {"religion"}
