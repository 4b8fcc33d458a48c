"""Schema of the ``annotate`` config group, checked when an annotation task starts."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from persona_gen.core.config import JUDGE_SOURCES, AnnotateConfig
from persona_gen.core.errors import ConfigError, format_error

__all__ = ["JUDGE_SOURCES", "AnnotateConfig", "checked_group", "required"]

def checked_group(cfg: DictConfig, group: str, schema: type) -> Any:
    """``cfg.<group>`` merged onto its dataclass schema: wrong keys or types fail here, in the house format."""
    node = cfg.get(group)
    if node is None:
        raise ConfigError(format_error(
            f"config group {group}", expected="in the config", got="absent", where="conf/config.yaml defaults",
            fix=f"add `- {group}: default` to the defaults list, or pass +{group}=default"))
    try:
        # Resolved first: interpolations such as ${stage.judge.variants} point outside the group.
        plain = OmegaConf.to_container(node, resolve=True, throw_on_missing=False)
        return OmegaConf.merge(OmegaConf.structured(schema), plain)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or ""
        raise ConfigError(format_error(
            f"{group}.{key}" if key else group, expected=f"valid for {schema.__name__}",
            got=str(exc).splitlines()[0], where=f"conf/{group}/", fix="check the key's name and type")) from None


def required(node: Any, key: str, group: str, fix: str) -> Any:
    """``node[key]``, or a ``ConfigError`` saying how to set it when it is still ``???``."""
    if OmegaConf.is_missing(node, key):
        raise ConfigError(format_error(f"{group}.{key}", expected="set", got="???", where="command line", fix=fix))
    return node[key]
