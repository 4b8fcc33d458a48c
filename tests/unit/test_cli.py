from __future__ import annotations

import pytest

from persona_gen.cli import _alias_model_overrides
from persona_gen.tasks import resolve_task


@pytest.mark.parametrize(("arg", "expected"), [
    ("models.generator=fake", "model@models.generator=fake"),
    ("models.judge=fake,smollm2", "model@models.judge=fake,smollm2"),
    ("models.generator.temperature=0.7", "models.generator.temperature=0.7"),
    ("seed=1,2", "seed=1,2"),
    ("models=fake", "models=fake"),  # the preset of both roles is a group of its own
])
def test_cli_alias_maps_role_to_model_group(arg, expected):
    assert _alias_model_overrides([arg]) == [expected]


def test_tasks_unknown_task_is_config_error():
    from persona_gen.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"task must be one of \["):
        resolve_task("nope")
