from __future__ import annotations

import pytest

from persona_gen.core.cache import CallCache, cache_key

BASE = dict(stage="s", signature={"name": "Sig", "instructions": "x", "fields": {}},
            model={"kind": "fake", "name": "m", "temperature": 0.0}, inputs={"q": "a"}, sample_index=0)


def test_cache_key_same_inputs_same_key():
    assert cache_key(**BASE) == cache_key(**dict(BASE))


@pytest.mark.parametrize("change", [
    {"stage": "t"},
    {"signature": {"name": "Sig", "instructions": "y", "fields": {}}},
    {"model": {"kind": "fake", "name": "m", "temperature": 0.7}},
    {"inputs": {"q": "b"}},
    {"sample_index": 1},
    {"program_hash": "abc"},
])
def test_cache_key_changes_with_each_component(change):
    assert cache_key(**{**BASE, **change}) != cache_key(**BASE)


def test_cache_key_ignores_dict_order():
    a = cache_key(**{**BASE, "inputs": {"x": 1, "y": 2}})
    b = cache_key(**{**BASE, "inputs": {"y": 2, "x": 1}})
    assert a == b


def test_call_cache_round_trips_and_counts(tmp_path):
    cache = CallCache(tmp_path)
    assert cache.get("k") is None
    cache.set("k", {"outputs": {"a": 1}, "failure": None})
    assert cache.get("k") == {"outputs": {"a": 1}, "failure": None}
    assert cache.stats() == {"hits": 1, "misses": 1, "corrupt": 0}


def test_call_cache_treats_foreign_entry_as_corrupt_miss(tmp_path):
    cache = CallCache(tmp_path)
    cache._cache.set("k", "not a dict")
    assert cache.get("k") is None
    assert cache.corrupt == 1


def test_call_cache_disabled_never_hits(tmp_path):
    cache = CallCache(tmp_path, enabled=False)
    cache.set("k", {"outputs": {}, "failure": None})
    assert cache.get("k") is None


def test_transaction_commits_together_and_rolls_back_on_interrupt(tmp_path):
    from persona_gen.core.cache import CallCache

    cache = CallCache(tmp_path / "c")
    entry = {"outputs": {"x": 1}, "failure": None}
    with cache.transaction():
        cache.set("a", entry)
        cache.set("b", entry)
    assert CallCache(tmp_path / "c").get("b") == entry  # another handle sees the committed entries
    try:
        with cache.transaction():
            cache.set("c", entry)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert cache.get("c") is None  # an interrupted batch is recomputed next run, never half-written
    with CallCache(None, enabled=False).transaction():
        pass
