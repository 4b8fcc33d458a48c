"""Text forms of a persona: the released dataset's ``key: value`` lines and a compact one-line summary."""

from __future__ import annotations

import re
from collections.abc import Mapping

from persona_gen.core.records import PERSONA_KEYS

__all__ = ["render_attributes", "summarize"]

# Census labels that carry no information for a reader of a summary.
_SKIP = re.compile(r"^(not applicable|not available|too young)", re.I)
# "EDU-Elementary And Middle School Teachers" -> "Elementary And Middle School Teachers".
_CODE_PREFIX = re.compile(r"^[A-Z]{3}-")
_RACE = {
    "Two or More Races": "multiracial",
    "Some Other Race alone": "other-race",
    "American Indian and Alaska Native tribes specified; or American Indian or Alaska Native, "
    "not specified and no other races": "American Indian or Alaska Native",
}


def render_attributes(attributes: Mapping[str, str]) -> str:
    """The ``key: value`` text of the released PERSONA dataset: one key per line, in ``PERSONA_KEYS`` order.

    Keys outside ``PERSONA_KEYS`` are left out; a partial persona (before the LM fields exist) renders the keys it
    has, so the LM sees the same format it will be published in.
    """
    return "\n".join(f"{k}: {attributes[k]}" for k in PERSONA_KEYS if k in attributes)


def _known(attributes: Mapping[str, str], key: str) -> str:
    value = str(attributes.get(key, "") or "").strip()
    return "" if _SKIP.match(value) else value


def _person(attributes: Mapping[str, str]) -> str:
    age, sex = _known(attributes, "age"), _known(attributes, "sex")
    adult = not age.isdigit() or int(age) >= 18
    noun = {"Male": "man" if adult else "boy", "Female": "woman" if adult else "girl"}.get(sex, "person")
    race = _known(attributes, "race")
    race = _RACE.get(race, race.removesuffix(" alone"))
    return " ".join(p for p in (f"{age}-year-old" if age else "", race, noun) if p)


def _work(attributes: Mapping[str, str]) -> str:
    status = _known(attributes, "employment status")
    occupation = _CODE_PREFIX.sub("", _known(attributes, "occupation category"))
    if not status:
        return ""
    if status.lower().startswith(("civilian employed", "armed forces")):
        return f"works as {occupation}" if occupation else "employed"
    return status.lower()


def _income(attributes: Mapping[str, str]) -> str:
    value = _known(attributes, "income")
    try:
        dollars = int(float(value.replace("$", "").replace(",", ""))) if value else None
    except ValueError:
        return f"income {value}"
    return "" if dollars is None else f"income {'-' if dollars < 0 else ''}${abs(dollars):,}"


def summarize(attributes: Mapping[str, str]) -> str:
    """A compact one-line summary: who, where from, schooling, work, income, family, politics, faith.

    Example: ``"45-year-old White woman, born in Vermont; Bachelor's degree; works as Registered Nurses;
    income $52,000; married; Liberal, Strong Democrat; Catholic"``. N/A labels are left out.
    """
    born = _known(attributes, "place of birth").split("/")[0]
    head = _person(attributes) + (f", born in {born}" if born else "")
    marital = _known(attributes, "marital status")
    if marital.startswith("Never married"):
        marital = "never married" if _known(attributes, "age").isdigit() and int(attributes["age"]) >= 15 else ""
    politics = ", ".join(p for p in (_known(attributes, "ideology"), _known(attributes, "political views")) if p)
    parts = [head, _known(attributes, "education"), _work(attributes), _income(attributes), marital.lower(),
             politics, _known(attributes, "religion")]
    return "; ".join(p for p in parts if p)
