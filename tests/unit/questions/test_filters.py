from __future__ import annotations

import itertools

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from persona_gen.questions.filters import has_question_mark, min_words, near_duplicates, normalize_text

# Hand-made near-duplicates: each group holds one question and its rewordings (case, punctuation, a typo,
# a word added); groups are distinct questions.
GROUPS = [
    ["Is abortion morally acceptable?", "is abortion morally acceptable", "Is abortion morraly acceptable?",
     "Is abortion morally acceptable??"],
    ["Should the death penalty be abolished?", "Should the death penalty be abolished ?",
     "SHOULD THE DEATH PENALTY BE ABOLISHED?"],
    ["What do you think about eating meat?"],
    ["Is it ever right to lie to protect a friend?", "Is it ever right to lie to protect a good friend?"],
]
TEXTS = [t for t in itertools.chain.from_iterable(itertools.zip_longest(*GROUPS)) if t is not None]


def _max_kept_similarity(texts, kept, threshold_kwargs):
    norm = [normalize_text(texts[i]) for i in kept]
    m = TfidfVectorizer(lowercase=False, **threshold_kwargs).fit_transform(norm)
    sims = (m @ m.T).toarray()
    np.fill_diagonal(sims, 0)
    return sims.max()


def test_has_question_mark_flags_texts_without_one():
    assert has_question_mark(["Why?", "Tell me a joke", "a?b"]) == [True, False, True]


def test_min_words_counts_whitespace_separated_words():
    assert min_words(["one two three four five", "one two  three four"], 5) == [True, False]


def test_normalize_text_ignores_case_punctuation_and_spacing():
    assert normalize_text("  Is ABORTION,  wrong?? ") == normalize_text("is abortion wrong")


def test_near_duplicates_drops_hand_made_near_duplicates():
    dup_of = near_duplicates(TEXTS, threshold=0.7)
    kept = {TEXTS[i] for i, j in enumerate(dup_of) if j is None}
    assert kept == {g[0] for g in GROUPS}


def test_near_duplicates_keeps_the_first_in_stable_order():
    texts = ["Is abortion morally acceptable??", "Is abortion morally acceptable?"]
    assert near_duplicates(texts, threshold=0.8) == [None, 0]


def test_near_duplicates_leaves_no_kept_pair_at_or_above_threshold():
    threshold = 0.5
    dup_of = near_duplicates(TEXTS, threshold=threshold)
    kept = [i for i, j in enumerate(dup_of) if j is None]
    assert _max_kept_similarity(TEXTS, kept, {"analyzer": "char_wb", "ngram_range": (3, 5)}) < threshold


def test_near_duplicates_points_each_drop_at_a_kept_text():
    dup_of = near_duplicates(TEXTS, threshold=0.8)
    assert all(dup_of[j] is None for j in dup_of if j is not None)


def test_near_duplicates_is_the_same_in_any_chunk_size():
    assert near_duplicates(TEXTS, threshold=0.8, chunk_size=2) == near_duplicates(TEXTS, threshold=0.8)


def test_near_duplicates_at_threshold_one_drops_only_normalized_copies():
    dup_of = near_duplicates(TEXTS, threshold=1.0)
    dropped = {TEXTS[i] for i, j in enumerate(dup_of) if j is not None}
    assert dropped == {"is abortion morally acceptable", "Is abortion morally acceptable??",
                       "Should the death penalty be abolished ?", "SHOULD THE DEATH PENALTY BE ABOLISHED?"}


def test_near_duplicates_with_word_analyzer_matches_reordered_words():
    dup_of = near_duplicates(["Is eating meat wrong?", "Wrong: is eating meat?"], threshold=0.95, analyzer="word",
                             ngram_range=(1, 1))
    assert dup_of == [None, 0]
