"""The step graph is checked whole before any work: each misconfiguration is one house-format line, in seconds,
with no census load and no LM call."""

from __future__ import annotations

import time

import pytest

import persona_gen.census
from persona_gen.core.calls import Caller
from persona_gen.core.errors import ConfigError
from persona_gen.pipeline import Pipeline, run
from tests.helpers import compose_run

FAKE = ["experiment=fake_smoke"]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the census is loaded or any LM call is made."""

    def boom(*args, **kwargs):
        raise AssertionError("work started before the config was checked")

    monkeypatch.setattr(persona_gen.census, "load_source", boom)
    monkeypatch.setattr(Caller, "map", boom)


def _refused(tmp_path, overrides: list[str], match: str) -> str:
    cfg = compose_run(tmp_path / "run", tmp_path / "cache", [*FAKE, *overrides])
    start = time.monotonic()
    with pytest.raises(ConfigError, match=match) as info:
        run(cfg)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "\n" not in message and " must be " in message and ", but got " in message
    assert not (tmp_path / "run" / "dataset").exists()
    return message


def test_graph_preset_orders_steps_from_references(tmp_path):
    cfg = compose_run(tmp_path / "run", tmp_path / "cache", FAKE)
    pipe = Pipeline.from_config(cfg)
    order = pipe.order
    for before, after in [("census", "enrich"), ("enrich", "assign"), ("questions", "assign"), ("answer", "critique"),
                          ("critique", "revision"), ("revision", "judge"), ("revision", "length_check")]:
        assert order.index(before) < order.index(after)
    assert set(pipe.tables) == {"feedback", "personas", "persona_rejections", "questions", "judgments", "candidates",
                                "dpo"}


def test_graph_signatures_follow_the_question_source(tmp_path):
    prism = Pipeline.from_config(compose_run(tmp_path / "a", tmp_path / "c", FAKE)).signatures()
    generated = Pipeline.from_config(compose_run(tmp_path / "b", tmp_path / "c",
                                                 [*FAKE, "stage/questions=generated"])).signatures()
    assert "DraftQuestions" not in prism and "DraftQuestions" in generated
    no_lm_filter = Pipeline.from_config(compose_run(
        tmp_path / "d", tmp_path / "c", [*FAKE, "stage.questions.filters=[has_question_mark,min_words]"]))
    assert "JudgeControversy" not in no_lm_filter.signatures()


@pytest.mark.parametrize(("overrides", "match"), [
    (["stage.questions.filters=[has_question_mark,bogus]"], "filters"),
    (["stage.judge.variants=[cot]"], "variants"),
    (["pipeline.steps.critique.inputs.answer=answr.answer"], r"did you mean 'answer'"),
    (["pipeline.steps.critique.inputs.answer=answer.text"], r"an output of step 'answer'"),
    (["pipeline.steps.critique.inputs.answer=persona.nickname"], "a field of persona"),
    (["~pipeline.steps.critique.inputs.answer"], r"every input of signature CritiqueInVoice fed"),
    (["+pipeline.steps.critique.inputs.mood=persona.text"], r"an input of signature CritiqueInVoice"),
    (["pipeline.steps.critique._target_=persona_gen.core.steps.NoSuchStep"], "a name defined in module"),
    (["pipeline.steps.critique._target_=nosuchpkg.Step"], "an importable module"),
    (["pipeline.steps.critique._target_=persona_gen.core.records.Persona"], "a subclass of"),
    (["pipeline.steps.critique.signature=persona_gen.core.records.Persona"], "a dspy.Signature subclass"),
    (["+pipeline.steps.critique.temprature=0.5"], r"a key of LMStep"),
    (["pipeline.steps.critique.role=writer"], "a role defined under models"),
    (["pipeline.steps.critique.scope=everywhere"], "one of"),
    (["pipeline.steps.answer.inputs.question=persona.text"], "readable at scope 'question'"),
    (["pipeline.steps.answer.inputs.question=critique.text"], "readable at scope 'question'"),
    (["pipeline.tables.feedback.columns.data=revision.revisoin"], r"did you mean 'revision'"),
    (["pipeline.tables.feedback.failures=[answer,critque]"], "names of declared steps"),
    (["+pipeline.tables.feedback.colums={}"], "one of"),
    (["pipeline.steps.critique.derive.text='{critique[evalution]}'"], "derive"),
    (["+pipeline.stepz={}"], "one of"),
])
def test_graph_misconfiguration_fails_before_any_work(tmp_path, no_work, overrides, match):
    _refused(tmp_path, overrides, match)


def test_graph_cycle_is_named(tmp_path, no_work):
    message = _refused(tmp_path, ["pipeline.steps.critique.inputs.answer=revision.revision"],
                       "form no cycle")
    assert "critique" in message and "revision" in message


def test_graph_knows_which_steps_feed_calls_on_their_own_role(tmp_path):
    # What lets the judge's slots (and the revision's) be handed on at once: no step that reads them calls their
    # model role. The answer and the critique feed the revision on the generator; enrichment feeds every row.
    pipeline = Pipeline.from_config(compose_run(tmp_path / "o", tmp_path / "c", ["experiment=fake_smoke"]))
    feeds = {name: pipeline.feeds_own_role(name) for name in pipeline.steps}
    assert feeds["judge"] is False and feeds["revision"] is False
    assert feeds["answer"] is True and feeds["critique"] is True and feeds["enrich"] is True
    assert feeds["census"] is False  # no model role
    assert pipeline.steps["judge"].role != pipeline.steps["revision"].role
