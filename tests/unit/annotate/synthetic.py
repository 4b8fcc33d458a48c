"""Synthetic annotation data whose labels follow a known rule, shared by the annotate and optimize tests.

The rule: a persona prefers the answer written from its own ideology's point of view. Which of the two
dataset answers (original or revision) that is varies by row, so the human majority varies too and kappa
is defined.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from persona_gen.annotate.records import LabeledItem, Rating, majority

IDEOLOGIES = ("liberal", "conservative")


def persona_text(n: int) -> str:
    return f"age: {30 + n}\nsex: {'Female' if n % 2 else 'Male'}\nideology: {IDEOLOGIES[n % 2]}\nreligion: none"


def answer(ideology: str, q: int) -> str:
    return f"Speaking from a {ideology} point of view, option {q} is the sensible path."


def feedback_frame(num_personas: int = 4, questions: int = 5) -> pd.DataFrame:
    """Rows shaped like data/feedback/*.parquet of a generated dataset."""
    rows = []
    for p in range(num_personas):
        ideology = IDEOLOGIES[p % 2]
        other = IDEOLOGIES[(p + 1) % 2]
        for q in range(questions):
            # The persona-matching answer is the revision on even rows and the original on odd rows.
            matching_is_revision = (p + q) % 2 == 0
            rows.append({
                "feedback_id": f"f-{p:02d}-{q:02d}", "persona_id": f"p-{p:02d}", "question_id": f"q-{q:02d}",
                "persona": persona_text(p), "instruction": f"What should I do about issue {q}?",
                "original": answer(other if matching_is_revision else ideology, q), "critique": "EVALUATION: ok",
                "data": answer(ideology if matching_is_revision else other, q), "question type": "train",
                "seen": False, "generator_model": "fake:fake-v1", "failures": "[]", "failure_count": 0,
            })
    return pd.DataFrame(rows)


def write_dataset(root: Path, **kwargs: Any) -> Path:
    folder = root / "dataset" / "data" / "feedback"
    folder.mkdir(parents=True, exist_ok=True)
    feedback_frame(**kwargs).to_parquet(folder / "train-00000-of-00001.parquet", index=False)
    return root / "dataset"


def rule_choice(persona: str, answer_a: str, answer_b: str) -> str:
    """What a rater following the rule picks: ``a`` or ``b``."""
    ideology = re.search(r"ideology: (\w+)", persona).group(1)
    return "a" if ideology in answer_a else "b"


def make_items(num_items: int = 40, raters: int = 3, noisy_every: int = 5) -> list[LabeledItem]:
    """Labeled items; rater r0 flips every ``noisy_every``-th item, the others follow the rule."""
    items = []
    for n in range(num_items):
        p, q = n // 5, n % 5
        ideology, other = IDEOLOGIES[p % 2], IDEOLOGIES[(p + 1) % 2]
        matching_is_revision = (p + q) % 2 == 0
        original = answer(other if matching_is_revision else ideology, q)
        revision = answer(ideology if matching_is_revision else other, q)
        truth = "revision" if matching_is_revision else "original"
        flip = "original" if truth == "revision" else "revision"
        ratings = tuple(Rating(rater_id=f"r{r}", preferred=flip if r == 0 and n % noisy_every == 0 else truth,
                               justification=f"As a {ideology} I like that view.") for r in range(raters))
        items.append(LabeledItem(
            task_id=f"t-{n:03d}", feedback_id=f"f-{n:03d}", persona_id=f"p-{p:02d}", question_id=f"q-{q:02d}",
            persona=persona_text(p), question=f"What should I do about issue {n}?", original=original,
            revision=revision, ratings=ratings, majority=majority([r.preferred for r in ratings])))
    return items


def _section(text: str, name: str) -> str:
    match = re.search(rf"\[\[ ## {name} ## \]\]\s*\n(.*?)(?=\n\[\[ ## |\Z)", text, re.S)
    return match.group(1) if match else ""


def demo_rule(prompt: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """A FakeEngine rule: with few-shot demos in the prompt, answer by the known rule; without, stay silent.

    The system message shows each field marker once and the question once more, so three or more
    ``persona`` markers mean at least one demonstration is in the prompt.
    """
    if "preferred" not in schema.get("properties", {}) or prompt.count("[[ ## persona ## ]]") < 3:
        return None
    last = prompt.rsplit("[[ ## persona ## ]]", 1)[-1]
    ideology = re.search(r"ideology: (\w+)", last)
    if ideology is None:
        return None
    first = _section(last, "first_answer")
    return {"preferred": "first" if ideology.group(1) in first else "second"}


def _in_defaults(group: str) -> bool:
    from importlib import resources

    from omegaconf import OmegaConf

    text = resources.files("persona_gen.conf").joinpath("config.yaml").read_text()
    for entry in OmegaConf.create(text).get("defaults", []):
        name = next(iter(entry)) if not isinstance(entry, str) else entry
        if str(name).removeprefix("optional ").strip() == group:
            return True
    return False


def compose(out: Path, cache: Path, overrides: list[str] = ()) -> Any:
    """The real config with the fake judge; adds the annotate/optimize groups until conf/config.yaml lists them."""
    from tests.helpers import compose_run

    extra = [f"+{g}=default" for g in ("annotate", "optimize") if not _in_defaults(g)]
    return compose_run(out, cache, ["model@models.generator=fake", "model@models.judge=fake", *extra, *overrides])
