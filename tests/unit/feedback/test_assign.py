"""Pairing: per-persona draws (what streaming uses) are the all-persona draw's parts, whatever was drawn before."""

from __future__ import annotations

from persona_gen.core.records import Persona, Question
from persona_gen.feedback.stage import assign_questions

ROWS = dict(train_rows=3, seen_rows=2, unseen_rows=2, seed=7)


def _questions(n: int) -> list[Question]:
    return [Question(question_id=f"q{i:03d}", text=f"question {i}?", source="t",
                     split="held_out" if i % 3 == 0 else "train") for i in range(n)]


def _personas(n: int) -> list[Persona]:
    return [Persona(persona_id=f"p{i}", attributes={"age": str(20 + i)}, source_record_id=f"r{i}") for i in range(n)]


def test_per_persona_draws_are_the_parts_of_the_whole_draw():
    questions, personas = _questions(30), _personas(5)
    whole = assign_questions(personas, questions, **ROWS)
    parts = [a for p in personas for a in assign_questions([p], questions, **ROWS)]
    assert parts == whole and len(whole) == 5 * 7
    assert all(a.question.split == "held_out" for a in whole if a.question_type == "test" and not a.seen)


def test_a_different_question_list_is_split_anew():
    personas = _personas(3)
    questions = _questions(30)
    first = assign_questions(personas, questions, **ROWS)
    questions.extend(_questions(60)[30:])  # the same list object, grown: not the split made before
    grown = assign_questions(personas, questions, **ROWS)
    assert grown == assign_questions(personas, list(questions), **ROWS)
    assert {a.question.question_id for a in grown} - {f"q{i:03d}" for i in range(30)}
    assert first != grown
    other = _questions(12)  # another list, short: the draw must come from it, not the cached one
    assert {a.question.question_id for a in assign_questions(personas, other, **ROWS)} <= {q.question_id for q in other}
