"""Direct Principle Feedback (PERSONA's method) for (persona, question) pairs.

For each pair: a no-persona answer (rejected; one per question, shared by every persona), a critique
in the persona's voice (EVALUATION + SUGGESTIONS, quoting the answer), and a revision that is
personalized subtly and no longer than the original (chosen). Violations are recorded, never hidden.
Persona and question are paired independently (the paper breaks PRISM's topic-demographic link).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import dspy
import numpy as np

from persona_gen.core.calls import Caller, CallResult
from persona_gen.core.errors import ConfigError, format_error
from persona_gen.core.records import Failure, Feedback, Pair, Persona, Question, Response, stable_id
from persona_gen.signatures import AnswerQuestion, CritiqueInVoice, ReviseForPersona

__all__ = ["Assignment", "DPFGenerator", "answer_questions", "assign_questions", "candidate_model_configs",
           "run_candidates", "run_feedback"]


class DPFGenerator:
    """The three modules of Direct Principle Feedback."""

    def __init__(self) -> None:
        self.answer = dspy.Predict(AnswerQuestion)
        self.critique = dspy.Predict(CritiqueInVoice)
        self.revise = dspy.Predict(ReviseForPersona)


# A persona-question pair is the record ``persona_gen.core.records.Pair``; the old name stays for callers.
Assignment = Pair


_SPLITS: list[Any] = [None, 0, None]  # the question sequence last split, its length, its (train, held-out)


def _splits(questions: Sequence[Question]) -> tuple[list[Question], list[Question]]:
    # Streaming draws the pairs persona by persona from the same question list (a step output, never changed in
    # place): it is sorted once, not once per persona.
    last, size, splits = _SPLITS
    if last is not questions or size != len(questions):
        train = sorted((q for q in questions if q.split == "train"), key=lambda q: q.question_id)
        held = sorted((q for q in questions if q.split == "held_out"), key=lambda q: q.question_id)
        splits = (train, held)
        _SPLITS[:] = [questions, len(questions), splits]
    return splits


def assign_questions(personas: Sequence[Persona], questions: Sequence[Question], *, train_rows: int, seen_rows: int,
                     unseen_rows: int, seed: int) -> list[Pair]:
    """Per persona: train + seen-test rows from the train split, unseen-test rows from the held-out split.

    Seeded per persona (independent of the other personas), without replacement within a persona.
    """
    train, held = _splits(questions)
    if train_rows + seen_rows > len(train):
        raise ConfigError(format_error(
            "train-split questions", expected=f">= train_rows_per_persona + test_seen_per_persona = "
            f"{train_rows + seen_rows}", got=len(train), where="scale / stage.questions",
            fix="lower the rows per persona or raise scale.max_candidate_prompts"))
    if unseen_rows > len(held):
        raise ConfigError(format_error(
            "held-out questions", expected=f">= test_unseen_per_persona = {unseen_rows}", got=len(held),
            where="scale / stage.questions", fix="lower scale.test_unseen_per_persona or add questions"))
    out: list[Pair] = []
    for p in personas:
        entropy = int(hashlib.sha256(f"{seed}:assign:{p.persona_id}".encode()).hexdigest()[:16], 16)
        rng = np.random.default_rng(np.random.SeedSequence(entropy))
        tr = rng.choice(len(train), size=train_rows + seen_rows, replace=False)
        ho = rng.choice(len(held), size=unseen_rows, replace=False) if unseen_rows else []
        out += [Pair(persona_id=p.persona_id, question=train[i], question_type="train", seen=False)
                for i in tr[:train_rows]]
        out += [Pair(persona_id=p.persona_id, question=train[i], question_type="test", seen=True)
                for i in tr[train_rows:]]
        out += [Pair(persona_id=p.persona_id, question=held[i], question_type="test", seen=False) for i in ho]
    return out


def _words(text: str) -> int:
    return len(text.split())


def answer_questions(questions: Sequence[Question], *, caller: Caller) -> dict[str, CallResult]:
    """The no-persona answer of each question (the rejected side), once per question, shared by every persona."""
    unique_q = list({q.question_id: q for q in questions}.values())
    answers = caller.map("answer", DPFGenerator().answer, [{"question": q.text} for q in unique_q],
                         desc="feedback: answers")
    return dict(zip((q.question_id for q in unique_q), answers, strict=True))


def candidate_model_configs(feedback_cfg: Any, models_cfg: Any) -> list[tuple[str, Any]]:
    """(name, model config) of each configured candidate generator: its ``base`` role's config plus overrides."""
    from omegaconf import OmegaConf

    out = []
    names: set[str] = set()
    for i, spec in enumerate(feedback_cfg.get("candidates") or []):
        spec = dict(spec)
        name, base = spec.pop("name", None), spec.pop("base", "generator")
        where = f"stage.feedback.candidates[{i}]"
        if not name or name in names:
            raise ConfigError(format_error(f"{where}.name", expected="a unique, non-empty name", got=name,
                                           where="conf/stage/feedback/", fix="give each candidate its own name"))
        if base not in ("generator", "judge"):
            raise ConfigError(format_error(f"{where}.base", expected="'generator' or 'judge'", got=base,
                                           where="conf/stage/feedback/", fix="start from one of the two roles"))
        names.add(name)
        out.append((name, OmegaConf.merge(models_cfg[base], spec)))
    return out


