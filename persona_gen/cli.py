"""``persona-gen``: a thin ``@hydra.main`` around ``persona_gen.pipeline.run``."""

from __future__ import annotations

import logging
import os
import re
import sys

import hydra
from omegaconf import DictConfig

from persona_gen.core.config import register_configs
from persona_gen.core.errors import PersonaGenError

__all__ = ["main"]

log = logging.getLogger("persona_gen")

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
register_configs()


@hydra.main(version_base="1.3", config_path="pkg://persona_gen.conf", config_name="config")
def _app(cfg: DictConfig) -> float | None:
    from persona_gen.tasks import resolve_task

    try:
        result = resolve_task(str(cfg.task))(cfg)
    except PersonaGenError as exc:
        # One clear line, no traceback: the message says what, expected, got, where and how to fix.
        print(f"persona-gen: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for line in result.summary_lines():
        print(line)
    return None


_ROLE_ALIAS = re.compile(r"^(models\.(?:generator|judge))=([A-Za-z0-9_,\-]+)$")


def _alias_model_overrides(argv: list[str]) -> list[str]:
    """``models.generator=fake`` is shorthand for the group override ``model@models.generator=fake``.

    A bare option name (or a comma-separated sweep of them) picks a file of conf/model/; a dotted key such as
    ``models.generator.temperature=0.7`` is left alone.
    """
    return [_ROLE_ALIAS.sub(r"model@\1=\2", a) for a in argv]


def main() -> None:
    sys.argv = [sys.argv[0], *_alias_model_overrides(sys.argv[1:])]
    _app()


if __name__ == "__main__":
    main()
