"""Global work once per config, whatever the number of shards.

The run-once steps (run scope: census, enrichment, questions, pairing; question scope: the no-persona answers) are
made by one process and shared through ``shard.parts_dir`` alone, a plain folder of atomically renamed files:

1. ``global/state.json`` exists: the work is done; read it (personas, pairs, question-scope results).
2. Otherwise take ``global/.lock`` (created with ``O_CREAT | O_EXCL``, atomic on every POSIX filesystem, NFS v3+
   included): the holder does the work, writes the global tables, plots and ``info.json``, then ``state.json``
   last, and removes the lock. A heartbeat touches the lock every few seconds while it works.
3. Someone else holds the lock: wait until ``state.json`` appears; a lock whose heartbeat stopped (its process
   died: killed, node lost) for ``STALE_S`` is broken and the work taken over.

``task=prepare`` does steps 1-3 alone (before a Slurm array, say); every shard does them on its own otherwise, so
``persona-gen -m shard.index=0,1,2 shard.count=3`` needs nothing else. Each shard may keep a node-local cache.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from persona_gen.core.errors import PersonaGenError, PublishError, format_error
from persona_gen.core.io import atomic_write_text
from persona_gen.core.records import Failure, Persona, Question
from persona_gen.core.steps import RowResult

__all__ = ["STALE_S", "load_state", "once", "state_path"]

log = logging.getLogger(__name__)

STALE_S = 120.0
HEARTBEAT_S = 5.0
POLL_S = 0.5
STATE_VERSION = 1


def state_path(parts: Path) -> Path:
    return parts / "global" / "state.json"


def _lock_path(parts: Path) -> Path:
    return parts / "global" / ".lock"


def _try_lock(path: Path) -> int | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode())
    return fd


def _heartbeat(path: Path, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        try:
            os.utime(path)
        except OSError:
            return


def _stale(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > STALE_S
    except FileNotFoundError:
        return False


# -- the state file ---------------------------------------------------------------------------------------------


def _pair_json(a: Any) -> dict[str, Any]:
    return {"persona_id": a.persona_id, "question": a.question.model_dump(mode="json"),
            "question_type": a.question_type, "seen": a.seen}


def _result_json(r: RowResult) -> dict[str, Any]:
    return {"outputs": dict(r.outputs) if r.outputs is not None else None,
            "failure": r.failure.model_dump(mode="json") if r.failure is not None else None}


def write_state(prep: Any, parts: Path) -> None:
    """Everything the persona- and pair-scope steps read of the run-once work, as JSON (written last)."""
    pipeline = prep.pipeline
    run_refs: dict[str, Any] = {}
    for step in pipeline.row_steps("question", "persona", "pair"):
        for ref in step.inputs.values():
            if ref.source in pipeline.steps and pipeline.steps[ref.source].scope == "run":
                run_refs[str(ref)] = prep.outputs[ref.source][ref.field]
    try:
        text = json.dumps({
            "version": STATE_VERSION,
            "personas": [p.model_dump(mode="json") for p in prep.personas],
            "pairs": [_pair_json(a) for a in prep.pairs],
            "question_results": {step: {k: _result_json(r) for k, r in rows.items()}
                                 for step, rows in prep.question_results.items()},
            "run_refs": run_refs,
        }, ensure_ascii=False)  # not sorted: persona attributes keep their order
    except TypeError as exc:
        raise PersonaGenError(format_error(
            "run-scope outputs read by row steps", expected="JSON values (they are shared with every shard)",
            got=str(exc), where="pipeline.steps.*.inputs", fix="read a JSON-able output of the run step")) from None
    atomic_write_text(state_path(parts), text + "\n", error=PublishError)


def load_state(parts: Path) -> dict[str, Any]:
    from persona_gen.feedback.stage import Assignment

    data = json.loads(state_path(parts).read_text(encoding="utf-8"))
    if data.get("version") != STATE_VERSION:
        raise PersonaGenError(format_error(
            "shared run-once state", expected=f"version {STATE_VERSION}", got=data.get("version"),
            where=str(state_path(parts)), fix="delete global/state.json so that it is made again"))
    personas = [Persona.model_validate(p) for p in data["personas"]]
    pairs = [Assignment(a["persona_id"], Question.model_validate(a["question"]), a["question_type"], a["seen"])
             for a in data["pairs"]]
    results = {step: {k: RowResult(v["outputs"], Failure(**v["failure"]) if v["failure"] else None)
                      for k, v in rows.items()} for step, rows in data["question_results"].items()}
    return {"personas": personas, "pairs": pairs, "question_results": results, "run_refs": data["run_refs"]}


# -- once -------------------------------------------------------------------------------------------------------


def once(parts: Path, make: Callable[[], Any], load: Callable[[], Any]) -> tuple[Any, bool]:
    """``load()`` when the run-once work is in ``parts``; else ``make()`` it under the lock (or wait for whoever
    holds it). Returns (what make or load returned, whether this process made it)."""
    lock = _lock_path(parts)
    waited = False
    while True:
        if state_path(parts).exists():
            if waited:
                log.info("run-once work: made by another shard, read from %s", state_path(parts).parent)
            return load(), False
        fd = _try_lock(lock)
        if fd is not None:
            stop = threading.Event()
            beat = threading.Thread(target=_heartbeat, args=(lock, stop), daemon=True)
            beat.start()
            try:
                if state_path(parts).exists():  # finished between our check and our lock
                    return load(), False
                return make(), True
            finally:
                stop.set()
                os.close(fd)
                lock.unlink(missing_ok=True)
        if _stale(lock):
            log.warning("run-once lock %s: its holder stopped beating for %.0f s; taking the work over", lock,
                        STALE_S)
            lock.unlink(missing_ok=True)
            continue
        if not waited:
            log.info("run-once work: another shard holds %s; waiting for it", lock)
            waited = True
        time.sleep(POLL_S)

