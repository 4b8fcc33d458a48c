"""Save and load compiled judge programs: one versioned, hashed JSON file per optimization run.

The file holds, per judge variant, the DSPy state of the compiled ``PersonaJudge`` (demos, instructions)
and its ``program_hash``. Loading rebuilds each judge, recomputes the hash and refuses a file whose hash
does not match (edited by hand, or a DSPy that serializes differently) or whose judge signature has changed
since (its demos were made for another prompt). The hash then enters every cache key and judged row, as
for any judge passed to ``run_judge``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from persona_gen.core.calls import program_hash
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.io import atomic_write_text, to_json
from persona_gen.core.lm import signature_hash

__all__ = ["FORMAT", "FORMAT_VERSION", "clean_state", "load_judges", "rebuild_judge", "save_judges"]

FORMAT = "persona_gen.judge_program"
FORMAT_VERSION = 1


def _judge_signature() -> Any:
    from persona_gen.signatures import JudgeInVoice

    return JudgeInVoice


def clean_state(module: Any) -> None:
    """Drop per-predictor LMs an optimizer may have attached: a saved judge runs on the configured judge model."""
    for _, predictor in module.named_predictors():
        predictor.lm = None


def rebuild_judge(variant: str, state: dict[str, Any]) -> Any:
    """A ``PersonaJudge`` of ``variant`` with ``state`` loaded, as every later run will see it.

    DSPy's ``load_state`` rebuilds each signature as an anonymous ``StringSignature``, whose name would enter
    the cache key; where the saved instructions and fields equal the judge's own, its own signature class is
    put back, so a judge whose optimizer changed only demos keys (and answers) like the one it was compiled as.
    """
    from persona_gen.judge.stage import PersonaJudge

    judge, fresh = PersonaJudge(variant), PersonaJudge(variant)
    judge.load_state(copy.deepcopy(state))
    for (_, loaded), (_, own) in zip(judge.named_predictors(), fresh.named_predictors(), strict=True):
        if loaded.signature.dump_state() == own.signature.dump_state():
            loaded.signature = own.signature
    return judge


def save_judges(path: str | Path, judges: Mapping[str, Any], *, meta: Mapping[str, Any] | None = None) -> Path:
    """Write compiled judges (variant -> ``PersonaJudge``) to ``path`` atomically; returns the path."""
    import dspy

    programs = {}
    for variant, module in sorted(judges.items()):
        clean_state(module)
        programs[variant] = {"variant": variant, "program_hash": program_hash(module), "state": module.dump_state()}
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "dspy_version": dspy.__version__,
           "signature": _judge_signature().__name__, "signature_hash": signature_hash(_judge_signature()),
           "programs": programs, "meta": dict(meta or {})}
    return atomic_write_text(path, to_json(doc, strict=True))


def _bad(what: str, expected: str, got: object, path: Path, fix: str) -> ConfigError:
    return ConfigError(format_error(what, expected=expected, got=got, where=f"{path} (stage.judge.program_path)",
                                    fix=fix))


def load_judges(path: str | Path) -> dict[str, Any]:
    """Rebuild the judges saved by ``save_judges``: variant -> ``PersonaJudge`` with the saved demos/instructions.

    Raises:
        ConfigError: When the file is missing, not a judge program, of another format version, made for
            another judge signature, or its recomputed ``program_hash`` differs from the saved one.
    """
    from persona_gen.judge.stage import VARIANTS

    path = Path(path)
    fix = "run `persona-gen task=optimize` and pass its optimize/judge_program.json"
    if not path.is_file():
        raise _bad("judge program file", "an existing file", str(path), path, fix)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad("judge program file", "JSON", f"unreadable ({exc})", path, fix) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _bad("judge program format", repr(FORMAT), doc.get("format") if isinstance(doc, dict) else None,
                   path, fix)
    if doc.get("format_version") != FORMAT_VERSION:
        raise _bad("judge program format_version", str(FORMAT_VERSION), doc.get("format_version"), path,
                   "re-run task=optimize with this version of persona_gen")
    current = signature_hash(_judge_signature())
    if doc.get("signature_hash") != current:
        raise _bad("judge signature hash", f"the current JudgeInVoice's {current}", doc.get("signature_hash"), path,
                   "the judge prompt changed since this program was optimized; re-run task=optimize")
    judges = {}
    for variant, entry in sorted((doc.get("programs") or {}).items()):
        if variant not in VARIANTS:
            raise _bad("judge variant", f"one of {list(VARIANTS)}", variant, path, fix)
        judge = rebuild_judge(variant, entry["state"])
        got = program_hash(judge)
        if got != entry.get("program_hash"):
            raise _bad(f"program_hash of variant {variant}", f"the saved {entry.get('program_hash')}", got, path,
                       "the file was edited or DSPy serializes differently now; re-run task=optimize")
        judges[variant] = judge
    if not judges:
        raise _bad("judge programs", "at least one variant", "none", path, fix)
    return judges
