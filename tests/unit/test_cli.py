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


@pytest.mark.parametrize("arg", [
    "models.generator.api_key=sk-abcdefghijklmnop", "+models.judge.api_key=anything",
    "publish.token=hf_abcdefghijklmnopqrstu", "models.generator.api_key_env=sk-live-12345678",
    "+hydra.job.env_set.KEY=sk-abcdefghijklmnop", "models.judge.api_key_env=not-a-name",
])
def test_secret_looking_overrides_are_refused_without_echo(arg, capsys):
    from persona_gen.cli import _refuse_secret_overrides

    with pytest.raises(SystemExit) as info:
        _refuse_secret_overrides(["scale=tiny", arg])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("persona-gen: error: ") and err.count("\n") == 1
    assert arg.split("=", 1)[1] not in err


def test_plain_overrides_pass_the_secret_check(monkeypatch):
    from persona_gen.cli import _refuse_secret_overrides

    monkeypatch.setenv("MY_KEY", "x")
    _refuse_secret_overrides(["scale=tiny", "models.generator.api_key_env=MY_KEY", "publish.token_env=HF_TOKEN",
                              "-m", "seed=1,2", "hydra.run.dir=outputs/x"])


def test_interrupted_exits_with_128_plus_the_signal_in_one_line(capsys):
    import signal

    from persona_gen.cli import Interrupted, _interrupted

    with pytest.raises(SystemExit) as info:
        _interrupted(Interrupted(signal.SIGTERM))
    assert info.value.code == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert err.startswith("persona-gen: interrupted by SIGTERM: ") and err.count("\n") == 1


def test_an_os_error_without_a_path_names_where_and_the_fix():
    import errno
    import os

    from persona_gen.cli import _one_line

    try:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as exc:
        line = _one_line(exc)
    assert line.startswith("a file or network operation must be successful, but got 'OSError: No space left")
    assert "test_cli.py:" in line and "free disk space" in line
