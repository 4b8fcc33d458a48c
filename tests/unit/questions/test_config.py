from __future__ import annotations

from importlib import resources

import pytest

from persona_gen.core.errors import ConfigError
from persona_gen.questions.config import QuestionsSettings
from tests.helpers import compose_run

from .fakes import stage_cfg

OPTIONS = sorted(p.name[:-5] for p in resources.files("persona_gen.conf").joinpath("stage/questions").iterdir()
                 if p.name.endswith(".yaml"))


@pytest.mark.parametrize("option", OPTIONS)
def test_settings_every_questions_option_composes_and_parses(option, tmp_path):
    cfg = compose_run(tmp_path / "out", tmp_path / "cache", [f"stage/questions={option}"])
    settings = QuestionsSettings.from_cfg(cfg.stage.questions)
    assert settings.sources or settings.generate.enabled


def test_settings_generated_option_uses_only_generation(tmp_path):
    cfg = compose_run(tmp_path / "out", tmp_path / "cache", ["stage/questions=generated"])
    settings = QuestionsSettings.from_cfg(cfg.stage.questions)
    assert settings.sources == ()
    assert settings.generate.enabled and len(settings.generate.topics) >= 10


def test_settings_accept_a_list_of_sources():
    settings = QuestionsSettings.from_cfg(stage_cfg(source=[
        "prism_examples", {"kind": "file", "path": "x.csv", "text_column": "prompt"}]))
    assert [s.kind for s in settings.sources] == ["prism_examples", "file"]
    assert [s.key for s in settings.sources] == ["source[0]", "source[1]"]


def test_settings_unknown_filter_raises_config_error():
    with pytest.raises(ConfigError, match=r"stage\.questions\.filters\[1\] must be one of \['has_question_mark'.*"
                                          r"but got 'is_question'"):
        QuestionsSettings.from_cfg(stage_cfg(filters=["min_words", "is_question"]))


def test_settings_unknown_source_kind_raises_config_error():
    with pytest.raises(ConfigError, match=r"stage\.questions\.source\.kind must be one of \['prism_examples', "
                                          r"'anthropic_values', 'file'\], but got 'prism_full'"):
        QuestionsSettings.from_cfg(stage_cfg(source="prism_full"))


def test_settings_file_source_without_text_column_raises_config_error():
    with pytest.raises(ConfigError, match=r"stage\.questions\.source\[1\]\.text_column must be the name of the "
                                          r"column holding the prompt text, but got 'nothing'"):
        QuestionsSettings.from_cfg(stage_cfg(source=["prism_examples", {"kind": "file", "path": "x.csv"}]))


def test_settings_unknown_key_raises_config_error():
    with pytest.raises(ConfigError, match=r"stage\.questions\.dedup\.cutoff must be one of \['analyzer'"):
        QuestionsSettings.from_cfg(stage_cfg(dedup={"cutoff": 0.5}))


def test_settings_without_source_or_generation_raises_config_error():
    with pytest.raises(ConfigError, match=r"stage\.questions\.source must be at least one source, or "
                                          r"generate\.enabled: true.*stage/questions=generated"):
        QuestionsSettings.from_cfg(stage_cfg(source=[]))


def test_settings_per_cluster_above_schema_cap_raises_config_error():
    with pytest.raises(ConfigError, match=r"generate\.per_cluster must be in \[1, 5\].*but got 9"):
        QuestionsSettings.from_cfg(stage_cfg(generate={"enabled": True, "per_cluster": 9}))


def test_settings_dedup_threshold_out_of_range_raises_config_error():
    with pytest.raises(ConfigError, match=r"dedup\.threshold must be in \(0, 1\], but got 1\.5"):
        QuestionsSettings.from_cfg(stage_cfg(dedup={"threshold": 1.5}))
