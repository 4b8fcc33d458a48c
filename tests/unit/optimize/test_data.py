from __future__ import annotations

import pytest

from persona_gen.core.errors import ConfigError
from persona_gen.optimize import split_items, to_examples
from tests.unit.annotate.synthetic import make_items


def test_split_items_is_seeded_and_disjoint():
    items = make_items(30)
    train, dev = split_items(items, dev_fraction=0.3, seed=7)
    _, again_dev = split_items(items, dev_fraction=0.3, seed=7)
    assert [i.task_id for i in dev] == [i.task_id for i in again_dev]
    assert {i.task_id for i in train}.isdisjoint({i.task_id for i in dev})
    assert (len(train), len(dev)) == (21, 9)


def test_split_items_rejects_too_few_items():
    with pytest.raises(ConfigError, match=r"enough for a train and a dev split.*label more items"):
        split_items(make_items(1), dev_fraction=0.3, seed=0)


def test_to_examples_labels_each_item_in_both_orders():
    [item] = make_items(1)
    first, second = to_examples([item])
    assert (first.first_answer, second.first_answer) == (item.original, item.revision)
    expected = ("first", "second") if item.majority == "original" else ("second", "first")
    assert (first.preferred, second.preferred) == expected
    assert set(first.inputs().keys()) == {"persona", "question", "first_answer", "second_answer"}