def run_candidates(questions: Sequence[Question], clients: Sequence[tuple[str, Any]], *, cache: Any,
                   stats: dict[str, Any]) -> list[Response]:
    """Each candidate generator's no-persona answer to each question (one Response per pair, failures kept)."""
    unique_q = sorted({q.question_id: q for q in questions}.values(), key=lambda q: q.question_id)
    out: list[Response] = []
    for name, client in clients:
        results = Caller(client, cache, stats=stats).map(
            f"candidate_{name}", DPFGenerator().answer, [{"question": q.text} for q in unique_q],
            desc=f"candidates: {name}")
        for q, r in zip(unique_q, results, strict=True):
            out.append(Response(response_id=stable_id("r", name, client.model_id, q.question_id),
                                question_id=q.question_id, text=str(r.outputs["answer"]) if r.ok else "",
                                model=f"{name}={client.model_id}", failure=r.failure))
    return out


def run_feedback(personas: Sequence[Persona], assignments: Sequence[Assignment], *, cfg: Any, caller: Caller,
                 answers: dict[str, CallResult] | None = None) -> list[Feedback]:
    """DPF rows for ``assignments``; ``answers`` (from ``answer_questions``) is computed here when not given."""
    gen = DPFGenerator()
    by_id = {p.persona_id: p for p in personas}
    answer_of = answers if answers is not None else answer_questions([a.question for a in assignments],
                                                                    caller=caller)

    def original(a: Assignment) -> str:
        r = answer_of[a.question.question_id]
        return str(r.outputs["answer"]) if r.ok else ""

    crit_inputs = [{"persona": by_id[a.persona_id].render(), "question": a.question.text, "answer": original(a)}
                   for a in assignments]
    crit_idx = [i for i, a in enumerate(assignments) if answer_of[a.question.question_id].ok]
    crits = dict(zip(crit_idx, caller.map("critique", gen.critique, [crit_inputs[i] for i in crit_idx],
                                          desc="feedback: critiques"), strict=True))

    def critique_text(i: int) -> str:
        r = crits.get(i)
        if r is None or not r.ok:
            return ""
        c = r.outputs["critique"]
        return f"EVALUATION: {c['evaluation']}\nSUGGESTIONS: {c['suggestions']}"

    rev_idx = [i for i in crit_idx if crits[i].ok]
    revs = dict(zip(rev_idx, caller.map("revision", gen.revise, [
        {**crit_inputs[i], "critique": critique_text(i)} for i in rev_idx], desc="feedback: revisions"), strict=True))

    ratio = float(cfg.get("max_revision_ratio", 1.0))
    rows = []
    for i, a in enumerate(assignments):
        failures: list[Failure] = []
        ans = answer_of[a.question.question_id]
        if ans.failure:
            failures.append(ans.failure)
        if i in crits and crits[i].failure:
            failures.append(crits[i].failure)
        if i in revs and revs[i].failure:
            failures.append(revs[i].failure)
        revision = str(revs[i].outputs["revision"]) if i in revs and revs[i].ok else ""
        orig = original(a)
        if revision and orig and _words(revision) > ratio * _words(orig):
            failures.append(Failure(stage="revision", kind="length",
                                    message=f"revision has {_words(revision)} words, original {_words(orig)}; "
                                            f"limit is {ratio}x"))
        persona = by_id[a.persona_id]
        rows.append(Feedback(
            feedback_id=stable_id("fb", a.persona_id, a.question.question_id, a.question_type, a.seen),
            persona_id=a.persona_id, question_id=a.question.question_id, persona=persona.render(),
            instruction=a.question.text, original=orig, critique=critique_text(i), data=revision,
            question_type=a.question_type, seen=a.seen, generator_model=caller.client.model_id,
            failures=tuple(failures)))
    return rows
