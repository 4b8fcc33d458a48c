"""Declarative description of a census source: which files, which dictionary, which column is which persona key.

A new census source is a YAML file (``conf/sampler/*.yaml``, key ``source:``), not code. Paths may be absolute,
``${paths.shared_data}/...`` (resolved by Hydra, or here from ``PERSONA_GEN_SHARED_DATA``), ``package:NAME`` (a
file shipped in ``persona_gen/census/data/``) or relative (to the YAML file when read from one, else to the
working directory).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from persona_gen.census.keys import CENSUS_KEYS
from persona_gen.core.errors import ConfigError, format_error

__all__ = [
    "ColumnSpec",
    "HouseholdSpec",
    "SourceSpec",
    "StateSpec",
    "default_shared_data",
    "package_data",
    "parse_source_spec",
    "read_config_file",
]

SOURCE_KINDS = ("pums_zip", "csv")
ROLE_NAMES = ("householder", "spouse", "partner", "own_child", "relative", "nonrelative", "group_quarters")
PACKAGE_PREFIX = "package:"


def package_data(name: str = "") -> Path:
    """Path of a file shipped in ``persona_gen/census/data/``."""
    return Path(str(resources.files("persona_gen.census").joinpath("data", name)))


def default_shared_data() -> Path:
    """The project's shared data folder: ``$PERSONA_GEN_SHARED_DATA``, else ``<repo>/../shared/data``."""
    env = os.environ.get("PERSONA_GEN_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


@dataclass(frozen=True)
class ColumnSpec:
    """Where one persona key comes from: a file variable, or a household variable we derive."""

    variable: str
    derived: bool = False


@dataclass(frozen=True)
class StateSpec:
    """How to name a record's state: decode ``variable`` (its first ``code_chars`` characters) with ``labels``."""

    variable: str
    code_chars: int | None = None
    labels: str | None = None


@dataclass(frozen=True)
class HouseholdSpec:
    """Columns and relationship codes used to derive household type, family presence and household language.

    ``roles`` maps a role (householder, spouse, partner, own_child, relative, nonrelative, group_quarters) to
    relationship codes; ACS 2018 uses ``RELP`` 00..17, ACS 2019+ ``RELSHIPP`` 20..38, so the year is config.
    """

    serial: str = "SERIALNO"
    relationship: str = "RELP"
    sex: str = "SEX"
    age: str = "AGEP"
    speaks_other_language: str = "LANX"
    language: str = "LANP"
    male_code: str = "1"
    english_only_code: str = "2"
    person_number: str = "SPORDER"
    roles: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The Bureau's household-language order, as relationship codes: the first member in this order who speaks a
    # language other than English gives the household its language (empty: the roles' order).
    language_order: tuple[str, ...] = ()

    def role(self, name: str) -> tuple[str, ...]:
        """Relationship codes of one role."""
        return dict(self.roles).get(name, ())

    def variables(self) -> tuple[str, ...]:
        """File columns the derivation reads."""
        return (self.serial, self.relationship, self.sex, self.age, self.speaks_other_language, self.language,
                self.person_number)


@dataclass(frozen=True)
class SourceSpec:
    """A census source, parsed and checked; hashable so loaded sources can be cached by spec."""

    name: str
    kind: str
    files: tuple[Path, ...]
    dictionaries: tuple[Path, ...]
    weight: str
    columns: tuple[tuple[str, ColumnSpec], ...]
    year: int | None = None
    record_id: tuple[str, ...] = ()
    state: StateSpec | None = None
    household: HouseholdSpec | None = None
    blank_codes: tuple[str, ...] = ()
    # Dollar amounts to multiply by the Bureau's adjustment factor (ADJINC, 6 implied decimals): (factor, variables).
    adjustment: tuple[str, tuple[str, ...]] | None = None
    # Dictionary labels replaced by readable ones: ((variable, ((code, label), ...)), ...).
    relabel: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    origin: str = "sampler.source"

    def persona_keys(self) -> tuple[str, ...]:
        """The attributes a persona gets from this source: PERSONA's census keys, then the source's own keys."""
        return (*CENSUS_KEYS, *(k for k, _ in self.columns if k not in CENSUS_KEYS))

    def column(self, key: str) -> ColumnSpec | None:
        """The column spec of a persona key, or None when this source does not have it."""
        return dict(self.columns).get(key)

    def file_variables(self) -> tuple[str, ...]:
        """Every column to read from the data files, in a stable order."""
        wanted: list[str] = [self.weight, *self.record_id]
        wanted += [c.variable for _, c in self.columns if not c.derived]
        if self.state is not None:
            wanted.append(self.state.variable)
        if self.household is not None and any(c.derived for _, c in self.columns):
            wanted += list(self.household.variables())
        if self.adjustment is not None:
            wanted.append(self.adjustment[0])
        return tuple(dict.fromkeys(wanted))

    def label_override(self, variable: str) -> dict[str, str]:
        """Readable labels that replace the dictionary's for some codes of ``variable``."""
        return dict(dict(self.relabel).get(variable, ()))

    def adjusted(self, variable: str) -> bool:
        """Whether ``variable`` is a dollar amount multiplied by the adjustment factor."""
        return self.adjustment is not None and variable in self.adjustment[1]


def _fail(what: str, *, expected: str, got: object, origin: str, fix: str) -> ConfigError:
    return ConfigError(format_error(what, expected=expected, got=got, where=origin, fix=fix))


def _resolve_path(value: object, base: Path | None, origin: str, key: str) -> list[Path]:
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise _fail(f"source.{key} entry", expected="a path string", got=value, origin=origin,
                    fix="write a path, ${paths.shared_data}/... or package:NAME")
    text = str(value)
    if "${paths.shared_data}" in text:
        text = text.replace("${paths.shared_data}", str(default_shared_data()))
    if text.startswith(PACKAGE_PREFIX):
        return [package_data(text[len(PACKAGE_PREFIX):])]
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    if glob.has_magic(str(path)):
        matches = sorted(Path(p) for p in glob.glob(str(path)))
        # An empty glob is reported by the reader as a missing file, with the pattern in the message.
        return matches or [path]
    return [path]


def _as_list(value: object) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [value]
    return list(value)  # type: ignore[call-overload]


def _to_container(config: Any) -> Any:
    """Turn an OmegaConf node into plain containers, resolving ``${paths.shared_data}``."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf comes with hydra-core
        return config
    if isinstance(config, DictConfig | ListConfig):
        return OmegaConf.to_container(config, resolve=True)
    return config


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a sampler or source YAML outside Hydra, resolving ``${paths.shared_data}`` and ``${oc.env:...}``.

    Args:
        path: A ``conf/sampler/*.yaml`` file (with a ``source:`` key) or a bare source YAML.

    Returns:
        The YAML as plain dicts, with ``_base_dir`` set to the file's folder for relative paths.
    """
    from omegaconf import OmegaConf

    path = Path(path)
    if not path.is_file():
        raise ConfigError(format_error(
            "census source config file is missing", expected="an existing YAML file", got=str(path),
            where="source", fix="pass a conf/sampler/*.yaml path, a mapping or a CensusSource"))
    loaded = OmegaConf.load(path)
    # Outside Hydra there is no paths group: provide the one interpolation our YAMLs use.
    root = OmegaConf.merge({"paths": {"shared_data": str(default_shared_data())}}, loaded)
    data = OmegaConf.to_container(root, resolve=True)
    assert isinstance(data, dict)
    data.pop("paths", None)
    data["_base_dir"] = str(path.parent)
    data["_origin"] = str(path)
    return {str(key): value for key, value in data.items()}


def parse_source_spec(config: Mapping[str, Any] | Any, *, origin: str | None = None) -> SourceSpec:
    """Check a ``source:`` mapping (or a whole sampler mapping holding one) and build a :class:`SourceSpec`.

    Args:
        config: The mapping, a Hydra/OmegaConf node, or a sampler mapping with a ``source`` key.
        origin: Where the mapping came from, for error messages.

    Returns:
        The parsed spec.

    Raises:
        ConfigError: When a key is missing, unknown or of the wrong type.
    """
    data = _to_container(config)
    if not isinstance(data, Mapping):
        raise _fail("census source", expected="a mapping", got=type(data).__name__, origin=origin or "source",
                    fix="see conf/sampler/census_six_states.yaml")
    origin = origin or str(data.get("_origin", "sampler.source"))
    if "source" in data and isinstance(data["source"], Mapping):
        inner = dict(data["source"])
        inner.setdefault("_base_dir", data.get("_base_dir"))
        data = {k: v for k, v in inner.items() if v is not None}
    base = Path(data["_base_dir"]) if data.get("_base_dir") else None
    known = {"name", "kind", "year", "files", "dictionary", "dictionaries", "weight", "record_id", "state", "columns",
             "household", "blank_codes", "description", "license", "adjustment", "relabel", "_base_dir", "_origin"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _fail("source has unknown keys", expected=f"keys among {sorted(known - {'_base_dir', '_origin'})}",
                    got=unknown, origin=origin, fix="remove or rename them")
    for key in ("kind", "files", "weight", "columns"):
        if data.get(key) in (None, "", [], {}):
            raise _fail(f"source.{key}", expected="set", got=data.get(key), origin=origin,
                        fix=f"add source.{key} (see conf/sampler/census_six_states.yaml)")
    kind = str(data["kind"])
    if kind not in SOURCE_KINDS:
        raise _fail("source.kind", expected=f"one of {list(SOURCE_KINDS)}", got=kind, origin=origin,
                    fix="pums_zip for the Bureau's csv_pXX.zip files, csv for a plain CSV")
    files = tuple(p for v in _as_list(data["files"]) for p in _resolve_path(v, base, origin, "files"))
    dict_values = _as_list(data.get("dictionaries")) + _as_list(data.get("dictionary"))
    if not dict_values:
        raise _fail("source.dictionaries", expected="at least one data dictionary path", got=None, origin=origin,
                    fix="add the PUMS_Data_Dictionary_YYYY.csv of the data's year")
    dictionaries = tuple(p for v in dict_values for p in _resolve_path(v, base, origin, "dictionaries"))
    columns_raw = data["columns"]
    if not isinstance(columns_raw, Mapping):
        raise _fail("source.columns", expected="a mapping persona key -> variable", got=type(columns_raw).__name__,
                    origin=origin, fix="write e.g. `age: AGEP`")
    columns: list[tuple[str, ColumnSpec]] = []
    from persona_gen.census.keys import HOUSEHOLD_INCOME, RECORD_ID, STATE
    from persona_gen.core.records import LM_KEYS, PSYCHO_KEYS

    reserved = {*PSYCHO_KEYS, *LM_KEYS, STATE, RECORD_ID, HOUSEHOLD_INCOME}
    for key, value in columns_raw.items():
        # The 24 census keys of PERSONA, or a key of your own: one line (`commute time: JWMNP`) adds an attribute.
        if not isinstance(key, str) or not key.strip() or key in reserved or key.startswith("code."):
            raise _fail(f"source.columns key {key!r}", expected="a persona attribute name that no other stage "
                        f"writes (not one of {sorted(reserved)})", got=key, origin=origin,
                        fix="name the attribute, e.g. `commute time: JWMNP`, or use a census key's exact spelling")
        if isinstance(value, str) and value:
            columns.append((key, ColumnSpec(value)))
        elif isinstance(value, Mapping) and isinstance(value.get("derived"), str):
            columns.append((key, ColumnSpec(value["derived"], derived=True)))
        elif isinstance(value, Mapping) and isinstance(value.get("variable"), str):
            columns.append((key, ColumnSpec(value["variable"])))
        else:
            raise _fail(f"source.columns.{key}", expected="a variable name or {derived: HHT2|FPARC|HHL}",
                        got=value, origin=origin, fix="write e.g. `age: AGEP`")
    state = None
    if data.get("state") is not None:
        raw_state = data["state"]
        if isinstance(raw_state, str):
            state = StateSpec(raw_state)
        elif isinstance(raw_state, Mapping) and isinstance(raw_state.get("variable"), str):
            chars = raw_state.get("code_chars")
            state = StateSpec(raw_state["variable"], int(chars) if chars is not None else None,
                              raw_state.get("labels"))
        else:
            raise _fail("source.state", expected="a variable name or {variable, code_chars, labels}", got=raw_state,
                        origin=origin, fix="write e.g. `state: ST`")
    household = None
    if data.get("household") is not None:
        household = _parse_household(data["household"], origin)
    if any(c.derived for _, c in columns) and household is None:
        raise _fail("source.household", expected="set when a column is derived", got=None, origin=origin,
                    fix="add the household block (see conf/sampler/census_six_states.yaml) or drop the derived columns")
    return SourceSpec(
        adjustment=_parse_adjustment(data.get("adjustment"), origin),
        relabel=_parse_relabel(data.get("relabel"), origin),
        name=str(data.get("name") or (files[0].stem if files else "census")),
        kind=kind,
        files=files,
        dictionaries=dictionaries,
        weight=str(data["weight"]),
        columns=tuple(columns),
        year=int(data["year"]) if data.get("year") is not None else None,
        record_id=tuple(str(v) for v in _as_list(data.get("record_id"))),
        state=state,
        household=household,
        blank_codes=tuple(str(v) for v in _as_list(data.get("blank_codes"))),
        origin=origin,
    )


def _parse_household(raw: object, origin: str) -> HouseholdSpec:
    if not isinstance(raw, Mapping):
        raise _fail("source.household", expected="a mapping", got=raw, origin=origin,
                    fix="see conf/sampler/census_six_states.yaml")
    roles_raw = raw.get("roles")
    if not isinstance(roles_raw, Mapping) or not roles_raw:
        raise _fail("source.household.roles", expected=f"relationship codes for {list(ROLE_NAMES)}", got=roles_raw,
                    origin=origin, fix="copy the roles block of conf/sampler/census_six_states.yaml (RELP) and adjust")
    unknown = sorted(set(roles_raw) - set(ROLE_NAMES))
    if unknown or "householder" not in roles_raw:
        raise _fail("source.household.roles", expected=f"keys among {list(ROLE_NAMES)}, householder included",
                    got=sorted(roles_raw), origin=origin, fix="rename the roles")
    roles = tuple((name, tuple(str(c) for c in _as_list(roles_raw.get(name)))) for name in ROLE_NAMES)
    order = tuple(str(c) for c in _as_list(raw.get("language_order")))
    fields = {k: str(v) for k, v in raw.items() if k not in ("roles", "language_order")}
    allowed = set(HouseholdSpec.__dataclass_fields__) - {"roles", "language_order"}
    bad = sorted(set(fields) - allowed)
    if bad:
        raise _fail("source.household has unknown keys", expected=f"keys among {sorted(allowed)}", got=bad,
                    origin=origin, fix="remove or rename them")
    return HouseholdSpec(roles=roles, language_order=order, **fields)


def _parse_adjustment(raw: object, origin: str) -> tuple[str, tuple[str, ...]] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not isinstance(raw.get("factor"), str) or not raw.get("variables"):
        raise _fail("source.adjustment", expected="{factor: ADJINC, variables: [PINCP, ...]}", got=raw,
                    origin=origin, fix="name the adjustment factor column and the dollar amounts it adjusts")
    return str(raw["factor"]), tuple(str(v) for v in _as_list(raw["variables"]))


def _parse_relabel(raw: object, origin: str) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    if raw is None:
        return ()
    ok = isinstance(raw, Mapping) and all(isinstance(v, Mapping) and v for v in raw.values())
    if not ok:
        raise _fail("source.relabel", expected="{VARIABLE: {code: readable label}}", got=raw, origin=origin,
                    fix='e.g. relabel: {ANC1P: {"000": "Not reported"}}')
    assert isinstance(raw, Mapping)
    return tuple(sorted((str(var), tuple(sorted((str(c), str(label)) for c, label in codes.items())))
                        for var, codes in raw.items()))
