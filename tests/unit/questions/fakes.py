"""Fake-LM rules and config helpers for the questions tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from typing import Any

from omegaconf import OmegaConf

Rule = Callable[[str, dict[str, Any]], "dict[str, Any] | None"]


def user_field(prompt: str, name: str) -> str:
    """The value of input field ``name`` in the user message (the system message shows the template first)."""
    found = re.findall(rf"\[\[ ## {name} ## \]\]\s*\n(.*?)(?=\n\n|\n\[\[|\Z)", prompt, re.S)
    return found[-1].strip() if found else ""


def drafts_rule(items_by_topic: dict[str, list[str]]) -> Rule:
    """Answer DraftQuestions with fixed items for the listed topics."""

    def rule(prompt: str, schema: dict[str, Any]) -> dict[str, Any] | None:
        if "drafts" not in schema.get("properties", {}):
            return None
        topic = user_field(prompt, "topic")
        return {"drafts": {"questions": items_by_topic[topic]}} if topic in items_by_topic else None

    return rule


def controversy_rule(marker: str) -> Rule:
    """JudgeControversy says 'not controversial' for questions containing ``marker``, else 'controversial'."""

    def rule(prompt: str, schema: dict[str, Any]) -> dict[str, Any] | None:
        if "verdict" not in schema.get("properties", {}) or "[[ ## question ## ]]" not in prompt:
            return None
        flagged = marker in user_field(prompt, "question")
        return {"verdict": {"controversial": not flagged, "reason": "flagged" if flagged else "value-laden"}}

    return rule


def stage_cfg(**overrides: Any):
    """The shipped conf/stage/questions/prism.yaml with ``overrides`` merged in."""
    text = resources.files("persona_gen.conf").joinpath("stage/questions/prism.yaml").read_text()
    return OmegaConf.merge(OmegaConf.create(text), OmegaConf.create(overrides))
