"""Hydra callbacks: a sweep that compares its own jobs.

``SweepSummary`` (``conf/hydra/callbacks/sweep_summary.yaml``, on by default) runs when a multirun ends. Every
job wrote ``.hydra/job_status.json`` (``persona_gen.cli``: ok or failed, why, wall time); the callback reads
those, each job's ``manifest.json`` and ``bench/scores.json``, and writes ``sweep_summary.md`` and
``sweep_summary.csv`` into the sweep dir, one row per job: its overrides, models, rows, failures, verification
rate, judge order consistency, kappa, bench accuracy (if any), content hash and wall time. It prints
``sweep: N jobs, n ok, n failed`` with each failure's reason; ``persona_gen.cli`` then exits 1 if any job failed.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

__all__ = ["COLUMNS", "JOB_STATUS", "SweepReport", "SweepSummary", "last_sweep", "summarize_sweep"]

log = logging.getLogger("persona_gen")

JOB_STATUS = "job_status.json"  # in each job's .hydra/ folder
COLUMNS = ("job", "overrides", "status", "error", "generator", "judge", "rows", "failures", "verification_rate",
           "order_consistency", "kappa", "bench_accuracy", "content_hash", "wall_s")


@dataclass
class SweepReport:
    sweep_dir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    markdown: Path | None = None
    csv: Path | None = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] != "ok"]

    def lines(self) -> list[str]:
        ok = len(self.rows) - len(self.failed)
        out = [f"sweep: {len(self.rows)} jobs, {ok} ok, {len(self.failed)} failed"]
        out += [f"  job {r['job']} ({r['overrides'] or 'no overrides'}): {r['status']}: {r['error']}"
                for r in self.failed]
        if self.markdown:
            out.append(f"sweep summary: {self.markdown}  (and {self.csv})")
        return out


_LAST: SweepReport | None = None


def last_sweep() -> SweepReport | None:
    """The report of the sweep that ended last in this process (the CLI's exit code reads it)."""
    return _LAST


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _join(values: dict[str, Any]) -> Any:
    """One cell from per-variant or per-mode values: the value itself when there is one, else ``name: value; ...``."""
    values = {k: v for k, v in values.items() if v is not None}
    if len(values) <= 1:
        return next(iter(values.values()), "")
    return "; ".join(f"{k}: {v}" for k, v in values.items())


def _job_row(job_dir: Path) -> dict[str, Any]:
    hydra_dir = job_dir / ".hydra"
    status = _read_json(hydra_dir / JOB_STATUS)
    try:
        overrides = [str(o) for o in OmegaConf.load(hydra_dir / "overrides.yaml")]
    except (OSError, ValueError):
        overrides = []
    manifest = _read_json(job_dir / "manifest.json")
    scores = _read_json(job_dir / "bench" / "scores.json")
    models = manifest.get("models") or scores.get("models") or status.get("models") or {}
    cards = manifest.get("judge_scorecard") or []
    rows = manifest.get("rows", {}).get("feedback", {})
    bench = {mode: s.get("accuracy") for mode, s in (scores.get("modes") or {}).items()}

    def model_id(role: str) -> str:
        m = models.get(role)
        return f"{m.get('kind')}:{m.get('name')}" if isinstance(m, dict) else str(m or "")

    return {
        "job": int(job_dir.name) if job_dir.name.isdigit() else job_dir.name,
        "overrides": " ".join(overrides),
        "status": status.get("status", "no status (killed?)"),
        "error": status.get("error", "" if status else "the job wrote no .hydra/job_status.json"),
        "generator": model_id("generator"), "judge": model_id("judge"),
        "rows": sum(int(v) for v in rows.values()) if rows else "",
        "failures": sum(int(v) for v in (manifest.get("failures") or {}).values()) if manifest else "",
        "verification_rate": _join({c["variant"]: c.get("verification_rate") for c in cards}),
        "order_consistency": _join({c["variant"]: c.get("order_consistency") for c in cards}),
        "kappa": (manifest.get("judge_agreement") or {}).get("kappa", "") if manifest else "",
        "bench_accuracy": _join(bench),
        "content_hash": manifest.get("content_hash", ""),
        "wall_s": status.get("wall_s", ""),
    }


def _markdown(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def summarize_sweep(sweep_dir: str | Path) -> SweepReport:
    """Read every job folder of a sweep dir and write ``sweep_summary.md`` and ``.csv`` beside them."""
    from persona_gen.core.io import atomic_write_text

    sweep_dir = Path(sweep_dir)
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / ".hydra").is_dir()] if sweep_dir.is_dir() else []
    jobs.sort(key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))
    report = SweepReport(sweep_dir, [_job_row(p) for p in jobs])
    report.markdown = atomic_write_text(sweep_dir / "sweep_summary.md", _markdown(report.rows))
    report.csv = atomic_write_text(sweep_dir / "sweep_summary.csv", _csv(report.rows))
    return report


class SweepSummary(Callback):
    """Writes the sweep's summary table when a multirun ends (see the module docstring)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _LAST
        try:
            report = summarize_sweep(str(config.hydra.sweep.dir))
        except Exception as exc:  # a summary must never turn a finished sweep into a crash
            log.warning("sweep summary not written: %s: %s", type(exc).__name__, exc)
            return
        _LAST = report
        for line in report.lines():
            log.info(line)
